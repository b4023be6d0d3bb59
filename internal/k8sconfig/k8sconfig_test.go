package k8sconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtrust/runtrust/internal/kubetest"
)

func TestValidate(t *testing.T) {
	def := Default(5, 10)
	with := func(f func(*APIConfig)) APIConfig { c := def; f(&c); return c }
	tests := []struct {
		name string
		cfg  APIConfig
		want []string // one per error line, in order; none for a valid config
	}{
		{"default", def, nil},
		{"kubeconfig with file and context", with(func(c *APIConfig) { c.AuthType, c.KubeConfig, c.Context = AuthKubeConfig, "/k", "prod" }), nil},
		{"kubeconfig from the environment", with(func(c *APIConfig) { c.AuthType = AuthKubeConfig }), nil},
		{"none with an endpoint", with(func(c *APIConfig) { c.AuthType, c.Endpoint = AuthNone, "http://127.0.0.1:8001" }), nil},
		{"json", with(func(c *APIConfig) { c.ContentType = ContentJSON }), nil},
		{"unknown auth type", with(func(c *APIConfig) { c.AuthType = "token" }),
			[]string{`auth_type: "token" is not one of serviceAccount, kubeConfig, none`}},
		{"empty auth type", with(func(c *APIConfig) { c.AuthType = "" }), []string{`auth_type: "" is not one of`}},
		{"kubeconfig fields with serviceAccount", with(func(c *APIConfig) { c.KubeConfig, c.Context, c.Endpoint = "/k", "c", "http://x" }),
			[]string{`kubeconfig: set, but auth_type is "serviceAccount"; set auth_type: kubeConfig`,
				`context: set, but auth_type is "serviceAccount"; set auth_type: kubeConfig`,
				`endpoint: set, but auth_type is "serviceAccount"; set auth_type: none`}},
		{"endpoint with kubeConfig", with(func(c *APIConfig) { c.AuthType, c.Endpoint = AuthKubeConfig, "http://x" }),
			[]string{`endpoint: set, but auth_type is "kubeConfig"; set auth_type: none`}},
		{"none without endpoint", with(func(c *APIConfig) { c.AuthType = AuthNone }), []string{"endpoint: required with auth_type none"}},
		{"none with kubeconfig fields", with(func(c *APIConfig) { c.AuthType, c.Endpoint, c.KubeConfig, c.Context = AuthNone, "https://a", "/k", "c" }),
			[]string{`kubeconfig: set, but auth_type is "none"`, `context: set, but auth_type is "none"`}},
		{"endpoint without scheme", with(func(c *APIConfig) { c.AuthType, c.Endpoint = AuthNone, "127.0.0.1:8001" }),
			[]string{`endpoint: "127.0.0.1:8001" is not`}},
		{"endpoint with another scheme", with(func(c *APIConfig) { c.AuthType, c.Endpoint = AuthNone, "ftp://a" }),
			[]string{`endpoint: "ftp://a" is not an http:// or https:// URL with a host`}},
		{"endpoint unparsable", with(func(c *APIConfig) { c.AuthType, c.Endpoint = AuthNone, "http://a b%zz" }),
			[]string{`endpoint: "http://a b%zz" is not a URL`}},
		{"zero qps and burst", with(func(c *APIConfig) { c.QPS, c.Burst = 0, 0 }),
			[]string{"qps: 0: must be a positive number", "burst: 0: must be at least 1"}},
		{"negative qps", with(func(c *APIConfig) { c.QPS = -1 }), []string{"qps: -1: must be"}},
		{"NaN qps", with(func(c *APIConfig) { c.QPS = float32(math.NaN()) }), []string{"qps: NaN: must be"}},
		{"infinite qps", with(func(c *APIConfig) { c.QPS = float32(math.Inf(1)) }), []string{"qps: +Inf: must be"}},
		{"unknown content type", with(func(c *APIConfig) { c.ContentType = "yaml" }), []string{`content_type: "yaml" is not one of protobuf, json`}},
		{"zero value: every field", APIConfig{}, []string{"auth_type:", "qps:", "burst:", "content_type:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tt.want), "one line per bad field: %v", err)
			for i, want := range tt.want {
				assert.True(t, strings.HasPrefix(lines[i], want), "line %d: got %q, want prefix %q", i, lines[i], want)
			}
		})
	}
}

// FuzzValidate: any configuration validates or names, on every line, one of its fields; it never panics, and a
// valid one builds a REST configuration (except in-cluster, which needs a pod's files).
func FuzzValidate(f *testing.F) {
	f.Add("serviceAccount", "", "", "", float32(5), 10, "protobuf")
	f.Add("kubeConfig", "/k", "ctx", "", float32(20), 40, "json")
	f.Add("none", "", "", "http://127.0.0.1:8001", float32(0.5), 1, "protobuf")
	f.Add("x", "k", "c", "::", float32(-1), -1, "")
	fields := map[string]bool{"auth_type": true, "kubeconfig": true, "context": true, "endpoint": true,
		"qps": true, "burst": true, "content_type": true}
	f.Fuzz(func(t *testing.T, auth, kubeconfig, kctx, endpoint string, qps float32, burst int, content string) {
		c := APIConfig{AuthType: AuthType(auth), KubeConfig: kubeconfig, Context: kctx, Endpoint: endpoint,
			QPS: qps, Burst: burst, ContentType: ContentType(content)}
		err := c.Validate()
		if err == nil {
			if c.AuthType == AuthNone {
				rc, err := c.RESTConfig("fuzz")
				require.NoError(t, err)
				assert.Equal(t, endpoint, rc.Host)
			}
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			field, _, ok := strings.Cut(line, ":")
			if !ok || !fields[field] {
				t.Fatalf("error line names no field: %q", line)
			}
		}
	})
}

const twoContexts = `apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://a.example:6443"}}, {name: b, cluster: {server: "https://b.example:6443"}}]
users: [{name: u, user: {token: t0k3n}}]
contexts: [{name: a, context: {cluster: a, user: u}}, {name: b, context: {cluster: b, user: u}}]
current-context: a
`

func TestRESTConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(twoContexts), 0o600))

	c := Default(20, 40)
	c.AuthType, c.KubeConfig = AuthKubeConfig, path
	rc, err := c.RESTConfig("runtrust-test")
	require.NoError(t, err)
	assert.Equal(t, "https://a.example:6443", rc.Host, "the file's current context")
	assert.Equal(t, "t0k3n", rc.BearerToken)
	assert.Equal(t, "runtrust-test", rc.UserAgent)
	assert.Equal(t, float32(20), rc.QPS)
	assert.Equal(t, 40, rc.Burst)
	assert.Equal(t, "application/vnd.kubernetes.protobuf", rc.ContentType)
	assert.Equal(t, "application/vnd.kubernetes.protobuf,application/json", rc.AcceptContentTypes)

	c.Context = "b"
	rc, err = c.RESTConfig("runtrust-test")
	require.NoError(t, err)
	assert.Equal(t, "https://b.example:6443", rc.Host)

	c.KubeConfig, c.Context = "", ""
	t.Setenv("KUBECONFIG", path)
	rc, err = c.RESTConfig("runtrust-test")
	require.NoError(t, err)
	assert.Equal(t, "https://a.example:6443", rc.Host, "$KUBECONFIG when kubeconfig is empty")

	c.KubeConfig, c.Context = path, "missing"
	_, err = c.RESTConfig("runtrust-test")
	assert.ErrorContains(t, err, "auth_type kubeConfig")

	c = Default(5, 10)
	c.AuthType, c.Endpoint, c.ContentType = AuthNone, "http://127.0.0.1:8001", ContentJSON
	rc, err = c.RESTConfig("runtrust-test")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8001", rc.Host)
	assert.Empty(t, rc.BearerToken)
	assert.Equal(t, "application/json", rc.ContentType)
	assert.Equal(t, "application/json", rc.AcceptContentTypes)

	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	c = Default(5, 10)
	_, _, err = c.MakeClient("runtrust-test")
	assert.ErrorContains(t, err, "auth_type serviceAccount")
}

// TestMakeClient talks to a real kube-apiserver with each way of authenticating this machine can offer, and
// checks that closing the client leaves no goroutine behind.
func TestMakeClient(t *testing.T) {
	cluster := kubetest.Start(t)
	// auth_type none: a loopback proxy that adds the credentials, as `kubectl proxy` does.
	target, err := url.Parse(cluster.URL)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(cluster.CAData))
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxyTransport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	proxy.Transport = proxyTransport
	var sawProtobuf bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sawProtobuf = sawProtobuf || strings.HasPrefix(req.Header.Get("Accept"), mediaProtobuf)
		req.Header.Set("Authorization", "Bearer "+kubetest.AdminToken)
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(func() { front.Close(); proxyTransport.CloseIdleConnections() })
	ignore := goleak.IgnoreCurrent()

	for _, c := range []APIConfig{
		{AuthType: AuthKubeConfig, KubeConfig: cluster.Kubeconfig, QPS: 5, Burst: 10, ContentType: ContentProtobuf},
		{AuthType: AuthKubeConfig, KubeConfig: cluster.Kubeconfig, QPS: 5, Burst: 10, ContentType: ContentJSON},
		{AuthType: AuthNone, Endpoint: front.URL, QPS: 5, Burst: 10, ContentType: ContentProtobuf},
	} {
		t.Run(string(c.AuthType)+"/"+string(c.ContentType), func(t *testing.T) {
			require.NoError(t, c.Validate())
			client, closeConns, err := c.MakeClient("runtrust-test")
			require.NoError(t, err)
			ns, err := client.CoreV1().Namespaces().Get(context.Background(), metav1.NamespaceSystem, metav1.GetOptions{})
			require.NoError(t, err)
			assert.NotEmpty(t, ns.UID)
			closeConns()
			proxyTransport.CloseIdleConnections() // the proxy's own connections are not the client's
			goleak.VerifyNone(t, ignore)
		})
	}
	assert.True(t, sawProtobuf, "the proxied client asked for protobuf")
}
