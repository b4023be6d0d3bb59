package e2e

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/runtrust/runtrust/exporters/runtimeexporter"
	"github.com/runtrust/runtrust/internal/pgtest"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/testbed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testJoinKey = "runtime-exporter-test-join-key"

// service is the runtime service binary on a fixed loopback port and database, so it can be killed and
// started again in place.
type service struct {
	t    testing.TB
	dsn  string
	addr string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	args []string
}

func startService(t testing.TB, dsn string, extra ...string) *service {
	s := &service{t: t, dsn: dsn, addr: testbed.FreeAddr(t), args: extra}
	s.start()
	t.Cleanup(func() {
		if s.cmd != nil {
			s.kill()
		}
	})
	return s
}

func (s *service) start() {
	s.t.Helper()
	s.out = &bytes.Buffer{}
	args := append([]string{"-database-url", s.dsn, "-grpc-listen", s.addr, "-http-listen", "127.0.0.1:0",
		"-join-key", testJoinKey, "-log-level", "warn"}, s.args...)
	s.cmd = exec.Command(testbed.ServiceBinary(s.t), args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("the runtime service did not listen on %s within a minute:\n%s", s.addr, s.out)
}

// kill ends the service the hard way: no drain, in-flight batches are cut off mid-transaction.
func (s *service) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// collector is a logs pipeline's exporter end, built from the factories as the collector builds it, with a
// file_storage extension on a directory that outlives it.
type collector struct {
	t       testing.TB
	ext     component.Component
	exp     exporter.Logs
	logs    *observer.ObservedLogs
	tel     *componenttest.Telemetry // the exporter's own metrics
	factory exporter.Factory
	cfg     component.Config
}

type host struct {
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

var storageID = component.MustNewID("file_storage")

func runtimeFactory() exporter.Factory { return runtimeexporter.NewFactory() }

func startCollector(t testing.TB, f exporter.Factory, cfg component.Config, dir string) *collector {
	t.Helper()
	ctx := context.Background()
	sf := filestorage.NewFactory()
	scfg := sf.CreateDefaultConfig().(*filestorage.Config)
	scfg.Directory = dir
	ext, err := sf.Create(ctx, extensiontest.NewNopSettings(sf.Type()), scfg)
	if err != nil {
		t.Fatal(err)
	}
	h := host{ext: map[component.ID]component.Component{storageID: ext}}
	if err := ext.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	tel := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(f.Type())
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	set.ID = component.NewID(f.Type()) // the same exporter across restarts: its queue and token are found again
	exp, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	return &collector{t: t, ext: ext, exp: exp, logs: logs, tel: tel, factory: f, cfg: cfg}
}

func (c *collector) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.exp.Shutdown(ctx); err != nil {
		c.t.Logf("exporter shutdown: %v", err)
	}
	if err := c.ext.Shutdown(ctx); err != nil {
		c.t.Fatal(err)
	}
	if err := c.tel.Shutdown(ctx); err != nil {
		c.t.Fatal(err)
	}
}

func persistentQueueConfig(q *exporterhelper.QueueBatchConfig, consumers int) {
	id := storageID
	q.StorageID = &id
	q.Sizer = exporterhelper.RequestSizerTypeItems
	q.QueueSize = 2_000_000
	q.NumConsumers = consumers
	q.BlockOnOverflow = true
}

func runtimeConfig(endpoint string) *runtimeexporter.Config {
	cfg := runtimeexporter.NewFactory().CreateDefaultConfig().(*runtimeexporter.Config)
	cfg.ClientConfig.Endpoint = endpoint
	cfg.ClientConfig.TLS.Insecure = true
	cfg.JoinKey = configopaque.String(testJoinKey)
	cfg.ClusterUID = "e2e-cluster"
	cfg.ClusterName = "e2e"
	cfg.HeartbeatInterval = time.Second
	cfg.RetryConfig.InitialInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 500 * time.Millisecond
	persistentQueueConfig(cfg.QueueConfig.Get(), 4)
	return cfg
}

type execCount struct{ rows, distinct, min, max int64 }

func countExec(t testing.TB, dsn string) execCount {
	t.Helper()
	var c execCount
	testbed.QueryRows(t, dsn, `SELECT count(*), count(DISTINCT pid), coalesce(min(pid), -1), coalesce(max(pid), -1) FROM exec_events`,
		func(r pgx.Rows) error { return r.Scan(&c.rows, &c.distinct, &c.min, &c.max) })
	return c
}

// waitForDistinct waits until n distinct records are stored, then a little longer for late duplicates.
func waitForDistinct(t testing.TB, dsn string, n int64, timeout time.Duration) execCount {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := countExec(t, dsn)
		if c.distinct >= n {
			time.Sleep(2 * time.Second)
			return countExec(t, dsn)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d of %d records stored (%d rows)", timeout, c.distinct, n, c.rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const (
	e2eRecords   = 100_000
	e2eBatchSize = 1000
)

// TestExactlyOnceAcrossRestarts sends 100,000 records through the runtime exporter with a persistent queue to
// the real runtime service on real PostgreSQL, kills the service (SIGKILL) mid-stream and starts it again,
// restarts the collector mid-stream twice (once while the service is down, with a backlog in the queue; once
// while batches are in flight), and finds every record in Postgres exactly once.
func TestExactlyOnceAcrossRestarts(t *testing.T) {
	dsn := pgtest.DB(t)
	svc := startService(t, dsn)
	dir := t.TempDir()
	cfg := runtimeConfig(svc.addr)
	col := startCollector(t, runtimeexporter.NewFactory(), cfg, dir)
	defer func() { col.stop() }()

	ctx := context.Background()
	batches := e2eRecords / e2eBatchSize
	began := time.Now()
	for i := 0; i < batches; i++ {
		if i%15 == 0 {
			t.Logf("batch %d at %s", i, time.Since(began).Round(time.Millisecond))
		}
		switch i {
		case 30:
			waitForDistinct(t, dsn, 10*e2eBatchSize, time.Minute) // mid-stream: the service is storing
			svc.kill()
		case 45:
			col.stop()
			col = startCollector(t, runtimeexporter.NewFactory(), cfg, dir)
			if len(col.logs.FilterMessage("using the stored cluster token").All()) != 1 {
				t.Fatalf("the restarted exporter did not use the stored token: %v", col.logs.All())
			}
		case 60:
			svc.start()
		case 80:
			col.stop()
			col = startCollector(t, runtimeexporter.NewFactory(), cfg, dir)
		}
		if err := col.exp.ConsumeLogs(ctx, testbed.ExecRecords(int64(i*e2eBatchSize), e2eBatchSize)); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	c := waitForDistinct(t, dsn, e2eRecords, 90*time.Second)
	if c.rows != e2eRecords || c.distinct != e2eRecords || c.min != 0 || c.max != e2eRecords-1 {
		t.Fatalf("stored %d rows, %d distinct pids in [%d, %d]; want each of 0..%d exactly once", c.rows, c.distinct, c.min, c.max, e2eRecords-1)
	}
	if n := len(col.logs.FilterMessage("cluster enrolled").All()); n != 0 {
		t.Fatalf("the last exporter enrolled again (%d)", n)
	}
	t.Logf("%d records stored exactly once", c.rows)
}

// TestStockOTLPExporterAtLeastOnce is the same run with the collector's stock otlp exporter (persistent queue,
// the token in a header, no idempotency key): the service takes any collector's records, and every record
// arrives, at least once.
func TestStockOTLPExporterAtLeastOnce(t *testing.T) {
	dsn := pgtest.DB(t)
	svc := startService(t, dsn)
	token := enrolDirect(t, svc.addr, "otlp-cluster")

	f := otlpexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpexporter.Config)
	cfg.ClientConfig.Endpoint = svc.addr
	cfg.ClientConfig.TLS.Insecure = true
	cfg.ClientConfig.Headers.Set("authorization", configopaque.String("Bearer "+token))
	cfg.RetryConfig.InitialInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 500 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 0
	persistentQueueConfig(cfg.QueueConfig.Get(), 4)
	cfg.QueueConfig.Get().Batch = noBatch()
	dir := t.TempDir()
	col := startCollector(t, f, cfg, dir)
	defer func() { col.stop() }()

	ctx := context.Background()
	batches := e2eRecords / e2eBatchSize
	for i := 0; i < batches; i++ {
		switch i {
		case 30:
			waitForDistinct(t, dsn, 10*e2eBatchSize, time.Minute)
			svc.kill()
		case 45:
			col.stop()
			col = startCollector(t, f, cfg, dir)
		case 60:
			svc.start()
		case 80:
			col.stop()
			col = startCollector(t, f, cfg, dir)
		}
		if err := col.exp.ConsumeLogs(ctx, testbed.ExecRecords(int64(i*e2eBatchSize), e2eBatchSize)); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	c := waitForDistinct(t, dsn, e2eRecords, 90*time.Second)
	if c.distinct != e2eRecords || c.min != 0 || c.max != e2eRecords-1 || c.rows < e2eRecords {
		t.Fatalf("stored %d rows, %d distinct pids in [%d, %d]; want every one of 0..%d at least once", c.rows, c.distinct, c.min, c.max, e2eRecords-1)
	}
	t.Logf("stock otlp exporter: %d records, %d rows stored (%d duplicates)", c.distinct, c.rows, c.rows-c.distinct)
}

func enrolDirect(t testing.TB, addr, uid string) string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := runtrustv1.NewClusterServiceClient(conn).Enrol(ctx, &runtrustv1.EnrolRequest{JoinKey: testJoinKey, ClusterUid: uid})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetToken()
}

func noBatch() configoptional.Optional[exporterhelper.BatchConfig] {
	return configoptional.None[exporterhelper.BatchConfig]()
}
