package k8sinventoryreceiver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runtrust/runtrust/internal/k8sconfig"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

// hangingAPIServer answers the read of namespace kube-system (so the client keeps an idle connection open) and
// never answers anything else, until the client gives up.
func hangingAPIServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/api/v1/namespaces/kube-system" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"kube-system","uid":"ks-uid"}}`))
			return
		}
		<-req.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestStartFailureLeavesNothing: a Start that fails, or a Shutdown while every request hangs, leaves no
// goroutine (informers, the run loop, connections) behind.
func TestStartFailureLeavesNothing(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: a, context: {cluster: a, user: u}}]
current-context: a
`), 0o600))
	hanging := hangingAPIServer(t)
	ignore := goleak.IgnoreCurrent()

	for _, tc := range []struct {
		name    string
		set     func(*Config)
		wantErr string
	}{
		{"missing kubeconfig context", func(c *Config) { c.AuthType, c.KubeConfig, c.Context = k8sconfig.AuthKubeConfig, kubeconfig, "gone" },
			`context "gone" does not exist`},
		{"not in a cluster", func(*Config) { t.Setenv("KUBERNETES_SERVICE_HOST", "") }, "auth_type serviceAccount"},
		{"started, every request hangs, shut down", func(c *Config) { c.AuthType, c.Endpoint = k8sconfig.AuthNone, hanging }, ""},
		{"started, cluster uid given, shut down", func(c *Config) {
			c.AuthType, c.Endpoint, c.ClusterUID = k8sconfig.AuthNone, hanging, "uid"
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.ClusterName = "c"
			tc.set(cfg)
			require.NoError(t, cfg.Validate())
			r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, new(consumertest.LogsSink))
			require.NoError(t, err)
			err = r.Start(context.Background(), componenttest.NewNopHost())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
				time.Sleep(200 * time.Millisecond) // let the lists and the uid lookup reach the server
			}
			done := make(chan error, 1)
			go func() { done <- r.Shutdown(context.Background()) }()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Shutdown did not return within 10s")
			}
			goleak.VerifyNone(t, ignore)
		})
	}
}

// TestOwnerLookupEndsWithTheRunContext: a ReplicaSet read from a kube-apiserver that does not answer ends when
// the run context does, not after the lookup's own 10s timeout.
func TestOwnerLookupEndsWithTheRunContext(t *testing.T) {
	api := k8sconfig.Default(defaultQPS, defaultBurst)
	api.AuthType, api.Endpoint = k8sconfig.AuthNone, hangingAPIServer(t)
	client, closeConns, err := api.MakeClient(userAgent)
	require.NoError(t, err)
	t.Cleanup(closeConns)
	r := &inventoryReceiver{client: client, owners: map[types.UID]workloadRef{}}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	got, final := r.lookupOwner(ctx, "shop", ctrl(kindReplicaSet, "web-7f9c", "rs-uid"))
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.False(t, final, "not read: tried again at the next event")
	assert.Equal(t, workloadRef{kindReplicaSet, "web-7f9c", "rs-uid"}, got)
}
