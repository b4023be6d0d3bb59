package k8sinventoryreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// TestTrim: a cache entry holds the views of its object and nothing the contract does not carry.
func TestTrim(t *testing.T) {
	full := running(pod("ns", "p", "uid", "node-a", ctrl(kindReplicaSet, "rs", "rs-uid"), "app:1", "sidecar:2"),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "app@"+sha1, sha2)
	full.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "init:1", Command: []string{"true"}}}
	full.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", ImageID: "init@" + sha3,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", ExitCode: 0}}}}
	full.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "dbg", Image: "busybox", Command: []string{"sh"}}}}
	full.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "dbg",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: "long text"}}}}

	out, err := trim(full.DeepCopy())
	require.NoError(t, err)
	p := out.(*podEntry)
	tr := true
	assert.Equal(t, metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid",
		OwnerReferences: []metav1.OwnerReference{{Kind: kindReplicaSet, Name: "rs", UID: "rs-uid", Controller: &tr}}}, p.ObjectMeta,
		"no labels, annotations, managedFields")
	assert.Equal(t, "node-a", p.node)
	assert.Equal(t, "Running", p.phase)
	assert.Equal(t, []containerView{
		{kind: "init", name: "init", image: "init:1", imageID: "init@" + sha3, state: "terminated", reason: "Completed", hasStatus: true},
		{kind: "regular", name: "c0", image: "app:1", pullPolicy: "IfNotPresent", containerID: "containerd://" + hex(1),
			imageID: "app@" + sha1, state: "running", startTime: "2026-01-02T03:04:05Z", hasStatus: true},
		{kind: "regular", name: "c1", image: "sidecar:2", pullPolicy: "IfNotPresent", containerID: "containerd://" + hex(2),
			imageID: sha2, state: "running", startTime: "2026-01-02T03:04:05Z", hasStatus: true},
		{kind: "ephemeral", name: "dbg", image: "busybox", state: "waiting", reason: "ContainerCreating", hasStatus: true},
	}, p.containers)
	// Entries pass through (the snapshot and the full-object baseline call entryOf on either).
	assert.Same(t, p, entryOf(p))

	for _, obj := range everyKind() {
		out, err := trim(obj.DeepCopyObject())
		require.NoError(t, err)
		switch e := out.(type) {
		case *workloadEntry:
			wv, ok := workloadViewOf(obj)
			assert.Equal(t, ok, e.isWorkload)
			assert.Equal(t, wv, e.view)
			assert.Nil(t, e.Labels)
			assert.Nil(t, e.ManagedFields)
		case *nodeEntry:
			assert.Equal(t, nodeViewOf(obj.(*corev1.Node)), e.view)
		case *podEntry:
			assert.Equal(t, containerViewsOf(obj.(*corev1.Pod)), e.containers)
		case *corev1.Namespace:
		default:
			t.Errorf("trim(%T) = %T", obj, out)
		}
	}
	// A tombstone passes through.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: full}
	out, err = trim(tomb)
	require.NoError(t, err)
	assert.Equal(t, tomb, out)
}
