package ingest_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/runtrust/runtrust/internal/grpcraw"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/wire"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const joinKey = "test-join-key"

type harness struct {
	store  *store.Store
	addr   string
	conn   *grpc.ClientConn
	logs   plogotlp.GRPCClient
	admin  runtrustv1.ClusterServiceClient
	server *grpc.Server
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s := storetest.OpenAt(t, dsn, store.Options{})
	if err := s.SeedJoinKeys(context.Background(), []string{joinKey}); err != nil {
		t.Fatal(err)
	}
	return s
}

func migratedDB(t *testing.T) string { return storetest.DSN(t) }

// startServer serves the ingest services on a loopback port over a real store.
func startServer(t *testing.T, s *store.Store, limits ingest.Limits, tlsCfg *tls.Config, clientCreds credentials.TransportCredentials) *harness {
	t.Helper()
	srv := ingest.NewServer(s, quietLogger(), limits, ingest.NewMetrics(prometheus.NewRegistry()))
	g := srv.GRPCServer(tlsCfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	if clientCreds == nil {
		clientCreds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(clientCreds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &harness{store: s, addr: l.Addr().String(), conn: conn, logs: plogotlp.NewGRPCClient(conn),
		admin: runtrustv1.NewClusterServiceClient(conn), server: g}
}

func (h *harness) enrol(t *testing.T, uid string) string {
	t.Helper()
	resp, err := h.admin.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: uid, ClusterName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetToken()
}

func withToken(ctx context.Context, token string, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, append([]string{ingest.AuthorizationHeader, wire.Bearer(token)}, kv...)...)
}

func everyKind() plog.Logs { return everyKindOf("c1") }

// everyKindOf is one record of each kind in docs/records.md, from node-1 of cluster uid.
func everyKindOf(uid string) plog.Logs {
	return logsOf(map[string]any{records.AttrK8sClusterUID: uid, records.AttrK8sNodeName: "node-1"},
		rec{records.EventK8sNode, nodeAttrs},
		rec{records.EventK8sWorkload, workloadAttrs},
		rec{records.EventK8sPod, podAttrs},
		rec{records.EventK8sContainer, containerAttrs},
		rec{records.EventProcessExec, execAttrs},
		rec{records.EventFileOpen, fileAttrs},
		rec{records.EventSensorHealth, healthAttrs},
		rec{records.EventHostContainer, hostContainerAttrs},
	)
}

func count(t *testing.T, s *store.Store, sql string) int {
	t.Helper()
	var n int
	if err := storetest.SQL(t, s).QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestEnrolHeartbeatAndIngestEveryKind: a cluster enrols with the join key, heartbeats, and sends one record
// of each kind (gzip-compressed, as collectors do); each lands in its table.
func TestEnrolHeartbeatAndIngestEveryKind(t *testing.T) {
	h := startServer(t, openStore(t, migratedDB(t)), ingest.DefaultLimits, nil, nil)
	token := h.enrol(t, "c1")
	ctx := withToken(context.Background(), token)

	if _, err := h.admin.Heartbeat(ctx, &runtrustv1.HeartbeatRequest{CollectorVersion: "0.161.0-runtrust", Mode: runtrustv1.Mode_MODE_IMPACT, NodeCount: 3}); err != nil {
		t.Fatal(err)
	}
	resp, err := h.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(everyKind()), grpc.UseCompressor(gzip.Name))
	if err != nil {
		t.Fatal(err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedLogRecords() != 0 {
		t.Fatalf("rejected: %s", ps.ErrorMessage())
	}
	for table, want := range map[string]int{"nodes": 1, "workloads": 1, "pods": 1, "containers": 2, "exec_events": 1,
		"file_events": 1, "sensor_health": 1, "images": 1, "image_refs": 1, "exec_aggregates": 1, "file_aggregates": 1} {
		if got := count(t, h.store, "SELECT count(*) FROM "+table); got != want {
			t.Errorf("%s: %d rows; want %d", table, got, want)
		}
	}
	c, err := h.store.GetCluster(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.CollectorVersion != "0.161.0-runtrust" || c.Mode != "impact" || c.ReportedNodes != 3 || c.HeartbeatAt == nil {
		t.Fatalf("heartbeat not stored: %+v", c.ClusterSummary)
	}
	// The exec event was attributed to the container's image through its container id.
	d, err := h.store.GetImage(context.Background(), runningDigest)
	if err != nil || len(d.Processes) != 1 || d.Processes[0].Path != "/bin/sh" {
		t.Fatalf("image evidence: %+v %v", d.Processes, err)
	}
	// The host container runs it beside the pod's container: a container, not a pod or a namespace.
	if d.Containers != 2 || d.Pods != 1 || d.Namespaces != 1 || len(d.Placements) != 2 {
		t.Fatalf("image with a host container: %d containers, %d pods, %d namespaces, %d placements; want 2, 1, 1, 2",
			d.Containers, d.Pods, d.Namespaces, len(d.Placements))
	}
	if hp := d.Placements[1]; hp.Pod != "" || hp.Namespace != "" || hp.Container != strings.Repeat("c", 64) || hp.Node != "node-1" {
		t.Fatalf("host container placement: %+v", hp)
	}

	// The join key was spent.
	_, err = h.admin.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: "c2"})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("second enrolment with a spent key: %v", err)
	}
}

func TestCallsWithoutAValidTokenAreRefused(t *testing.T) {
	h := startServer(t, openStore(t, migratedDB(t)), ingest.DefaultLimits, nil, nil)
	req := plogotlp.NewExportRequestFromLogs(everyKind())
	for name, ctx := range map[string]context.Context{
		"no token":    context.Background(),
		"not bearer":  metadata.AppendToOutgoingContext(context.Background(), ingest.AuthorizationHeader, "Basic abc"),
		"wrong token": withToken(context.Background(), store.NewSecret(store.TokenPrefix)),
	} {
		if _, err := h.logs.Export(ctx, req); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: Export: %v; want Unauthenticated", name, err)
		}
		if _, err := h.admin.Heartbeat(ctx, &runtrustv1.HeartbeatRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: Heartbeat: %v; want Unauthenticated", name, err)
		}
	}
	if n := count(t, h.store, "SELECT count(*) FROM nodes"); n != 0 {
		t.Fatalf("unauthenticated records stored: %d", n)
	}
	if _, err := h.admin.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: "guess", ClusterUid: "x"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("enrol with an unknown key: %v", err)
	}
	if _, err := h.admin.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: joinKey}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "cluster_uid is empty") {
		t.Fatalf("enrol without a cluster uid: %v", err)
	}
}

// rawExport sends bytes as an OTLP Export request, whatever they are.
func rawExport(ctx context.Context, conn *grpc.ClientConn, b []byte) error {
	out := new(grpcraw.Message)
	return conn.Invoke(ctx, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", &grpcraw.Message{B: b}, out,
		grpc.ForceCodecV2(grpcraw.Codec{}))
}

// TestGarbageGetsAClearErrorAndLosesNothing: bytes that are not OTLP get InvalidArgument naming the decode
// error; a batch with bad records keeps the good ones and says, in the partial success, which were rejected and
// why; a batch of only bad records gets InvalidArgument.
func TestGarbageGetsAClearErrorAndLosesNothing(t *testing.T) {
	h := startServer(t, openStore(t, migratedDB(t)), ingest.DefaultLimits, nil, nil)
	ctx := withToken(context.Background(), h.enrol(t, "c1"))

	err := rawExport(ctx, h.conn, []byte("\xff\xff\xff garbage"))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not an OTLP ExportLogsServiceRequest") ||
		wire.ReasonOf(status.Convert(err)) != wire.ReasonRequestUndecodable {
		t.Fatalf("garbage: %v", err)
	}

	mixed := logsOf(nil,
		rec{records.EventK8sNode, nodeAttrs},
		rec{records.EventK8sPod, merge(podAttrs, map[string]any{records.AttrK8sPodUID: nil})},
		rec{"app.log", nil},
	)
	var trailer metadata.MD
	resp, err := h.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(mixed), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedLogRecords() != 2 || !strings.Contains(ps.ErrorMessage(), "record 1 (\"runtrust.k8s.pod\"): k8s.pod.uid is missing") ||
		!strings.Contains(ps.ErrorMessage(), `unknown event name "app.log"`) {
		t.Fatalf("partial success: %d %q", ps.RejectedLogRecords(), ps.ErrorMessage())
	}
	// The same, for programs: which records, and why, in the trailer's status details.
	st := wire.StatusFromTrailer(trailer)
	if st == nil {
		t.Fatalf("no rejections trailer beside the partial success: %v", trailer)
	}
	wantRefused := wire.Rejections{Total: 2, Records: []wire.Rejection{
		{Record: 1, Reason: `("runtrust.k8s.pod"): k8s.pod.uid is missing`},
		{Record: 2, Reason: `("app.log"): unknown event name "app.log" (the runtime service stores the records in docs/records.md)`},
	}}
	if got, ok := wire.RejectionsOf(st); !ok || !reflect.DeepEqual(got, wantRefused) || st.Message() != ps.ErrorMessage() {
		t.Fatalf("trailer rejections %+v (%v), message %q; want %+v", got, ok, st.Message(), wantRefused)
	}
	if n := count(t, h.store, "SELECT count(*) FROM nodes"); n != 1 {
		t.Fatalf("the good record of a mixed batch was not kept: %d nodes", n)
	}

	_, err = h.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(logsOf(nil, rec{"app.log", nil}, rec{"", nil})))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "2 log record(s) rejected") {
		t.Fatalf("all-bad batch: %v", err)
	}
	if got, ok := wire.RejectionsOf(status.Convert(err)); !ok || got.Total != 2 || len(got.Records) != 2 ||
		got.Records[0].Record != 0 || got.Records[1].Record != 1 || !strings.Contains(got.Records[1].Reason, "no event name") {
		t.Fatalf("all-bad batch's details: %+v (%v)", got, ok)
	}
	// Another cluster's resource is refused: a token writes its own cluster only.
	_, err = h.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(logsOf(map[string]any{records.AttrK8sClusterUID: "c2"}, rec{records.EventK8sNode, nodeAttrs})))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not the cluster this token belongs to") {
		t.Fatalf("another cluster's records: %v", err)
	}
	_, err = h.logs.Export(metadata.AppendToOutgoingContext(ctx, ingest.IdempotencyKeyHeader, strings.Repeat("k", 200)),
		plogotlp.NewExportRequestFromLogs(everyKind()))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), ingest.IdempotencyKeyHeader) ||
		wire.ReasonOf(status.Convert(err)) != wire.ReasonIdempotencyKeyInvalid {
		t.Fatalf("overlong idempotency key: %v", err)
	}
}

// TestReplayWithTheSameIdempotencyKeyChangesNothing: the second send of a batch is acknowledged and stores
// nothing: no second raw event, no doubled aggregate count.
func TestReplayWithTheSameIdempotencyKeyChangesNothing(t *testing.T) {
	h := startServer(t, openStore(t, migratedDB(t)), ingest.DefaultLimits, nil, nil)
	ctx := withToken(context.Background(), h.enrol(t, "c1"), ingest.IdempotencyKeyHeader, "batch-0001")
	req := plogotlp.NewExportRequestFromLogs(everyKind())
	for i := 0; i < 3; i++ {
		if _, err := h.logs.Export(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, h.store, "SELECT count(*) FROM exec_events"); n != 1 {
		t.Fatalf("%d raw exec events after 3 sends of one batch", n)
	}
	if n := count(t, h.store, "SELECT count::int FROM exec_aggregates"); n != 1 {
		t.Fatalf("aggregate count %d after 3 sends of one batch", n)
	}
	// Without the key, a resend is a new batch: the event is counted again.
	if _, err := h.logs.Export(withToken(context.Background(), h.mustToken(t)), req); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) mustToken(t *testing.T) string {
	t.Helper()
	if err := h.store.SeedJoinKeys(context.Background(), []string{"second-key"}); err != nil {
		t.Fatal(err)
	}
	resp, err := h.admin.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: "second-key", ClusterUid: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetToken()
}

// TestRateAndSizeLimits: a cluster over its rate gets ResourceExhausted with a RetryInfo (so collectors' OTLP
// exporters retry), and a request over the size limit is refused.
func TestRateAndSizeLimits(t *testing.T) {
	h := startServer(t, openStore(t, migratedDB(t)), ingest.Limits{MaxRequestBytes: 64 << 10, RecordsPerSecond: 1, Burst: 7}, nil, nil)
	ctx := withToken(context.Background(), h.enrol(t, "c1"))
	req := plogotlp.NewExportRequestFromLogs(everyKind()) // 7 records: the whole burst
	if _, err := h.logs.Export(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, err := h.logs.Export(ctx, req)
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "rate limit") {
		t.Fatalf("over the rate: %v", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Fatalf("no RetryInfo in %v", st.Details())
	}

	// 20 records of 4 kB: over the 64 kB limit.
	var many []rec
	for i := 0; i < 20; i++ {
		many = append(many, rec{records.EventFileOpen, merge(fileAttrs, map[string]any{records.AttrFilePath: strings.Repeat("x", 4000)})})
	}
	big := logsOf(nil, many...)
	if _, err := h.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(big)); status.Code(err) != codes.ResourceExhausted ||
		!strings.Contains(err.Error(), "larger than max") {
		t.Fatalf("over the size limit: %v", err)
	}
}

// TestStopPostgresMidIngest: while batches stream in, Postgres is stopped the way a crash would stop it. The
// client is told to retry (Unavailable) and does, with the same idempotency keys; once Postgres is back every
// batch is acknowledged, and the store holds exactly the records of the acknowledged batches: nothing lost,
// nothing doubled.
func TestStopPostgresMidIngest(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Own(t)
	h := startServer(t, openStore(t, pg.DSN("postgres")), ingest.Limits{MaxRequestBytes: 8 << 20, RecordsPerSecond: 1e9, Burst: 1 << 30}, nil, nil)
	token := h.enrol(t, "c1")

	const batches, perBatch = 60, 50
	var (
		mu           sync.Mutex
		unavailable  int
		lastErr      error
		acknowledged = map[int]bool{}
	)
	send := func(i int) error {
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for j := 0; j < perBatch; j++ {
			lr := lrs.AppendEmpty()
			lr.SetEventName(records.EventProcessExec)
			putAll(lr.Attributes(), merge(execAttrs, map[string]any{records.AttrProcessPID: i*perBatch + j}))
		}
		cctx, cancel := context.WithTimeout(withToken(ctx, token, ingest.IdempotencyKeyHeader, fmt.Sprintf("b%04d", i)), 10*time.Second)
		defer cancel()
		_, err := h.logs.Export(cctx, plogotlp.NewExportRequestFromLogs(ld))
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < batches; i++ {
			for {
				err := send(i)
				if err == nil {
					mu.Lock()
					acknowledged[i] = true
					mu.Unlock()
					break
				}
				if status.Code(err) != codes.Unavailable {
					t.Errorf("batch %d: %v; want success or Unavailable", i, err)
					return
				}
				mu.Lock()
				unavailable++
				lastErr = err
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// Let some batches through, then crash Postgres, keep it down a moment, and bring it back.
	for {
		mu.Lock()
		n := len(acknowledged)
		mu.Unlock()
		if n >= 10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := pg.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if t.Failed() {
		return
	}
	t.Logf("%d calls were told to retry during the outage; the last said: %v", unavailable, lastErr)
	if unavailable == 0 {
		t.Fatal("no call saw the outage; the test did not test it")
	}
	if len(acknowledged) != batches {
		t.Fatalf("%d of %d batches acknowledged", len(acknowledged), batches)
	}
	if n := count(t, h.store, "SELECT count(*) FROM exec_events"); n != batches*perBatch {
		t.Fatalf("%d exec events stored; want exactly %d", n, batches*perBatch)
	}
	if n := count(t, h.store, "SELECT count(DISTINCT pid) FROM exec_events"); n != batches*perBatch {
		t.Fatalf("%d distinct events stored; want %d", n, batches*perBatch)
	}
}
