package deploy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/testbed"
)

const serviceJoinKeys = "joinKeys={join-key-for-the-chart-test-0001}"

// TestRuntimeServiceChartTLSByDefault: with no TLS values the runtime-service chart serves TLS with a CA it makes
// (a certificate for the Service's names, probes over HTTPS); with tls.mtls the gRPC port requires a client
// certificate the chart issues; tls.enabled=false is plain again. The generated certificates are then used by
// the real service binary: a client that trusts the CA and presents the collector certificate gets through TLS
// and mTLS to the token check, and one without the certificate is refused in the handshake.
func TestRuntimeServiceChartTLSByDefault(t *testing.T) {
	const svcName = "rt-runtime-service.runtrust.svc"
	m := decodeManifests(t, mustTemplate(t, "runtime-service", nil, serviceJoinKeys))
	ca := secretCA(t, m, "rt-runtime-service-ca")
	server := m.secrets["rt-runtime-service-tls"]
	if server == nil || server.Type != corev1.SecretTypeTLS {
		t.Fatalf("no kubernetes.io/tls Secret rt-runtime-service-tls; rendered %v", m.kinds)
	}
	for _, name := range []string{svcName, "rt-runtime-service", svcName + ".cluster.local", "localhost"} {
		verifyLeaf(t, server.Data["tls.crt"], ca, name, x509.ExtKeyUsageServerAuth)
	}
	pod := m.deployments["rt-runtime-service"].Spec.Template.Spec
	c := pod.Containers[0]
	env := envMap(c.Env)
	if env["RUNTRUST_TLS_CERT"] != "/etc/runtrust/tls/tls.crt" || env["RUNTRUST_TLS_KEY"] != "/etc/runtrust/tls/tls.key" || env["RUNTRUST_TLS_CLIENT_CA"] != "" {
		t.Errorf("TLS env %v; want the mounted certificate and key, no client CA", env)
	}
	if s := c.ReadinessProbe.HTTPGet.Scheme; s != corev1.URISchemeHTTPS {
		t.Errorf("readiness probe scheme %q; the service serves HTTPS with TLS on", s)
	}
	if v := pod.Volumes[0]; v.Name != "tls" || v.Secret == nil || v.Secret.SecretName != "rt-runtime-service-tls" {
		t.Errorf("volume %+v; want the generated Secret", v)
	}

	plain := decodeManifests(t, mustTemplate(t, "runtime-service", nil, serviceJoinKeys, "tls.enabled=false"))
	if plain.secrets["rt-runtime-service-tls"] != nil || plain.secrets["rt-runtime-service-ca"] != nil {
		t.Errorf("tls.enabled=false still renders certificates: %v", plain.kinds)
	}
	pc := plain.deployments["rt-runtime-service"].Spec.Template.Spec.Containers[0]
	if envMap(pc.Env)["RUNTRUST_TLS_CERT"] != "" || pc.LivenessProbe.HTTPGet.Scheme != corev1.URISchemeHTTP {
		t.Errorf("tls.enabled=false: env %v, probe scheme %q; want no TLS", envMap(pc.Env), pc.LivenessProbe.HTTPGet.Scheme)
	}

	mt := decodeManifests(t, mustTemplate(t, "runtime-service", nil, serviceJoinKeys, "tls.mtls.enabled=true"))
	mca := secretCA(t, mt, "rt-runtime-service-ca")
	collector := mt.secrets["rt-runtime-service-collector-tls"]
	if collector == nil {
		t.Fatalf("tls.mtls.enabled: no collector certificate Secret; rendered %v", mt.kinds)
	}
	verifyLeaf(t, collector.Data["tls.crt"], mca, "", x509.ExtKeyUsageClientAuth)
	mc := mt.deployments["rt-runtime-service"].Spec.Template.Spec.Containers[0]
	if got := envMap(mc.Env)["RUNTRUST_TLS_CLIENT_CA"]; got != "/etc/runtrust/tls/ca.crt" {
		t.Errorf("tls.mtls.enabled: RUNTRUST_TLS_CLIENT_CA %q; want the chart CA beside the certificate", got)
	}

	// The rendered files, as the pod mounts them, in the real service.
	dir := t.TempDir()
	mtServer := mt.secrets["rt-runtime-service-tls"]
	for name, b := range map[string][]byte{"tls.crt": mtServer.Data["tls.crt"], "tls.key": mtServer.Data["tls.key"], "ca.crt": mtServer.Data["ca.crt"]} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	grpcAddr, httpAddr := testbed.FreeAddr(t), testbed.FreeAddr(t)
	svc := testbed.StartProcess(t, "runtime-service", testbed.ServiceBinary(t), nil,
		"-database-url", pgtest.DB(t), "-grpc-listen", grpcAddr, "-http-listen", httpAddr, "-join-key", e2eJoinKey,
		"-tls-cert", filepath.Join(dir, "tls.crt"), "-tls-key", filepath.Join(dir, "tls.key"), "-tls-client-ca", filepath.Join(dir, "ca.crt"))
	roots := x509.NewCertPool()
	roots.AddCert(mca)
	httpsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: svcName}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := httpsClient.Get("https://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service with the chart's certificate is not ready over HTTPS, verified against the chart's CA: %v\n%s", err, svc.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	clientCert, err := tls.X509KeyPair(collector.Data["tls.crt"], collector.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	export := func(certs []tls.Certificate) error {
		creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: svcName, Certificates: certs})
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(plog.NewLogs()))
		return err
	}
	// Through TLS and mTLS, the token check answers: the request carried no token.
	if err := export([]tls.Certificate{clientCert}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("with the chart's collector certificate: %v; want Unauthenticated (TLS and mTLS passed, no token)", err)
	}
	if err := export(nil); err == nil || status.Code(err) == codes.Unauthenticated {
		t.Errorf("without a client certificate: %v; want the handshake refused before any token check", err)
	} else {
		t.Logf("without a client certificate: %v", err)
	}
}

// secretCA is the CA certificate in the Secret name's ca.crt.
func secretCA(t *testing.T, m *manifests, name string) *x509.Certificate {
	t.Helper()
	s := m.secrets[name]
	if s == nil {
		t.Fatalf("no Secret %s; rendered %v", name, m.kinds)
	}
	ca := parseCert(t, s.Data["ca.crt"])
	if !ca.IsCA {
		t.Fatalf("%s: ca.crt is not a CA certificate", name)
	}
	return ca
}

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("no PEM certificate in %q", b)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyLeaf checks that the PEM certificate chains to ca for dnsName (empty: any) and usage.
func verifyLeaf(t *testing.T, leafPEM []byte, ca *x509.Certificate, dnsName string, usage x509.ExtKeyUsage) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := parseCert(t, leafPEM).Verify(x509.VerifyOptions{Roots: roots, DNSName: dnsName, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("certificate for %q (usage %v): %v", dnsName, usage, err)
	}
}

func envMap(env []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}
