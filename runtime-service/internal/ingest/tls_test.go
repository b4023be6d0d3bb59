package ingest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
)

// pair is a certificate and key, PEM-encoded.
type pair struct{ cert, key []byte }

func issue(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey, pair) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	return cert, key, pair{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})}
}

// TestTLSAndMutualTLS: with a server certificate and a client CA configured, a client that presents a
// certificate from that CA gets through; one without a certificate does not.
func TestTLSAndMutualTLS(t *testing.T) {
	now := time.Now()
	ca, caKey, caPEM := issue(t, nil, nil, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	_, _, serverPEM := issue(t, ca, caKey, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	_, _, clientPEM := issue(t, ca, caKey, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "cluster"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := ingest.TLSFiles{Cert: write("server.pem", serverPEM.cert), Key: write("server.key", serverPEM.key), ClientCA: write("ca.pem", caPEM.cert)}
	serverTLS, err := files.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	clientCert, err := tls.X509KeyPair(clientPEM.cert, clientPEM.key)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, migratedDB(t))

	withCert := startServer(t, s, ingest.DefaultLimits, serverTLS,
		credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}))
	withCert.enrol(t, "tls-cluster")

	noCert := startServer(t, s, ingest.DefaultLimits, serverTLS, credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := noCert.admin.Enrol(ctx, &runtrustv1.EnrolRequest{JoinKey: "x", ClusterUid: "y"}); err == nil {
		t.Fatal("a client without a certificate got through mTLS")
	}

	for _, bad := range []ingest.TLSFiles{{Cert: files.Cert}, {ClientCA: files.ClientCA}, {Cert: files.Cert, Key: files.Cert}, {Cert: files.Cert, Key: files.Key, ClientCA: files.Key}} {
		if _, err := bad.TLSConfig(); err == nil {
			t.Errorf("TLSConfig(%+v) accepted", bad)
		}
	}
}
