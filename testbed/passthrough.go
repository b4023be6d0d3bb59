package testbed

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
)

// PassThrough is what the controller pipeline is priced against: the same collector binary running the stock
// otlp → otlp_grpc pass-through (no processors, the exporter's default in-memory queue), shipping to an OTLP sink
// in the test process that only counts what arrives.
type PassThrough struct {
	OTLP      string // the collector's OTLP/gRPC endpoint
	Collector *Process
	received  atomic.Int64
}

type countingSink struct {
	plogotlp.UnimplementedGRPCServer
	n *atomic.Int64
}

func (s countingSink) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.n.Add(int64(req.Logs().LogRecordCount()))
	return plogotlp.NewExportResponse(), nil
}

// StartPassThrough starts the sink and the pass-through collector.
func StartPassThrough(t testing.TB) *PassThrough {
	t.Helper()
	pt := &PassThrough{OTLP: FreeAddr(t)}
	lis, err := net.Listen("tcp", FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	plogotlp.RegisterGRPCServer(srv, &countingSink{n: &pt.received})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	dir := t.TempDir()
	health := FreeAddr(t)
	cfg := filepath.Join(dir, "passthrough.yaml")
	writeFile(t, cfg, fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
        max_recv_msg_size_mib: 64
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
extensions:
  health_check:
    endpoint: %s
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlp_grpc]
`, pt.OTLP, lis.Addr(), health))
	pt.Collector = StartProcess(t, "passthrough", CollectorBinary(t), os.Environ(), "--config="+cfg)
	WaitHTTP(t, "http://"+health+"/", pt.Collector)
	return pt
}

// Received is how many records reached the sink.
func (pt *PassThrough) Received() int64 { return pt.received.Load() }

// RunPassThrough offers the pass-through the load Run offers the pipeline (the same batches, markers included)
// and measures its collector the same way; Stored is what reached the sink. There is no latency: the sink is
// not the runtime service.
func (ls *LoadStack) RunPassThrough(t testing.TB, pt *PassThrough, rate int, d, tick, drainLimit time.Duration) LoadResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := LoadResult{Rate: rate, Duration: d, CPU: map[string]float64{}, RSS: map[string]uint64{}, LoadAvg: loadAvg()}
	received0 := pt.Received()
	sampler := startUsageSampler(ctx, map[string]int{"collector": pt.Collector.PID(), "generator": os.Getpid()})
	senders := startSenderPool(ctx, plogotlp.NewGRPCClient(dialOTLP(t, pt.OTLP)), nil, 4)
	start := time.Now()
	res.Markers = ls.offer(senders, rate, d, tick, "/testbed/passthrough/")
	sendEnd := time.Now()
	res.Duration = sendEnd.Sub(start)
	sampler.sample()
	res.Sent, res.Refused, res.Skipped = senders.sent.Load(), senders.refused.Load(), senders.skipped.Load()
	res.Stored, res.Drain, res.Drained = waitDelivered(func() int64 { return pt.Received() - received0 }, res.Sent, sendEnd,
		drainLimit, 50*time.Millisecond)
	cancel()
	sampler.summarize(&res, sendEnd)
	res.Sustained = float64(res.Stored) / (res.Duration + res.Drain).Seconds()
	return res
}
