package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// No controller-manager and no kubelet run in the testbed (kubetest starts etcd and kube-apiserver alone). What
// they would write, the functions here write through the API as they would: the Deployment controller's
// ReplicaSet and pods (with owner references), the scheduler's nodeName, and the kubelet's pod status
// (containerStatuses with the imageID the runtime resolved and the containerID) through the status subresource.

// EnsureNode creates the node the pods run on, if it is not there yet.
func (s *Stack) EnsureNode(t testing.TB, name string) {
	t.Helper()
	_, err := s.Client.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !errors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// EnsureNamespace creates a namespace, if it is not there yet.
func (s *Stack) EnsureNamespace(t testing.TB, name string) {
	t.Helper()
	_, err := s.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !errors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// Running is what the kubelet reports for a started container: the image reference the runtime resolved
// (imageID, `repo@sha256:…`) and the container id (`containerd://<64 hex>`).
type Running struct {
	ImageID     string
	ContainerID string // 64 hex; empty: a random one, or Start's
	// Start, if set, starts the container once the pod exists (a real one needs the pod's uid for its cgroup)
	// and returns its id, as the kubelet starts containers of a pod the apiserver already has.
	Start func(pod *corev1.Pod) string
}

// Deployment is a Deployment with its current ReplicaSet and pod, as the controllers would have made them.
type Deployment struct {
	Namespace, Name string
	Pod             *corev1.Pod
	ContainerID     string // the 64 hex of the running container
	dep             *appsv1.Deployment
	revision        int
}

// RunDeployment creates a one-replica Deployment whose container runs image with pullPolicy, its ReplicaSet, its
// pod on NodeName, and the pod's running status.
func (s *Stack) RunDeployment(t testing.TB, namespace, name, image string, pullPolicy corev1.PullPolicy, run Running) *Deployment {
	t.Helper()
	ctx := context.Background()
	s.EnsureNamespace(t, namespace)
	labels := map[string]string{"app": name}
	dep, err := s.Client.AppsV1().Deployments(namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, name, image, pullPolicy),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := &Deployment{Namespace: namespace, Name: name, dep: dep}
	s.rollout(t, d, run)
	return d
}

// RollOut changes the Deployment's image and does what the Deployment controller and kubelet would: a new
// ReplicaSet and pod running run, the old pod deleted and the old ReplicaSet scaled to zero.
func (s *Stack) RollOut(t testing.TB, d *Deployment, image string, run Running) {
	t.Helper()
	ctx := context.Background()
	dep, err := s.Client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Spec.Template.Spec.Containers[0].Image = image
	if d.dep, err = s.Client.AppsV1().Deployments(d.Namespace).Update(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	old := d.Pod
	oldRS := old.OwnerReferences[0].Name
	s.rollout(t, d, run)
	// A pod bound to a node is removed only when its kubelet confirms its containers stopped, by deleting it
	// with grace period 0; with no kubelet here, the test does that itself.
	if err := s.Client.CoreV1().Pods(d.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, oldRS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs.Spec.Replicas = ptrTo(int32(0))
	if _, err := s.Client.AppsV1().ReplicaSets(d.Namespace).Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (s *Stack) rollout(t testing.TB, d *Deployment, run Running) {
	t.Helper()
	ctx := context.Background()
	d.revision++
	hash := fmt.Sprintf("r%d", d.revision)
	labels := map[string]string{"app": d.Name, "pod-template-hash": hash}
	spec := d.dep.Spec.Template.Spec.Containers[0]
	rs, err := s.Client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", d.dep.Name, d.dep.UID)}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptrTo(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, spec.Name, spec.Image, spec.ImagePullPolicy),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := rs.Spec.Template
	pod, err := s.Client.CoreV1().Pods(d.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: rs.Name + "-x" + randomHex(2), Namespace: d.Namespace, Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}},
		Spec: func() corev1.PodSpec { ps := tmpl.Spec; ps.NodeName = NodeName; return ps }(),
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Start != nil {
		run.ContainerID = run.Start(pod)
	}
	if run.ContainerID == "" {
		run.ContainerID = randomHex(32)
	}
	d.ContainerID = run.ContainerID
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: spec.Name, Image: spec.Image, ImageID: run.ImageID, ContainerID: "containerd://" + run.ContainerID,
			Ready: true, Started: ptrTo(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		}}}
	if d.Pod, err = s.Client.CoreV1().Pods(d.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func podTemplate(labels map[string]string, name, image string, pullPolicy corev1.PullPolicy) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image, ImagePullPolicy: pullPolicy}}},
	}
}

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid,
		Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true)}
}

func ptrTo[T any](v T) *T { return &v }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
