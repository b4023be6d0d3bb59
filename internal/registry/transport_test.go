package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestTransportWaitsOutRetryAfter: with WaitRetryAfter, a request sent during a 429's Retry-After waits for it
// to end when its deadline allows, and fails at once with KindRateLimited when it does not; nothing reaches the
// server meanwhile.
func TestTransportWaitsOutRetryAfter(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	rt := NewTransport(TransportOptions{Registry: srv.Listener.Addr().String(), WaitRetryAfter: true})
	send := func(timeout time.Duration) (*http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v2/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := send(5 * time.Second); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("first request: %v, %v; want the 429", resp, err)
	}
	start := time.Now()
	var re *Error
	if _, err := send(100 * time.Millisecond); !errors.As(err, &re) || re.Kind != KindRateLimited {
		t.Fatalf("a request whose deadline ends inside the Retry-After: %v, want rate_limited", err)
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Fatalf("the refused request took %s; it should fail at once", waited)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests reached the server during the Retry-After", n)
	}
	resp, err := send(5 * time.Second)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after waiting: %v, %v", resp, err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("the request went after %s, inside the 1s Retry-After", waited)
	}
}
