package correlate

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
)

// loadCAPool reads a PEM file of CAs to trust beside the system's.
func loadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// baseTransport is the HTTP transport for one registry: its TLS settings and a connection pool sized to its
// concurrency.
func baseTransport(r Registry) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = r.Limits.MaxConcurrent
	if r.TLS.CAFile != "" || r.TLS.InsecureSkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.TLS.InsecureSkipVerify} //nolint:gosec // only when configured
		if r.TLS.CAFile != "" {
			pool, err := loadCAPool(r.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.ca_file: %w", err)
			}
			tc.RootCAs = pool
		}
		t.TLSClientConfig = tc
	}
	return t, nil
}
