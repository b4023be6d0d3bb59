package runtimesensorreceiver

import (
	"context"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Pod is what a record learns about the pod a container belongs to.
type Pod struct {
	Name, Namespace, UID string
}

// PodLookup maps a container id to its pod. The receiver works without one (records then carry container.id
// only).
type PodLookup interface {
	Start(ctx context.Context) error
	// PodFor returns the pod of a container id (no runtime prefix), or ok false.
	PodFor(containerID string) (Pod, bool)
	Shutdown()
}

// informerPods watches the pods of one node (spec.nodeName) and indexes them by container id.
type informerPods struct {
	client kubernetes.Interface
	node   string
	// closeConns closes the client's connections at Shutdown (nil for a client the watch does not own).
	closeConns func()

	mu     sync.RWMutex
	byID   map[string]Pod
	cancel context.CancelFunc
}

func newInformerPods(client kubernetes.Interface, node string) *informerPods {
	return &informerPods{client: client, node: node, byID: map[string]Pod{}}
}

// Start begins the watch; it runs until Shutdown (not bound to the start context, which the collector cancels).
func (p *informerPods) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	f := informers.NewSharedInformerFactoryWithOptions(p.client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", p.node).String()
		}))
	inf := f.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.set(o, false) },
		UpdateFunc: func(_, o any) { p.set(o, false) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			p.set(o, true)
		},
	})
	if err != nil {
		return err
	}
	f.Start(ctx.Done())
	return nil
}

func (p *informerPods) set(o any, deleted bool) {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	info := Pod{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID)}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			id := containerIDFromStatus(cs.ContainerID)
			if id == "" {
				continue
			}
			if deleted {
				delete(p.byID, id)
			} else {
				p.byID[id] = info
			}
		}
	}
}

// containerIDFromStatus strips the runtime prefix of status.containerStatuses[].containerID
// ("containerd://<id>").
func containerIDFromStatus(s string) string {
	if _, id, ok := strings.Cut(s, "://"); ok {
		return id
	}
	return s
}

func (p *informerPods) PodFor(id string) (Pod, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pod, ok := p.byID[id]
	return pod, ok
}

func (p *informerPods) Shutdown() {
	if p.cancel != nil {
		p.cancel()
	}
	if p.closeConns != nil {
		p.closeConns()
	}
}
