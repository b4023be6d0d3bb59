package k8sinventoryreceiver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/metric"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

type inventoryReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Logs
	obsrecv   *receiverhelper.ObsReport
	telemetry *metadata.TelemetryBuilder

	client     kubernetes.Interface
	closeConns func()
	factories  []informers.SharedInformerFactory
	informers  []typedInformer
	regs       []cache.ResourceEventHandlerRegistration
	rsByNS     map[string]cache.SharedIndexInformer // "" when every namespace is watched
	jobByNS    map[string]cache.SharedIndexInformer
	excluded   map[string]bool

	queue *queue

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Owned by the run goroutine.
	clusterUID string
	owners     map[types.UID]workloadRef
	warned     map[string]bool

	// firstSnapshot is closed once every object present at start has been sent (tests, benchmark).
	firstSnapshot chan struct{}
}

type typedInformer struct {
	kind string // the Kubernetes kind, for messages
	inf  cache.SharedIndexInformer
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*inventoryReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	q := newQueue(cfg.QueueSize)
	tb, err := newTelemetry(set, q, cfg.QueueSize)
	if err != nil {
		return nil, err
	}
	excluded := make(map[string]bool, len(cfg.Namespaces.Exclude))
	for _, ns := range cfg.Namespaces.Exclude {
		excluded[ns] = true
	}
	return &inventoryReceiver{
		cfg: cfg, set: set, next: next, obsrecv: obsrecv, telemetry: tb, queue: q, excluded: excluded,
		owners: map[types.UID]workloadRef{}, warned: map[string]bool{},
		firstSnapshot: make(chan struct{}),
	}, nil
}

// newTelemetry builds the receiver's own metrics (metadata.yaml): the queue's length and capacity, observed
// when the metrics are read, and the changes dropped, counted by the handlers.
func newTelemetry(set receiver.Settings, q *queue, capacity int) (*metadata.TelemetryBuilder, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err == nil {
		err = errors.Join(
			tb.RegisterReceiverK8sinventoryQueueLengthCallback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(int64(q.len()))
				return nil
			}),
			tb.RegisterReceiverK8sinventoryQueueCapacityCallback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(int64(capacity))
				return nil
			}))
	}
	if err != nil {
		tb.Shutdown()
		return nil, fmt.Errorf("k8sinventory telemetry: %w", err)
	}
	return tb, nil
}

// Start builds the client and the informers and returns; listing, watching and sending run in the background,
// so an unreachable kube-apiserver delays the records but does not stop the collector. When Start fails it
// leaves nothing behind: no informer, no goroutine, no open connection.
func (r *inventoryReceiver) Start(_ context.Context, _ component.Host) (err error) {
	client, closeConns, err := r.cfg.client()
	if err != nil {
		return err
	}
	r.client, r.closeConns = client, closeConns
	defer func() {
		if err != nil {
			r.releaseClient()
		}
	}()
	r.buildInformers()
	for _, ti := range r.informers {
		reg, err := ti.inf.AddEventHandler(r.handler())
		if err != nil {
			return fmt.Errorf("registering the %s handler: %w", ti.kind, err)
		}
		r.regs = append(r.regs, reg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, f := range r.factories {
		f.Start(ctx.Done())
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(ctx)
	}()
	return nil
}

// buildInformers creates one informer per kind (and per namespace with namespaces.include); none runs yet.
func (r *inventoryReceiver) buildInformers() {
	r.rsByNS = map[string]cache.SharedIndexInformer{}
	r.jobByNS = map[string]cache.SharedIndexInformer{}
	var opts []informers.SharedInformerOption
	var keep cache.TransformFunc // what a listed object becomes; nil keeps the API object
	if !r.cfg.keepFullObjects {
		opts = append(opts, informers.WithTransform(trim))
		keep = trim
	}
	// Nodes are cluster-scoped: one informer, from a factory of its own when namespaces are listed.
	clusterFactory := informers.NewSharedInformerFactoryWithOptions(r.client, 0, opts...)
	r.factories = append(r.factories, clusterFactory)
	r.add(kindNode, pagedInformer(clusterFactory, r.client, &corev1.Node{}, r.client.CoreV1().Nodes(), nil, keep))

	if len(r.cfg.Namespaces.Include) > 0 {
		for _, ns := range r.cfg.Namespaces.Include {
			r.addNamespaced(ns, nil, keep, opts...)
		}
		return
	}
	var tweak func(*metav1.ListOptions)
	if len(r.cfg.Namespaces.Exclude) > 0 {
		sel := make([]fields.Selector, len(r.cfg.Namespaces.Exclude))
		for i, ns := range r.cfg.Namespaces.Exclude {
			sel[i] = fields.OneTermNotEqualSelector("metadata.namespace", ns)
		}
		selector := fields.AndSelectors(sel...).String()
		tweak = func(o *metav1.ListOptions) { o.FieldSelector = selector }
	}
	r.addNamespaced("", tweak, keep, opts...)
}

// addNamespaced adds the informers of the namespaced kinds, from one factory for namespace ns ("" for all);
// tweak, when set, narrows what they list and watch; keep is what a listed object becomes.
func (r *inventoryReceiver) addNamespaced(ns string, tweak func(*metav1.ListOptions), keep cache.TransformFunc,
	opts ...informers.SharedInformerOption) {
	f := informers.NewSharedInformerFactoryWithOptions(r.client, 0, opts...)
	r.factories = append(r.factories, f)
	c, apps, batch := r.client.CoreV1(), r.client.AppsV1(), r.client.BatchV1()
	r.add(kindPod, pagedInformer(f, r.client, &corev1.Pod{}, c.Pods(ns), tweak, keep))
	r.add(kindDeployment, pagedInformer(f, r.client, &appsv1.Deployment{}, apps.Deployments(ns), tweak, keep))
	rs := pagedInformer(f, r.client, &appsv1.ReplicaSet{}, apps.ReplicaSets(ns), tweak, keep)
	r.add(kindReplicaSet, rs)
	r.rsByNS[ns] = rs
	r.add(kindStatefulSet, pagedInformer(f, r.client, &appsv1.StatefulSet{}, apps.StatefulSets(ns), tweak, keep))
	r.add(kindDaemonSet, pagedInformer(f, r.client, &appsv1.DaemonSet{}, apps.DaemonSets(ns), tweak, keep))
	job := pagedInformer(f, r.client, &batchv1.Job{}, batch.Jobs(ns), tweak, keep)
	r.add(kindJob, job)
	r.jobByNS[ns] = job
	r.add(kindCronJob, pagedInformer(f, r.client, &batchv1.CronJob{}, batch.CronJobs(ns), tweak, keep))
}

func (r *inventoryReceiver) add(kind string, inf cache.SharedIndexInformer) {
	r.informers = append(r.informers, typedInformer{kind, inf})
}

// Shutdown stops the watches and waits for the sending goroutine; it also ends an owner lookup in flight,
// since the lookups run under the run goroutine's context.
func (r *inventoryReceiver) Shutdown(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		r.queue.wake()
		r.wg.Wait()
		r.cancel = nil
	}
	r.releaseClient()
	r.telemetry.Shutdown()
	return nil
}

// releaseClient stops the informers (waiting for their goroutines) and closes the client's connections.
func (r *inventoryReceiver) releaseClient() {
	for _, f := range r.factories {
		f.Shutdown()
	}
	r.factories, r.informers, r.regs = nil, nil, nil
	if r.closeConns != nil {
		r.closeConns()
		r.closeConns = nil
	}
}

// handler queues every notification; the run goroutine turns them into records in arrival order. A handler
// never waits for the next consumer: when the queue is full the change is dropped and counted.
func (r *inventoryReceiver) handler() cache.ResourceEventHandler {
	push := func(change string, obj, old any) {
		if !r.queue.push(item{kind: itemChange, change: change, obj: obj, old: old}) {
			r.telemetry.ReceiverK8sinventoryQueueDropped.Add(context.Background(), 1)
		}
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if r.skip(obj) {
				return
			}
			change := records.ChangeAdded
			if initial {
				// The receiver cannot tell what appeared while it was not watching: at start it sends what is.
				change = records.ChangeSnapshot
			}
			push(change, obj, nil)
		},
		UpdateFunc: func(old, obj any) {
			if r.skip(obj) {
				return
			}
			push(records.ChangeUpdated, obj, old)
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if obj == nil || r.skip(obj) {
				return
			}
			push(records.ChangeDeleted, obj, nil)
		},
	}
}

// skip filters excluded namespaces again (a fake clientset ignores field selectors).
func (r *inventoryReceiver) skip(obj any) bool {
	if len(r.excluded) == 0 {
		return false
	}
	m, ok := obj.(metav1.Object)
	return ok && r.excluded[m.GetNamespace()]
}

const kindNode, kindPod = "Node", "Pod"
