package k8sinventoryreceiver

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/connrotation"
)

// Values of Config.AuthType.
const (
	// AuthServiceAccount uses the pod's service account token (the receiver runs inside the cluster).
	AuthServiceAccount = "serviceAccount"
	// AuthKubeConfig uses a kubeconfig file (the receiver runs outside the cluster, or in tests).
	AuthKubeConfig = "kubeConfig"
)

const (
	defaultSnapshotInterval = time.Hour
	minSnapshotInterval     = time.Second
)

// Config is the k8sinventory receiver's configuration.
type Config struct {
	// AuthType says how to reach the kube-apiserver: serviceAccount (default) or kubeConfig.
	AuthType string `mapstructure:"auth_type"`
	// KubeConfig is the kubeconfig file for auth_type kubeConfig; empty means $KUBECONFIG, then ~/.kube/config.
	KubeConfig string `mapstructure:"kubeconfig"`
	// Context is the kubeconfig context to use; empty means the file's current context.
	Context string `mapstructure:"context"`
	// Namespaces limits the namespaced objects watched. Nodes are always watched.
	Namespaces NamespacesConfig `mapstructure:"namespaces"`
	// SnapshotInterval is how often every object is sent again as a snapshot record; 0 turns it off.
	SnapshotInterval time.Duration `mapstructure:"snapshot_interval"`
	// ClusterName is the k8s.cluster.name resource attribute. Required.
	ClusterName string `mapstructure:"cluster_name"`
	// ClusterUID is the k8s.cluster.uid resource attribute; empty means the uid of the kube-system namespace.
	ClusterUID string `mapstructure:"cluster_uid"`

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

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		AuthType:         AuthServiceAccount,
		SnapshotInterval: defaultSnapshotInterval,
	}
}

// Validate checks every field and names each bad one.
func (cfg *Config) Validate() error {
	var errs []error
	switch cfg.AuthType {
	case AuthServiceAccount:
		if cfg.KubeConfig != "" {
			errs = append(errs, fmt.Errorf("kubeconfig: set, but auth_type is %q; set auth_type: %s to use it",
				cfg.AuthType, AuthKubeConfig))
		}
		if cfg.Context != "" {
			errs = append(errs, fmt.Errorf("context: set, but auth_type is %q; set auth_type: %s to use it",
				cfg.AuthType, AuthKubeConfig))
		}
	case AuthKubeConfig:
	default:
		errs = append(errs, fmt.Errorf("auth_type: %q is not one of %s, %s", cfg.AuthType, AuthServiceAccount, AuthKubeConfig))
	}
	if len(cfg.Namespaces.Include) > 0 && len(cfg.Namespaces.Exclude) > 0 {
		errs = append(errs, errors.New("namespaces: set include or exclude, not both"))
	}
	errs = append(errs, checkNamespaces("namespaces.include", cfg.Namespaces.Include)...)
	errs = append(errs, checkNamespaces("namespaces.exclude", cfg.Namespaces.Exclude)...)
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
	return errors.Join(errs...)
}

func checkNamespaces(field string, names []string) []error {
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
	return errs
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// restConfig builds the client configuration the auth settings describe.
func (cfg *Config) restConfig() (*rest.Config, error) {
	var rc *rest.Config
	var err error
	switch cfg.AuthType {
	case AuthServiceAccount:
		rc, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("auth_type %s: %w", AuthServiceAccount, err)
		}
	case AuthKubeConfig:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if cfg.KubeConfig != "" {
			rules.ExplicitPath = cfg.KubeConfig
		}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
			&clientcmd.ConfigOverrides{CurrentContext: cfg.Context}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("auth_type %s: %w", AuthKubeConfig, err)
		}
	default:
		return nil, fmt.Errorf("auth_type: %q is not one of %s, %s", cfg.AuthType, AuthServiceAccount, AuthKubeConfig)
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "runtrust-k8sinventory"
	// Protobuf is smaller to receive and cheaper to decode than JSON for the built-in kinds watched here.
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	// One list per kind (and namespace) at start; the defaults (5/10) would make that slow with many namespaces.
	rc.QPS, rc.Burst = 20, 40
	return rc, nil
}

// client returns the clientset and a function that closes its connections (client-go keeps them open in a
// transport cache otherwise, beyond Shutdown).
func (cfg *Config) client() (kubernetes.Interface, func(), error) {
	if cfg.makeClient != nil {
		c, err := cfg.makeClient()
		return c, func() {}, err
	}
	rc, err := cfg.restConfig()
	if err != nil {
		return nil, nil, err
	}
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	rc.Dial = dialer.DialContext
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	return c, dialer.CloseAll, nil
}
