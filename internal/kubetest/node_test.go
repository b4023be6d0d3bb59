package kubetest

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/internal/sbomtest"
)

// TestNodeRunsADeployment: on the single-node cluster, a Deployment rolls out for real. The controller-manager
// makes its ReplicaSet and pod, the scheduler binds the pod to the node, and the kubelet pulls the image from the
// loopback registry through containerd's CRI, starts the sandbox (the pause image the node pushed) with an
// address from the CNI bridge, and runs the container. The pod's status carries the digest that was pushed.
func TestNodeRunsADeployment(t *testing.T) {
	reg := registrytest.Start(t)
	n := StartNode(t, NodeOptions{Registry: reg.Host})
	spec, _ := sbomtest.ShellSpec(t)
	ref, digest := sbomtest.Push(t, reg.Host, "shop/sleeper:1.0", sbomtest.Image(t, spec))

	client := n.Client(t)
	ctx := context.Background()
	labels := map[string]string{"app": "sleeper"}
	one := int32(1)
	_, err := client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "sleeper", Image: ref,
					Command: []string{"/bin/sleep", "600"}}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := n.WaitRunning(t, "default", "app=sleeper", 3*time.Minute)
	if pod.Spec.NodeName != n.Name {
		t.Errorf("scheduled to %q, want %q", pod.Spec.NodeName, n.Name)
	}
	if owners := pod.OwnerReferences; len(owners) != 1 || owners[0].Kind != "ReplicaSet" {
		t.Errorf("owners %+v: want the Deployment's ReplicaSet", owners)
	}
	st := pod.Status.ContainerStatuses
	if len(st) != 1 || !strings.HasSuffix(st[0].ImageID, "@"+digest) || !strings.HasPrefix(st[0].ContainerID, "containerd://") {
		t.Fatalf("container status %+v: want imageID …@%s from containerd", st, digest)
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil || !netip.MustParsePrefix(PodSubnet).Contains(ip) {
		t.Errorf("pod IP %q: want one from the CNI bridge's %s", pod.Status.PodIP, PodSubnet)
	}
	// kubectl exec's path: the apiserver streams from the kubelet, which runs the command in the container.
	if out := n.Exec(t, "default", pod.Name, "sleeper", "/bin/sh", "-c", `while read -r l; do echo "$l"; done < /proc/self/cgroup`); !strings.Contains(out, "/pod"+string(pod.UID)+"/") {
		t.Errorf("exec printed %q: want the pod's cgroup (pod%s)", out, pod.UID)
	}
}

// TestPodsReachTheAPIServer: a pod lists its namespace's pods as in-cluster clients do, through the kubernetes
// service's address (kube-proxy's rules), with its service-account token, verifying the apiserver against the
// CA it was given: the paths the collectors take when the charts run them.
func TestPodsReachTheAPIServer(t *testing.T) {
	reg := registrytest.Start(t)
	n := StartNode(t, NodeOptions{Registry: reg.Host})
	ref, _ := sbomtest.Push(t, reg.Host, "kubetest/incluster:1", programImage(t, "incluster"))
	client := n.Client(t)
	ctx := context.Background()
	_, err := client.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "default-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "default"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "incluster"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "incluster", Image: ref}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := client.CoreV1().Pods("default").Get(ctx, "incluster", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			logs, _ := client.CoreV1().Pods("default").GetLogs("incluster", &corev1.PodLogOptions{}).DoRaw(ctx)
			if p.Status.Phase != corev1.PodSucceeded || !strings.Contains(string(logs), "listed 1 pods through https://10.96.0.1:443") {
				t.Fatalf("the pod %s: %s", p.Status.Phase, logs)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod did not finish in 2 min: %s\n%s", p.Status.Phase, n.events(t))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
