package deploy

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/internal/loopback"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/testbed"
)

// TestControllerChartOnTheNode installs the collector chart on the real node with the collector image built
// from its Dockerfile: the controller Deployment's pod is scheduled, pulled and run by the kubelet under the
// chart's service account and security context, reads the cluster through the kubernetes service with its
// mounted token, enrols with the join key at the runtime service (on this machine, reached at the node's
// address), and the service shows the cluster and the controller's own image, judged (the loopback registry
// is not among the trusted ones).
func TestControllerChartOnTheNode(t *testing.T) {
	reg := registrytest.Start(t)
	n := kubetest.StartNode(t, kubetest.NodeOptions{Registry: reg.Host})
	c := newCluster(t, n.Cluster)
	collector, _ := BuildImages(t, reg.Host)
	repo, _, _ := strings.Cut(collector, ":test")

	grpcAddr := net.JoinHostPort(n.IP, strconv.Itoa(loopback.TestPort(t)))
	httpAddr := testbed.FreeAddr(t)
	svc := testbed.StartProcess(t, "runtime-service", testbed.ServiceBinary(t), nil,
		"-database-url", pgtest.DB(t), "-grpc-listen", grpcAddr, "-http-listen", httpAddr, "-join-key", e2eJoinKey)
	testbed.WaitHTTP(t, "http://"+httpAddr+"/readyz", svc)

	sets := []string{"clusterUID=", "runtimeService.endpoint=" + grpcAddr, "runtimeService.insecure=true",
		"controller.persistence.enabled=false", "controller.imageIntegrity.checkUnlistedRegistries=false",
		"image.repository=" + repo, "image.tag=test"}
	args := []string{"install", "rt", chartDir(t, "runtrust"), "--namespace", namespace, "--values", testdata("values-minimal.yaml")}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	c.helm(t, args...)
	pod := n.WaitRunning(t, namespace, "app.kubernetes.io/component=controller", 3*time.Minute)
	if pod.Spec.ServiceAccountName != "rt-runtrust-controller" {
		t.Errorf("the controller runs as %q, want the chart's rt-runtrust-controller", pod.Spec.ServiceAccountName)
	}
	if st := pod.Status.ContainerStatuses; len(st) != 1 || !strings.HasPrefix(st[0].ImageID, repo+"@sha256:") {
		t.Errorf("container status %+v: want the image built from the Dockerfile (%s)", st, repo)
	}

	type image struct {
		Digest   string
		Severity *string
		Refs     []string
	}
	var images struct{ Items []image }
	logs := func() string {
		b, _ := n.Client(t).CoreV1().Pods(namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(context.Background())
		return string(b)
	}
	testbed.WaitFor(t, 2*time.Minute, func() bool {
		testbed.GetJSON(t, "http://"+httpAddr+"/api/v1/images", &images)
		for _, img := range images.Items {
			if strings.Contains(strings.Join(img.Refs, " "), repo) && img.Severity != nil {
				return true
			}
		}
		return false
	}, func() string {
		return fmt.Sprintf("images %+v\ncontroller:\n%s\nservice:\n%s", images, logs(), svc.Output())
	})
	ks, err := n.Client(t).CoreV1().Namespaces().Get(context.Background(), "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var clusters struct{ Items []struct{ UID, Name string } }
	testbed.GetJSON(t, "http://"+httpAddr+"/api/v1/clusters", &clusters)
	if len(clusters.Items) != 1 || clusters.Items[0].UID != string(ks.UID) || clusters.Items[0].Name != "test-cluster" {
		t.Errorf("clusters %+v, want test-cluster under kube-system's uid %s", clusters.Items, ks.UID)
	}
}

// TestSensorChartOnTheNode installs the chart with the sensor DaemonSet on the real node, with the collector
// image built from its Dockerfile: the kubelet runs the sensor pod as the chart describes it (uid 0 with its
// four capabilities, the host PID namespace and its host paths), the sensor enrols under its node's name, and
// a shell exec'd into a pod through the API reaches the runtime service as a process of that pod's image,
// with the SHA-256 of the image's /bin/sh and the container the kubelet started.
func TestSensorChartOnTheNode(t *testing.T) {
	reg := registrytest.Start(t)
	n := kubetest.StartNode(t, kubetest.NodeOptions{Registry: reg.Host})
	c := newCluster(t, n.Cluster)
	collector, _ := BuildImages(t, reg.Host)
	repo, _, _ := strings.Cut(collector, ":test")
	shell := testbed.PushShellImage(t, reg.Host, "shop/toolbox:1")

	grpcAddr := net.JoinHostPort(n.IP, strconv.Itoa(loopback.TestPort(t)))
	httpAddr := testbed.FreeAddr(t)
	svc := testbed.StartProcess(t, "runtime-service", testbed.ServiceBinary(t), nil,
		"-database-url", pgtest.DB(t), "-grpc-listen", grpcAddr, "-http-listen", httpAddr, "-join-key", e2eJoinKey)
	testbed.WaitHTTP(t, "http://"+httpAddr+"/readyz", svc)

	sets := []string{"clusterUID=", "runtimeService.endpoint=" + grpcAddr, "runtimeService.insecure=true",
		"controller.persistence.enabled=false", "controller.imageIntegrity.checkUnlistedRegistries=false",
		"image.repository=" + repo, "image.tag=test", "sensor.enabled=true", "sensor.hostQueueDir=" + t.TempDir()}
	args := []string{"install", "rt", chartDir(t, "runtrust"), "--namespace", namespace, "--values", testdata("values-minimal.yaml")}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	c.helm(t, args...)
	sensor := n.WaitRunning(t, namespace, "app.kubernetes.io/component=sensor", 3*time.Minute)
	client := n.Client(t)
	ctx := context.Background()
	logs := func(ns, pod string) string {
		b, _ := client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
		return string(b)
	}

	if _, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "toolbox", Labels: map[string]string{"app": "toolbox"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "toolbox", Image: shell.Ref}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := n.WaitRunning(t, "default", "app=toolbox", 3*time.Minute)
	cid := strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "containerd://")
	var img testbed.Image
	found := func() bool {
		for _, p := range img.Processes {
			if p.Path == shell.ShellPath && p.SHA256 != nil && *p.SHA256 == shell.ShSHA256 && slices.Contains(p.Containers, cid) {
				return true
			}
		}
		return false
	}
	testbed.WaitFor(t, 2*time.Minute, func() bool {
		// Exec'd again each round: the sensor may still be starting when the first one runs.
		n.Exec(t, "default", pod.Name, "toolbox", shell.ShellPath, "-c", "exit 0")
		img = testbed.Image{}
		if status := testbed.GetStatus(t, "http://"+httpAddr+"/api/v1/images/"+shell.Digest, &img); status != 200 {
			return false
		}
		return found()
	}, func() string {
		return fmt.Sprintf("image %+v\nsensor:\n%s\nservice:\n%s", img, logs(namespace, sensor.Name), svc.Output())
	})
}
