package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/runtrust/runtrust/exporters/runtimeexporter/internal/metadatatest"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/testbed"
)

// TestRefusedRecordsDroppedTheRestKept is the rejection contract against the real service: a batch with two
// bad records has exactly those two refused (the service names them in its status details) and the rest stored;
// a batch of only bad records is refused whole and dropped, not retried; the exporter counts every refused record
// and logs each kind of refusal once.
func TestRefusedRecordsDroppedTheRestKept(t *testing.T) {
	dsn := pgtest.DB(t)
	svc := startService(t, dsn)
	cfg := runtimeConfig(svc.addr)
	cfg.CollectorID = "controller"
	cfg.QueueConfig.Get().NumConsumers = 1 // batches in order: the last one stored means all were answered
	col := startCollector(t, runtimeFactory(), cfg, t.TempDir())
	defer col.stop()
	ctx := context.Background()

	mixed := testbed.ExecRecords(0, 10)
	for _, i := range []int{3, 7} {
		mixed.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(i).Attributes().Remove(records.AttrProcessExecutablePath)
	}
	allBad := plog.NewLogs()
	lrs := allBad.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 5; i++ {
		lrs.AppendEmpty().Attributes().PutInt(records.AttrProcessPID, int64(50+i)) // no event name
	}
	for _, ld := range []plog.Logs{mixed, allBad, testbed.ExecRecords(100, 10)} {
		if err := col.exp.ConsumeLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
	}
	waitForDistinct(t, dsn, 18, time.Minute)

	var pids []int64
	testbed.QueryRows(t, dsn, `SELECT pid FROM exec_events ORDER BY pid`, func(r pgx.Rows) error {
		var pid int64
		err := r.Scan(&pid)
		pids = append(pids, pid)
		return err
	})
	want := []int64{0, 1, 2, 4, 5, 6, 8, 9, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109}
	if !slices.Equal(pids, want) {
		t.Fatalf("stored pids %v; want %v: records 3 and 7 refused, the all-bad batch dropped, the rest kept once", pids, want)
	}
	metadatatest.AssertEqualExporterRuntrustRejectedLogRecords(t, col.tel, []metricdata.DataPoint[int64]{{Value: 2 + 5}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	var kinds []string
	for _, e := range col.logs.FilterMessageSnippet("the runtime service rejected log records").All() {
		kinds = append(kinds, e.ContextMap()["kind"].(string))
	}
	wantKinds := []string{`("runtrust.process.exec"): process.executable.path is missing`,
		`(""): no event name: every runtrust record says what it is in the log record's EventName`}
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("logged kinds %q; want each once: %q", kinds, wantKinds)
	}
}
