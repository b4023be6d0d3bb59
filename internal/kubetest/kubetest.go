// Package kubetest starts a real kube-apiserver with etcd for tests: a throwaway control plane on loopback
// ports, with generated certificates and service-account keys in a temp dir, RBAC authorization on, and an
// admin (system:masters) token. No controllers run: tests create what controllers would (ReplicaSets, pods,
// pod status) themselves.
//
// The kube-apiserver binary is built by `make kube-apiserver` (from the Go module proxy, once per machine) and
// found through $RUNTRUST_KUBE_APISERVER or the Makefile's default cache path; etcd is Debian's etcd-server.
// A missing binary fails the test, saying how to get it: on this project's machines both are expected.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/loopback"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Version is the kube-apiserver version `make kube-apiserver` builds.
const Version = "v1.34.2"

// EnvAPIServer names the kube-apiserver binary; the Makefile sets it.
const EnvAPIServer = "RUNTRUST_KUBE_APISERVER"

// AdminToken is the bearer token of the admin user (group system:masters).
const AdminToken = "runtrust-kubetest-admin-token"

// Cluster is a running kube-apiserver + etcd pair.
type Cluster struct {
	// URL is the kube-apiserver's https address.
	URL string
	// Dir holds certificates, keys, the kubeconfig, logs and etcd's data.
	Dir string
	// Kubeconfig is the path of a kubeconfig file for the admin user.
	Kubeconfig string
	// CAData is the PEM of the CA that signed the serving certificate.
	CAData []byte
}

// APIServerPath returns where the kube-apiserver binary is expected.
func APIServerPath() string {
	if p := os.Getenv(EnvAPIServer); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "runtrust", "kube-apiserver-"+Version)
}

// Start starts etcd and kube-apiserver and returns when /readyz answers ok; both stop when the test ends. It
// fails the test (never skips) when a binary is missing.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return start(t, false, "")
}

// start starts the control plane; with controllers (StartNode: kube-controller-manager runs) the
// ServiceAccount admission plugin is on, as in a real cluster. With nodeIP, the apiserver also listens and
// advertises there, so the kubernetes service's endpoint is an address pods can reach.
func start(t testing.TB, controllers bool, nodeIP string) *Cluster {
	t.Helper()
	apiserver := APIServerPath()
	if _, err := os.Stat(apiserver); err != nil {
		t.Fatalf("kube-apiserver %s not found (%v): run `make kube-apiserver` in the repository root "+
			"(builds it from the Go module proxy, ~6 min), or set %s", apiserver, err, EnvAPIServer)
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd not found in PATH: install Debian's etcd-server (apt-get install -y etcd-server; .ci/run does)")
	}
	dir := t.TempDir()
	c := &Cluster{Dir: dir}
	c.writeCredentials(t, nodeIP)
	bind, advertise := "127.0.0.1", "127.0.0.1"
	if nodeIP != "" {
		bind, advertise = "0.0.0.0", nodeIP
	}

	// etcd 3.4 has no --unsafe-no-fsync: its data goes to memory (/dev/shm) where there is one, so fsync is cheap.
	etcdDir := memDir(t)
	// etcd on two free loopback ports; retried since a port found free can be taken before etcd binds it.
	var etcdURL string
	for attempt := 0; ; attempt++ {
		clientPort, peerPort := loopback.TestPort(t), loopback.TestPort(t)
		etcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
		peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
		proc := c.startProcess(t, "etcd", etcd,
			"--name=kubetest", "--data-dir="+filepath.Join(etcdDir, strconv.Itoa(attempt)),
			"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
			"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
			"--initial-cluster=kubetest="+peerURL, "--log-level=warn")
		if err := waitHTTP(etcdURL+"/health", nil, "", 60*time.Second, proc); err == nil {
			break
		} else if attempt == 2 {
			t.Fatalf("etcd did not become healthy: %v\n%s", err, proc.tail())
		}
		proc.stop()
	}

	admission := []string{
		// No controller-manager runs, so no namespace gets a "default" service account: the admission plugin
		// that insists on one would refuse every pod.
		"--disable-admission-plugins=ServiceAccount",
	}
	if controllers {
		admission = nil
	}
	for attempt := 0; ; attempt++ {
		port := loopback.TestPort(t)
		c.URL = "https://127.0.0.1:" + strconv.Itoa(port)
		proc := c.startProcess(t, "kube-apiserver", apiserver, append([]string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=" + bind, "--advertise-address=" + advertise, "--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + filepath.Join(dir, "serving.crt"), "--tls-private-key-file=" + filepath.Join(dir, "serving.key"),
			"--client-ca-file=" + filepath.Join(dir, "ca.crt"),
			"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
			"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
			"--service-cluster-ip-range=10.96.0.0/16",
			"--cert-dir=" + filepath.Join(dir, "certs"),
			"--kubelet-client-certificate=" + filepath.Join(dir, "kubelet-client.crt"),
			"--kubelet-client-key=" + filepath.Join(dir, "kubelet-client.key"),
			// A test node's name resolves nowhere; its InternalIP is where its kubelet serves.
			"--kubelet-preferred-address-types=InternalIP,Hostname",
			"--enable-priority-and-fairness=false",
			"--profiling=false",
			"--v=0"}, admission...)...)
		if err := waitHTTP(c.URL+"/readyz", c.CAData, AdminToken, 3*time.Minute, proc); err == nil {
			break
		} else if attempt == 2 || !strings.Contains(proc.tail(), "address already in use") {
			t.Fatalf("kube-apiserver did not become ready: %v\n%s", err, proc.tail())
		}
		proc.stop()
	}
	c.writeKubeconfig(t)
	return c
}

// RESTConfig returns a client configuration for the admin user.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            c.URL,
		BearerToken:     AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		QPS:             100, Burst: 200,
	}
}

// Impersonate returns a client configuration that acts as the given user and groups through the admin's
// impersonation right, e.g. "system:serviceaccount:ns:name" with groups
// ["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"], to test what RBAC allows.
func (c *Cluster) Impersonate(user string, groups ...string) *rest.Config {
	rc := c.RESTConfig()
	rc.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return rc
}

// ServiceAccountConfig is Impersonate for the service account namespace/name, with its usual groups.
func (c *Cluster) ServiceAccountConfig(namespace, name string) *rest.Config {
	return c.Impersonate("system:serviceaccount:"+namespace+":"+name,
		"system:serviceaccounts", "system:serviceaccounts:"+namespace, "system:authenticated")
}

// Client returns an admin clientset.
func (c *Cluster) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (c *Cluster) writeKubeconfig(t testing.TB) {
	t.Helper()
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: admin}
current-context: kubetest
`, c.URL, filepath.Join(c.Dir, "ca.crt"), AdminToken)
	writeFile(t, c.Kubeconfig, []byte(kc))
}

// writeCredentials writes a CA, a serving certificate for 127.0.0.1/localhost, the service-account key pair
// and the static token file.
func (c *Cluster) writeCredentials(t testing.TB, nodeIP string) {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	c.CAData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	writeFile(t, filepath.Join(c.Dir, "ca.crt"), c.CAData)

	srvKey := newKey(t)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
	}
	if nodeIP != "" {
		srvTmpl.IPAddresses = append(srvTmpl.IPAddresses, net.ParseIP(nodeIP))
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.Dir, "serving.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}))
	writeFile(t, filepath.Join(c.Dir, "serving.key"), keyPEM(t, srvKey))

	// The apiserver's client certificate for kubelets (logs, exec, port-forward): a node's kubelet trusts the CA.
	kcKey := newKey(t)
	kcTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	kcDER, err := x509.CreateCertificate(rand.Reader, kcTmpl, caCert, &kcKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.Dir, "kubelet-client.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kcDER}))
	writeFile(t, filepath.Join(c.Dir, "kubelet-client.key"), keyPEM(t, kcKey))

	saKey := newKey(t)
	writeFile(t, filepath.Join(c.Dir, "sa.key"), keyPEM(t, saKey))
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.Dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	writeFile(t, filepath.Join(c.Dir, "tokens.csv"), []byte(AdminToken+`,kubetest-admin,kubetest-admin,"system:masters"`+"\n"))
}

// memDir returns a temp dir on /dev/shm when there is one, else under t.TempDir; removed when the test ends.
func memDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "kubetest-etcd-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyPEM(t testing.TB, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// process is a started child with its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     string
	done    chan struct{}
	mu      sync.Mutex
	stopped bool
}

func (c *Cluster) startProcess(t testing.TB, name, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(c.Dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop ends the process (SIGTERM, then SIGKILL after 20s) and waits for it.
func (p *process) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process's log.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return p.name + " log (" + p.log + "):\n" + string(bytes.TrimSpace(b))
}

// waitHTTP polls url until it answers 200, the process exits, or the deadline passes.
func waitHTTP(url string, caPEM []byte, token string, deadline time.Duration, p *process) error {
	tr := &http.Transport{TLSClientConfig: &tls.Config{}}
	if caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tr.TLSClientConfig.RootCAs = pool
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			body := make([]byte, 2048)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body[:n])
		} else {
			last = err.Error()
		}
		if p.exited() {
			return fmt.Errorf("%s exited (last answer from %s: %s)", p.name, url, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no 200 from %s within %s (last: %s)", url, deadline, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
