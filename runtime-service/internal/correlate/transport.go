package correlate

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/runtrust/runtrust/internal/registry"
)

// baseTransport is the HTTP transport for one registry: its TLS settings and a connection pool sized to its
// concurrency.
func baseTransport(r Registry) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = r.Limits.MaxConcurrent
	if r.TLS.CAFile != "" || r.TLS.InsecureSkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.TLS.InsecureSkipVerify} //nolint:gosec // only when configured
		if r.TLS.CAFile != "" {
			pool, err := registry.LoadCAPool(r.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.ca_file: %w", err)
			}
			tc.RootCAs = pool
		}
		t.TLSClientConfig = tc
	}
	return t, nil
}
