package k8sinventoryreceiver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadatatest"
)

func TestQueueIsBounded(t *testing.T) {
	q := newQueue(2)
	change := item{kind: itemChange, change: records.ChangeAdded}
	assert.True(t, q.push(change))
	assert.True(t, q.push(change))
	assert.False(t, q.push(change), "full: dropped")
	assert.True(t, q.push(item{kind: itemFirstSnapshotEnd}), "the end of the first snapshot is never dropped")
	assert.Equal(t, 3, q.len())
	items, dropped := q.take()
	assert.Len(t, items, 3)
	assert.Equal(t, 1, dropped)
	assert.Equal(t, itemFirstSnapshotEnd, items[2].kind)
	items, dropped = q.take()
	assert.Empty(t, items)
	assert.Zero(t, dropped)
	assert.True(t, q.push(change), "room again")
}

// heldConsumer passes records to sink, except that once hold is set the next call waits for release (a stuck
// exporter), after telling entered.
type heldConsumer struct {
	sink             *consumertest.LogsSink
	hold             atomic.Bool
	entered, release chan struct{}
}

func (h *heldConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if h.hold.CompareAndSwap(true, false) {
		h.entered <- struct{}{}
		<-h.release
	}
	return h.sink.ConsumeLogs(ctx, ld)
}

// TestFullQueueDropsCountsAndResends: with the consumer stuck, changes beyond queue_size are dropped and counted
// (the generated telemetry), and once it moves again every object is sent as a snapshot, so nothing is missing.
func TestFullQueueDropsCountsAndResends(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	sink := new(consumertest.LogsSink)
	held := &heldConsumer{sink: sink, entered: make(chan struct{}), release: make(chan struct{})}
	stuck, err := consumer.NewLogs(held.ConsumeLogs)
	require.NoError(t, err)
	cfg := testConfig()
	cfg.QueueSize = 3
	client := fake.NewClientset(kubeSystem(), node("node-a", "node-uid", "v1.34.2"))
	startReceiverWith(t, metadatatest.NewSettings(tel), cfg, client, stuck)
	seen := len(waitRecords(t, sink, 1))

	held.hold.Store(true)
	createPod := func(i int) {
		_, err := client.CoreV1().Pods("shop").Create(bg, pod("shop", fmt.Sprintf("p%d", i), fmt.Sprintf("uid-%d", i), "node-a", nil, "app:1"),
			metav1.CreateOptions{})
		require.NoError(t, err)
	}
	createPod(0)
	select {
	case <-held.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer was not called")
	}
	for i := 1; i <= 6; i++ {
		createPod(i)
	}
	ignore := metricdatatest.IgnoreTimestamp()
	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol_receiver_k8sinventory_queue_dropped")
		return err == nil && m.Data.(metricdata.Sum[int64]).DataPoints[0].Value == 3
	}, 60*time.Second, 10*time.Millisecond, "three of six changes dropped")
	metadatatest.AssertEqualReceiverK8sinventoryQueueDropped(t, tel, []metricdata.DataPoint[int64]{{Value: 3}}, ignore)
	metadatatest.AssertEqualReceiverK8sinventoryQueueLength(t, tel, []metricdata.DataPoint[int64]{{Value: 3}}, ignore)
	metadatatest.AssertEqualReceiverK8sinventoryQueueCapacity(t, tel, []metricdata.DataPoint[int64]{{Value: 3}}, ignore)

	close(held.release)
	// p0, then the three queued, each a pod and a container record; then the snapshot: the node and seven pods.
	got := next(t, sink, &seen, 2+3*2+1+7*2)
	var added, snapshot []string
	for _, r := range got {
		if r.Event != records.EventK8sPod {
			continue
		}
		if r.Change == records.ChangeSnapshot {
			snapshot = append(snapshot, r.Body)
		} else {
			added = append(added, r.Body)
		}
	}
	assert.Equal(t, []string{"pod shop/p0 added", "pod shop/p1 added", "pod shop/p2 added", "pod shop/p3 added"}, added)
	assert.ElementsMatch(t, []string{"pod shop/p0 snapshot", "pod shop/p1 snapshot", "pod shop/p2 snapshot", "pod shop/p3 snapshot",
		"pod shop/p4 snapshot", "pod shop/p5 snapshot", "pod shop/p6 snapshot"}, snapshot, "the dropped ones too")
	metadatatest.AssertEqualReceiverK8sinventoryQueueLength(t, tel, []metricdata.DataPoint[int64]{{Value: 0}}, ignore)
}
