// Package k8sconfig is the one Kubernetes client configuration of runtrust: every component that talks to a
// kube-apiserver embeds APIConfig (mapstructure ",squash"), so auth_type, kubeconfig, context, endpoint, qps,
// burst and content_type mean the same everywhere, are validated the same way and build the same client.
package k8sconfig

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/connrotation"
)

// AuthType says how a component authenticates to the kube-apiserver.
type AuthType string

const (
	// AuthServiceAccount uses the pod's service account token and CA (the component runs inside the cluster).
	AuthServiceAccount AuthType = "serviceAccount"
	// AuthKubeConfig uses a kubeconfig file (outside the cluster, or in tests).
	AuthKubeConfig AuthType = "kubeConfig"
	// AuthNone sends no credentials to Endpoint: a local proxy that authenticates for us, such as `kubectl proxy`.
	AuthNone AuthType = "none"
)

// ContentType is the encoding asked of the kube-apiserver.
type ContentType string

const (
	// ContentProtobuf asks for protobuf, which is smaller to receive and cheaper to decode than JSON; the
	// built-in kinds support it, anything else falls back to JSON.
	ContentProtobuf ContentType = "protobuf"
	// ContentJSON asks for JSON only (a proxy in between that cannot pass protobuf).
	ContentJSON ContentType = "json"
)

const (
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
	mediaJSON     = "application/json"
)

// APIConfig is how to reach the kube-apiserver.
type APIConfig struct {
	// AuthType is serviceAccount (default), kubeConfig or none.
	AuthType AuthType `mapstructure:"auth_type"`
	// KubeConfig is the kubeconfig file for auth_type kubeConfig; empty means $KUBECONFIG, then ~/.kube/config.
	KubeConfig string `mapstructure:"kubeconfig"`
	// Context is the kubeconfig context for auth_type kubeConfig; empty means the file's current context.
	Context string `mapstructure:"context"`
	// Endpoint is the kube-apiserver's URL for auth_type none, e.g. http://127.0.0.1:8001.
	Endpoint string `mapstructure:"endpoint"`
	// QPS and Burst bound the requests per second the client sends (a token bucket).
	QPS   float32 `mapstructure:"qps"`
	Burst int     `mapstructure:"burst"`
	// ContentType is protobuf (default) or json.
	ContentType ContentType `mapstructure:"content_type"`
}

// Default returns the in-cluster configuration with the given request rate; client-go's own defaults are 5 and
// 10, a component that lists many kinds at start wants more.
func Default(qps float32, burst int) APIConfig {
	return APIConfig{AuthType: AuthServiceAccount, QPS: qps, Burst: burst, ContentType: ContentProtobuf}
}

// Validate names every bad field, relative to where APIConfig sits (an embedding component prefixes it with
// configerr.Prefix when it is not squashed at the top).
func (c *APIConfig) Validate() error {
	var errs []error
	unusedUnless := func(field, value string, want AuthType) {
		if value != "" {
			errs = append(errs, fmt.Errorf("%s: set, but auth_type is %q; set auth_type: %s to use it", field, c.AuthType, want))
		}
	}
	switch c.AuthType {
	case AuthServiceAccount:
		unusedUnless("kubeconfig", c.KubeConfig, AuthKubeConfig)
		unusedUnless("context", c.Context, AuthKubeConfig)
		unusedUnless("endpoint", c.Endpoint, AuthNone)
	case AuthKubeConfig:
		unusedUnless("endpoint", c.Endpoint, AuthNone)
	case AuthNone:
		unusedUnless("kubeconfig", c.KubeConfig, AuthKubeConfig)
		unusedUnless("context", c.Context, AuthKubeConfig)
		if err := checkEndpoint(c.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("endpoint: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("auth_type: %q is not one of %s, %s, %s", c.AuthType, AuthServiceAccount, AuthKubeConfig, AuthNone))
	}
	if q := float64(c.QPS); math.IsNaN(q) || math.IsInf(q, 0) || q <= 0 {
		errs = append(errs, fmt.Errorf("qps: %v: must be a positive number of requests per second", c.QPS))
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst: %d: must be at least 1", c.Burst))
	}
	switch c.ContentType {
	case ContentProtobuf, ContentJSON:
	default:
		errs = append(errs, fmt.Errorf("content_type: %q is not one of %s, %s", c.ContentType, ContentProtobuf, ContentJSON))
	}
	return errors.Join(errs...)
}

func checkEndpoint(s string) error {
	if s == "" {
		return errors.New("required with auth_type none: the URL of a proxy that authenticates, e.g. http://127.0.0.1:8001")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", s)
	}
	return nil
}

// RESTConfig builds the client configuration the settings describe; userAgent names the component in the
// kube-apiserver's logs and audit records.
func (c *APIConfig) RESTConfig(userAgent string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	switch c.AuthType {
	case AuthServiceAccount:
		rc, err = rest.InClusterConfig()
	case AuthKubeConfig:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = c.KubeConfig
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
			&clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	case AuthNone:
		rc = &rest.Config{Host: c.Endpoint}
	default:
		err = fmt.Errorf("%q is not one of %s, %s, %s", c.AuthType, AuthServiceAccount, AuthKubeConfig, AuthNone)
	}
	if err != nil {
		return nil, fmt.Errorf("auth_type %s: %w", c.AuthType, err)
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = userAgent
	rc.QPS, rc.Burst = c.QPS, c.Burst
	if c.ContentType == ContentProtobuf {
		rc.AcceptContentTypes = mediaProtobuf + "," + mediaJSON
		rc.ContentType = mediaProtobuf
	} else {
		rc.AcceptContentTypes, rc.ContentType = mediaJSON, mediaJSON
	}
	return rc, nil
}

// MakeClient returns a clientset and a function that closes every connection it opened. Without that, client-go
// keeps idle connections (and their reader goroutines) open after the component has shut down.
func (c *APIConfig) MakeClient(userAgent string) (kubernetes.Interface, func(), error) {
	rc, err := c.RESTConfig(userAgent)
	if err != nil {
		return nil, nil, err
	}
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	rc.Dial = dialer.DialContext
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		dialer.CloseAll()
		return nil, nil, err
	}
	return client, dialer.CloseAll, nil
}
