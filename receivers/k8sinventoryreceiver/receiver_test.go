package k8sinventoryreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runtrust/runtrust/internal/records"
)

var bg = context.Background()

func kubeSystem() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "cluster-uid-1"}}
}

// everyKind is a cluster with one object of every kind the receiver watches, and pods owned each way.
func everyKind() []runtime.Object {
	return []runtime.Object{
		kubeSystem(),
		node("node-a", "node-uid", "v1.34.2"),
		deployment("shop", "green-burrito", "dep-uid", "ghcr.io/acme/burrito:1.0"),
		replicaSet("shop", "green-burrito-7f9c", "rs-uid", ctrl(kindDeployment, "green-burrito", "dep-uid"), "ghcr.io/acme/burrito:1.0"),
		replicaSet("shop", "bare-rs", "bare-rs-uid", nil, "nginx:1.25"),
		statefulSetObj("shop", "db", "sts-uid", "postgres:16"),
		daemonSetObj("kube-system", "agent", "ds-uid", "agent:2"),
		cronJob("shop", "report", "cj-uid", "report:1"),
		job("shop", "report-29000", "job-uid", ctrl(kindCronJob, "report", "cj-uid"), "report:1"),
		job("shop", "migrate", "bare-job-uid", nil, "migrate:3"),
		pod("shop", "green-burrito-7f9c-abcde", "pod-dep", "node-a", ctrl(kindReplicaSet, "green-burrito-7f9c", "rs-uid"), "ghcr.io/acme/burrito:1.0"),
		pod("shop", "bare-rs-xyz", "pod-rs", "node-a", ctrl(kindReplicaSet, "bare-rs", "bare-rs-uid"), "nginx:1.25"),
		pod("shop", "db-0", "pod-sts", "node-a", ctrl(kindStatefulSet, "db", "sts-uid"), "postgres:16"),
		pod("kube-system", "agent-q", "pod-ds", "node-a", ctrl(kindDaemonSet, "agent", "ds-uid"), "agent:2"),
		pod("shop", "report-29000-k", "pod-cj", "node-a", ctrl(kindJob, "report-29000", "job-uid"), "report:1"),
		pod("shop", "migrate-m", "pod-job", "node-a", ctrl(kindJob, "migrate", "bare-job-uid"), "migrate:3"),
		pod("shop", "lonely", "pod-bare", "", nil, "busybox"),
	}
}

func TestStartSendsASnapshotOfEveryKind(t *testing.T) {
	sink := new(consumertest.LogsSink)
	startReceiver(t, testConfig(), fake.NewClientset(everyKind()...), sink)
	got := sinkRecords(sink)
	assert.Equal(t, []string{
		"container kube-system/agent-q/c0 snapshot",
		"container shop/bare-rs-xyz/c0 snapshot",
		"container shop/db-0/c0 snapshot",
		"container shop/green-burrito-7f9c-abcde/c0 snapshot",
		"container shop/lonely/c0 snapshot",
		"container shop/migrate-m/c0 snapshot",
		"container shop/report-29000-k/c0 snapshot",
		"cronjob shop/report snapshot",
		"daemonset kube-system/agent snapshot",
		"deployment shop/green-burrito snapshot",
		"job shop/migrate snapshot",
		"node node-a snapshot",
		"pod kube-system/agent-q snapshot",
		"pod shop/bare-rs-xyz snapshot",
		"pod shop/db-0 snapshot",
		"pod shop/green-burrito-7f9c-abcde snapshot",
		"pod shop/lonely snapshot",
		"pod shop/migrate-m snapshot",
		"pod shop/report-29000-k snapshot",
		"replicaset shop/bare-rs snapshot",
		"statefulset shop/db snapshot",
	}, sortedBodies(got), "a ReplicaSet a Deployment owns and a Job a CronJob owns are no workloads of their own")

	byBody := map[string]rec{}
	for _, r := range got {
		byBody[r.Body] = r
		assert.Equal(t, map[string]any{records.AttrK8sClusterName: "test-cluster", records.AttrK8sClusterUID: "cluster-uid-1"},
			r.Resource, "the cluster uid defaults to kube-system's")
		assert.Equal(t, records.ChangeSnapshot, r.Change)
	}
	// Owners resolved through owner references.
	owners := map[string][3]string{
		"pod shop/green-burrito-7f9c-abcde snapshot": {kindDeployment, "green-burrito", "dep-uid"},
		"pod shop/bare-rs-xyz snapshot":              {kindReplicaSet, "bare-rs", "bare-rs-uid"},
		"pod shop/db-0 snapshot":                     {kindStatefulSet, "db", "sts-uid"},
		"pod kube-system/agent-q snapshot":           {kindDaemonSet, "agent", "ds-uid"},
		"pod shop/report-29000-k snapshot":           {kindCronJob, "report", "cj-uid"},
		"pod shop/migrate-m snapshot":                {kindJob, "migrate", "bare-job-uid"},
	}
	for body, want := range owners {
		a := byBody[body].Attrs
		assert.Equal(t, []string{want[0], want[1], want[2]}, []string{str(a[records.AttrK8sWorkloadKind]), str(a[records.AttrK8sWorkloadName]), str(a[records.AttrK8sWorkloadUID])}, body)
	}
	lonely := byBody["pod shop/lonely snapshot"].Attrs
	assert.NotContains(t, lonely, records.AttrK8sWorkloadKind, "a bare pod has no workload")
	assert.NotContains(t, lonely, records.AttrK8sNodeName, "an unscheduled pod has no node")

	assert.Equal(t, map[string]any{
		records.AttrK8sChange:                 records.ChangeSnapshot,
		records.AttrK8sNamespaceName:          "shop",
		records.AttrK8sPodName:                "green-burrito-7f9c-abcde",
		records.AttrK8sPodUID:                 "pod-dep",
		records.AttrK8sNodeName:               "node-a",
		records.AttrK8sWorkloadKind:           kindDeployment,
		records.AttrK8sWorkloadName:           "green-burrito",
		records.AttrK8sWorkloadUID:            "dep-uid",
		records.AttrK8sContainerName:          "c0",
		records.AttrK8sContainerKind:          records.ContainerKindRegular,
		records.AttrContainerImageName:        "ghcr.io/acme/burrito:1.0",
		records.AttrImagePullPolicy:           "IfNotPresent",
		records.AttrImageRunningDigestMissing: records.RunningDigestNotReported,
	}, byBody["container shop/green-burrito-7f9c-abcde/c0 snapshot"].Attrs)
	assert.Equal(t, map[string]any{
		records.AttrK8sChange:         records.ChangeSnapshot,
		records.AttrK8sNamespaceName:  "shop",
		records.AttrK8sWorkloadKind:   kindDeployment,
		records.AttrK8sWorkloadName:   "green-burrito",
		records.AttrK8sWorkloadUID:    "dep-uid",
		records.AttrK8sWorkloadImages: []any{"ghcr.io/acme/burrito:1.0"},
	}, byBody["deployment shop/green-burrito snapshot"].Attrs)
	assert.Equal(t, map[string]any{
		records.AttrK8sChange:                      records.ChangeSnapshot,
		records.AttrK8sNodeName:                    "node-a",
		records.AttrK8sNodeUID:                     "node-uid",
		records.AttrK8sNodeKubeletVersion:          "v1.34.2",
		records.AttrK8sNodeContainerRuntimeVersion: "containerd://1.7.24",
		records.AttrK8sNodeOSImage:                 "Debian GNU/Linux 12 (bookworm)",
		records.AttrHostArch:                       "amd64",
	}, byBody["node node-a snapshot"].Attrs)
}

// TestChanges walks every change type of every record kind, and the changes that must not send a record.
func TestChanges(t *testing.T) {
	client := fake.NewClientset(kubeSystem())
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.ClusterUID = "configured-uid"
	startReceiver(t, cfg, client, sink)
	seen := 0
	require.Empty(t, sinkRecords(sink))

	core, apps, batch := client.CoreV1(), client.AppsV1(), client.BatchV1()

	// Nodes: added; a heartbeat sends nothing; a new kubelet version is an update; deleted.
	n := node("node-a", "node-uid", "v1.34.1")
	n, err := core.Nodes().Create(bg, n, metav1.CreateOptions{})
	require.NoError(t, err)
	got := next(t, sink, &seen, 1)
	assert.Equal(t, []string{"node node-a added"}, bodyList(got))
	assert.Equal(t, "configured-uid", got[0].Resource[records.AttrK8sClusterUID])
	n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now().Add(time.Minute))
	n, err = core.Nodes().UpdateStatus(bg, n, metav1.UpdateOptions{})
	require.NoError(t, err)
	n.Status.NodeInfo.KubeletVersion = "v1.34.2"
	_, err = core.Nodes().UpdateStatus(bg, n, metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 1)
	assert.Equal(t, []string{"node node-a updated"}, bodyList(got), "the heartbeat before sent nothing")
	assert.Equal(t, "v1.34.2", got[0].Attrs[records.AttrK8sNodeKubeletVersion])
	require.NoError(t, core.Nodes().Delete(bg, "node-a", metav1.DeleteOptions{}))
	assert.Equal(t, []string{"node node-a deleted"}, bodyList(next(t, sink, &seen, 1)))

	// A Deployment, its ReplicaSet (no record of its own) and a pod.
	dep, err := apps.Deployments("shop").Create(bg, deployment("shop", "green-burrito", "dep-uid", "ghcr.io/acme/burrito:1.0"), metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"deployment shop/green-burrito added"}, bodyList(next(t, sink, &seen, 1)))
	_, err = apps.ReplicaSets("shop").Create(bg, replicaSet("shop", "green-burrito-7f9c", "rs-uid",
		ctrl(kindDeployment, "green-burrito", "dep-uid"), "ghcr.io/acme/burrito:1.0"), metav1.CreateOptions{})
	require.NoError(t, err)
	p := pod("shop", "green-burrito-7f9c-abcde", "pod-uid", "node-a", ctrl(kindReplicaSet, "green-burrito-7f9c", "rs-uid"), "ghcr.io/acme/burrito:1.0")
	p.Spec.NodeName = ""
	p, err = core.Pods("shop").Create(bg, p, metav1.CreateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 2)
	assert.Equal(t, []string{"pod shop/green-burrito-7f9c-abcde added", "container shop/green-burrito-7f9c-abcde/c0 added"}, bodyList(got),
		"no record for the ReplicaSet a Deployment owns")
	assert.NotContains(t, got[1].Attrs, records.AttrK8sNodeName)
	// The scheduler binds it: the pod and its container now name the node.
	p.Spec.NodeName = "node-a"
	p, err = core.Pods("shop").Update(bg, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 2)
	assert.Equal(t, []string{"pod shop/green-burrito-7f9c-abcde updated", "container shop/green-burrito-7f9c-abcde/c0 updated"}, bodyList(got))
	assert.Equal(t, "node-a", got[1].Attrs[records.AttrK8sNodeName])
	for _, r := range got {
		assert.Equal(t, kindDeployment, r.Attrs[records.AttrK8sWorkloadKind], r.Body)
		assert.Equal(t, "green-burrito", r.Attrs[records.AttrK8sWorkloadName], r.Body)
	}

	// The kubelet starts it: the pod's phase and the container's status change.
	started := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	p, err = core.Pods("shop").UpdateStatus(bg, running(p, started, "ghcr.io/acme/burrito@"+sha1), metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 2)
	assert.Equal(t, []string{"pod shop/green-burrito-7f9c-abcde updated", "container shop/green-burrito-7f9c-abcde/c0 updated"}, bodyList(got))
	assert.Equal(t, "Running", got[0].Attrs[records.AttrK8sPodStatusPhase])
	c := got[1].Attrs
	assert.Equal(t, sha1, c[records.AttrImageRunningDigest])
	assert.Equal(t, "ghcr.io/acme/burrito@"+sha1, c[records.AttrContainerImageID])
	assert.Equal(t, "0000000000000000000000000000000000000000000000000000000000000001", c[records.AttrContainerID])
	assert.Equal(t, "containerd", c[records.AttrContainerRuntime])
	assert.Equal(t, records.ContainerStateRunning, c[records.AttrK8sContainerStatusState])
	assert.Equal(t, int64(0), c[records.AttrK8sContainerRestartCount])
	assert.Equal(t, "2026-11-23T10:00:00Z", c[records.AttrK8sContainerStartTime])
	assert.NotContains(t, c, records.AttrImageRunningDigestMissing)

	// A status heartbeat (a condition's time, the ready flag) sends nothing; a restart sends the container alone.
	p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(started.Add(time.Minute))
	p.Status.ContainerStatuses[0].Ready = false
	p, err = core.Pods("shop").UpdateStatus(bg, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	p.Status.ContainerStatuses[0].RestartCount = 1
	p.Status.ContainerStatuses[0].State.Running.StartedAt = metav1.NewTime(started.Add(2 * time.Minute))
	p, err = core.Pods("shop").UpdateStatus(bg, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 1)
	assert.Equal(t, []string{"container shop/green-burrito-7f9c-abcde/c0 updated"}, bodyList(got), "the heartbeat before sent nothing")
	assert.Equal(t, int64(1), got[0].Attrs[records.AttrK8sContainerRestartCount])

	// A phase change alone sends the pod record alone: container records do not carry the phase.
	p.Status.Phase = corev1.PodFailed
	p, err = core.Pods("shop").UpdateStatus(bg, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 1)
	assert.Equal(t, []string{"pod shop/green-burrito-7f9c-abcde updated"}, bodyList(got))
	assert.Equal(t, "Failed", got[0].Attrs[records.AttrK8sPodStatusPhase])

	// kubectl debug adds an ephemeral container: added, alone.
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debugger", Image: "busybox:1.36", ImagePullPolicy: corev1.PullAlways}}}
	p, err = core.Pods("shop").UpdateEphemeralContainers(bg, p.Name, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 1)
	assert.Equal(t, []string{"container shop/green-burrito-7f9c-abcde/debugger added"}, bodyList(got))
	assert.Equal(t, records.ContainerKindEphemeral, got[0].Attrs[records.AttrK8sContainerKind])
	assert.Equal(t, kindDeployment, got[0].Attrs[records.AttrK8sWorkloadKind])

	// The Deployment's image changes: the workload is updated; a change outside the contract (replicas) is not.
	dep.Spec.Replicas = new(int32(3))
	dep, err = apps.Deployments("shop").Update(bg, dep, metav1.UpdateOptions{})
	require.NoError(t, err)
	dep.Spec.Template.Spec.Containers[0].Image = "ghcr.io/acme/burrito:1.1"
	_, err = apps.Deployments("shop").Update(bg, dep, metav1.UpdateOptions{})
	require.NoError(t, err)
	got = next(t, sink, &seen, 1)
	assert.Equal(t, []string{"deployment shop/green-burrito updated"}, bodyList(got), "the replicas change before sent nothing")
	assert.Equal(t, []any{"ghcr.io/acme/burrito:1.1"}, got[0].Attrs[records.AttrK8sWorkloadImages])

	// The ReplicaSet goes first, then the pod: the pod's records still name the Deployment.
	require.NoError(t, apps.ReplicaSets("shop").Delete(bg, "green-burrito-7f9c", metav1.DeleteOptions{}))
	require.NoError(t, core.Pods("shop").Delete(bg, p.Name, metav1.DeleteOptions{}))
	got = next(t, sink, &seen, 3)
	assert.Equal(t, []string{"pod shop/green-burrito-7f9c-abcde deleted", "container shop/green-burrito-7f9c-abcde/c0 deleted",
		"container shop/green-burrito-7f9c-abcde/debugger deleted"}, bodyList(got))
	for _, r := range got {
		assert.Equal(t, "green-burrito", r.Attrs[records.AttrK8sWorkloadName], r.Body)
	}
	require.NoError(t, apps.Deployments("shop").Delete(bg, "green-burrito", metav1.DeleteOptions{}))
	assert.Equal(t, []string{"deployment shop/green-burrito deleted"}, bodyList(next(t, sink, &seen, 1)))

	// A CronJob's Job sends nothing (the next record is the StatefulSet's); a bare Job and a bare ReplicaSet are
	// workloads. The other workload kinds: added, updated on an image change, deleted.
	_, err = batch.Jobs("shop").Create(bg, job("shop", "report-1", "job-1", ctrl(kindCronJob, "report", "cj-uid"), "report:2"), metav1.CreateOptions{})
	require.NoError(t, err)
	ignore := func(_ any, err error) error { return err }
	for _, w := range []struct {
		name                   string
		create, update, remove func() error
	}{
		{"statefulset shop/db",
			func() error {
				return ignore(apps.StatefulSets("shop").Create(bg, statefulSetObj("shop", "db", "sts-uid", "postgres:16"), metav1.CreateOptions{}))
			},
			func() error {
				return ignore(apps.StatefulSets("shop").Update(bg, statefulSetObj("shop", "db", "sts-uid", "postgres:17"), metav1.UpdateOptions{}))
			},
			func() error { return apps.StatefulSets("shop").Delete(bg, "db", metav1.DeleteOptions{}) }},
		{"daemonset shop/agent",
			func() error {
				return ignore(apps.DaemonSets("shop").Create(bg, daemonSetObj("shop", "agent", "ds-uid", "agent:1"), metav1.CreateOptions{}))
			},
			func() error {
				return ignore(apps.DaemonSets("shop").Update(bg, daemonSetObj("shop", "agent", "ds-uid", "agent:2"), metav1.UpdateOptions{}))
			},
			func() error { return apps.DaemonSets("shop").Delete(bg, "agent", metav1.DeleteOptions{}) }},
		{"cronjob shop/report",
			func() error {
				return ignore(batch.CronJobs("shop").Create(bg, cronJob("shop", "report", "cj-uid", "report:1"), metav1.CreateOptions{}))
			},
			func() error {
				return ignore(batch.CronJobs("shop").Update(bg, cronJob("shop", "report", "cj-uid", "report:2"), metav1.UpdateOptions{}))
			},
			func() error { return batch.CronJobs("shop").Delete(bg, "report", metav1.DeleteOptions{}) }},
		{"job shop/migrate",
			func() error {
				return ignore(batch.Jobs("shop").Create(bg, job("shop", "migrate", "job-2", nil, "migrate:1"), metav1.CreateOptions{}))
			},
			func() error {
				return ignore(batch.Jobs("shop").Update(bg, job("shop", "migrate", "job-2", nil, "migrate:2"), metav1.UpdateOptions{}))
			},
			func() error { return batch.Jobs("shop").Delete(bg, "migrate", metav1.DeleteOptions{}) }},
		{"replicaset shop/bare",
			func() error {
				return ignore(apps.ReplicaSets("shop").Create(bg, replicaSet("shop", "bare", "rs-2", nil, "nginx:1.25"), metav1.CreateOptions{}))
			},
			func() error {
				return ignore(apps.ReplicaSets("shop").Update(bg, replicaSet("shop", "bare", "rs-2", nil, "nginx:1.27"), metav1.UpdateOptions{}))
			},
			func() error { return apps.ReplicaSets("shop").Delete(bg, "bare", metav1.DeleteOptions{}) }},
	} {
		require.NoError(t, w.create())
		assert.Equal(t, []string{w.name + " added"}, bodyList(next(t, sink, &seen, 1)))
		require.NoError(t, w.update())
		assert.Equal(t, []string{w.name + " updated"}, bodyList(next(t, sink, &seen, 1)))
		require.NoError(t, w.remove())
		assert.Equal(t, []string{w.name + " deleted"}, bodyList(next(t, sink, &seen, 1)))
	}

	time.Sleep(200 * time.Millisecond)
	assert.Len(t, sinkRecords(sink), seen, "nothing more")
}

func TestPeriodicSnapshot(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.SnapshotInterval = 100 * time.Millisecond // below the configurable minimum, to keep the test short
	startReceiver(t, cfg, fake.NewClientset(everyKind()...), sink)
	first := len(sinkRecords(sink))
	require.Equal(t, 21, first)
	got := waitRecords(t, sink, 3*first)
	// Every object again, each time, all as snapshot records.
	assert.Equal(t, sortedBodies(got[:first]), sortedBodies(got[first:2*first]))
	for _, r := range got {
		assert.Equal(t, records.ChangeSnapshot, r.Change)
	}
}

func TestNamespaces(t *testing.T) {
	objs := everyKind()
	t.Run("include", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		cfg := testConfig()
		cfg.Namespaces.Include = []string{"kube-system"}
		startReceiver(t, cfg, fake.NewClientset(objs...), sink)
		assert.Equal(t, []string{
			"container kube-system/agent-q/c0 snapshot",
			"daemonset kube-system/agent snapshot",
			"node node-a snapshot",
			"pod kube-system/agent-q snapshot",
		}, sortedBodies(sinkRecords(sink)))
	})
	t.Run("exclude", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		cfg := testConfig()
		cfg.Namespaces.Exclude = []string{"shop"}
		client := fake.NewClientset(objs...)
		startReceiver(t, cfg, client, sink)
		assert.Equal(t, []string{
			"container kube-system/agent-q/c0 snapshot",
			"daemonset kube-system/agent snapshot",
			"node node-a snapshot",
			"pod kube-system/agent-q snapshot",
		}, sortedBodies(sinkRecords(sink)))
		// Changes in an excluded namespace send nothing either.
		seen := len(sinkRecords(sink))
		_, err := client.AppsV1().Deployments("shop").Create(bg, deployment("shop", "x", "x-uid", "x:1"), metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = client.AppsV1().Deployments("kube-system").Create(bg, deployment("kube-system", "y", "y-uid", "y:1"), metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"deployment kube-system/y added"}, bodyList(next(t, sink, &seen, 1)))
	})
}
