package runtimeexporter

import (
	"github.com/klauspost/compress/s2"

	"bytes"
	"encoding/binary"
	"strings"

	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/runtrust/runtrust/exporters/runtimeexporter/internal/metadatatest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/wire"
)

// scripted is an OTLP LogsService on 127.0.0.1 that answers each call with the next scripted error (nil: take
// the records, refusing partial ones as the runtime service does, or partialWords as another OTLP server would)
// and notes the keys and record counts it saw.
type scripted struct {
	plogotlp.UnimplementedGRPCServer
	mu           sync.Mutex
	answers      []error
	partial      *wire.Rejections
	partialWords string
	keys         []string
	taken        int
	times        []time.Time
}

func (s *scripted) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	md, _ := grpcmd.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(md.Get(wire.IdempotencyKeyHeader)) == 1 {
		s.keys = append(s.keys, md.Get(wire.IdempotencyKeyHeader)[0])
	}
	s.times = append(s.times, time.Now())
	var err error
	if len(s.answers) > 0 {
		err, s.answers = s.answers[0], s.answers[1:]
	}
	resp := plogotlp.NewExportResponse()
	if err != nil {
		return resp, err
	}
	s.taken += req.Logs().LogRecordCount()
	switch {
	case s.partial != nil:
		resp.PartialSuccess().SetRejectedLogRecords(int64(s.partial.Total))
		resp.PartialSuccess().SetErrorMessage(s.partial.Message())
		if err := grpc.SetTrailer(ctx, wire.PartialSuccessTrailer(wire.RejectedStatus(*s.partial))); err != nil {
			return resp, err
		}
	case s.partialWords != "":
		resp.PartialSuccess().SetRejectedLogRecords(1)
		resp.PartialSuccess().SetErrorMessage(s.partialWords)
	}
	return resp, nil
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
	return wire.RetryStatus(code, "slow down", d).Err()
}

// podUIDMissing is how the runtime service refuses records 0 and 7 of a request, alike.
var podUIDMissing = wire.Rejections{Total: 2, Records: []wire.Rejection{
	{Record: 0, Reason: `("runtrust.k8s.pod"): k8s.pod.uid is missing`},
	{Record: 7, Reason: `("runtrust.k8s.pod"): k8s.pod.uid is missing`},
}}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name         string
		answers      []error
		partial      *wire.Rejections
		partialWords string
		wantTaken    int
		wantCalls    int
		wantReject   int64
		minSpan      time.Duration // between the first and the last call
		wantLog      string
		wantLogs     int
	}{
		{name: "unavailable then ok", answers: []error{status.Error(codes.Unavailable, "db down"), status.Error(codes.DeadlineExceeded, "slow")},
			wantTaken: 10, wantCalls: 3},
		{name: "resource exhausted honours retry info", answers: []error{retryInfo(codes.ResourceExhausted, 700*time.Millisecond)},
			wantTaken: 10, wantCalls: 2, minSpan: 700 * time.Millisecond},
		{name: "invalid argument dropped and counted", answers: []error{wire.RejectedStatus(podUIDMissing).Err()},
			wantCalls: 1, wantReject: 10, wantLog: "the runtime service rejected log records", wantLogs: 1},
		{name: "partial success counted", partial: &podUIDMissing, wantTaken: 10, wantCalls: 1, wantReject: 2,
			wantLog: "the runtime service rejected log records", wantLogs: 1},
		{name: "another server's partial success counted", partialWords: "1 record refused", wantTaken: 10, wantCalls: 1, wantReject: 1,
			wantLog: "the runtime service rejected log records", wantLogs: 1},
		{name: "unauthenticated stays queued", answers: []error{status.Error(codes.Unauthenticated, "token replaced"),
			status.Error(codes.Unauthenticated, "token replaced"), status.Error(codes.Unauthenticated, "token replaced")},
			wantTaken: 10, wantCalls: 4, wantLog: "the runtime service refused the cluster token", wantLogs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &scripted{answers: tt.answers, partial: tt.partial, partialWords: tt.partialWords}
			addr := startScripted(t, srv)
			cfg := createDefaultConfig().(*Config)
			cfg.ClientConfig.Endpoint = addr
			cfg.ClientConfig.TLS.Insecure = true
			cfg.Token = "rtc_test"
			cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
			cfg.RetryConfig.MaxInterval = 100 * time.Millisecond
			cfg.QueueConfig.Get().NumConsumers = 1
			core, logs := observer.New(zap.InfoLevel)
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
			set := metadatatest.NewSettings(tel)
			set.Logger = zap.New(core)
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
				metadatatest.AssertEqualExporterRuntrustRejectedLogRecords(t, tel,
					[]metricdata.DataPoint[int64]{{Value: 2 * tt.wantReject}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
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

func TestRejectionKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   *status.Status
		want []string
	}{
		{"per record, from the details", wire.RejectedStatus(wire.Rejections{Total: 6, Records: []wire.Rejection{
			{Record: 0, Reason: `("a"): x is missing`}, {Record: 12, Reason: `("b"): y`}}}), []string{`("a"): x is missing`, `("b"): y`}},
		{"a request refused whole: the service's reason", wire.RefusedStatus(wire.ReasonRequestUndecodable,
			"the request is not an OTLP ExportLogsServiceRequest: proto: 12 bytes"), []string{wire.ReasonRequestUndecodable}},
		{"another server: its words", status.New(codes.InvalidArgument, "bad records"), []string{"bad records"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rejectionKinds(tc.st); !slices.Equal(got, tc.want) {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
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
	if got.key != b.key || got.ItemsCount() != 25 || !got.encoded {
		t.Fatalf("round trip: key %q items %d encoded %v", got.key, got.ItemsCount(), got.encoded)
	}
	// Read back, a batch that fits one request is sent as the bytes that were queued, under its own key.
	one, err := got.requests(100)
	if err != nil || len(one) != 1 || one[0].key != b.key || one[0].records != 25 || one[0].raw == nil {
		t.Fatalf("an encoded batch within the limit goes as it is: %+v, %v", one, err)
	}
	body, _ := protoMarshaler.MarshalLogs(b.ld)
	if !bytes.Equal(one[0].raw, body) {
		t.Fatal("the encoded request is not the batch's OTLP encoding")
	}
	// Queued again as read (a queue that re-persists an item), it stays the same bytes.
	again, err := encoding{}.Marshal(context.Background(), got)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-marshal of a read batch: %v", err)
	}
	a, err := b.requests(10)
	if err != nil {
		t.Fatal(err)
	}
	c, err := got.requests(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 3 || len(c) != 3 {
		t.Fatalf("split into %d and %d requests, want 3", len(a), len(c))
	}
	for i := range a {
		if a[i].key != c[i].key || a[i].records != c[i].records || c[i].raw != nil {
			t.Errorf("request %d: %q/%d vs %q/%d: a replay must split the same way", i, a[i].key, a[i].records, c[i].key, c[i].records)
		}
	}
	if a[0].key != b.key+".0" || a[2].records != 5 {
		t.Errorf("keys/records: %q %d", a[0].key, a[2].records)
	}
	if one, _ := b.requests(100); len(one) != 1 || one[0].key != b.key {
		t.Errorf("a batch within the limit keeps its key: %+v", one)
	}
}

// encodeV1 is how a collector before the record count queued a batch: "rtb1", key length, key, protobuf.
func encodeV1(key string, ld plog.Logs) []byte {
	body, _ := protoMarshaler.MarshalLogs(ld)
	out := binary.AppendUvarint([]byte("rtb1"), uint64(len(key)))
	return append(append(out, key...), body...)
}

func TestEncodingReadsTheOlderFormat(t *testing.T) {
	_, r, err := encoding{}.Unmarshal(encodeV1("k1", logsOf(7)))
	if err != nil {
		t.Fatal(err)
	}
	b := r.(*batch)
	if b.key != "k1" || b.ItemsCount() != 7 || b.encoded {
		t.Fatalf("v1: key %q items %d encoded %v", b.key, b.ItemsCount(), b.encoded)
	}
}

func TestEncodingRefusesBadItems(t *testing.T) {
	good, _ := encoding{}.Marshal(context.Background(), &batch{key: "k", ld: logsOf(3)})
	body, _ := protoMarshaler.MarshalLogs(logsOf(3))
	v2 := func(key string, records uint64, body []byte) []byte {
		out := binary.AppendUvarint([]byte("rtb2"), uint64(len(key)))
		out = binary.AppendUvarint(append(out, key...), records)
		return append(out, s2.Encode(nil, body)...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		err  string // from Unmarshal, or else from decoding the encoded batch (one that must be split)
	}{
		{"empty", nil, "bad magic"},
		{"another format", []byte("xxxx"), "bad magic"},
		{"magic alone", []byte("rtb2"), "malformed idempotency key"},
		{"v1 magic alone", []byte("rtb1"), "malformed idempotency key"},
		{"key longer than the item", append([]byte("rtb2\x05ab"), 0), "malformed idempotency key"},
		{"empty key", v2("", 3, body), "malformed idempotency key"},
		{"no record count", []byte("rtb2\x01k"), "malformed record count"},
		{"more records than bytes", v2("k", 1000, body), "malformed record count"},
		{"v1 with a bad body", append([]byte("rtb1\x01k"), 0xff), "queued item: "},
		{"count disagrees with the body", v2("k", 2, body), "holds 3 records, its header says 2"},
		{"body is not OTLP", v2("k", 1, []byte{0xff, 0xff}), "queued item: "},
		{"body is not compressed", append([]byte("rtb2\x01k\x03"), body...), "queued item: "},
		{"decompresses to more than the bound", append([]byte("rtb2\x01k\x03"), binary.AppendUvarint(nil, 1<<31)...), "is not an S2 block of at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r, err := encoding{}.Unmarshal(tc.data)
			if err == nil {
				err = r.(*batch).decode() // what a batch that must be split goes through
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error with %q", err, tc.err)
			}
		})
	}
	if _, _, err := (encoding{}).Unmarshal(good); err != nil {
		t.Fatal(err)
	}
}

// FuzzEncoding: a queue file's item either is refused with an error or reads back as a batch whose requests
// hold exactly its records, and persists again as what was read.
func FuzzEncoding(f *testing.F) {
	for _, n := range []int{0, 1, 25} {
		data, _ := encoding{}.Marshal(context.Background(), &batch{key: "k", ld: logsOf(n)})
		f.Add(data)
	}
	f.Add(encodeV1("k", logsOf(2)))
	f.Add([]byte("rtb2\x01k\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, r, err := encoding{}.Unmarshal(data)
		if err != nil {
			return
		}
		b := r.(*batch)
		items := b.ItemsCount()
		if b.encoded {
			again, err := encoding{}.Marshal(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			_, r2, err := encoding{}.Unmarshal(again)
			if b2 := r2.(*batch); err != nil || b2.key != b.key || b2.records != b.records || !bytes.Equal(b2.raw, b.raw) {
				t.Fatalf("an encoded batch does not persist again as read (%v): %q", err, data)
			}
		}
		reqs, err := b.requests(10)
		if err != nil {
			return
		}
		total := 0
		for _, rq := range reqs {
			total += rq.records
		}
		if total != items {
			t.Fatalf("requests hold %d records, the batch %d", total, items)
		}
	})
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
