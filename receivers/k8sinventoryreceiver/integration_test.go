package k8sinventoryreceiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/runtrust/runtrust/internal/k8sconfig"
	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/processors/registrytrustprocessor"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

const (
	saNamespace = "runtrust"
	saName      = "runtrust-k8sinventory"
)

// applyRBAC creates the objects of distributions/k8s/rbac.yaml.
func applyRBAC(t *testing.T, admin kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: saNamespace}}, metav1.CreateOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join("..", "..", "distributions", "k8s", "rbac.yaml"))
	require.NoError(t, err)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	n := 0
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		if len(bytes.TrimSpace(raw.Raw)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		require.NoError(t, err)
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = admin.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("rbac.yaml: unexpected %T", obj)
		}
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 3, n)
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates with a token the kube-apiserver issued for
// the receiver's service account (TokenRequest), as a pod's projected token would.
func serviceAccountKubeconfig(t *testing.T, c *kubetest.Cluster, admin kubernetes.Interface) string {
	t.Helper()
	exp := int64(3600)
	tr, err := admin.CoreV1().ServiceAccounts(saNamespace).CreateToken(context.Background(), saName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: it, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: sa, user: {token: %q}}]
contexts: [{name: it, context: {cluster: it, user: sa}}, {name: other, context: {cluster: it, user: nobody}}]
current-context: other
`, c.URL, filepath.Join(c.Dir, "ca.crt"), tr.Status.Token)
	require.NoError(t, os.WriteFile(path, []byte(kc), 0o600))
	return path
}

// TestRBACAllowsExactlyWhatTheReceiverNeeds asks the kube-apiserver, as the service account, what it may do.
func TestRBACAllowsExactlyWhatTheReceiverNeeds(t *testing.T) {
	c := kubetest.Start(t)
	admin := c.Client(t)
	applyRBAC(t, admin)
	sa, err := kubernetes.NewForConfig(c.ServiceAccountConfig(saNamespace, saName))
	require.NoError(t, err)
	canI := func(verb, group, resource, ns, name string) bool {
		r, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verb, Group: group, Resource: resource, Namespace: ns, Name: name}}}, metav1.CreateOptions{})
		require.NoError(t, err)
		return r.Status.Allowed
	}
	// The RBAC authorizer reads roles and bindings from informers: the binding just created takes effect
	// once they have seen it, so wait for the first grant before checking the rest.
	require.Eventually(t, func() bool { return canI("get", "", "nodes", "", "") }, 30*time.Second, 50*time.Millisecond,
		"the receiver's ClusterRoleBinding never took effect")
	for _, gr := range [][2]string{{"", "nodes"}, {"", "pods"}, {"apps", "deployments"}, {"apps", "replicasets"},
		{"apps", "statefulsets"}, {"apps", "daemonsets"}, {"batch", "jobs"}, {"batch", "cronjobs"}} {
		for _, verb := range []string{"get", "list", "watch"} {
			assert.True(t, canI(verb, gr[0], gr[1], "", ""), "%s %s/%s", verb, gr[0], gr[1])
		}
		for _, verb := range []string{"create", "update", "patch", "delete", "deletecollection"} {
			assert.False(t, canI(verb, gr[0], gr[1], "", ""), "%s %s/%s", verb, gr[0], gr[1])
		}
	}
	assert.True(t, canI("get", "", "namespaces", "", "kube-system"))
	assert.False(t, canI("get", "", "namespaces", "", "default"))
	assert.False(t, canI("list", "", "namespaces", "", ""))
	for _, r := range []string{"secrets", "configmaps", "services", "events"} {
		assert.False(t, canI("get", "", r, "", ""), r)
		assert.False(t, canI("list", "", r, "", ""), r)
	}
	assert.False(t, canI("list", "", "pods", "", "") && canI("get", "", "pods/log", "", ""), "pods/log")
}

// TestIntegration runs the receiver, as the service account distributions/k8s/rbac.yaml defines, in a pipeline
// with the registry trust processor against a real kube-apiserver, and plays what the controllers and the
// kubelet would do around a Deployment: its ReplicaSet, a pod, the pod's status with imageIDs, an image update
// with a new ReplicaSet and pod, and the deletions. It asserts the exact records, in order.
func TestIntegration(t *testing.T) {
	c := kubetest.Start(t)
	admin := c.Client(t)
	ctx := context.Background()
	applyRBAC(t, admin)
	kubeSystem, err := admin.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	require.NoError(t, err)

	// The pipeline: k8sinventory → registrytrust → sink.
	sink := new(consumertest.LogsSink)
	pf := registrytrustprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*registrytrustprocessor.Config)
	pcfg.TrustedRegistries = []string{"ghcr.io/acme"}
	proc, err := pf.CreateLogs(ctx, processortest.NewNopSettings(pf.Type()), pcfg, sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(ctx, componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(ctx)) })

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.AuthType = k8sconfig.AuthKubeConfig
	cfg.KubeConfig = serviceAccountKubeconfig(t, c, admin)
	cfg.Context = "it"
	cfg.ClusterName = "integration"
	cfg.Namespaces.Exclude = []string{"kube-system"}
	require.NoError(t, cfg.Validate())
	rcv, err := f.CreateLogs(ctx, receivertest.NewNopSettings(metadata.Type), cfg, proc)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(ctx, componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(ctx)) })
	select {
	case <-rcv.(*inventoryReceiver).firstSnapshot:
	case <-time.After(2 * time.Minute):
		t.Fatal("no first snapshot within 2 minutes")
	}
	require.Empty(t, sinkRecords(sink), "no nodes and no workloads yet: no controllers run")
	seen := 0

	// A node, registered as a kubelet would, then a heartbeat (nothing).
	nd, err := admin.CoreV1().Nodes().Create(ctx, node("node-1", "", "v1.34.2"), metav1.CreateOptions{})
	require.NoError(t, err)
	nd.Status = node("node-1", "", "v1.34.2").Status
	nd, err = admin.CoreV1().Nodes().UpdateStatus(ctx, nd, metav1.UpdateOptions{})
	require.NoError(t, err)
	got := next(t, sink, &seen, 1)
	// The status may arrive with the create or as an update, depending on how fast the watch is.
	if got[0].Attrs[records.AttrK8sNodeKubeletVersion] == nil {
		got = append(got, next(t, sink, &seen, 1)...)
		assert.Equal(t, []string{"node node-1 added", "node node-1 updated"}, bodyList(got))
	} else {
		assert.Equal(t, []string{"node node-1 added"}, bodyList(got))
	}
	last := got[len(got)-1]
	assert.Equal(t, map[string]any{records.AttrK8sClusterName: "integration", records.AttrK8sClusterUID: string(kubeSystem.UID)},
		last.Resource, "the cluster uid is kube-system's, read with the service account's one namespace right")
	assert.Equal(t, string(nd.UID), last.Attrs[records.AttrK8sNodeUID])
	assert.Equal(t, "v1.34.2", last.Attrs[records.AttrK8sNodeKubeletVersion])
	nd.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now().Add(time.Minute))
	_, err = admin.CoreV1().Nodes().UpdateStatus(ctx, nd, metav1.UpdateOptions{})
	require.NoError(t, err)

	_, err = admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	// The Deployment, its ReplicaSet (no record: the Deployment owns it), and its pod.
	dep, err := admin.AppsV1().Deployments("shop").Create(ctx, deploymentSpec("green-burrito", "ghcr.io/acme/burrito:1.0"), metav1.CreateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 1)
	assert.Equal(t, []string{"deployment shop/green-burrito added"}, bodyList(got), "and the node heartbeat sent nothing")
	assert.Equal(t, map[string]any{
		records.AttrK8sChange: records.ChangeAdded, records.AttrK8sNamespaceName: "shop",
		records.AttrK8sWorkloadKind: kindDeployment, records.AttrK8sWorkloadName: "green-burrito",
		records.AttrK8sWorkloadUID: string(dep.UID), records.AttrK8sWorkloadImages: []any{"ghcr.io/acme/burrito:1.0"},
	}, got[0].Attrs)

	depOwner := ctrl(kindDeployment, dep.Name, string(dep.UID))
	rs1, err := admin.AppsV1().ReplicaSets("shop").Create(ctx, replicaSetSpec("green-burrito-7f9c", depOwner, dep.Spec.Template), metav1.CreateOptions{})
	require.NoError(t, err)
	pod1, err := admin.CoreV1().Pods("shop").Create(ctx, podSpec("green-burrito-7f9c-abcde", ctrl(kindReplicaSet, rs1.Name, string(rs1.UID)), dep.Spec.Template), metav1.CreateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 2)
	assert.Equal(t, []string{"pod shop/green-burrito-7f9c-abcde added", "container shop/green-burrito-7f9c-abcde/app added"}, bodyList(got))
	wantPod := map[string]any{
		records.AttrK8sNamespaceName: "shop", records.AttrK8sPodName: pod1.Name, records.AttrK8sPodUID: string(pod1.UID),
		records.AttrK8sNodeName: "node-1", records.AttrK8sWorkloadKind: kindDeployment,
		records.AttrK8sWorkloadName: "green-burrito", records.AttrK8sWorkloadUID: string(dep.UID),
	}
	assert.Equal(t, merge(wantPod, map[string]any{records.AttrK8sChange: records.ChangeAdded, records.AttrK8sPodStatusPhase: "Pending"}), got[0].Attrs)
	assert.Equal(t, merge(wantPod, map[string]any{
		records.AttrK8sChange: records.ChangeAdded, records.AttrK8sContainerName: "app",
		records.AttrK8sContainerKind: records.ContainerKindRegular, records.AttrContainerImageName: "ghcr.io/acme/burrito:1.0",
		records.AttrImagePullPolicy: "IfNotPresent", records.AttrImageRunningDigestMissing: records.RunningDigestNotReported,
		// Added by the registry trust processor downstream.
		records.AttrImageRef: "ghcr.io/acme/burrito:1.0", records.AttrRegistryHost: "ghcr.io",
		records.AttrRegistryTrusted: true, records.AttrImageTagMutable: false,
	}), got[1].Attrs)

	// The kubelet reports it running, from a docker-pullable:// imageID.
	started := time.Now().UTC().Truncate(time.Second)
	pod1, err = admin.CoreV1().Pods("shop").UpdateStatus(ctx, running(pod1, started, "docker-pullable://ghcr.io/acme/burrito@"+sha1), metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 2)
	assert.Equal(t, []string{"pod shop/green-burrito-7f9c-abcde updated", "container shop/green-burrito-7f9c-abcde/app updated"}, bodyList(got))
	assert.Equal(t, "Running", got[0].Attrs[records.AttrK8sPodStatusPhase])
	ca := got[1].Attrs
	assert.Equal(t, sha1, ca[records.AttrImageRunningDigest])
	assert.Equal(t, "docker-pullable://ghcr.io/acme/burrito@"+sha1, ca[records.AttrContainerImageID])
	assert.Equal(t, fmt.Sprintf("%064x", 1), ca[records.AttrContainerID])
	assert.Equal(t, records.ContainerStateRunning, ca[records.AttrK8sContainerStatusState])
	assert.Equal(t, started.Format(time.RFC3339), ca[records.AttrK8sContainerStartTime])

	// A readiness flap is a status heartbeat: nothing.
	pod1.Status.Conditions[0].Status = corev1.ConditionFalse
	pod1, err = admin.CoreV1().Pods("shop").UpdateStatus(ctx, pod1, metav1.UpdateOptions{})
	require.NoError(t, err)

	// The image update: the Deployment changes, a new ReplicaSet and pod come, the old ones go.
	dep.Spec.Template.Spec.Containers[0].Image = "ghcr.io/acme/burrito:1.1"
	dep.Spec.Template.Spec.Containers = append(dep.Spec.Template.Spec.Containers,
		corev1.Container{Name: "tools", Image: "registry.local/tools:dev", ImagePullPolicy: corev1.PullNever})
	dep, err = admin.AppsV1().Deployments("shop").Update(ctx, dep, metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 1)
	assert.Equal(t, []string{"deployment shop/green-burrito updated"}, bodyList(got), "and the readiness flap sent nothing")
	assert.Equal(t, []any{"ghcr.io/acme/burrito:1.1", "registry.local/tools:dev"}, got[0].Attrs[records.AttrK8sWorkloadImages])

	rs2, err := admin.AppsV1().ReplicaSets("shop").Create(ctx, replicaSetSpec("green-burrito-8a1b", depOwner, dep.Spec.Template), metav1.CreateOptions{})
	require.NoError(t, err)
	pod2, err := admin.CoreV1().Pods("shop").Create(ctx, podSpec("green-burrito-8a1b-fghij", ctrl(kindReplicaSet, rs2.Name, string(rs2.UID)), dep.Spec.Template), metav1.CreateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 3)
	assert.Equal(t, []string{"pod shop/green-burrito-8a1b-fghij added", "container shop/green-burrito-8a1b-fghij/app added",
		"container shop/green-burrito-8a1b-fghij/tools added"}, bodyList(got))
	// The second container runs a locally loaded image: the runtime reports a bare image id, no repo digest.
	_, err = admin.CoreV1().Pods("shop").UpdateStatus(ctx, running(pod2, started, "ghcr.io/acme/burrito@"+sha2, sha3), metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 3)
	assert.Equal(t, []string{"pod shop/green-burrito-8a1b-fghij updated", "container shop/green-burrito-8a1b-fghij/app updated",
		"container shop/green-burrito-8a1b-fghij/tools updated"}, bodyList(got))
	assert.Equal(t, sha2, got[1].Attrs[records.AttrImageRunningDigest])
	assert.Equal(t, "ghcr.io/acme/burrito:1.1", got[1].Attrs[records.AttrContainerImageName])
	tools := got[2].Attrs
	assert.NotContains(t, tools, records.AttrImageRunningDigest)
	assert.Equal(t, records.RunningDigestLocalImageID, tools[records.AttrImageRunningDigestMissing])
	assert.Equal(t, sha3, tools[records.AttrContainerImageID])
	assert.Equal(t, "Never", tools[records.AttrImagePullPolicy])
	assert.Equal(t, false, tools[records.AttrRegistryTrusted], "registry.local is not trusted")
	for _, r := range got {
		assert.Equal(t, "green-burrito", r.Attrs[records.AttrK8sWorkloadName], r.Body)
	}

	now := metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))} // no kubelet confirms a graceful deletion
	require.NoError(t, admin.CoreV1().Pods("shop").Delete(ctx, pod1.Name, now))
	got = next(t, sink, &seen, 2)
	assert.Equal(t, []string{"pod shop/green-burrito-7f9c-abcde deleted", "container shop/green-burrito-7f9c-abcde/app deleted"}, bodyList(got))
	assert.Equal(t, sha1, got[1].Attrs[records.AttrImageRunningDigest], "a deleted container says what it ran")
	require.NoError(t, admin.AppsV1().ReplicaSets("shop").Delete(ctx, rs1.Name, metav1.DeleteOptions{}))

	// Everything goes.
	require.NoError(t, admin.AppsV1().Deployments("shop").Delete(ctx, dep.Name, metav1.DeleteOptions{}))
	assert.Equal(t, []string{"deployment shop/green-burrito deleted"}, bodyList(next(t, sink, &seen, 1)), "and the ReplicaSet's deletion sent nothing")
	require.NoError(t, admin.AppsV1().ReplicaSets("shop").Delete(ctx, rs2.Name, metav1.DeleteOptions{}))
	require.NoError(t, admin.CoreV1().Pods("shop").Delete(ctx, pod2.Name, now))
	got = next(t, sink, &seen, 3)
	assert.Equal(t, []string{"pod shop/green-burrito-8a1b-fghij deleted", "container shop/green-burrito-8a1b-fghij/app deleted",
		"container shop/green-burrito-8a1b-fghij/tools deleted"}, bodyList(got))
	for _, r := range got {
		assert.Equal(t, kindDeployment, r.Attrs[records.AttrK8sWorkloadKind], "owner remembered after its ReplicaSet and Deployment are gone: %s", r.Body)
	}
	require.NoError(t, admin.CoreV1().Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{}))
	assert.Equal(t, []string{"node node-1 deleted"}, bodyList(next(t, sink, &seen, 1)))

	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, seen, len(sinkRecords(sink)), "nothing more")
}

func merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func deploymentSpec(name, image string) *appsv1.Deployment {
	d := deployment("shop", name, "", image)
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	d.Spec.Template.Labels = map[string]string{"app": name}
	d.Spec.Template.Spec.Containers[0].Name = "app"
	d.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
	d.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: "shop"}
	return d
}

func replicaSetSpec(name string, owners []metav1.OwnerReference, tmpl corev1.PodTemplateSpec) *appsv1.ReplicaSet {
	rs := replicaSet("shop", name, "", owners)
	rs.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: "shop", OwnerReferences: owners}
	rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: tmpl.Labels}
	rs.Spec.Template = tmpl
	return rs
}

func podSpec(name string, owners []metav1.OwnerReference, tmpl corev1.PodTemplateSpec) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: tmpl.Labels, OwnerReferences: owners},
		Spec: *tmpl.Spec.DeepCopy()}
	p.Spec.NodeName = "node-1"
	return p
}
