package testbed

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/runtrust/runtrust/internal/localpg"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
)

// FaultRig is the controller pipeline's delivery path on real parts that a test can kill: an OTLP sender, the
// built collector (OTLP in, the shipped runtime exporter with its file_storage persistent queue), the runtime
// service binary and its own PostgreSQL. Every record is an exec event whose pid is its identity, so what
// PostgreSQL holds can be checked against what the collector acknowledged, record by record.
type FaultRig struct {
	*Stack
	PG       *localpg.Server
	DSN      string
	OTLP     string
	httpAddr string
	opts     RigOptions
	conn     plogotlp.GRPCClient
}

// RigOptions say how the rig's parts are set up; the zero value is the shipped controller config's memory
// limiter alone before the exporter, everything on the test's temporary directory.
type RigOptions struct {
	// Processors is the collector's logs pipeline between the OTLP receiver and the runtime exporter, from the
	// shipped controller config: "memory_limiter" (empty) or "memory_limiter, batch".
	Processors string
	// QueueDir holds the collector's persistent queue (a SmallDisk, to fill it). Empty: the test's directory.
	QueueDir string
	// QueueSize is the queue's capacity in records (RUNTRUST_QUEUE_SIZE). Zero: the shipped default.
	QueueSize int
	// PGDataDir holds PostgreSQL's cluster (a SmallDisk, to fill it), its WAL elsewhere. Empty: pgtest.Own's.
	PGDataDir string
	// ServiceRate is the service's per-cluster limit in records/s (a slow service). Zero: no practical limit.
	ServiceRate int
}

// StartFaultRig starts PostgreSQL, the service and the collector.
func StartFaultRig(t testing.TB, opts RigOptions) *FaultRig {
	t.Helper()
	if opts.Processors == "" {
		opts.Processors = "memory_limiter"
	}
	pg := pgtest.OwnOn(t, opts.PGDataDir)
	r := &FaultRig{Stack: &Stack{dir: t.TempDir()}, PG: pg, DSN: pg.DSN("postgres"), OTLP: FreeAddr(t), httpAddr: FreeAddr(t), opts: opts}
	r.GRPC = FreeAddr(t)
	r.API = "http://" + r.httpAddr
	r.ClusterUID = "6a0c1f7e-0000-4000-8000-0000000fault"
	r.StartService(t)
	r.Token = r.enrol(t)
	r.StartCollector(t)
	r.conn = plogotlp.NewGRPCClient(dialOTLP(t, r.OTLP))
	return r
}

// StartService starts the runtime service on the rig's addresses (again, after a kill).
func (r *FaultRig) StartService(t testing.TB) {
	t.Helper()
	rate, burst := "10000000", "10000000"
	if r.opts.ServiceRate > 0 {
		rate, burst = strconv.Itoa(r.opts.ServiceRate), strconv.Itoa(r.opts.ServiceRate)
	}
	r.Service = StartProcess(t, "runtime-service", ServiceBinary(t), nil, "-database-url", r.DSN, "-grpc-listen", r.GRPC,
		"-http-listen", r.httpAddr, "-join-key", stackJoin, "-log-level", "warn", "-rate", rate, "-burst", burst)
	WaitHTTP(t, r.API+"/healthz", r.Service)
}

// StartCollector starts the collector on the rig's OTLP address and queue directory (again, after a kill).
func (r *FaultRig) StartCollector(t testing.TB) {
	t.Helper()
	env := map[string]string{"RUNTRUST_TRUSTED_REGISTRIES": `["registry.example"]`}
	if r.opts.QueueDir != "" {
		env["RUNTRUST_QUEUE_DIR"] = r.opts.QueueDir
	}
	if r.opts.QueueSize > 0 {
		env["RUNTRUST_QUEUE_SIZE"] = strconv.Itoa(r.opts.QueueSize)
	}
	r.Controller = r.startCollector(t, "controller", env, fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [%s]
`, r.OTLP, r.opts.Processors))
}

func dialOTLP(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Sender sends exec records with pids from a base, at a fixed rate, each batch once: an acknowledged batch is
// the collector's to deliver; a refused one (the collector is down) is the sender's, and is counted as refused.
type Sender struct {
	mu       sync.Mutex
	base     int64
	next     int64
	acked    []int64 // pids
	refused  int64
	stop     chan struct{}
	stopped  chan struct{}
	interval time.Duration
	batch    int
}

// Send starts a sender of rate records/s in batches of batch, pids from base.
func (r *FaultRig) Send(base int64, rate, batch int) *Sender {
	s := &Sender{base: base, next: base, stop: make(chan struct{}), stopped: make(chan struct{}), batch: batch,
		interval: time.Duration(float64(time.Second) * float64(batch) / float64(rate))}
	go s.run(r.conn)
	return s
}

func (s *Sender) run(client plogotlp.GRPCClient) {
	defer close(s.stopped)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		first := s.next
		s.next += int64(s.batch)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := client.Export(ctx, plogotlp.NewExportRequestFromLogs(ExecRecords(first, s.batch)))
		cancel()
		s.mu.Lock()
		if err != nil || resp.PartialSuccess().RejectedLogRecords() != 0 {
			s.refused += int64(s.batch)
		} else {
			for p := first; p < first+int64(s.batch); p++ {
				s.acked = append(s.acked, p)
			}
		}
		s.mu.Unlock()
	}
}

// Stop stops sending and waits for the batch in flight.
func (s *Sender) Stop() {
	close(s.stop)
	<-s.stopped
}

// Acked is how many records the collector acknowledged so far.
func (s *Sender) Acked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// Refused is how many records the collector refused (or did not answer in time) so far.
func (s *Sender) Refused() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// ExecRecords is n exec events with pids from first on: the pid is each record's identity in exec_events.
func ExecRecords(first int64, n int) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := pcommon.NewTimestampFromTime(time.Now())
	for i := 0; i < n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventProcessExec)
		lr.SetTimestamp(now)
		lr.Attributes().PutStr(records.AttrProcessExecutablePath, "/bin/true")
		lr.Attributes().PutInt(records.AttrProcessPID, first+int64(i))
		lr.Attributes().PutStr(records.AttrImageRunningDigest, "sha256:"+strings.Repeat("f", 64))
	}
	return ld
}

// Delivery is one fault's outcome: what was sent and what PostgreSQL holds.
type Delivery struct {
	Sent, Acked, Refused int64
	// Stored is distinct records in PostgreSQL; Lost the acknowledged ones missing; Duplicated the extra rows.
	Stored, Lost, Duplicated int64
	// Unacked is records stored that the collector had refused or not answered (the batch in flight when it died).
	Unacked int64
	// Recovered is from the broken part's restart until every acknowledged record was stored.
	Recovered time.Duration
}

// Await waits (up to limit) until every record s had acknowledged is stored, measured from restartedAt, then
// two seconds more for late duplicates, and returns the delivery.
func (r *FaultRig) Await(t testing.TB, s *Sender, restartedAt time.Time, limit time.Duration) Delivery {
	t.Helper()
	s.mu.Lock()
	acked := append([]int64(nil), s.acked...)
	d := Delivery{Sent: s.next - s.base, Acked: int64(len(acked)), Refused: s.refused}
	s.mu.Unlock()
	deadline := time.Now().Add(limit)
	for {
		rows := storedPIDs(t, r.DSN, s.base, s.next)
		missing := int64(0)
		for _, p := range acked {
			if rows[p] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			if missing == 0 {
				d.Recovered = time.Since(restartedAt)
				time.Sleep(2 * time.Second)
				rows = storedPIDs(t, r.DSN, s.base, s.next)
			}
			ackedSet := make(map[int64]bool, len(acked))
			for _, p := range acked {
				ackedSet[p] = true
			}
			for p, n := range rows {
				d.Stored++
				d.Duplicated += n - 1
				if !ackedSet[p] {
					d.Unacked++
				}
			}
			d.Lost = missing
			return d
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// storedPIDs counts the exec_events rows of each pid in [lo, hi) in the database at dsn.
func storedPIDs(t testing.TB, dsn string, lo, hi int64) map[int64]int64 {
	t.Helper()
	out := map[int64]int64{}
	QueryRows(t, dsn, `SELECT pid, count(*) FROM exec_events WHERE pid >= $1 AND pid < $2 GROUP BY pid`, func(rows pgx.Rows) error {
		var p, n int64
		if err := rows.Scan(&p, &n); err != nil {
			return err
		}
		out[p] = n
		return nil
	}, lo, hi)
	return out
}

// QueryRows runs sql with args on the database at dsn and hands each row to scan; an error fails the test.
func QueryRows(t testing.TB, dsn, sql string, scan func(pgx.Rows) error, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
