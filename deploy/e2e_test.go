package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/testbed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const e2eJoinKey = "join-key-for-the-chart-test-0001" // values-minimal.yaml's

// TestControllerChartEndToEnd installs the collector chart on a real kube-apiserver and runs the controller as
// the chart's Deployment describes it — its config, env, Secret and service account, in-cluster auth — against
// the runtime service on real PostgreSQL: the controller enrols with the join key and the uid the chart looked
// up, and the service shows the cluster and the untrusted image running in it.
func TestControllerChartEndToEnd(t *testing.T) {
	c := startCluster(t)
	admin := c.Client(t)
	ctx := context.Background()

	// The runtime service, as its chart runs it: an external database URL, the join key.
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	svc := startProcess(t, "runtime-service", serviceBinary(t), nil,
		"-database-url", pgtest.DB(t), "-grpc-listen", grpcAddr, "-http-listen", httpAddr, "-join-key", e2eJoinKey)
	waitHTTP(t, "http://"+httpAddr+"/readyz", svc)

	values := []string{testdata("values-minimal.yaml")}
	// No registry lookups: the image names a public registry, and tests here talk to loopback only.
	sets := []string{"clusterUID=", "runtimeService.endpoint=" + grpcAddr, "runtimeService.insecure=true",
		"controller.persistence.enabled=false", "controller.imageIntegrity.checkUnlistedRegistries=false"}
	args := []string{"install", "rt", chartDir(t, "runtrust"), "--namespace", namespace, "--values", values[0]}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	c.helm(t, args...)
	// What the install created, read back from the apiserver: the pod spec, its ConfigMap and Secret.
	dep, err := admin.AppsV1().Deployments(namespace).Get(ctx, "rt-runtrust-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := admin.CoreV1().ConfigMaps(namespace).Get(ctx, "rt-runtrust-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := admin.CoreV1().Secrets(namespace).Get(ctx, "rt-runtrust-auth", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	installed := &manifests{configMaps: map[string]*corev1.ConfigMap{cm.Name: cm}, secrets: map[string]*corev1.Secret{sec.Name: {
		ObjectMeta: sec.ObjectMeta, StringData: map[string]string{"join-key": string(sec.Data["join-key"])}}}}
	ks, err := admin.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Something to report: a node and a pod running an image from a registry nobody approved.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	pod, err := admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "miner", Namespace: "shop"},
		Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "miner", Image: "quay.io/evil/miner:latest"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "miner", Image: "quay.io/evil/miner:latest", ImageID: "quay.io/evil/miner@" + digest,
		ContainerID: "containerd://" + strings.Repeat("c1", 32), Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}}
	if _, err := admin.CoreV1().Pods("shop").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// In-cluster auth as the pod would have it: the service account's token and the cluster CA at the fixed
	// path, KUBERNETES_SERVICE_HOST/PORT. The path is made in a private mount namespace over a fresh /run, so
	// nothing of it is left on the machine.
	tok, err := admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, "rt-runtrust-controller",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	saDir := t.TempDir()
	writeTestFile(t, filepath.Join(saDir, "token"), tok.Status.Token)
	writeTestFile(t, filepath.Join(saDir, "ca.crt"), string(c.CAData))
	writeTestFile(t, filepath.Join(saDir, "namespace"), namespace)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(c.URL, "https://"))
	// The collector's own metrics would take :8888, which other collectors on this machine may hold.
	quiet := filepath.Join(t.TempDir(), "quiet.yaml")
	writeTestFile(t, quiet, "service:\n  telemetry:\n    metrics:\n      level: none\n")
	env, cargs := podCommand(t, installed, dep.Spec.Template.Spec, map[string]string{
		"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
		"RUNTRUST_HEALTH_ENDPOINT": freeAddr(t),
	})
	script := `mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && ` +
		`cp "$SA_DIR"/* /run/secrets/kubernetes.io/serviceaccount/ && exec "$@"`
	col := startProcess(t, "collector", "unshare", append(env, "SA_DIR="+saDir),
		append([]string{"--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", testbed.CollectorBinary(t)},
			append(cargs, "--config="+quiet)...)...)

	// The service sees the cluster enrolled under kube-system's uid, and the pod's image as untrusted.
	type cluster struct {
		UID, Name    string
		LastIngestAt *time.Time `json:"last_ingest_at"`
	}
	var clusters struct{ Items []cluster }
	waitFor(t, 90*time.Second, func() bool {
		getJSON(t, "http://"+httpAddr+"/api/v1/clusters", &clusters)
		return len(clusters.Items) == 1 && clusters.Items[0].LastIngestAt != nil
	}, func() string {
		return fmt.Sprintf("clusters %+v\ncollector:\n%s\nservice:\n%s", clusters, col.output(), svc.output())
	})
	if got := clusters.Items[0]; got.UID != string(ks.UID) || got.Name != "test-cluster" {
		t.Errorf("cluster %+v, want uid %s (kube-system's) and name test-cluster", got, ks.UID)
	}
	type image struct {
		Digest   string
		Severity *string
		Reasons  []string
		Refs     []string
	}
	var images struct{ Items []image }
	waitFor(t, 60*time.Second, func() bool {
		getJSON(t, "http://"+httpAddr+"/api/v1/images", &images)
		return len(images.Items) == 1 && images.Items[0].Severity != nil
	}, func() string { return fmt.Sprintf("images %+v\ncollector:\n%s", images, col.output()) })
	img := images.Items[0]
	if img.Digest != digest || *img.Severity != "high" || !strings.Contains(strings.Join(img.Reasons, " "), "untrusted_registry") {
		t.Errorf("image %+v, want %s, severity high, an untrusted_registry reason", img, digest)
	}
	if !strings.Contains(col.output(), "cluster enrolled") {
		t.Errorf("the collector did not log its enrolment:\n%s", col.output())
	}
}

func ptr[T any](v T) *T { return &v }

var (
	serviceBinOnce sync.Once
	serviceBin     string
	serviceBinErr  error
)

// serviceBinary builds the runtime service from this tree once per test run (the build cache makes it a link
// step), as the image's Dockerfile builds it.
func serviceBinary(t *testing.T) string {
	t.Helper()
	serviceBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploy-runtime-service-")
		if err != nil {
			serviceBinErr = err
			return
		}
		serviceBin = filepath.Join(dir, "runtime-service")
		cmd := exec.Command("go", "build", "-o", serviceBin, "./runtime-service/cmd/runtime-service")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			serviceBinErr = fmt.Errorf("go build runtime-service: %v\n%s", err, out)
		}
	})
	if serviceBinErr != nil {
		t.Fatal(serviceBinErr)
	}
	return serviceBin
}

type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan error
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProcess starts bin; env nil means the test's environment. It is stopped (SIGTERM, then SIGKILL) at the
// end of the test.
func startProcess(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop within 20s of SIGTERM", name)
		}
	})
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHTTP(t *testing.T, url string, p *process) {
	t.Helper()
	waitFor(t, time.Minute, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, p.output)
}

func waitFor(t *testing.T, d time.Duration, ok func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s:\n%s", d, why())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
