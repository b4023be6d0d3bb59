package k8sinventoryreceiver

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The informers' caches do not hold API objects: the transform (trim) replaces each object, before it enters a
// cache, by an entry holding the views its records are built from (see logdata.go), plus the little metadata
// the informer and owner resolution need (name, namespace, uid, resourceVersion, the controller reference).
// managedFields, labels, annotations, the spec and the conditions never stay in memory. An entry is never
// modified once built. Entries implement metav1.Object through the embedded ObjectMeta, which is all the
// informers' stores need.

type nodeEntry struct {
	metav1.ObjectMeta
	view nodeView
}

type podEntry struct {
	metav1.ObjectMeta
	node, phase string
	containers  []containerView
}

// workloadEntry is any of the workload kinds. A ReplicaSet a Deployment controls and a Job a CronJob controls
// are cached for owner resolution but are no workloads of their own (isWorkload false).
type workloadEntry struct {
	metav1.ObjectMeta
	view       workloadView
	isWorkload bool
}

// trim is the informers' transform. Anything it does not know (a tombstone, an entry) passes through.
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &podEntry{ObjectMeta: trimMeta(&o.ObjectMeta), node: o.Spec.NodeName, phase: string(o.Status.Phase),
			containers: containerViewsOf(o)}, nil
	case *corev1.Node:
		return &nodeEntry{ObjectMeta: trimMeta(&o.ObjectMeta), view: nodeViewOf(o)}, nil
	case *appsv1.Deployment, *appsv1.ReplicaSet, *appsv1.StatefulSet, *appsv1.DaemonSet, *batchv1.Job, *batchv1.CronJob:
		return newWorkloadEntry(o.(metav1.Object)), nil
	}
	return obj, nil
}

func newWorkloadEntry(obj metav1.Object) *workloadEntry {
	v, ok := workloadViewOf(obj)
	return &workloadEntry{ObjectMeta: trimMeta(obj), view: v, isWorkload: ok}
}

// entryOf returns the cache entry of an object: the object itself when the transform already ran, else
// (transforms off, for the memory benchmark's baseline) a new one.
func entryOf(obj any) any {
	e, _ := trim(obj)
	return e
}

func trimMeta(m metav1.Object) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:            m.GetName(),
		Namespace:       m.GetNamespace(),
		UID:             m.GetUID(),
		ResourceVersion: m.GetResourceVersion(),
	}
	if ref := controllerOf(m.GetOwnerReferences()); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{{Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller}}
	}
	return out
}

// controllerOf returns the owner reference that is the object's controller, or nil.
func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}
