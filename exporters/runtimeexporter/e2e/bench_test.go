package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/testbed"
)

// BenchmarkExporterToService: records/s from the runtime exporter's ConsumeLogs until they are committed in the
// real runtime service's PostgreSQL, on loopback; one op is a batch of 1,000 exec events. Run with a fixed
// count, e.g. -benchtime=200x (see docs/performance.md).
func BenchmarkExporterToService(b *testing.B) {
	for _, q := range []string{"memory", "persistent"} {
		b.Run("queue="+q, func(b *testing.B) {
			dsn := pgtest.DB(b)
			svc := startService(b, dsn, "-rate", "1000000", "-burst", "1000000")
			cfg := runtimeConfig(svc.addr)
			if q == "memory" {
				cfg.QueueConfig.Get().StorageID = nil
				cfg.Storage = &storageID // the token still needs a home
			}
			col := startCollector(b, runtimeFactory(), cfg, b.TempDir())
			defer col.stop()
			// Enrolled and warm before the clock starts.
			if err := col.exp.ConsumeLogs(context.Background(), testbed.ExecRecords(-e2eBatchSize, e2eBatchSize)); err != nil {
				b.Fatal(err)
			}
			waitForDistinct(b, dsn, e2eBatchSize, time.Minute)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := col.exp.ConsumeLogs(context.Background(), testbed.ExecRecords(int64(i*e2eBatchSize), e2eBatchSize)); err != nil {
					b.Fatal(err)
				}
			}
			want := int64((b.N + 1) * e2eBatchSize)
			for countExec(b, dsn).rows < want {
				time.Sleep(20 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*e2eBatchSize)/elapsed.Seconds(), "records/s")
		})
	}
}
