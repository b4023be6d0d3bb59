package runtimeexporter

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/runtrust/runtrust/internal/records"
)

// scripted is an OTLP LogsService on 127.0.0.1 that answers each call with the next scripted error (nil: take
// the records) and notes the keys and record counts it saw.
type scripted struct {
	plogotlp.UnimplementedGRPCServer
	mu      sync.Mutex
	answers []error
	partial string
	keys    []string
	taken   int
	times   []time.Time
}

func (s *scripted) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	md, _ := grpcmd.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(md.Get(idempotencyKeyHeader)) == 1 {
		s.keys = append(s.keys, md.Get(idempotencyKeyHeader)[0])
	}
	s.times = append(s.times, time.Now())
	var err error
	if len(s.answers) > 0 {
		err, s.answers = s.answers[0], s.answers[1:]
	}
	resp := plogotlp.NewExportResponse()
	if err == nil {
		s.taken += req.Logs().LogRecordCount()
		if s.partial != "" {
			resp.PartialSuccess().SetRejectedLogRecords(1)
			resp.PartialSuccess().SetErrorMessage(s.partial)
		}
	}
	return resp, err
}

func startScripted(t *testing.T, s *scripted) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	plogotlp.RegisterGRPCServer(g, s)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

func logsOf(n int) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventProcessExec)
		lr.Attributes().PutInt(records.AttrProcessPID, int64(i))
	}
	return ld
}

func retryInfo(code codes.Code, d time.Duration) error {
	st, _ := status.New(code, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
	return st.Err()
}

func TestErrorMapping(t *testing.T) {
	rejectMsg := `2 log record(s) rejected: record 0 ("runtrust.k8s.pod"): k8s.pod.uid is missing; record 7 ("runtrust.k8s.pod"): k8s.pod.uid is missing`
	tests := []struct {
		name       string
		answers    []error
		partial    string
		wantTaken  int
		wantCalls  int
		wantReject int64
		minSpan    time.Duration // between the first and the last call
		wantLog    string
		wantLogs   int
	}{
		{name: "unavailable then ok", answers: []error{status.Error(codes.Unavailable, "db down"), status.Error(codes.DeadlineExceeded, "slow")},
			wantTaken: 10, wantCalls: 3},
		{name: "resource exhausted honours retry info", answers: []error{retryInfo(codes.ResourceExhausted, 700*time.Millisecond)},
			wantTaken: 10, wantCalls: 2, minSpan: 700 * time.Millisecond},
		{name: "invalid argument dropped and counted", answers: []error{status.Error(codes.InvalidArgument, rejectMsg)},
			wantCalls: 1, wantReject: 10, wantLog: "the runtime service rejected log records", wantLogs: 1},
		{name: "partial success counted", partial: rejectMsg, wantTaken: 10, wantCalls: 1, wantReject: 1,
			wantLog: "the runtime service rejected log records", wantLogs: 1},
		{name: "unauthenticated stays queued", answers: []error{status.Error(codes.Unauthenticated, "token replaced"),
			status.Error(codes.Unauthenticated, "token replaced"), status.Error(codes.Unauthenticated, "token replaced")},
			wantTaken: 10, wantCalls: 4, wantLog: "the runtime service refused the cluster token", wantLogs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &scripted{answers: tt.answers, partial: tt.partial}
			addr := startScripted(t, srv)
			cfg := createDefaultConfig().(*Config)
			cfg.ClientConfig.Endpoint = addr
			cfg.ClientConfig.TLS.Insecure = true
			cfg.Token = "rtc_test"
			cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
			cfg.RetryConfig.MaxInterval = 100 * time.Millisecond
			cfg.QueueConfig.Get().NumConsumers = 1
			core, logs := observer.New(zap.InfoLevel)
			set := exportertest.NewNopSettings(NewFactory().Type())
			set.Logger = zap.New(core)
			reader := sdkmetric.NewManualReader()
			set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			if err := exp.ConsumeLogs(context.Background(), logsOf(10)); err != nil {
				t.Fatal(err)
			}
			// The same kind again: counted, not logged again.
			if tt.wantReject > 0 {
				srv.mu.Lock()
				srv.answers = append(srv.answers, tt.answers...)
				srv.mu.Unlock()
				if err := exp.ConsumeLogs(context.Background(), logsOf(10)); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				srv.mu.Lock()
				calls := len(srv.times)
				srv.mu.Unlock()
				want := tt.wantCalls
				if tt.wantReject > 0 {
					want *= 2
				}
				if calls >= want || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := exp.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			calls := len(srv.times)
			if tt.wantReject > 0 {
				calls /= 2
				if got := rejectedMetric(t, reader); got != 2*tt.wantReject {
					t.Errorf("otelcol_exporter_runtrust_rejected_log_records = %d, want %d", got, 2*tt.wantReject)
				}
			}
			if calls != tt.wantCalls {
				t.Errorf("calls: %d, want %d", calls, tt.wantCalls)
			}
			if tt.wantReject == 0 && srv.taken != tt.wantTaken {
				t.Errorf("records taken: %d, want %d", srv.taken, tt.wantTaken)
			}
			for i := 1; i < len(srv.keys) && tt.wantReject == 0; i++ {
				if srv.keys[i] != srv.keys[0] {
					t.Errorf("a retry changed the idempotency key: %q → %q", srv.keys[0], srv.keys[i])
				}
			}
			if tt.minSpan > 0 && srv.times[len(srv.times)-1].Sub(srv.times[0]) < tt.minSpan {
				t.Errorf("retried after %s, before the server's retry delay %s", srv.times[len(srv.times)-1].Sub(srv.times[0]), tt.minSpan)
			}
			if tt.wantLog != "" {
				if n := logs.FilterMessageSnippet(tt.wantLog).Len(); n != tt.wantLogs {
					t.Errorf("%q logged %d times, want %d", tt.wantLog, n, tt.wantLogs)
				}
			}
		})
	}
}

func rejectedMetric(t *testing.T, r *sdkmetric.ManualReader) int64 {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "otelcol_exporter_runtrust_rejected_log_records" {
				var n int64
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					n += dp.Value
				}
				return n
			}
		}
	}
	return 0
}

func TestRejectionKinds(t *testing.T) {
	got := rejectionKinds(`6 log record(s) rejected: record 0 ("a"): x is missing; record 12 ("b"): y; …`)
	if len(got) != 2 || got[0] != `("a"): x is missing` || got[1] != `("b"): y` {
		t.Fatalf("%q", got)
	}
	if got := rejectionKinds("the request is not an OTLP ExportLogsServiceRequest: proto: 12 bytes"); got[0] != "the request is not an OTLP ExportLogsServiceRequest: proto: # bytes" {
		t.Fatalf("%q", got)
	}
}

func TestEncodingRoundTripAndSplit(t *testing.T) {
	b := &batch{key: newKey(), ld: logsOf(25)}
	data, err := encoding{}.Marshal(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := encoding{}.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	got := r.(*batch)
	if got.key != b.key || got.ItemsCount() != 25 {
		t.Fatalf("round trip: key %q items %d", got.key, got.ItemsCount())
	}
	for _, bad := range [][]byte{nil, []byte("xxxx"), []byte("rtb1"), append([]byte("rtb1\x05ab"), 0)} {
		if _, _, err := (encoding{}).Unmarshal(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
	a, c := b.requests(10), got.requests(10)
	if len(a) != 3 || len(c) != 3 {
		t.Fatalf("split into %d and %d requests, want 3", len(a), len(c))
	}
	for i := range a {
		if a[i].key != c[i].key || a[i].records != c[i].records {
			t.Errorf("request %d: %q/%d vs %q/%d: a replay must split the same way", i, a[i].key, a[i].records, c[i].key, c[i].records)
		}
	}
	if a[0].key != b.key+".0" || a[2].records != 5 {
		t.Errorf("keys/records: %q %d", a[0].key, a[2].records)
	}
	if one := b.requests(100); len(one) != 1 || one[0].key != b.key {
		t.Errorf("a batch within the limit keeps its key: %+v", one)
	}
}

func TestHeartbeatState(t *testing.T) {
	e, err := newExporter(&Config{Mode: ModeAuto}, exportertest.NewNopSettings(NewFactory().Type()))
	if err != nil {
		t.Fatal(err)
	}
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, n := range []struct{ name, change string }{{"a", "added"}, {"b", "snapshot"}, {"c", "added"}, {"c", "deleted"}} {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventK8sNode)
		lr.Attributes().PutStr(records.AttrK8sNodeName, n.name)
		lr.Attributes().PutStr(records.AttrK8sChange, n.change)
	}
	e.observe(ld)
	if mode, nodes := e.heartbeatState(); nodes != 2 || mode.String() != "MODE_INTEGRITY" {
		t.Fatalf("mode %v nodes %d", mode, nodes)
	}
	e.observe(logsOf(1))
	if mode, _ := e.heartbeatState(); mode.String() != "MODE_IMPACT" {
		t.Fatalf("mode %v after a sensor record", mode)
	}
}

var _ component.Host = componenttest.NewNopHost()
