package service

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/oidctest"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "runtime-service test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSAndSignInConfigured: with -tls-cert the HTTP API and UI are served over TLS as gRPC is; with -auth
// tokens and -oidc-file the API wants credentials and /auth/login sends the browser to the provider.
func TestTLSAndSignInConfigured(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	op := oidctest.Start(t, oidctest.Options{ClientID: "runtrust", ClientSecret: "s3cret",
		RedirectURIs: []string{"https://127.0.0.1:1/auth/callback"}})
	oidcFile := filepath.Join(dir, "oidc.yaml")
	if err := os.WriteFile(oidcFile, []byte("issuer: "+op.Issuer+"\nclient_id: runtrust\nclient_secret_env: OIDC_SECRET\n"+
		"redirect_url: https://127.0.0.1:1/auth/callback\nbindings: [{email: a@example.com, role: admin}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pgDir, err := os.MkdirTemp("", "runtime-service-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pgDir)
	cfg, err := config.Parse([]string{"-grpc-listen", "127.0.0.1:0", "-http-listen", "127.0.0.1:0", "-pg-data-dir", pgDir,
		"-tls-cert", certFile, "-tls-key", keyFile, "-auth", "tokens", "-oidc-file", oidcFile},
		func(k string) string { return map[string]string{"OIDC_SECRET": "s3cret"}[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	svc := start(t, cfg)
	defer svc.stop(t)

	if resp, err := http.Get("http://" + svc.addrs.HTTP + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest { // Go's TLS server answers plain HTTP with a 400
			t.Errorf("plain HTTP on the TLS port: %d", resp.StatusCode)
		}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "https://" + svc.addrs.HTTP
	for path, want := range map[string]int{"/healthz": 200, "/api/v1/images": 401, "/auth/login": 302} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s over TLS: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/auth/login" && !strings.HasPrefix(resp.Header.Get("Location"), op.Issuer) {
			t.Errorf("/auth/login sends the browser to %q, not the provider %s", resp.Header.Get("Location"), op.Issuer)
		}
	}
}
