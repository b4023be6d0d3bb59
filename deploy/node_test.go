package deploy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/internal/loopback"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/internal/sbomtest"
	"github.com/runtrust/runtrust/testbed"
)

// TestControllerChartOnTheNode installs the collector chart on the real node with the collector image built
// from its Dockerfile: the controller Deployment's pod is scheduled, pulled and run by the kubelet under the
// chart's service account and security context, reads the cluster through the kubernetes service with its
// mounted token, enrols with the join key at the runtime service (on this machine, reached at the node's
// address), and the service shows the cluster and the controller's own image, judged (the loopback registry
// is not among the trusted ones).
func TestControllerChartOnTheNode(t *testing.T) {
	ni := installOnNode(t)
	n, repo := ni.node, ni.imageRepo
	pod := n.WaitRunning(t, namespace, "app.kubernetes.io/component=controller", 3*time.Minute)
	if pod.Spec.ServiceAccountName != "rt-runtrust-controller" {
		t.Errorf("the controller runs as %q, want the chart's rt-runtrust-controller", pod.Spec.ServiceAccountName)
	}
	if st := pod.Status.ContainerStatuses; len(st) != 1 || !strings.HasPrefix(st[0].ImageID, repo+"@sha256:") {
		t.Errorf("container status %+v: want the image built from the Dockerfile (%s)", st, repo)
	}

	var images struct{ Items []testbed.Image }
	testbed.WaitFor(t, 2*time.Minute, func() bool {
		testbed.GetJSON(t, ni.api+"/api/v1/images", &images)
		for _, img := range images.Items {
			if strings.Contains(strings.Join(img.Refs, " "), repo) && img.Severity != nil {
				return true
			}
		}
		return false
	}, func() string {
		return fmt.Sprintf("images %+v\ncontroller:\n%s\nservice:\n%s\n%s", images, ni.logs(t, namespace, pod.Name),
			ni.service.Output(), ni.pipelineCounts(t, pod))
	})
	ks, err := n.Client(t).CoreV1().Namespaces().Get(context.Background(), "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var clusters struct{ Items []struct{ UID, Name string } }
	testbed.GetJSON(t, ni.api+"/api/v1/clusters", &clusters)
	if len(clusters.Items) != 1 || clusters.Items[0].UID != string(ks.UID) || clusters.Items[0].Name != "test-cluster" {
		t.Errorf("clusters %+v, want test-cluster under kube-system's uid %s", clusters.Items, ks.UID)
	}
}

// nodeInstall is the collector chart installed on a real node, shipping to a runtime service on this machine.
type nodeInstall struct {
	node      *kubetest.Node
	registry  *registrytest.Registry
	service   *testbed.Process
	api       string // the service's HTTP address
	imageRepo string // the collector image's repository, built from its Dockerfile
}

// installOnNode starts a node, builds the collector image, starts the runtime service at the node's address
// and installs the chart with values-minimal.yaml and extra --set values.
func installOnNode(t *testing.T, extra ...string) *nodeInstall {
	t.Helper()
	return installOnNodeWith(t, registrytest.Start(t), extra...)
}

// installOnNodeWith is installOnNode with the registry the node pulls from given; a value "json:k=v" is
// passed with --set-json.
func installOnNodeWith(t *testing.T, reg *registrytest.Registry, extra ...string) *nodeInstall {
	t.Helper()
	n := kubetest.StartNode(t, kubetest.NodeOptions{Registry: reg.Host})
	c := newCluster(t, n.Cluster)
	collector, _ := BuildImages(t, reg.Host)
	repo, _, _ := strings.Cut(collector, ":test")
	grpcAddr := net.JoinHostPort(n.IP, strconv.Itoa(loopback.TestPort(t)))
	httpAddr := testbed.FreeAddr(t)
	svc := testbed.StartProcess(t, "runtime-service", testbed.ServiceBinary(t), nil,
		"-database-url", pgtest.DB(t), "-grpc-listen", grpcAddr, "-http-listen", httpAddr, "-join-key", e2eJoinKey)
	testbed.WaitHTTP(t, "http://"+httpAddr+"/readyz", svc)
	sets := append([]string{"clusterUID=", "runtimeService.endpoint=" + grpcAddr, "runtimeService.insecure=true",
		"controller.persistence.enabled=false", "controller.imageIntegrity.checkUnlistedRegistries=false",
		"image.repository=" + repo, "image.tag=test"}, extra...)
	args := []string{"install", "rt", chartDir(t, "runtrust"), "--namespace", namespace, "--values", testdata("values-minimal.yaml")}
	for _, s := range sets {
		flag := "--set"
		if strings.HasPrefix(s, "json:") {
			flag, s = "--set-json", strings.TrimPrefix(s, "json:")
		}
		args = append(args, flag, s)
	}
	c.helm(t, args...)
	return &nodeInstall{node: n, registry: reg, service: svc, api: "http://" + httpAddr, imageRepo: repo}
}

// controllerLogs is the controller pod's log, for failure messages.
func (ni *nodeInstall) controllerLogs(t *testing.T) string {
	pods, err := ni.node.Client(t).CoreV1().Pods(namespace).List(context.Background(),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=controller"})
	if err != nil || len(pods.Items) == 0 {
		return fmt.Sprintf("no controller pod (%v)", err)
	}
	return ni.logs(t, namespace, pods.Items[0].Name)
}

// pipelineCounts is, for failure messages, what the service counted at ingest and what the collector in pod
// counted at each stage of its pipeline (its internal metrics on localhost:8888 in the pod's network namespace,
// reached with nsenter through its container's process): where records stopped.
func (ni *nodeInstall) pipelineCounts(t *testing.T, pod corev1.Pod) string {
	var out strings.Builder
	if resp, err := http.Get(ni.api + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&out, "service metrics:\n%s", grepLines(string(b), "runtrust_ingest_"))
	}
	p, err := ni.node.Client(t).CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil || len(p.Status.ContainerStatuses) == 0 {
		return out.String() + fmt.Sprintf("pod %s: %v", pod.Name, err)
	}
	_, id, _ := strings.Cut(p.Status.ContainerStatuses[0].ContainerID, "://")
	pid := containerPID(id)
	if pid == "" {
		return out.String() + "no process of container " + id
	}
	b, err := exec.Command("nsenter", "--net=/proc/"+pid+"/ns/net", "curl", "-sS", "--max-time", "5",
		"http://localhost:8888/metrics").CombinedOutput()
	fmt.Fprintf(&out, "collector metrics (%v):\n%s", err, grepLines(string(b), "otelcol_receiver_accepted", "otelcol_receiver_refused",
		"otelcol_processor_incoming", "otelcol_processor_outgoing", "otelcol_exporter_", "runtrust_"))
	return out.String()
}

// containerPID is the pid of a process in the container id's cgroup, "" when none.
func containerPID(id string) string {
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, f := range procs {
		if b, err := os.ReadFile(f); err == nil && id != "" && strings.Contains(string(b), id) {
			return strings.Split(f, "/")[2]
		}
	}
	return ""
}

func grepLines(s string, prefixes ...string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				keep = append(keep, l)
				break
			}
		}
	}
	return strings.Join(keep, "\n") + "\n"
}

// logs is a pod's log, for failure messages.
func (ni *nodeInstall) logs(t *testing.T, ns, pod string) string {
	b, _ := ni.node.Client(t).CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(context.Background())
	return string(b)
}

// TestSensorChartOnTheNode installs the chart with the sensor DaemonSet on the real node, with the collector
// image built from its Dockerfile: the kubelet runs the sensor pod as the chart describes it (uid 0 with its
// four capabilities, the host PID namespace and its host paths), the sensor enrols under its node's name, and
// a shell exec'd into a pod through the API reaches the runtime service as a process of that pod's image,
// with the SHA-256 of the image's /bin/sh and the container the kubelet started.
func TestSensorChartOnTheNode(t *testing.T) {
	// A health record every 5 s: the service calls the sensor stale after three missed (its auto threshold).
	ni := installOnNode(t, "sensor.enabled=true", "sensor.hostQueueDir="+t.TempDir(), "sensor.healthInterval=5s")
	n := ni.node
	shell := testbed.PushShellImage(t, ni.registry.Host, "shop/toolbox:1")
	sensor := n.WaitRunning(t, namespace, "app.kubernetes.io/component=sensor", 3*time.Minute)
	client := n.Client(t)
	ctx := context.Background()

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
		if status := testbed.GetStatus(t, ni.api+"/api/v1/images/"+shell.Digest, &img); status != 200 {
			return false
		}
		return found()
	}, func() string {
		return fmt.Sprintf("image %+v\nsensor:\n%s\nservice:\n%s", img, ni.logs(t, namespace, sensor.Name), ni.service.Output())
	})
	sensorPodLifecycle(t, ni, sensor)
}

// clusterView is what the service says of the test cluster's sensors.
type clusterView struct {
	Sensors struct {
		Reporting int `json:"reporting"`
		Stale     int `json:"stale"`
	} `json:"sensors"`
	Entitlement struct {
		NodesUsed int `json:"nodes_used"`
	} `json:"entitlement"`
	NodeList []struct {
		Name   string `json:"name"`
		Sensor *struct {
			Stale           bool      `json:"stale"`
			LastSeen        time.Time `json:"last_seen"`
			IntervalSeconds *float64  `json:"interval_seconds"`
		} `json:"sensor"`
	} `json:"node_list"`
	Collectors []struct {
		ID   string `json:"id"`
		Live bool   `json:"live"`
	} `json:"collectors"`
}

// sensorPodLifecycle deletes the node's sensor pod: the DaemonSet starts another, which carries on as the same
// collector (its token is on the node's disk), so the node keeps one sensor, counted once. Then the node is
// labelled to turn its sensor off: the pod is deleted and none replaces it, and the service shows the node's
// sensor stale; unlabelled, a new pod reports and it is fresh again.
func sensorPodLifecycle(t *testing.T, ni *nodeInstall, sensor corev1.Pod) {
	n := ni.node
	client := n.Client(t)
	ctx := context.Background()
	var view clusterView
	get := func() clusterView {
		view = clusterView{}
		testbed.GetJSON(t, ni.api+"/api/v1/clusters/test-cluster", &view)
		return view
	}
	nodeSensor := func(v clusterView) (stale, known bool, lastSeen time.Time) {
		for _, nd := range v.NodeList {
			if nd.Name == n.Name && nd.Sensor != nil {
				return nd.Sensor.Stale, nd.Sensor.IntervalSeconds != nil, nd.Sensor.LastSeen
			}
		}
		return false, false, time.Time{}
	}
	why := func(what string) func() string {
		return func() string {
			return fmt.Sprintf("%s: %+v\nservice:\n%s", what, view, ni.service.Output())
		}
	}
	// Until the service knows the sensor's interval (two records), its stale threshold is the 5-minute default.
	testbed.WaitFor(t, time.Minute, func() bool { stale, known, _ := nodeSensor(get()); return known && !stale },
		why("the node's sensor has not reported twice"))

	const selector = "app.kubernetes.io/component=sensor"
	if err := client.CoreV1().Pods(namespace).Delete(ctx, sensor.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var next corev1.Pod
	testbed.WaitFor(t, 3*time.Minute, func() bool {
		pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 {
			return false
		}
		next = pods.Items[0]
		return next.Name != sensor.Name && next.DeletionTimestamp == nil && next.Status.Phase == corev1.PodRunning
	}, func() string { return "the DaemonSet started no new sensor pod for " + sensor.Name })
	started := time.Now()
	testbed.WaitFor(t, time.Minute, func() bool {
		stale, _, seen := nodeSensor(get())
		return !stale && seen.After(started)
	}, why("the new sensor pod "+next.Name+" sent no health record"))
	var ids []string
	for _, c := range view.Collectors {
		ids = append(ids, c.ID)
	}
	if slices.Sort(ids); !slices.Equal(ids, []string{"controller", n.Name}) || view.Entitlement.NodesUsed != 1 {
		t.Errorf("after the sensor pod was replaced: collectors %v, %d nodes used; want controller and %s, one node",
			ids, view.Entitlement.NodesUsed, n.Name)
	}

	// label sets the node's sensor label to a JSON value: null removes it.
	label := func(value string) {
		patch := `{"metadata":{"labels":{"runtrust.io/sensor":` + value + `}}}`
		if _, err := client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	label(`"disabled"`)
	testbed.WaitFor(t, 2*time.Minute, func() bool {
		pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		return len(pods.Items) == 0
	}, func() string { return "the sensor pod stays on a node labelled runtrust.io/sensor=disabled" })
	gone := time.Now()
	testbed.WaitFor(t, 2*time.Minute, func() bool { stale, _, _ := nodeSensor(get()); return stale && view.Sensors.Stale == 1 },
		why("the node whose sensor pod is gone is not stale"))
	t.Logf("the node's sensor stale %s after its pod was deleted", time.Since(gone).Round(time.Second))

	label(`null`)
	back := n.WaitRunning(t, namespace, selector, 3*time.Minute)
	testbed.WaitFor(t, time.Minute, func() bool { stale, _, _ := nodeSensor(get()); return !stale && view.Sensors.Stale == 0 },
		why("the sensor pod "+back.Name+" came back and the node is still stale"))
}

// TestGreenBurritoOnTheNode is the stale moving tag for real: a Deployment of green-burrito:latest with
// imagePullPolicy IfNotPresent runs on the node; a new build is pushed under the same tag; the Deployment is
// scaled up and the kubelet starts the new pod from the image it already holds, so both pods run the old
// digest. The controller asks the registry, and the service shows the old digest as a stale tag on both pods,
// with the tag's digest now and the pull-policy remediation.
func TestGreenBurritoOnTheNode(t *testing.T) {
	reg := registrytest.Start(t)
	// The node pulls from the loopback registry (containerd runs on the host); the controller, in a pod, cannot
	// reach the host's loopback, so it asks the same registry at the node's address, as nodes that pull through
	// a mirror are configured (controller.mirrors), over plain HTTP. A push is seen once the tag's cached answer
	// expires (cacheTTL) and a record of the pod comes by (a change, or the snapshot every snapshotInterval):
	// both are short here.
	mirror := forward(t, net.JoinHostPort(kubetest.MachineIP(t), strconv.Itoa(loopback.TestPort(t))), reg.Host)
	ni := installOnNodeWith(t, reg, "controller.trustedRegistries={"+reg.Host+","+mirror+"}",
		"controller.imageIntegrity.cacheTTL=30s", "controller.snapshotInterval=15s", `json:controller.mirrors=[{"source":"`+reg.Host+`","mirror":"`+mirror+`"}]`,
		`json:controller.imageIntegrity.registries=[{"host":"`+mirror+`","tls":{"insecure":true}}]`)
	n := ni.node
	build := func(id string) string {
		spec, _ := sbomtest.ShellSpec(t)
		spec.Files = append(spec.Files, sbomtest.File{Path: "/etc/build-id", Content: []byte(id + "\n"), Mode: 0o644})
		_, digest := sbomtest.Push(t, reg.Host, "shop/green-burrito:latest", sbomtest.Image(t, spec))
		return digest
	}
	v1 := build("1")
	client := n.Client(t)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "green-burrito"}
	one := int32(1)
	_, err := client.AppsV1().Deployments("shop").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "green-burrito"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: reg.Host + "/shop/green-burrito:latest",
					ImagePullPolicy: corev1.PullIfNotPresent}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.WaitRunning(t, "shop", "app=green-burrito", 3*time.Minute)
	ni.waitImage(t, v1, "verified", func(i testbed.Image) bool { return testbed.Str(i.Verdict) == records.IntegrityVerified })

	v2 := build("2")
	scale, err := client.AppsV1().Deployments("shop").GetScale(ctx, "green-burrito", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 2
	if _, err := client.AppsV1().Deployments("shop").UpdateScale(ctx, "green-burrito", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	img := ni.waitImage(t, v1, "stale_tag on both pods", func(i testbed.Image) bool {
		if testbed.Str(i.Verdict) != records.IntegrityStaleTag || len(i.Placements) != 2 {
			return false
		}
		for _, p := range i.Placements {
			if testbed.Str(p.ExpectedDigest) != v2 || testbed.Str(p.PullPolicy) != string(corev1.PullIfNotPresent) {
				return false
			}
		}
		return true
	})
	pods, err := client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=green-burrito"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if st := p.Status.ContainerStatuses; len(st) != 1 || !strings.HasSuffix(st[0].ImageID, "@"+v1) {
			t.Errorf("pod %s runs %+v, want the old digest %s: the kubelet keeps what it pulled", p.Name, st, v1)
		}
	}
	if len(img.Remediation) != 1 || !slices.Contains(img.Remediation[0].PullPolicies, "IfNotPresent") ||
		testbed.Str(img.Remediation[0].PinnedRef) != reg.Host+"/shop/green-burrito@"+v2 {
		t.Errorf("remediation %+v, want pull policy IfNotPresent and the pinned reference to %s", img.Remediation, v2)
	}

	// The image deleted from the registry while its pods run (the tag and both builds): the kubelet keeps
	// running them from what it pulled, and the service shows the running digest as an artifact gone missing.
	for _, ref := range []string{"latest", "@" + v1, "@" + v2} {
		sep := ":"
		if strings.HasPrefix(ref, "@") {
			sep = ""
		}
		r, err := name.ParseReference(reg.Host+"/shop/green-burrito"+sep+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Delete(r); err != nil {
			t.Fatalf("delete %s: %v", r, err)
		}
	}
	ni.waitImage(t, v1, "artifact_missing on both pods", func(i testbed.Image) bool {
		return testbed.Str(i.Verdict) == records.IntegrityArtifactMissing && len(i.Placements) == 2
	})
	pods, err = client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=green-burrito"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s is %s after its image was deleted from the registry, want it still running", p.Name, p.Status.Phase)
		}
	}
}

// waitImage polls the service's image detail of digest until ok holds.
func (ni *nodeInstall) waitImage(t *testing.T, digest, what string, ok func(testbed.Image) bool) testbed.Image {
	t.Helper()
	var img testbed.Image
	testbed.WaitFor(t, 2*time.Minute, func() bool {
		img = testbed.Image{}
		return testbed.GetStatus(t, ni.api+"/api/v1/images/"+digest, &img) == 200 && ok(img)
	}, func() string {
		return fmt.Sprintf("image %s not %s: %+v\ncontroller:\n%s\nservice:\n%s", digest, what, img, ni.controllerLogs(t), ni.service.Output())
	})
	return img
}

// forward listens on from and copies every connection to and from to, until the test ends; it returns from.
func forward(t *testing.T, from, to string) string {
	t.Helper()
	lis, err := net.Listen("tcp", from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return from
}
