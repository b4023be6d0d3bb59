package testbed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor the bomb is sent with
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/runtrust/runtrust/internal/grpcraw"
	"github.com/runtrust/runtrust/internal/pgtest"
)

// abuse is one kind of bad request and what the service must answer it with.
type abuse struct {
	name string
	send func(ctx context.Context) (got string, ok bool)
}

// TestBadInputFloodLosesNothing sends the real service binary a flood of bad requests on both ports — garbage
// and truncated protobuf, a request over the size limit, a gzip bomb, no token, a wrong token; on HTTP a huge
// query string, unknown and malformed parameters, a bad path escape, an oversized header, an oversized and a
// truncated JSON body — from 8 clients at once, while good batches keep arriving. Each bad request gets its
// clear error, every good record is stored exactly once, and the service's memory stays bounded.
func TestBadInputFloodLosesNothing(t *testing.T) {
	dsn := pgtest.DB(t)
	s := &Stack{dir: t.TempDir()}
	s.GRPC = FreeAddr(t)
	httpAddr := FreeAddr(t)
	s.API = "http://" + httpAddr
	s.ClusterUID = "6a0c1f7e-0000-4000-8000-000000000bad"
	s.Service = StartProcess(t, "runtime-service", ServiceBinary(t), nil, "-database-url", dsn, "-grpc-listen", s.GRPC,
		"-http-listen", httpAddr, "-join-key", stackJoin, "-log-level", "error", "-rate", "10000000", "-burst", "10000000")
	WaitHTTP(t, s.API+"/readyz", s.Service)
	s.Token = s.enrol(t)

	conn, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authed := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+s.Token)
	good, err := plogotlp.NewExportRequestFromLogs(ExecRecords(0, 100)).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	export := func(ctx context.Context, b []byte, opts ...grpc.CallOption) error {
		return conn.Invoke(ctx, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", &grpcraw.Message{B: b}, new(grpcraw.Message),
			append(opts, grpc.ForceCodecV2(grpcraw.Codec{}))...)
	}
	grpcWants := func(name string, code codes.Code, msg string, do func(ctx context.Context) error) abuse {
		return abuse{name, func(ctx context.Context) (string, bool) {
			err := do(ctx)
			return fmt.Sprint(err), status.Code(err) == code && strings.Contains(err.Error(), msg)
		}}
	}
	httpWants := func(name string, code int, msg string, req func() *http.Request) abuse {
		return abuse{name, func(ctx context.Context) (string, bool) {
			resp, err := http.DefaultClient.Do(req().WithContext(ctx))
			if err != nil {
				return err.Error(), false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Sprintf("%d %s", resp.StatusCode, b), resp.StatusCode == code && strings.Contains(string(b), msg)
		}}
	}
	get := func(path string) func() *http.Request {
		return func() *http.Request { r, _ := http.NewRequest("GET", s.API+path, nil); return r }
	}
	post := func(path string, body []byte) func() *http.Request {
		return func() *http.Request {
			r, _ := http.NewRequest("POST", s.API+path, bytes.NewReader(body))
			r.Header.Set("X-CSRF-Token", "1")
			return r
		}
	}
	huge := bytes.Repeat([]byte("x"), 9<<20) // over the 8 MiB default
	bomb := plogotlp.NewExportRequestFromLogs(ExecRecords(0, 1))
	bomb.Logs().ResourceLogs().At(0).Resource().Attributes().PutStr("padding", strings.Repeat("A", 64<<20)) // 64 MiB, ~64 KiB gzipped
	bombBytes, _ := bomb.MarshalProto()
	abuses := []abuse{
		grpcWants("garbage protobuf", codes.InvalidArgument, "not an OTLP ExportLogsServiceRequest", func(ctx context.Context) error {
			return export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.Token), []byte("\xff\xff\xffgarbage"))
		}),
		grpcWants("truncated protobuf", codes.InvalidArgument, "not an OTLP ExportLogsServiceRequest", func(ctx context.Context) error {
			return export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.Token), good[:len(good)/2+1])
		}),
		grpcWants("over the size limit", codes.ResourceExhausted, "larger than max", func(ctx context.Context) error {
			return export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.Token), huge)
		}),
		grpcWants("gzip bomb", codes.ResourceExhausted, "larger than max", func(ctx context.Context) error {
			return export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.Token), bombBytes, grpc.UseCompressor("gzip"))
		}),
		grpcWants("no token", codes.Unauthenticated, "", func(ctx context.Context) error { return export(ctx, good) }),
		grpcWants("wrong token", codes.Unauthenticated, "", func(ctx context.Context) error {
			return export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer rtc_nope"), good)
		}),
		httpWants("1 MiB query string", http.StatusBadRequest, "", get("/api/v1/images?q="+strings.Repeat("a", 1<<20))),
		httpWants("unknown parameter", http.StatusBadRequest, "unknown query parameter", get("/api/v1/images?colour=blue")),
		httpWants("malformed limit", http.StatusBadRequest, "limit", get("/api/v1/images?limit=-1e9")),
		httpWants("bad path escape", http.StatusBadRequest, "", func() *http.Request {
			r := get("/api/v1/images/x")()
			r.URL.Opaque = "/api/v1/images/%zz" // sent as it is: url.Parse would refuse it
			return r
		}),
		httpWants("oversized header", http.StatusRequestHeaderFieldsTooLarge, "", func() *http.Request {
			r := get("/api/v1/images")()
			r.Header.Set("X-Padding", strings.Repeat("p", 2<<20))
			return r
		}),
		httpWants("oversized JSON body", http.StatusBadRequest, "larger than 64 KiB", post("/api/v1/tokens", []byte(`{"name":"`+string(huge)+`"}`))),
		httpWants("truncated JSON body", http.StatusBadRequest, "", post("/api/v1/tokens", []byte(`{"name":"ci","ro`))),
	}

	// Good batches keep arriving through the flood, each once, with its own idempotency key.
	logs := plogotlp.NewGRPCClient(conn)
	var goodSent int64
	ctx, cancel := context.WithCancel(context.Background())
	goodDone := make(chan error, 1)
	go func() {
		for i := int64(0); ctx.Err() == nil; i++ {
			key := metadata.AppendToOutgoingContext(authed, "runtrust-idempotency-key", fmt.Sprintf("good-%d", i))
			if _, err := logs.Export(key, plogotlp.NewExportRequestFromLogs(ExecRecords(1_000_000+i*100, 100))); err != nil {
				goodDone <- fmt.Errorf("good batch %d: %w", i, err)
				return
			}
			goodSent = i + 1
			time.Sleep(20 * time.Millisecond)
		}
		goodDone <- nil
	}()

	base, err := ReadUsage(s.Service.PID(), false)
	if err != nil {
		t.Fatal(err)
	}
	var peak uint64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			if u, err := ReadUsage(s.Service.PID(), false); err == nil && u.RSS > peak {
				peak = u.RSS
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	const rounds = 10
	var mu sync.Mutex
	failures := map[string]string{}
	var wg sync.WaitGroup
	began := time.Now()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				for _, a := range abuses {
					rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
					got, ok := a.send(rctx)
					rcancel()
					if !ok {
						mu.Lock()
						failures[a.name] = got
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	flood := time.Since(began)
	cancel()
	<-sampled
	if err := <-goodDone; err != nil {
		t.Fatalf("a good batch was refused during the flood: %v", err)
	}
	for name, got := range failures {
		if len(got) > 300 {
			got = got[:300] + "…"
		}
		t.Errorf("%s: answered %s", name, got)
	}

	// Every good record is stored, once.
	want := goodSent * 100
	var rows, distinct int64
	WaitFor(t, time.Minute, func() bool {
		rows, distinct = countRange(t, dsn, 1_000_000, 1_000_000+want)
		return distinct == want
	}, func() string { return fmt.Sprintf("%d of %d good records stored (%d rows)", distinct, want, rows) })
	if rows != want {
		t.Errorf("%d rows for %d good records", rows, want)
	}
	if ok, _ := s.Service.Exited(); ok {
		t.Fatalf("the service died in the flood:\n%s", tail(s.Service.Output()))
	}
	grew := int64(peak) - int64(base.RSS)
	t.Logf("%d bad requests from 8 clients in %s; %d good records stored exactly once; service RSS %d MiB before, peak %d MiB",
		8*rounds*len(abuses), flood.Round(time.Millisecond), want, base.RSS>>20, peak>>20)
	// Bounded: the largest bad request is 9 MiB (64 MiB once decompressed, refused at 8 MiB); eight at once,
	// each buffered to the limit at most, stay far under this.
	if grew > 256<<20 {
		t.Errorf("the service's RSS grew by %d MiB in the flood; want it bounded (< 256 MiB)", grew>>20)
	}
}

// countRange counts exec_events rows and distinct pids in [lo, hi).
func countRange(t testing.TB, dsn string, lo, hi int64) (rows, distinct int64) {
	t.Helper()
	for _, n := range storedPIDs(t, dsn, lo, hi) {
		rows += n
		distinct++
	}
	return rows, distinct
}
