package k8sinventoryreceiver

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

// maxBatch bounds the records of one plog.Logs handed to the next consumer.
const maxBatch = 1000

// run waits for the cluster uid and the caches, then sends records: queued changes as they come, every object
// again every snapshot_interval. Everything it does, owner lookups included, ends when ctx is cancelled.
func (r *inventoryReceiver) run(ctx context.Context) {
	if !r.awaitClusterUID(ctx) {
		return
	}
	synced := make([]cache.InformerSynced, 0, len(r.informers))
	for _, ti := range r.informers {
		synced = append(synced, ti.inf.HasSynced)
	}
	start := time.Now()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	// Every object present at start has been queued once every handler has seen its initial list: the item
	// queued after that ends the first snapshot.
	regSynced := make([]cache.InformerSynced, len(r.regs))
	for i, reg := range r.regs {
		regSynced[i] = reg.HasSynced
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if cache.WaitForCacheSync(ctx.Done(), regSynced...) {
			r.queue.push(item{kind: itemFirstSnapshotEnd})
		}
	}()
	r.set.Logger.Info("k8s inventory caches synced", zap.Duration("after", time.Since(start)),
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

// awaitClusterUID sets the cluster uid, from the configuration or from the kube-system namespace (retried until
// it can be read); false when ctx ended first.
func (r *inventoryReceiver) awaitClusterUID(ctx context.Context) bool {
	r.clusterUID = r.cfg.ClusterUID
	for r.clusterUID == "" {
		uid, err := r.lookupClusterUID(ctx)
		if err == nil {
			r.clusterUID = uid
			break
		}
		r.set.Logger.Warn("cannot read the uid of namespace kube-system for k8s.cluster.uid; retrying "+
			"(set cluster_uid to skip this lookup)", zap.Error(err))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Second):
		}
	}
	return true
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

// drain sends every queued change; when changes were dropped, every object again after them.
func (r *inventoryReceiver) drain(ctx context.Context) {
	for {
		items, dropped := r.queue.take()
		if len(items) == 0 && dropped == 0 {
			return
		}
		b := r.newBatch(ctx)
		firstSnapshotEnd := false
		for _, it := range items {
			switch it.kind {
			case itemChange:
				b.add(it)
			case itemFirstSnapshotEnd:
				firstSnapshotEnd = true
			}
		}
		b.flush()
		if dropped > 0 {
			r.set.Logger.Warn("k8s inventory: the queue was full, changes were dropped; sending every object again "+
				"(raise queue_size if this repeats)", zap.Int("dropped", dropped), zap.Int("queue_size", r.cfg.QueueSize))
			r.snapshot(ctx)
		}
		if firstSnapshotEnd {
			close(r.firstSnapshot)
			r.set.Logger.Info("k8s inventory: first snapshot sent")
		}
	}
}

// snapshot sends every cached object again as a snapshot record.
func (r *inventoryReceiver) snapshot(ctx context.Context) {
	b := r.newBatch(ctx)
	n := 0
	for _, ti := range r.informers {
		for _, obj := range ti.inf.GetStore().List() {
			if r.skip(obj) {
				continue
			}
			b.add(item{kind: itemChange, change: records.ChangeSnapshot, obj: obj})
			n++
		}
	}
	b.flush()
	r.set.Logger.Debug("k8s inventory snapshot sent", zap.Int("objects", n))
}

// batch collects the records of changes and hands them to the next consumer, at most maxBatch at a time.
type batch struct {
	r    *inventoryReceiver
	ctx  context.Context
	sink *recordSink
}

func (r *inventoryReceiver) newBatch(ctx context.Context) *batch {
	return &batch{r: r, ctx: ctx, sink: r.newSink()}
}

func (b *batch) add(it item) {
	b.r.record(b.ctx, b.sink, it)
	if b.sink.records.Len() >= maxBatch {
		b.flush()
	}
}

// flush sends what has been collected, if anything, and starts again.
func (b *batch) flush() {
	if b.sink.records.Len() == 0 {
		return
	}
	b.r.send(b.ctx, b.sink)
	b.sink = b.r.newSink()
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

func (r *inventoryReceiver) send(ctx context.Context, s *recordSink) {
	n := s.records.Len()
	obsCtx := r.obsrecv.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(obsCtx, s.logs)
	r.obsrecv.EndLogsOp(obsCtx, metadata.Type.String(), n, err)
	if err != nil && !errors.Is(err, context.Canceled) {
		r.set.Logger.Error("k8s inventory: the next consumer refused records", zap.Int("records", n), zap.Error(err))
	}
}

// record appends the records one queued change makes: none when nothing the contract carries changed.
func (r *inventoryReceiver) record(ctx context.Context, s *recordSink, it item) {
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
		r.recordPod(ctx, s, e, o, it.change)
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
func (r *inventoryReceiver) recordPod(ctx context.Context, s *recordSink, p, old *podEntry, change string) {
	owner := r.resolveOwner(ctx, p)
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
		if change, ok := containerChange(old.containers, c, nodeChanged); ok {
			s.container(pv, c, change)
		}
	}
}

// containerChange says which record an updated pod's container c gets, if any: added for a container the old
// pod did not have (an ephemeral container added by kubectl debug), updated when its view or the node changed.
func containerChange(old []containerView, c containerView, nodeChanged bool) (string, bool) {
	for _, oc := range old {
		if oc.kind == c.kind && oc.name == c.name {
			return records.ChangeUpdated, oc != c || nodeChanged
		}
	}
	return records.ChangeAdded, true
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
