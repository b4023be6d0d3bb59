package runtimesensorreceiver

import (
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
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	t.Setenv("K8S_NODE_NAME", "")
	t.Setenv("NODE_NAME", "")
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	defaults := createDefaultConfig().(*Config)
	defaults.NodeName = "node-b"

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr []string
	}{
		{
			id: component.NewID(metadata.Type),
			want: &Config{
				NodeName: "node-a", ContainersOnly: true, FileOpens: true, OpenHook: "tracepoint", DedupTTL: 10 * time.Minute,
				DedupEntries: 131072, RingBufferSize: 32 << 20, PollInterval: 50 * time.Millisecond, HealthInterval: 30 * time.Second,
				CgroupRescanInterval: 2 * time.Second, FlushInterval: 100 * time.Millisecond,
				Hash:     HashConfig{Enabled: true, MaxFileSize: 100 << 20, CacheEntries: 1024},
				ProcPath: "/host/proc", CgroupPath: "/host/sys/fs/cgroup",
				Kubernetes: KubernetesConfig{Enabled: true, kubeAPIConfig: k8sconfig.Default(kubeQPS, kubeBurst)},
				HostContainers: HostContainersConfig{ContainerdSocket: "/host/run/containerd/containerd.sock",
					DockerSocket: "/host/var/run/docker.sock"},
			},
		},
		{id: component.NewIDWithName(metadata.Type, "defaults"), want: defaults},
		{id: component.NewIDWithName(metadata.Type, "bad_ring"), wantErr: []string{"ring_buffer_size: 100000 is not a power of two"}},
		{id: component.NewIDWithName(metadata.Type, "bad_dedup"), wantErr: []string{"dedup_entries: 10", "dedup_ttl: -1s is negative"}},
		{id: component.NewIDWithName(metadata.Type, "bad_open_hook"), wantErr: []string{`open_hook: unknown open hook "kprobe": want auto, lsm, fexit or tracepoint`}},
		{id: component.NewIDWithName(metadata.Type, "bad_kubernetes"), wantErr: []string{"kubernetes.auth_type: \"token\"", "node_name: empty"}},
		{id: component.NewIDWithName(metadata.Type, "bad_intervals"), wantErr: []string{"health_interval: 0s", "flush_interval: 2m0s"}},
		{id: component.NewIDWithName(metadata.Type, "bad_poll"), wantErr: []string{"poll_interval: 300ms is longer than flush_interval (200ms)"}},
		{id: component.NewIDWithName(metadata.Type, "bad_containerd_socket"), wantErr: []string{`host_containers.containerd_socket: "run/containerd.sock" is not an absolute path`,
			`host_containers.docker_socket: "docker.sock" is not an absolute path`}},
		{id: component.NewIDWithName(metadata.Type, "bad_poll_range"), wantErr: []string{"poll_interval: 2s must be positive and at most 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				assert.Equal(t, len(tt.wantErr), strings.Count(err.Error(), "\n")+1, "one line per bad field: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func FuzzConfigValidate(f *testing.F) {
	f.Add(int64(0), 65536, 16<<20, int64(time.Minute), "serviceAccount", true, "")
	f.Add(int64(-1), 1, 3, int64(0), "x", true, "n")
	f.Fuzz(func(t *testing.T, ttl int64, entries, ring int, health int64, auth string, k8s bool, node string) {
		cfg := createDefaultConfig().(*Config)
		cfg.DedupTTL, cfg.DedupEntries, cfg.RingBufferSize, cfg.HealthInterval = time.Duration(ttl), entries, ring, time.Duration(health)
		cfg.Kubernetes.Enabled, cfg.Kubernetes.AuthType = k8s, k8sconfig.AuthType(auth)
		cfg.NodeName = node
		if err := cfg.Validate(); err == nil {
			if ring&(ring-1) != 0 || cfg.HealthInterval <= 0 || ttl < 0 {
				t.Fatalf("accepted a bad config: %+v", cfg)
			}
		}
	})
}
