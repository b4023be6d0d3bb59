// Package logstest holds what the processors' tests and benchmarks do with log batches: start a processor into a
// sink, build inventory-style container records, read every record's attributes back, and time a processor over fresh copies of one batch.
package logstest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"

	"github.com/runtrust/runtrust/internal/records"
)

// Attributes returns the attributes of every record in lds, in order.
func Attributes(lds ...plog.Logs) []map[string]any {
	var out []map[string]any
	for _, ld := range lds {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, lr.Attributes().AsRaw())
				}
			}
		}
	}
	return out
}

// AppendInventoryContainer appends the i-th of a batch of container records like the inventory receiver's
// snapshot (namespace ns-<i%20>, pod pod-<i>, container app), naming image, and returns its attributes for the
// caller to add to.
func AppendInventoryContainer(lrs plog.LogRecordSlice, i int, image string) pcommon.Map {
	lr := lrs.AppendEmpty()
	lr.SetEventName(records.EventK8sContainer)
	a := lr.Attributes()
	a.PutStr(records.AttrK8sChange, records.ChangeSnapshot)
	a.PutStr(records.AttrK8sNamespaceName, fmt.Sprintf("ns-%d", i%20))
	a.PutStr(records.AttrK8sPodName, fmt.Sprintf("pod-%d", i))
	a.PutStr(records.AttrK8sContainerName, "app")
	a.PutStr(records.AttrContainerImageName, image)
	return a
}

// BenchBatches times process over b.N fresh copies of src (as a pipeline hands a processor records it may change),
// the copying untimed, and reports records/s and ns/record.
func BenchBatches(b *testing.B, src plog.Logs, process func(context.Context, plog.Logs) (plog.Logs, error)) {
	b.Helper()
	records := src.LogRecordCount()
	work := plog.NewLogs()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		src.CopyTo(work)
		b.StartTimer()
		if _, err := process(ctx, work); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
}

// StartProcessor validates cfg, builds factory's logs processor into a sink, starts it, and shuts it down when the
// test ends.
func StartProcessor(t *testing.T, factory processor.Factory, set processor.Settings, cfg component.Config) (processor.Logs, *consumertest.LogsSink) {
	t.Helper()
	require.NoError(t, confmap.Validate(cfg))
	sink := new(consumertest.LogsSink)
	p, err := factory.CreateLogs(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p, sink
}
