package k8sinventoryreceiver

import (
	"context"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// resolveOwner names the workload a pod belongs to: its controller, followed one step further from a
// ReplicaSet to the Deployment controlling it and from a Job to the CronJob controlling it. A bare pod has
// none. The answer is kept per pod uid, so a pod deleted after its ReplicaSet still names its Deployment.
func (r *inventoryReceiver) resolveOwner(ctx context.Context, p metav1.Object) workloadRef {
	if w, ok := r.owners[p.GetUID()]; ok {
		return w
	}
	w, final := r.lookupOwner(ctx, p.GetNamespace(), p.GetOwnerReferences())
	if final {
		r.owners[p.GetUID()] = w
	}
	return w
}

// lookupOwner returns the owner of a pod in namespace ns with owner references refs, and whether the answer is
// final (false when the intermediate object could not be read, so the next event tries again). A read from the
// kube-apiserver runs under ctx, the run goroutine's: Shutdown ends it.
func (r *inventoryReceiver) lookupOwner(ctx context.Context, ns string, refs []metav1.OwnerReference) (workloadRef, bool) {
	ref := controllerOf(refs)
	if ref == nil {
		return workloadRef{}, true
	}
	direct := workloadRef{ref.Kind, ref.Name, string(ref.UID)}
	var parentKind string
	var inf cache.SharedIndexInformer
	var get func(ctx context.Context) (metav1.Object, error)
	switch ref.Kind {
	case kindReplicaSet:
		parentKind, inf = kindDeployment, informerFor(r.rsByNS, ns)
		get = func(ctx context.Context) (metav1.Object, error) {
			return r.client.AppsV1().ReplicaSets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		}
	case kindJob:
		parentKind, inf = kindCronJob, informerFor(r.jobByNS, ns)
		get = func(ctx context.Context) (metav1.Object, error) {
			return r.client.BatchV1().Jobs(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		}
	default:
		return direct, true
	}
	owner, ok := r.getOwner(ctx, inf, ns+"/"+ref.Name, get)
	if !ok {
		return direct, false
	}
	if owner.GetUID() != ref.UID {
		return direct, true // a newer object of the same name: the pod's own is gone
	}
	if parent := controllerOf(owner.GetOwnerReferences()); parent != nil && parent.Kind == parentKind {
		return workloadRef{parent.Kind, parent.Name, string(parent.UID)}, true
	}
	return direct, true
}

func informerFor(m map[string]cache.SharedIndexInformer, ns string) cache.SharedIndexInformer {
	if inf, ok := m[ns]; ok {
		return inf
	}
	return m[""]
}

// getOwner reads a ReplicaSet or Job from its informer's cache, or from the kube-apiserver when its watch has
// not delivered it yet (a pod's event can arrive before its ReplicaSet's).
func (r *inventoryReceiver) getOwner(ctx context.Context, inf cache.SharedIndexInformer, key string,
	get func(context.Context) (metav1.Object, error)) (metav1.Object, bool) {
	if inf != nil {
		if obj, ok, _ := inf.GetStore().GetByKey(key); ok {
			m, err := apimeta.Accessor(obj)
			return m, err == nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	obj, err := get(ctx)
	if err != nil {
		return nil, false
	}
	return obj, true
}
