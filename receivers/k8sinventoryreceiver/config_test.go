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

	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

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
				AuthType: AuthKubeConfig, KubeConfig: "/etc/runtrust/kubeconfig", Context: "prod-eu",
				Namespaces:       NamespacesConfig{Exclude: []string{"kube-system", "kube-public"}},
				SnapshotInterval: 15 * time.Minute, ClusterName: "prod-eu-1", ClusterUID: "7d3c6c1e-1b1a-4f7e-9a55-3c1d2b0a9f11",
			},
		},
		{
			id:   component.NewIDWithName(metadata.Type, "defaults"),
			want: &Config{AuthType: AuthServiceAccount, SnapshotInterval: time.Hour, ClusterName: "prod-eu-1"},
		},
		{
			id: component.NewIDWithName(metadata.Type, "include"),
			want: &Config{AuthType: AuthServiceAccount, ClusterName: "prod-eu-1",
				Namespaces: NamespacesConfig{Include: []string{"shop", "payments"}}},
		},
		{id: component.NewIDWithName(metadata.Type, "no_name"), wantErr: "cluster_name: required"},
		{id: component.NewIDWithName(metadata.Type, "bad_auth"), wantErr: `auth_type: "token" is not one of serviceAccount, kubeConfig`},
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
	cfg := &Config{AuthType: AuthServiceAccount, KubeConfig: "x", Context: "y",
		Namespaces:       NamespacesConfig{Include: []string{"ok", "no_underscores"}, Exclude: []string{""}},
		SnapshotInterval: -time.Second, ClusterUID: "a\nb"}
	err := cfg.Validate()
	require.Error(t, err)
	for _, field := range []string{"kubeconfig:", "context:", "namespaces:", "namespaces.include[1]", "namespaces.exclude[0]",
		"snapshot_interval:", "cluster_name:", "cluster_uid:"} {
		assert.Contains(t, err.Error(), field)
	}
	assert.Equal(t, 8, strings.Count(err.Error(), "\n")+1, "one line per bad field: %v", err)
}

func TestKubeconfigAuth(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://a.example:6443"}}, {name: b, cluster: {server: "https://b.example:6443"}}]
users: [{name: u, user: {token: t0k3n}}]
contexts: [{name: a, context: {cluster: a, user: u}}, {name: b, context: {cluster: b, user: u}}]
current-context: a
`), 0o600))
	cfg := &Config{AuthType: AuthKubeConfig, KubeConfig: path, Context: "b", ClusterName: "x"}
	rc, err := cfg.restConfig()
	require.NoError(t, err)
	assert.Equal(t, "https://b.example:6443", rc.Host)
	assert.Equal(t, "t0k3n", rc.BearerToken)
	assert.Equal(t, "application/vnd.kubernetes.protobuf", rc.ContentType)

	cfg.Context = "missing"
	_, err = cfg.restConfig()
	assert.ErrorContains(t, err, "auth_type kubeConfig")

	cfg = &Config{AuthType: AuthServiceAccount, ClusterName: "x"}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, _, err = cfg.client()
	assert.ErrorContains(t, err, "auth_type serviceAccount")
}

// FuzzValidate: any config either validates or says which field is wrong, and never panics.
func FuzzValidate(f *testing.F) {
	f.Add("serviceAccount", "", "", "shop", "", int64(time.Hour), "prod", "")
	f.Add("kubeConfig", "/k", "ctx", "", "kube-system", int64(0), "p", "uid")
	f.Add("x", "", "", "A_b", "a", int64(-1), "", " ")
	f.Fuzz(func(t *testing.T, auth, kubeconfig, context, include, exclude string, interval int64, name, uid string) {
		cfg := &Config{AuthType: auth, KubeConfig: kubeconfig, Context: context,
			SnapshotInterval: time.Duration(interval), ClusterName: name, ClusterUID: uid}
		if include != "" {
			cfg.Namespaces.Include = strings.Split(include, ",")
		}
		if exclude != "" {
			cfg.Namespaces.Exclude = strings.Split(exclude, ",")
		}
		err := cfg.Validate()
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			field, _, ok := strings.Cut(line, ":")
			if !ok || !strings.Contains("auth_type kubeconfig context namespaces namespaces.include namespaces.exclude snapshot_interval cluster_name cluster_uid",
				strings.SplitN(field, "[", 2)[0]) {
				t.Fatalf("error line names no field: %q", line)
			}
		}
	})
}
