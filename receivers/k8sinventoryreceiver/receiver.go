package k8sinventoryreceiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

// maxBatch bounds the records of one plog.Logs handed to the next consumer.
const maxBatch = 1000

type inventoryReceiver struct {
	cfg     *Config
	set     receiver.Settings
	next    consumer.Logs
	obsrecv *receiverhelper.ObsReport

	client     kubernetes.Interface
	closeConns func()
	factories  []informers.SharedInformerFactory
	informers  []typedInformer
	regs       []cache.ResourceEventHandlerRegistration
	rsByNS     map[string]cache.SharedIndexInformer // "" when every namespace is watched
	jobByNS    map[string]cache.SharedIndexInformer
	excluded   map[string]bool

	queue queue

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
	kind string
	inf  cache.SharedIndexInformer
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*inventoryReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	excluded := make(map[string]bool, len(cfg.Namespaces.Exclude))
	for _, ns := range cfg.Namespaces.Exclude {
		excluded[ns] = true
	}
	return &inventoryReceiver{
		cfg: cfg, set: set, next: next, obsrecv: obsrecv, excluded: excluded,
		owners: map[types.UID]workloadRef{}, warned: map[string]bool{},
		firstSnapshot: make(chan struct{}),
	}, nil
}

// Start builds the client and the informers and returns; listing, watching and sending run in the background,
// so an unreachable kube-apiserver delays the records but does not stop the collector.
func (r *inventoryReceiver) Start(_ context.Context, _ component.Host) error {
	client, closeConns, err := r.cfg.client()
	if err != nil {
		return err
	}
	r.client, r.closeConns = client, closeConns
	r.rsByNS = map[string]cache.SharedIndexInformer{}
	r.jobByNS = map[string]cache.SharedIndexInformer{}

	var opts []informers.SharedInformerOption
	if !r.cfg.keepFullObjects {
		opts = append(opts, informers.WithTransform(trim))
	}
	// Nodes are cluster-scoped: one informer, from a factory of its own when namespaces are listed.
	clusterFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, opts...)
	r.factories = append(r.factories, clusterFactory)
	r.add(kindNode, clusterFactory.Core().V1().Nodes().Informer())

	namespaced := func(f informers.SharedInformerFactory, ns string) {
		r.add(kindPod, f.Core().V1().Pods().Informer())
		r.add(kindDeployment, f.Apps().V1().Deployments().Informer())
		rs := f.Apps().V1().ReplicaSets().Informer()
		r.add(kindReplicaSet, rs)
		r.rsByNS[ns] = rs
		r.add(kindStatefulSet, f.Apps().V1().StatefulSets().Informer())
		r.add(kindDaemonSet, f.Apps().V1().DaemonSets().Informer())
		job := f.Batch().V1().Jobs().Informer()
		r.add(kindJob, job)
		r.jobByNS[ns] = job
		r.add(kindCronJob, f.Batch().V1().CronJobs().Informer())
	}
	if len(r.cfg.Namespaces.Include) > 0 {
		for _, ns := range r.cfg.Namespaces.Include {
			f := informers.NewSharedInformerFactoryWithOptions(client, 0, append(opts, informers.WithNamespace(ns))...)
			r.factories = append(r.factories, f)
			namespaced(f, ns)
		}
	} else {
		if len(r.cfg.Namespaces.Exclude) > 0 {
			sel := make([]fields.Selector, len(r.cfg.Namespaces.Exclude))
			for i, ns := range r.cfg.Namespaces.Exclude {
				sel[i] = fields.OneTermNotEqualSelector("metadata.namespace", ns)
			}
			selector := fields.AndSelectors(sel...).String()
			opts = append(opts, informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = selector }))
		}
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, opts...)
		r.factories = append(r.factories, f)
		namespaced(f, "")
	}
	for _, ti := range r.informers {
		reg, err := ti.inf.AddEventHandler(r.handler(ti.kind))
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

// Shutdown stops the watches and waits for the sending goroutine.
func (r *inventoryReceiver) Shutdown(context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.queue.wake()
	r.wg.Wait()
	for _, f := range r.factories {
		f.Shutdown()
	}
	r.closeConns()
	return nil
}

func (r *inventoryReceiver) add(kind string, inf cache.SharedIndexInformer) {
	r.informers = append(r.informers, typedInformer{kind, inf})
}

const kindNode, kindPod = "Node", "Pod"

// handler queues every notification; the run goroutine turns them into records in arrival order.
func (r *inventoryReceiver) handler(kind string) cache.ResourceEventHandler {
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
			r.queue.push(item{kind: kind, change: change, obj: obj})
		},
		UpdateFunc: func(old, obj any) {
			if r.skip(obj) {
				return
			}
			r.queue.push(item{kind: kind, change: records.ChangeUpdated, obj: obj, old: old})
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if obj == nil || r.skip(obj) {
				return
			}
			r.queue.push(item{kind: kind, change: records.ChangeDeleted, obj: obj})
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

// run waits for the caches and the cluster uid, then sends records: queued changes as they come, every object
// again every snapshot_interval.
func (r *inventoryReceiver) run(ctx context.Context) {
	logger := r.set.Logger
	r.clusterUID = r.cfg.ClusterUID
	for r.clusterUID == "" {
		uid, err := r.lookupClusterUID(ctx)
		if err == nil {
			r.clusterUID = uid
			break
		}
		logger.Warn("cannot read the uid of namespace kube-system for k8s.cluster.uid; retrying "+
			"(set cluster_uid to skip this lookup)", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
	synced := make([]cache.InformerSynced, 0, len(r.informers))
	for _, ti := range r.informers {
		synced = append(synced, ti.inf.HasSynced)
	}
	start := time.Now()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	// Every object present at start has been queued once every handler has seen its initial list: the marker
	// queued after that ends the first snapshot.
	go func() {
		regSynced := make([]cache.InformerSynced, len(r.regs))
		for i, reg := range r.regs {
			regSynced[i] = reg.HasSynced
		}
		if cache.WaitForCacheSync(ctx.Done(), regSynced...) {
			r.queue.push(item{kind: markerFirstSnapshot})
		}
	}()
	logger.Info("k8s inventory caches synced", zap.Duration("after", time.Since(start)),
		zap.String("k8s.cluster.uid", r.clusterUID))

	var tick <-chan time.Time
	if r.cfg.SnapshotInterval > 0 {
		t := time.NewTicker(r.cfg.SnapshotInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			r.snapshot(ctx)
		case <-r.queue.signal():
			r.drain(ctx)
		}
	}
}

func (r *inventoryReceiver) lookupClusterUID(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ns, err := r.client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return string(ns.UID), nil
}

const markerFirstSnapshot = "first-snapshot"

// drain sends every queued change, in batches of at most maxBatch records.
func (r *inventoryReceiver) drain(ctx context.Context) {
	for {
		items := r.queue.take()
		if len(items) == 0 {
			return
		}
		s := r.newSink()
		for _, it := range items {
			if it.kind == markerFirstSnapshot {
				r.flush(ctx, s)
				s = r.newSink()
				close(r.firstSnapshot)
				r.set.Logger.Info("k8s inventory: first snapshot sent")
				continue
			}
			r.record(s, it)
			if s.records.Len() >= maxBatch {
				r.flush(ctx, s)
				s = r.newSink()
			}
		}
		r.flush(ctx, s)
	}
}

// snapshot sends every cached object again as a snapshot record.
func (r *inventoryReceiver) snapshot(ctx context.Context) {
	s := r.newSink()
	n := 0
	for _, ti := range r.informers {
		for _, obj := range ti.inf.GetStore().List() {
			if r.skip(obj) {
				continue
			}
			r.record(s, item{kind: ti.kind, change: records.ChangeSnapshot, obj: obj})
			n++
			if s.records.Len() >= maxBatch {
				r.flush(ctx, s)
				s = r.newSink()
			}
		}
	}
	r.flush(ctx, s)
	r.set.Logger.Debug("k8s inventory snapshot sent", zap.Int("objects", n))
}

func (r *inventoryReceiver) newSink() *recordSink {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr(records.AttrK8sClusterName, r.cfg.ClusterName)
	ra.PutStr(records.AttrK8sClusterUID, r.clusterUID)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(r.set.BuildInfo.Version)
	return &recordSink{logs: logs, records: sl.LogRecords(), now: pcommon.NewTimestampFromTime(time.Now()), logger: r}
}

func (r *inventoryReceiver) flush(ctx context.Context, s *recordSink) {
	n := s.records.Len()
	if n == 0 {
		return
	}
	obsCtx := r.obsrecv.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(obsCtx, s.logs)
	r.obsrecv.EndLogsOp(obsCtx, metadata.Type.String(), n, err)
	if err != nil && !errors.Is(err, context.Canceled) {
		r.set.Logger.Error("k8s inventory: the next consumer refused records", zap.Int("records", n), zap.Error(err))
	}
}

// record appends the records one queued change makes: none when nothing the contract carries changed.
func (r *inventoryReceiver) record(s *recordSink, it item) {
	var old any
	if it.old != nil {
		old = entryOf(it.old)
	}
	switch e := entryOf(it.obj).(type) {
	case *nodeEntry:
		if o, ok := old.(*nodeEntry); ok && o.view == e.view {
			return
		}
		s.node(e.view, it.change)
	case *podEntry:
		o, _ := old.(*podEntry)
		r.recordPod(s, e, o, it.change)
	case *workloadEntry:
		if !e.isWorkload {
			return
		}
		if o, ok := old.(*workloadEntry); ok && o.isWorkload && o.view == e.view {
			return
		}
		s.workload(e.view, it.change)
	}
}

// recordPod appends a pod's records; old is nil unless the change is an update.
func (r *inventoryReceiver) recordPod(s *recordSink, p, old *podEntry, change string) {
	owner := r.resolveOwner(p)
	pv := podViewOf(p, owner)
	if change == records.ChangeDeleted {
		delete(r.owners, p.UID)
	}
	if old == nil {
		s.pod(pv, change)
		for _, c := range p.containers {
			s.container(pv, c, change)
		}
		return
	}
	oldPV := podViewOf(old, owner)
	if oldPV != pv {
		s.pod(pv, records.ChangeUpdated)
	}
	// Container records carry the pod's node, not its phase: a scheduled pod updates its containers too.
	nodeChanged := oldPV.node != pv.node
	for _, c := range p.containers {
		change := records.ChangeAdded // an ephemeral container added by kubectl debug
		for _, oc := range old.containers {
			if oc.kind == c.kind && oc.name == c.name {
				change = records.ChangeUpdated
				if oc == c && !nodeChanged {
					change = ""
				}
				break
			}
		}
		if change != "" {
			s.container(pv, c, change)
		}
	}
}

func (r *inventoryReceiver) invalidImageID(container, imageID string, err error) {
	if !r.warned[imageID] {
		r.warnOnce(imageID)
		r.set.Logger.Warn("k8s inventory: unparsable imageID; the record carries it as written",
			zap.String("container", container), zap.String("imageID", imageID), zap.Error(err))
	}
}

func (r *inventoryReceiver) invalidContainerID(container, containerID string, err error) {
	if !r.warned[containerID] {
		r.warnOnce(containerID)
		r.set.Logger.Warn("k8s inventory: unparsable containerID; the record has no container.id",
			zap.String("container", container), zap.String("containerID", containerID), zap.Error(err))
	}
}

// warnOnce remembers a value already logged; the memory stays bounded however many distinct values come.
func (r *inventoryReceiver) warnOnce(v string) {
	if len(r.warned) >= 1000 {
		clear(r.warned)
	}
	r.warned[v] = true
}

// item is one queued notification.
type item struct {
	kind, change string
	obj, old     any
}

// queue is an unbounded FIFO between the informers' handlers and the run goroutine: a handler never blocks on
// the next consumer, and changes keep their arrival order.
type queue struct {
	mu    sync.Mutex
	items []item
	ch    chan struct{}
	once  sync.Once
}

func (q *queue) init() { q.once.Do(func() { q.ch = make(chan struct{}, 1) }) }

func (q *queue) push(it item) {
	q.init()
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	q.wake()
}

func (q *queue) wake() {
	q.init()
	select {
	case q.ch <- struct{}{}:
	default:
	}
}

func (q *queue) signal() <-chan struct{} {
	q.init()
	return q.ch
}

func (q *queue) take() []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}
