package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/localpg"
	"github.com/runtrust/runtrust/internal/records"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
)

const joinKey = "service-test-join-key"

func testConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]string{"-grpc-listen", "127.0.0.1:0", "-http-listen", "127.0.0.1:0", "-pg-data-dir", dir,
		"-join-key", joinKey, "-shutdown-timeout", "20s"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type running struct {
	addrs  Addrs
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg config.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
	select {
	case a := <-ready:
		return &running{addrs: a, cancel: cancel, done: done}
	case err := <-done:
		cancel()
		t.Fatalf("the service did not start: %v", err)
	case <-time.After(3 * time.Minute):
		cancel()
		t.Fatal("the service did not start within 3 minutes")
	}
	return nil
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func execBatch(i, n int) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for j := 0; j < n; j++ {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventProcessExec)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.Attributes().PutStr(records.AttrProcessExecutablePath, "/bin/true")
		lr.Attributes().PutInt(records.AttrProcessPID, int64(i*n+j))
		lr.Attributes().PutStr(records.AttrImageRunningDigest, "sha256:"+strings.Repeat("d", 64))
	}
	return ld
}

// TestEmbeddedPostgresEndToEnd: with no DSN the service initialises and runs its own PostgreSQL, takes an
// enrolment and records over gRPC, answers the API, health, readiness and metrics; shut down while batches
// stream in, it lets the in-flight ones commit, so after a restart on the same directory (no second initdb)
// every acknowledged batch is there.
func TestEmbeddedPostgresEndToEnd(t *testing.T) {
	if _, err := localpg.FindBinDir(); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "runtime-service-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := testConfig(t, dir)
	svc := start(t, cfg)
	stopped := false
	defer func() {
		if !stopped {
			svc.stop(t)
		}
	}()
	base := "http://" + svc.addrs.HTTP

	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}

	conn, err := grpc.NewClient(svc.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := runtrustv1.NewClusterServiceClient(conn).Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: "local", ClusterName: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), ingest.AuthorizationHeader, "Bearer "+resp.GetToken())
	logs := plogotlp.NewGRPCClient(conn)

	var (
		mu    sync.Mutex
		acked int
	)
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for i := 0; ; i++ {
			_, err := logs.Export(metadata.AppendToOutgoingContext(ctx, ingest.IdempotencyKeyHeader, fmt.Sprintf("b%d", i)),
				plogotlp.NewExportRequestFromLogs(execBatch(i, 200)))
			if err != nil {
				return // the service is going away
			}
			mu.Lock()
			acked++
			mu.Unlock()
		}
	}()
	for {
		mu.Lock()
		n := acked
		mu.Unlock()
		if n >= 5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, body := get(t, base+"/api/v1/clusters")
	if code != 200 || !strings.Contains(body, `"name":"laptop"`) {
		t.Fatalf("/api/v1/clusters: %d %s", code, body)
	}
	code, body = get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, `runtrust_ingest_batches_total{result="ok"}`) {
		t.Fatalf("/metrics: %d %.500s", code, body)
	}

	svc.stop(t)
	stopped = true
	<-streamDone
	if code, err := http.Get(base + "/healthz"); err == nil {
		code.Body.Close()
		t.Fatal("the HTTP server still answers after shutdown")
	}

	// Restart on the same directory: the data is there, and it is exactly the acknowledged batches (a batch
	// cut off by the shutdown was either committed and acknowledged, or neither).
	pg, err := localpg.New(context.Background(), localpg.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer pg.Stop(context.Background())
	db, err := pgx.Connect(context.Background(), pg.DSN(DatabaseName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var stored, batches int
	if err := db.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM exec_events), (SELECT count(*) FROM ingest_batches)").Scan(&stored, &batches); err != nil {
		t.Fatal(err)
	}
	if batches < acked || batches > acked+1 || stored != batches*200 {
		t.Fatalf("%d batches (%d events) stored, %d acknowledged: a stored batch may lack only its acknowledgement", batches, stored, acked)
	}
	t.Logf("%d batches acknowledged before shutdown, %d stored", acked, batches)
	if err := pg.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// And the service itself starts again on it.
	svc2 := start(t, testConfig(t, dir))
	code, body = get(t, "http://"+svc2.addrs.HTTP+"/api/v1/clusters")
	svc2.stop(t)
	var list struct{ Total int }
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || list.Total != 1 {
		t.Fatalf("after restart: %d %s", code, body)
	}
}
