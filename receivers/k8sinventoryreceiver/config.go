package k8sinventoryreceiver

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/runtrust/runtrust/internal/configerr"
	"github.com/runtrust/runtrust/internal/k8sconfig"
)

const (
	defaultSnapshotInterval = time.Hour
	minSnapshotInterval     = time.Second
	// One list per kind (and namespace) at start; client-go's defaults (5/10) make that slow with many namespaces.
	defaultQPS, defaultBurst = 20, 40
	// defaultQueueSize holds the first snapshot of a large cluster (10,000 pods and their workloads) with room.
	defaultQueueSize = 100_000
	userAgent        = "runtrust-k8sinventory"
)

// Config is the k8sinventory receiver's configuration.
type Config struct {
	// apiConfig says how to reach the kube-apiserver: auth_type, kubeconfig, context, endpoint, qps, burst and
	// content_type, at the top level. Embedded through an unexported alias on purpose: confmap.Validate calls the
	// Validate of every exported field, squashed ones too, and would report its errors a second time under the
	// Go field's name ("apiconfig: auth_type: ..."); Config.Validate checks it instead.
	apiConfig `mapstructure:",squash"`
	// Namespaces limits the namespaced objects watched. Nodes are always watched.
	Namespaces NamespacesConfig `mapstructure:"namespaces"`
	// SnapshotInterval is how often every object is sent again as a snapshot record; 0 turns it off.
	SnapshotInterval time.Duration `mapstructure:"snapshot_interval"`
	// ClusterName is the k8s.cluster.name resource attribute. Required.
	ClusterName string `mapstructure:"cluster_name"`
	// ClusterUID is the k8s.cluster.uid resource attribute; empty means the uid of the kube-system namespace.
	ClusterUID string `mapstructure:"cluster_uid"`
	// QueueSize bounds the changes waiting to be sent; beyond it changes are dropped and every object is sent
	// again as a snapshot once the queue has drained.
	QueueSize int `mapstructure:"queue_size"`

	// makeClient replaces the client built from the auth settings (tests).
	makeClient func() (kubernetes.Interface, error)
	// keepFullObjects turns the informer transforms off (the memory benchmark's baseline).
	keepFullObjects bool
}

// NamespacesConfig selects namespaces: at most one of the two lists may be set.
type NamespacesConfig struct {
	// Include watches only these namespaces (one watch per kind and namespace).
	Include []string `mapstructure:"include"`
	// Exclude watches every namespace but these (filtered by the kube-apiserver with a field selector).
	Exclude []string `mapstructure:"exclude"`
}

type apiConfig = k8sconfig.APIConfig

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		apiConfig:        k8sconfig.Default(defaultQPS, defaultBurst),
		SnapshotInterval: defaultSnapshotInterval,
		QueueSize:        defaultQueueSize,
	}
}

// Validate checks every field and names each bad one.
func (cfg *Config) Validate() error {
	errs := []error{cfg.apiConfig.Validate()}
	if len(cfg.Namespaces.Include) > 0 && len(cfg.Namespaces.Exclude) > 0 {
		errs = append(errs, errors.New("namespaces: set include or exclude, not both"))
	}
	errs = append(errs, configerr.Prefix("namespaces", errors.Join(
		checkNamespaces("include", cfg.Namespaces.Include), checkNamespaces("exclude", cfg.Namespaces.Exclude))))
	if cfg.SnapshotInterval < 0 || (cfg.SnapshotInterval > 0 && cfg.SnapshotInterval < minSnapshotInterval) {
		errs = append(errs, fmt.Errorf("snapshot_interval: %s: must be 0 (off) or at least %s", cfg.SnapshotInterval, minSnapshotInterval))
	}
	switch {
	case cfg.ClusterName == "":
		errs = append(errs, errors.New("cluster_name: required: the name the records of this cluster carry as k8s.cluster.name"))
	case strings.TrimSpace(cfg.ClusterName) != cfg.ClusterName || !printable(cfg.ClusterName):
		errs = append(errs, fmt.Errorf("cluster_name: %q has leading or trailing space or a control character", cfg.ClusterName))
	}
	if cfg.ClusterUID != "" && (strings.TrimSpace(cfg.ClusterUID) != cfg.ClusterUID || !printable(cfg.ClusterUID)) {
		errs = append(errs, fmt.Errorf("cluster_uid: %q has leading or trailing space or a control character", cfg.ClusterUID))
	}
	if cfg.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("queue_size: %d: must be at least 1", cfg.QueueSize))
	}
	return errors.Join(errs...)
}

func checkNamespaces(field string, names []string) error {
	var errs []error
	seen := make(map[string]bool, len(names))
	for i, ns := range names {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not a namespace name: %s", field, i, ns, strings.Join(msgs, "; ")))
			continue
		}
		if seen[ns] {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is listed twice", field, i, ns))
		}
		seen[ns] = true
	}
	return errors.Join(errs...)
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// client returns the clientset and a function that closes its connections.
func (cfg *Config) client() (kubernetes.Interface, func(), error) {
	if cfg.makeClient != nil {
		c, err := cfg.makeClient()
		return c, func() {}, err
	}
	return cfg.MakeClient(userAgent)
}
