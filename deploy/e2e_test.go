package deploy

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
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
	grpcAddr, httpAddr := testbed.FreeAddr(t), testbed.FreeAddr(t)
	svc := testbed.StartProcess(t, "runtime-service", testbed.ServiceBinary(t), nil,
		"-database-url", pgtest.DB(t), "-grpc-listen", grpcAddr, "-http-listen", httpAddr, "-join-key", e2eJoinKey)
	testbed.WaitHTTP(t, "http://"+httpAddr+"/readyz", svc)

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
		"RUNTRUST_HEALTH_ENDPOINT": testbed.FreeAddr(t),
	})
	script := `mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && ` +
		`cp "$SA_DIR"/* /run/secrets/kubernetes.io/serviceaccount/ && exec "$@"`
	col := testbed.StartProcess(t, "collector", "unshare", append(env, "SA_DIR="+saDir),
		append([]string{"--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", testbed.CollectorBinary(t)},
			append(cargs, "--config="+quiet)...)...)

	// The service sees the cluster enrolled under kube-system's uid, and the pod's image as untrusted.
	type cluster struct {
		UID, Name    string
		LastIngestAt *time.Time `json:"last_ingest_at"`
	}
	var clusters struct{ Items []cluster }
	testbed.WaitFor(t, 90*time.Second, func() bool {
		testbed.GetJSON(t, "http://"+httpAddr+"/api/v1/clusters", &clusters)
		return len(clusters.Items) == 1 && clusters.Items[0].LastIngestAt != nil
	}, func() string {
		return fmt.Sprintf("clusters %+v\ncollector:\n%s\nservice:\n%s", clusters, col.Output(), svc.Output())
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
	testbed.WaitFor(t, 60*time.Second, func() bool {
		testbed.GetJSON(t, "http://"+httpAddr+"/api/v1/images", &images)
		return len(images.Items) == 1 && images.Items[0].Severity != nil
	}, func() string { return fmt.Sprintf("images %+v\ncollector:\n%s", images, col.Output()) })
	img := images.Items[0]
	if img.Digest != digest || *img.Severity != "high" || !strings.Contains(strings.Join(img.Reasons, " "), "untrusted_registry") {
		t.Errorf("image %+v, want %s, severity high, an untrusted_registry reason", img, digest)
	}
	if !strings.Contains(col.Output(), "cluster enrolled") {
		t.Errorf("the collector did not log its enrolment:\n%s", col.Output())
	}
	// It enrolled as the cluster's collector "controller" (the chart's RUNTRUST_COLLECTOR_ID), with a token of
	// its own that the sensors' enrolments with the same key leave alone.
	var detail struct {
		Collectors []struct{ ID string }
	}
	testbed.GetJSON(t, "http://"+httpAddr+"/api/v1/clusters/"+string(ks.UID), &detail)
	if len(detail.Collectors) != 1 || detail.Collectors[0].ID != "controller" {
		t.Errorf("collectors %+v; want the one the chart named controller", detail.Collectors)
	}
}

func ptr[T any](v T) *T { return &v }
