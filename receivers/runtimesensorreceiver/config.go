package runtimesensorreceiver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/runtrust/runtrust/internal/configerr"
	"github.com/runtrust/runtrust/internal/k8sconfig"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/sensor"
)

// Config is the runtimesensor receiver's configuration.
type Config struct {
	// NodeName is the node this collector runs on (k8s.node.name on every record; the pod watch's
	// spec.nodeName). Default: $K8S_NODE_NAME, else $NODE_NAME.
	NodeName string `mapstructure:"node_name"`
	// ContainersOnly limits capture, in the kernel, to processes in container cgroups.
	ContainersOnly bool `mapstructure:"containers_only"`
	// FileOpens turns the file open events on.
	FileOpens bool `mapstructure:"file_opens"`
	// OpenHook is where the open program runs: auto (the cheapest hook the kernel allows: lsm, then fexit, then
	// tracepoint), or one of those by name, which the receiver refuses to start without.
	OpenHook string `mapstructure:"open_hook"`
	// DedupTTL re-reports an open of the same (cgroup, inode, device, access mode) once it is older than this;
	// 0 reports it once while it stays among the DedupEntries most recent.
	DedupTTL time.Duration `mapstructure:"dedup_ttl"`
	// DedupEntries is the size of the kernel's LRU dedup map.
	DedupEntries int `mapstructure:"dedup_entries"`
	// RingBufferSize is the kernel ring buffer in bytes: a power of two, at least 64 KiB.
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// PollInterval is how often the ring buffer is drained: the most an event waits in the kernel. The kernel
	// never wakes the reader (one wake-up per event was most of the receiver's CPU in an exec storm). Keep it
	// short enough that a short-lived process's /proc entry (for the executable's hash) is usually still there,
	// and that the ring buffer cannot fill between two drains.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// HealthInterval is how often a runtrust.sensor.health record is sent.
	HealthInterval time.Duration `mapstructure:"health_interval"`
	// CgroupRescanInterval is how often, with containers_only, the cgroup trees are scanned for new container
	// cgroups outside the kubepods trees (which are allowed as a whole).
	CgroupRescanInterval time.Duration `mapstructure:"cgroup_rescan_interval"`
	// FlushInterval bounds how long a record waits, once read from the kernel, before it is handed to the
	// pipeline (checked at every poll, so it is at least PollInterval).
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// Hash configures the SHA-256 of executed files.
	Hash HashConfig `mapstructure:"hash"`
	// ProcPath is the host's /proc (a hostPID pod sees it at /proc).
	ProcPath string `mapstructure:"proc_path"`
	// CgroupPath is where the host's cgroup hierarchies are mounted.
	CgroupPath string `mapstructure:"cgroup_path"`
	// Kubernetes configures the node-scoped pod watch that adds k8s.pod.* and k8s.namespace.name.
	Kubernetes KubernetesConfig `mapstructure:"kubernetes"`
	// HostContainers asks the host's container runtime which image a container in no known pod runs.
	HostContainers HostContainersConfig `mapstructure:"host_containers"`
}

// HostContainersConfig says where the host's container runtime answers.
type HostContainersConfig struct {
	// ContainerdSocket is containerd's API socket; empty turns the lookup off. A socket that is not there is
	// said in the log once and asked again later: containerd may start after the collector.
	ContainerdSocket string `mapstructure:"containerd_socket"`
	// DockerSocket is the Docker Engine's API socket, asked about containers in docker cgroups
	// (docker-<id>.scope, /docker/<id>); empty turns it off.
	DockerSocket string `mapstructure:"docker_socket"`
	// PodmanSocket is Podman's API service socket (Docker's API, `podman system service`), asked about
	// containers in libpod-<id>.scope cgroups; empty turns it off.
	PodmanSocket string `mapstructure:"podman_socket"`
}

// HashConfig configures the executables' SHA-256.
type HashConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// MaxFileSize: larger executables are not hashed (the record says so in the log, not on the record).
	MaxFileSize int64 `mapstructure:"max_file_size"`
	// CacheEntries bounds the cache keyed by (device, inode, mtime, size).
	CacheEntries int `mapstructure:"cache_entries"`
}

// KubernetesConfig configures the pod watch. Without it, records carry container.id only.
type KubernetesConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// kubeAPIConfig is the shared client configuration (auth_type, kubeconfig, context, endpoint, qps, burst,
	// content_type). Embedded through an unexported alias so that confmap.Validate does not check it on its own,
	// under the Go field's name and even when the pod watch is off; Config.Validate checks it when enabled.
	kubeAPIConfig `mapstructure:",squash"`
}

type kubeAPIConfig = k8sconfig.APIConfig

// Validate hides the embedded APIConfig's from confmap.Validate: Config.Validate checks the pod watch, which
// needs node_name too, and names its fields kubernetes.auth_type and so on.
func (*KubernetesConfig) Validate() error { return nil }

// The pod watch is one list and watch of one node's pods: client-go's own request rate is plenty.
const kubeQPS, kubeBurst = 5, 10

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() component.Config {
	node := os.Getenv("K8S_NODE_NAME")
	if node == "" {
		node = os.Getenv("NODE_NAME")
	}
	return &Config{
		NodeName:             node,
		FileOpens:            true,
		OpenHook:             string(sensor.OpenHookAuto),
		DedupEntries:         65536,
		RingBufferSize:       16 << 20,
		PollInterval:         100 * time.Millisecond,
		HealthInterval:       time.Minute,
		CgroupRescanInterval: 5 * time.Second,
		FlushInterval:        200 * time.Millisecond,
		Hash:                 HashConfig{Enabled: true, MaxFileSize: 256 << 20, CacheEntries: 4096},
		ProcPath:             "/proc",
		CgroupPath:           "/sys/fs/cgroup",
		Kubernetes:           KubernetesConfig{kubeAPIConfig: k8sconfig.Default(kubeQPS, kubeBurst)},
		HostContainers: HostContainersConfig{ContainerdSocket: "/run/containerd/containerd.sock",
			DockerSocket: "/var/run/docker.sock", PodmanSocket: "/run/podman/podman.sock"},
	}
}

// Validate names every bad field.
func (cfg *Config) Validate() error {
	var errs []error
	if _, err := sensor.ParseOpenHook(cfg.OpenHook); err != nil {
		errs = append(errs, fmt.Errorf("open_hook: %w", err))
	}
	if cfg.DedupTTL < 0 {
		errs = append(errs, fmt.Errorf("dedup_ttl: %v is negative", cfg.DedupTTL))
	}
	if cfg.DedupEntries < 1024 || cfg.DedupEntries > 1<<24 {
		errs = append(errs, fmt.Errorf("dedup_entries: %d is outside 1024 to 16777216", cfg.DedupEntries))
	}
	if n := cfg.RingBufferSize; n < 64<<10 || n > 1<<30 || n&(n-1) != 0 {
		errs = append(errs, fmt.Errorf("ring_buffer_size: %d is not a power of two between 65536 and 1073741824", n))
	}
	if cfg.PollInterval <= 0 || cfg.PollInterval > time.Second {
		errs = append(errs, fmt.Errorf("poll_interval: %v must be positive and at most 1s", cfg.PollInterval))
	} else if cfg.FlushInterval > 0 && cfg.PollInterval > cfg.FlushInterval {
		errs = append(errs, fmt.Errorf("poll_interval: %v is longer than flush_interval (%v); records are flushed at a poll", cfg.PollInterval, cfg.FlushInterval))
	}
	if cfg.HealthInterval <= 0 {
		errs = append(errs, fmt.Errorf("health_interval: %v must be positive", cfg.HealthInterval))
	}
	if cfg.CgroupRescanInterval <= 0 {
		errs = append(errs, fmt.Errorf("cgroup_rescan_interval: %v must be positive", cfg.CgroupRescanInterval))
	}
	if cfg.FlushInterval <= 0 || cfg.FlushInterval > time.Minute {
		errs = append(errs, fmt.Errorf("flush_interval: %v must be positive and at most 1m", cfg.FlushInterval))
	}
	if cfg.Hash.MaxFileSize <= 0 {
		errs = append(errs, fmt.Errorf("hash.max_file_size: %d must be positive", cfg.Hash.MaxFileSize))
	}
	if cfg.Hash.CacheEntries < 1 {
		errs = append(errs, fmt.Errorf("hash.cache_entries: %d must be at least 1", cfg.Hash.CacheEntries))
	}
	if cfg.ProcPath == "" {
		errs = append(errs, errors.New("proc_path: empty"))
	}
	for _, s := range [][2]string{{"containerd_socket", cfg.HostContainers.ContainerdSocket},
		{"docker_socket", cfg.HostContainers.DockerSocket}, {"podman_socket", cfg.HostContainers.PodmanSocket}} {
		if s[1] != "" && !filepath.IsAbs(s[1]) {
			errs = append(errs, fmt.Errorf("host_containers.%s: %q is not an absolute path", s[0], s[1]))
		}
	}
	if cfg.CgroupPath == "" {
		errs = append(errs, errors.New("cgroup_path: empty"))
	}
	if cfg.Kubernetes.Enabled {
		errs = append(errs, configerr.Prefix("kubernetes", cfg.Kubernetes.kubeAPIConfig.Validate()))
		if cfg.NodeName == "" {
			errs = append(errs, errors.New("node_name: empty, but kubernetes.enabled needs it to watch this node's pods "+
				"(set it, or K8S_NODE_NAME from the downward API spec.nodeName)"))
		}
	}
	return errors.Join(errs...)
}
