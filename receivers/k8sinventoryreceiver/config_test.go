package k8sinventoryreceiver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/runtrust/runtrust/internal/k8sconfig"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

// api is the client configuration the receiver's defaults start from.
func api(f func(*k8sconfig.APIConfig)) apiConfig {
	c := k8sconfig.Default(defaultQPS, defaultBurst)
	f(&c)
	return c
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string // substring of the validation error; the field must be named
	}{
		{
			id: component.NewID(metadata.Type),
			want: &Config{
				apiConfig: api(func(c *k8sconfig.APIConfig) {
					c.AuthType, c.KubeConfig, c.Context = k8sconfig.AuthKubeConfig, "/etc/runtrust/kubeconfig", "prod-eu"
					c.QPS, c.Burst, c.ContentType = 50, 100, k8sconfig.ContentJSON
				}),
				Namespaces:       NamespacesConfig{Exclude: []string{"kube-system", "kube-public"}},
				SnapshotInterval: 15 * time.Minute, ClusterName: "prod-eu-1", ClusterUID: "7d3c6c1e-1b1a-4f7e-9a55-3c1d2b0a9f11",
				QueueSize: 5000,
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "defaults"),
			want: &Config{apiConfig: api(func(*k8sconfig.APIConfig) {}), SnapshotInterval: time.Hour, ClusterName: "prod-eu-1",
				QueueSize: defaultQueueSize},
		},
		{
			id: component.NewIDWithName(metadata.Type, "include"),
			want: &Config{apiConfig: api(func(*k8sconfig.APIConfig) {}), ClusterName: "prod-eu-1",
				Namespaces: NamespacesConfig{Include: []string{"shop", "payments"}}, QueueSize: defaultQueueSize},
		},
		{id: component.NewIDWithName(metadata.Type, "no_name"), wantErr: "cluster_name: required"},
		{id: component.NewIDWithName(metadata.Type, "none"), want: &Config{
			apiConfig:   api(func(c *k8sconfig.APIConfig) { c.AuthType, c.Endpoint = k8sconfig.AuthNone, "http://127.0.0.1:8001" }),
			ClusterName: "prod-eu-1", SnapshotInterval: time.Hour, QueueSize: defaultQueueSize}},
		{id: component.NewIDWithName(metadata.Type, "bad_auth"), wantErr: `auth_type: "token" is not one of serviceAccount, kubeConfig, none`},
		{id: component.NewIDWithName(metadata.Type, "bad_rate"), wantErr: "qps: 0: must be a positive number of requests per second\nburst: 0: must be at least 1"},
		{id: component.NewIDWithName(metadata.Type, "bad_queue"), wantErr: "queue_size: 0: must be at least 1"},
		{id: component.NewIDWithName(metadata.Type, "kubeconfig_without_auth"), wantErr: `kubeconfig: set, but auth_type is "serviceAccount"`},
		{id: component.NewIDWithName(metadata.Type, "both_lists"), wantErr: "namespaces: set include or exclude, not both"},
		{id: component.NewIDWithName(metadata.Type, "bad_namespace"), wantErr: `namespaces.include[0]: "Shop" is not a namespace name`},
		{id: component.NewIDWithName(metadata.Type, "duplicate_namespace"), wantErr: `namespaces.exclude[1]: "kube-system" is listed twice`},
		{id: component.NewIDWithName(metadata.Type, "bad_interval"), wantErr: "snapshot_interval: 10ms: must be 0 (off) or at least 1s"},
		{id: component.NewIDWithName(metadata.Type, "bad_name"), wantErr: `cluster_name: " prod " has leading or trailing space`},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	cfg := &Config{apiConfig: api(func(c *k8sconfig.APIConfig) { c.KubeConfig, c.Context, c.Burst = "x", "y", 0 }),
		Namespaces:       NamespacesConfig{Include: []string{"ok", "no_underscores"}, Exclude: []string{""}},
		SnapshotInterval: -time.Second, ClusterUID: "a\nb"}
	err := confmap.Validate(cfg)
	require.Error(t, err)
	fields := []string{"kubeconfig:", "context:", "burst:", "namespaces:", "namespaces.include[1]:", "namespaces.exclude[0]:",
		"snapshot_interval:", "cluster_name:", "cluster_uid:", "queue_size:"}
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, len(fields), "one line per bad field, each once: %v", err)
	for i, field := range fields {
		assert.True(t, strings.HasPrefix(lines[i], field), "line %d: %q names %s", i, lines[i], field)
	}
}

// TestKubeconfigAuth: the receiver's client is the shared one, with the receiver's user agent and rate.
func TestKubeconfigAuth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://a.example:6443"}}, {name: b, cluster: {server: "https://b.example:6443"}}]
users: [{name: u, user: {token: t0k3n}}]
contexts: [{name: a, context: {cluster: a, user: u}}, {name: b, context: {cluster: b, user: u}}]
current-context: a
`), 0o600))
	cfg := createDefaultConfig().(*Config)
	cfg.AuthType, cfg.KubeConfig, cfg.Context = k8sconfig.AuthKubeConfig, path, "b"
	rc, err := cfg.RESTConfig(userAgent)
	require.NoError(t, err)
	assert.Equal(t, "https://b.example:6443", rc.Host)
	assert.Equal(t, "runtrust-k8sinventory", rc.UserAgent)
	assert.Equal(t, float32(20), rc.QPS)
	assert.Equal(t, 40, rc.Burst)
	assert.Equal(t, "application/vnd.kubernetes.protobuf", rc.ContentType)

	cfg = createDefaultConfig().(*Config)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, _, err = cfg.client()
	assert.ErrorContains(t, err, "auth_type serviceAccount")
}

// FuzzValidate: any config either validates or says which field is wrong, and never panics.
func FuzzValidate(f *testing.F) {
	f.Add("serviceAccount", "", "", "shop", "", int64(time.Hour), "prod", "", 1)
	f.Add("kubeConfig", "/k", "ctx", "", "kube-system", int64(0), "p", "uid", 100000)
	f.Add("x", "", "", "A_b", "a", int64(-1), "", " ", -1)
	f.Fuzz(func(t *testing.T, auth, kubeconfig, context, include, exclude string, interval int64, name, uid string, queue int) {
		cfg := createDefaultConfig().(*Config)
		cfg.AuthType, cfg.KubeConfig, cfg.Context = k8sconfig.AuthType(auth), kubeconfig, context
		cfg.SnapshotInterval, cfg.ClusterName, cfg.ClusterUID, cfg.QueueSize = time.Duration(interval), name, uid, queue
		if include != "" {
			cfg.Namespaces.Include = strings.Split(include, ",")
		}
		if exclude != "" {
			cfg.Namespaces.Exclude = strings.Split(exclude, ",")
		}
		err := confmap.Validate(cfg)
		if err == nil {
			return
		}
		fields := map[string]bool{"auth_type": true, "kubeconfig": true, "context": true, "namespaces": true,
			"namespaces.include": true, "namespaces.exclude": true, "snapshot_interval": true, "cluster_name": true,
			"cluster_uid": true, "queue_size": true, "endpoint": true}
		for _, line := range strings.Split(err.Error(), "\n") {
			field, _, ok := strings.Cut(line, ":")
			if !ok || !fields[strings.SplitN(field, "[", 2)[0]] {
				t.Fatalf("error line names no field: %q", line)
			}
		}
	})
}
