package kubetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// Shape is the size of a cluster Populate creates: Deployments spread over Namespaces, each with one
// ReplicaSet and PodsPerDeployment running pods, the pods spread over Nodes.
type Shape struct {
	Namespaces, Deployments, PodsPerDeployment, Nodes int
}

// BenchShape is the cluster the inventory benchmarks measure: 10,000 pods in 1,000 Deployments, in 10
// namespaces, on 100 nodes.
var BenchShape = Shape{Namespaces: 10, Deployments: 1000, PodsPerDeployment: 10, Nodes: 100}

// Pods is how many pods the shape holds.
func (s Shape) Pods() int { return s.Deployments * s.PodsPerDeployment }

// Image digests of the populated pods' two containers.
const (
	AppDigest   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	EnvoyDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// Populate creates the shape's objects through the API with 8 concurrent clients, as the controllers and the
// kubelet would have written them: no controller runs here, so each Deployment gets its ReplicaSet and each
// pod its running status from Populate. Pods look like real ones: two containers with env, resources, probes,
// mounts, ports, labels and annotations, four conditions and running container statuses with imageIDs, and
// managedFields (the API server writes those).
func Populate(t testing.TB, c *Cluster, s Shape) {
	t.Helper()
	rc := c.RESTConfig()
	rc.QPS = -1 // no client-side rate limit
	admin, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range s.Namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaceName(i)}}
		if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	work := make(chan func() error)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				if err := f(); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for i := range s.Nodes {
		work <- func() error { return createNode(ctx, admin, fmt.Sprintf("node-%03d", i)) }
	}
	for d := range s.Deployments {
		work <- func() error { return createDeployment(ctx, admin, s, d) }
	}
	close(work)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		t.Fatal(err)
	}
}

func namespaceName(i int) string { return fmt.Sprintf("ns-%02d", i) }

func createNode(ctx context.Context, admin kubernetes.Interface, name string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n, err := admin.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	n.Status = corev1.NodeStatus{
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: Version, ContainerRuntimeVersion: "containerd://1.7.24",
			OSImage: "Debian GNU/Linux 12 (bookworm)", Architecture: "amd64"},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}},
	}
	_, err = admin.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// createDeployment creates Deployment d, its ReplicaSet and its pods, and writes the pods' running status.
func createDeployment(ctx context.Context, admin kubernetes.Interface, s Shape, d int) error {
	ns, name := namespaceName(d%s.Namespaces), fmt.Sprintf("app-%04d", d)
	tmpl := podTemplate(name, d)
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: tmpl.Labels},
		Spec: appsv1.DeploymentSpec{Selector: selector, Template: tmpl}}
	dep, err := admin.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-7f9c5d", Namespace: ns, Labels: tmpl.Labels,
		OwnerReferences: controlledBy("Deployment", dep.Name, dep.UID)},
		Spec: appsv1.ReplicaSetSpec{Selector: selector, Template: tmpl}}
	rs, err = admin.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	for p := range s.PodsPerDeployment {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", rs.Name, p), Namespace: ns,
			Labels: tmpl.Labels, Annotations: tmpl.Annotations, OwnerReferences: controlledBy("ReplicaSet", rs.Name, rs.UID)},
			Spec: *tmpl.Spec.DeepCopy()}
		pod.Spec.NodeName = fmt.Sprintf("node-%03d", (d*s.PodsPerDeployment+p)%s.Nodes)
		pod, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		pod.Status = runningStatus(pod, []string{"docker-pullable://ghcr.io/acme/" + name + "@" + AppDigest,
			"registry.corp.example/envoy@" + EnvoyDigest})
		pod.Status.HostIP, pod.Status.PodIP = "10.0.0.1", fmt.Sprintf("10.1.%d.%d", p, d%250)
		if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func controlledBy(kind, name string, uid types.UID) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: &yes}}
}

// runningStatus is the status the kubelet writes once every container of p runs.
func runningStatus(p *corev1.Pod, imageIDs []string) corev1.PodStatus {
	now := metav1.Now()
	st := corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable, StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}}
	for i, c := range p.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageIDs[i], Ready: true,
			ContainerID: fmt.Sprintf("containerd://%x", sha256.Sum256([]byte(string(p.UID)+"/"+c.Name))),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return st
}

func podTemplate(name string, i int) corev1.PodTemplateSpec {
	env := make([]corev1.EnvVar, 8)
	for j := range env {
		env[j] = corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", j), Value: fmt.Sprintf("value-%d-%d", i, j)}
	}
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 10}
	mounts := []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "data", MountPath: "/var/lib/app"}}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{"app": name, "team": "team-" + strconv.Itoa(i%20), "tier": "backend",
				"app.kubernetes.io/version": "1.0." + strconv.Itoa(i%7)},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				{Name: "app", Image: "ghcr.io/acme/" + name + ":1.0", ImagePullPolicy: corev1.PullIfNotPresent,
					Env: env, Resources: res, LivenessProbe: probe, ReadinessProbe: probe, VolumeMounts: mounts,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}}},
				{Name: "envoy", Image: "registry.corp.example/envoy:v1.31", ImagePullPolicy: corev1.PullIfNotPresent,
					Args: []string{"--config-path", "/etc/envoy/envoy.yaml", "--log-level", "warn"}, Resources: res},
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: name + "-config"}}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
}
