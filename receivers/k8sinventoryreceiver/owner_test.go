package k8sinventoryreceiver

import (
	"context"

	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLookupOwner resolves through the kube-apiserver (the fake clientset), as when a pod's event arrives
// before its owner's; TestStartSendsASnapshotOfEveryKind covers the same through the informers' caches.
func TestLookupOwner(t *testing.T) {
	client := fake.NewClientset(
		replicaSet("ns", "dep-rs", "rs-1", ctrl(kindDeployment, "dep", "dep-1")),
		replicaSet("ns", "bare-rs", "rs-2", nil),
		replicaSet("ns", "recreated-rs", "rs-new", ctrl(kindDeployment, "dep", "dep-1")),
		job("ns", "cj-job", "job-1", ctrl(kindCronJob, "cj", "cj-1")),
		job("ns", "bare-job", "job-2", nil),
	)
	r := &inventoryReceiver{client: client, owners: map[types.UID]workloadRef{}}
	tests := []struct {
		name   string
		owners []metav1.OwnerReference
		want   workloadRef
		final  bool
	}{
		{"bare pod", nil, workloadRef{}, true},
		{"non-controller owner only", []metav1.OwnerReference{{Kind: kindReplicaSet, Name: "dep-rs", UID: "rs-1"}}, workloadRef{}, true},
		{"ReplicaSet → Deployment", ctrl(kindReplicaSet, "dep-rs", "rs-1"), workloadRef{kindDeployment, "dep", "dep-1"}, true},
		{"bare ReplicaSet", ctrl(kindReplicaSet, "bare-rs", "rs-2"), workloadRef{kindReplicaSet, "bare-rs", "rs-2"}, true},
		{"ReplicaSet recreated under the same name", ctrl(kindReplicaSet, "recreated-rs", "rs-old"), workloadRef{kindReplicaSet, "recreated-rs", "rs-old"}, true},
		{"ReplicaSet not found: tried again later", ctrl(kindReplicaSet, "gone", "rs-9"), workloadRef{kindReplicaSet, "gone", "rs-9"}, false},
		{"Job → CronJob", ctrl(kindJob, "cj-job", "job-1"), workloadRef{kindCronJob, "cj", "cj-1"}, true},
		{"bare Job", ctrl(kindJob, "bare-job", "job-2"), workloadRef{kindJob, "bare-job", "job-2"}, true},
		{"Job not found", ctrl(kindJob, "gone", "job-9"), workloadRef{kindJob, "gone", "job-9"}, false},
		{"StatefulSet", ctrl(kindStatefulSet, "db", "sts-1"), workloadRef{kindStatefulSet, "db", "sts-1"}, true},
		{"DaemonSet", ctrl(kindDaemonSet, "agent", "ds-1"), workloadRef{kindDaemonSet, "agent", "ds-1"}, true},
		{"static pod's mirror: a Node", []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1", UID: "n-1", Controller: new(true)}},
			workloadRef{"Node", "n1", "n-1"}, true},
		{"custom controller", []metav1.OwnerReference{{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "r", UID: "ro-1", Controller: new(true)}},
			workloadRef{"Rollout", "r", "ro-1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: types.UID("pod-" + tt.name), OwnerReferences: tt.owners}}
			got, final := r.lookupOwner(context.Background(), p.Namespace, p.OwnerReferences)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.final, final)
			// resolveOwner keeps final answers only.
			r.resolveOwner(context.Background(), p)
			_, kept := r.owners[p.UID]
			assert.Equal(t, tt.final, kept)
		})
	}
}
