// Package loadtest measures the runtime service: ingest throughput and latency through the real gRPC server
// into Postgres, against a plain COPY of the same rows (the practical limit), and the live-assessment query at
// scale. The default sizes keep `go test ./...` quick; the figures in docs/performance.md come from the larger
// runs its "Runtime service" section gives the command for.
package loadtest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/api"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

var (
	clusters     = flag.Int("load.clusters", 2, "clusters sending at once")
	ratePer      = flag.Int("load.rate", 2000, "records per second each cluster tries to send")
	batchSize    = flag.Int("load.batch", 500, "records per Export call")
	loadDuration = flag.Duration("load.duration", 2*time.Second, "how long the clusters send")

	assessPods   = flag.Int("assess.pods", 10000, "pods in the live-assessment data set")
	assessImages = flag.Int("assess.images", 1000, "images in the live-assessment data set")
	assessRuns   = flag.Int("assess.runs", 100, "queries timed")
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func digestOf(i int) string { return fmt.Sprintf("sha256:%064x", i) }

// eventBatch is cluster c's batch number b: half exec events, half file opens, in containers the store knows.
func eventBatch(c, b, n int, now time.Time) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		a := lr.Attributes()
		a.PutStr(records.AttrContainerID, fmt.Sprintf("cid-%d-%d", c, i%50))
		a.PutInt(records.AttrProcessPID, int64(b*n+i))
		if i%2 == 0 {
			lr.SetEventName(records.EventProcessExec)
			a.PutInt(records.AttrProcessParentPID, 1)
			a.PutStr(records.AttrProcessExecutablePath, fmt.Sprintf("/usr/bin/tool%d", i%40))
			a.PutStr(records.AttrProcessExecutableSHA256, fmt.Sprintf("%064x", i%40))
			args := a.PutEmptySlice(records.AttrProcessCommandArgs)
			args.AppendEmpty().SetStr("tool")
			args.AppendEmpty().SetStr("--flag")
			a.PutInt(records.AttrProcessUserID, 1000)
			a.PutStr(records.AttrProcessWorkingDirectory, "/app")
		} else {
			lr.SetEventName(records.EventFileOpen)
			a.PutStr(records.AttrProcessExecutablePath, "/usr/bin/tool")
			a.PutStr(records.AttrFilePath, fmt.Sprintf("/etc/conf%d", i%200))
			a.PutInt(records.AttrFileFlags, 0)
		}
	}
	return ld
}

// TestIngestLoad: N clusters send exec and file-open events through the real gRPC server into Postgres at a
// target rate; then the same number of rows is COPYed straight into the same tables, the practical limit.
func TestIngestLoad(t *testing.T) {
	ctx := context.Background()
	pgtest.Template(t, "load_schema", func(ctx context.Context, dsn string) error { return store.Migrate(ctx, dsn) })
	dsn := pgtest.DBFrom(t, "load_schema")
	st, err := store.Open(ctx, dsn, store.Options{MaxConns: int32(max(4, *clusters+2))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := ingest.NewServer(st, slog.New(slog.NewTextHandler(io.Discard, nil)),
		ingest.Limits{MaxRequestBytes: 64 << 20, RecordsPerSecond: 1e9, Burst: 1 << 30}, ingest.NewMetrics(prometheus.NewRegistry()))
	g := srv.GRPCServer(nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(l) }()
	defer g.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Enrol the clusters and give each 50 containers, so events are attributed to images as in production.
	tokens := make([]string, *clusters)
	for c := range tokens {
		key := fmt.Sprintf("load-join-key-%04d", c)
		if err := st.SeedJoinKeys(ctx, []string{key}); err != nil {
			t.Fatal(err)
		}
		resp, err := runtrustv1.NewClusterServiceClient(conn).Enrol(ctx, &runtrustv1.EnrolRequest{JoinKey: key, ClusterUid: fmt.Sprintf("c%d", c)})
		if err != nil {
			t.Fatal(err)
		}
		tokens[c] = resp.GetToken()
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for i := 0; i < 50; i++ {
			lr := lrs.AppendEmpty()
			lr.SetEventName(records.EventK8sContainer)
			a := lr.Attributes()
			a.PutStr(records.AttrK8sPodUID, fmt.Sprintf("pod-%d", i))
			a.PutStr(records.AttrK8sContainerName, "app")
			a.PutStr(records.AttrContainerID, fmt.Sprintf("cid-%d-%d", c, i))
			a.PutStr(records.AttrImageRunningDigest, digestOf(i%10))
		}
		if _, err := plogotlp.NewGRPCClient(conn).Export(metadata.AppendToOutgoingContext(ctx, ingest.AuthorizationHeader, "Bearer "+tokens[c]),
			plogotlp.NewExportRequestFromLogs(ld)); err != nil {
			t.Fatal(err)
		}
	}

	// Requests are built before the clock starts: the load test measures the service, not the generator.
	batchesPer := max(1, int(loadDuration.Seconds()*float64(*ratePer))/(*batchSize))
	now := time.Now()
	reqs := make([][]plogotlp.ExportRequest, *clusters)
	for c := range reqs {
		for b := 0; b < batchesPer; b++ {
			reqs[c] = append(reqs[c], plogotlp.NewExportRequestFromLogs(eventBatch(c, b, *batchSize, now)))
		}
	}
	interval := time.Duration(float64(time.Second) * float64(*batchSize) / float64(*ratePer))
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
		failures  int
	)
	start := time.Now()
	for c := 0; c < *clusters; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			client := plogotlp.NewGRPCClient(conn)
			cctx := metadata.AppendToOutgoingContext(ctx, ingest.AuthorizationHeader, "Bearer "+tokens[c])
			next := time.Now()
			for b, req := range reqs[c] {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(interval) // open loop: a slow call does not lower the offered rate
				t0 := time.Now()
				_, err := client.Export(metadata.AppendToOutgoingContext(cctx, ingest.IdempotencyKeyHeader, fmt.Sprintf("c%d-b%d", c, b)), req)
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				if err != nil {
					failures++
				}
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failures > 0 {
		t.Fatalf("%d Export calls failed", failures)
	}
	total := *clusters * batchesPer * *batchSize
	var stored int
	if err := st.Pool().QueryRow(ctx, "SELECT (SELECT count(*) FROM exec_events) + (SELECT count(*) FROM file_events)").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != total {
		t.Fatalf("%d events stored; %d sent", stored, total)
	}
	ingestRate := float64(total) / elapsed.Seconds()

	// The limit: the same rows, COPYed into the same tables, one COPY per cluster at once.
	copyElapsed := copyBaseline(t, st, *clusters, batchesPer**batchSize, now)
	copyRate := float64(total) / copyElapsed.Seconds()
	t.Logf("ingest: %d clusters × %d records/s offered, batches of %d, %v: %d records in %v = %.0f records/s; Export latency p50 %v, p99 %v",
		*clusters, *ratePer, *batchSize, *loadDuration, total, elapsed.Round(time.Millisecond), ingestRate,
		percentile(latencies, 0.50).Round(time.Microsecond), percentile(latencies, 0.99).Round(time.Microsecond))
	t.Logf("plain COPY of the same %d rows into the same tables: %v = %.0f rows/s; ingest reaches %.0f%% of it",
		total, copyElapsed.Round(time.Millisecond), copyRate, 100*ingestRate/copyRate)
}

// copyBaseline COPYs rows events per cluster (the same shape as the ingest's) into exec_events and file_events.
func copyBaseline(t *testing.T, st *store.Store, clusters, rows int, now time.Time) time.Duration {
	t.Helper()
	ctx := context.Background()
	type set struct{ exec, file [][]any }
	sets := make([]set, clusters)
	for c := range sets {
		for i := 0; i < rows; i++ {
			cid := fmt.Sprintf("cid-%d-%d", c, i%50)
			if i%2 == 0 {
				sets[c].exec = append(sets[c].exec, []any{int64(c + 1), now, cid, digestOf(i % 10), int64(i), int64(1),
					fmt.Sprintf("/usr/bin/tool%d", i%40), fmt.Sprintf("%064x", i%40), []string{"tool", "--flag"}, int64(1000), "/app"})
			} else {
				sets[c].file = append(sets[c].file, []any{int64(c + 1), now, cid, digestOf(i % 10), int64(i), "/usr/bin/tool",
					fmt.Sprintf("/etc/conf%d", i%200), int64(0)})
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, clusters)
	start := time.Now()
	for c := range sets {
		wg.Add(1)
		go func(s set) {
			defer wg.Done()
			err := pgx.BeginFunc(ctx, st.Pool(), func(tx pgx.Tx) error {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"exec_events"}, store.ExecEventColumns, pgx.CopyFromRows(s.exec)); err != nil {
					return err
				}
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"file_events"}, store.FileEventColumns, pgx.CopyFromRows(s.file))
				return err
			})
			errs <- err
		}(sets[c])
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return elapsed
}

// TestLiveAssessmentQuery times GET /api/v1/images (the ranked list, first page) over a store holding
// -assess.pods pods running -assess.images images across 5 clusters, and the same list scoped to one cluster.
func TestLiveAssessmentQuery(t *testing.T) {
	ctx := context.Background()
	pgtest.Template(t, "load_schema", func(ctx context.Context, dsn string) error { return store.Migrate(ctx, dsn) })
	st, err := store.Open(ctx, pgtest.DBFrom(t, "load_schema"), store.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const nClusters, nNamespaces = 5, 40
	cls := make([]store.Cluster, nClusters)
	for i := range cls {
		key := fmt.Sprintf("assess-join-key-%04d", i)
		if err := st.SeedJoinKeys(ctx, []string{key}); err != nil {
			t.Fatal(err)
		}
		if _, cls[i], err = st.Enrol(ctx, key, fmt.Sprintf("cluster-%d", i), fmt.Sprintf("cluster-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	severities := []string{records.SeverityNone, records.SeverityNone, records.SeverityLow, records.SeverityMedium, records.SeverityHigh, records.SeverityCritical}
	verdicts := []string{records.IntegrityVerified, records.IntegrityVerified, records.IntegrityUnverified, records.IntegrityStaleTag, records.IntegrityArtifactMissing, records.IntegrityDigestMismatch}
	seedStart := time.Now()
	const chunk = 5000
	now := time.Now().UTC()
	for c := 0; c < nClusters; c++ {
		var b store.Batch
		flush := func() {
			if _, err := st.Apply(ctx, cls[c], "", &b); err != nil {
				t.Fatal(err)
			}
			b = store.Batch{}
		}
		for p := c; p < *assessPods; p += nClusters {
			img := (p * 7919) % *assessImages // every image runs in several pods, spread over clusters
			ns := fmt.Sprintf("ns-%d", p%nNamespaces)
			wl := fmt.Sprintf("wl-%d", p/10)
			sev := img % len(severities)
			b.Pods = append(b.Pods, store.Pod{UID: fmt.Sprintf("pod-%d", p), Name: fmt.Sprintf("pod-%d", p), Namespace: ns,
				WorkloadUID: wl, WorkloadKind: "Deployment", WorkloadName: wl, Time: now})
			b.Containers = append(b.Containers, store.Container{PodUID: fmt.Sprintf("pod-%d", p), Name: "app",
				ContainerID: fmt.Sprintf("cid-%d", p), Namespace: ns, PodName: fmt.Sprintf("pod-%d", p), WorkloadUID: wl,
				WorkloadKind: "Deployment", WorkloadName: wl, ImageName: fmt.Sprintf("registry.example/app%d:1", img),
				ImageRef: fmt.Sprintf("registry.example/app%d:1", img), RegistryHost: "registry.example",
				RunningDigest: digestOf(img), Integrity: verdicts[sev], Severity: severities[sev],
				Reasons: []string{"code: image " + fmt.Sprint(img)}, Time: now})
			if len(b.Containers) >= chunk {
				flush()
			}
		}
		if len(b.Containers) > 0 {
			flush()
		}
	}
	seeded := time.Since(seedStart)
	if _, err := st.Pool().Exec(ctx, "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
	var pods, images int
	if err := st.Pool().QueryRow(ctx, "SELECT (SELECT count(*) FROM pods), (SELECT count(*) FROM images WHERE containers > 0)").Scan(&pods, &images); err != nil {
		t.Fatal(err)
	}
	if pods != *assessPods || images != min(*assessImages, *assessPods) {
		t.Fatalf("seeded %d pods, %d images", pods, images)
	}

	srv := httptest.NewServer(api.New(st, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	timeQuery := func(path string) []time.Duration {
		var ds []time.Duration
		for i := 0; i < *assessRuns+5; i++ {
			t0 := time.Now()
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"digest"`) {
				t.Fatalf("GET %s: %d %.300s", path, resp.StatusCode, body)
			}
			if i >= 5 { // warm-up
				ds = append(ds, time.Since(t0))
			}
		}
		return ds
	}
	ranked := timeQuery("/api/v1/images?limit=50")
	scoped := timeQuery("/api/v1/images?cluster=cluster-1&limit=50")
	filtered := timeQuery("/api/v1/images?severity=critical,high&limit=50")
	t.Logf("live assessment at %d pods, %d images (%d clusters; seeded through store.Apply in %v):", pods, images, nClusters, seeded.Round(time.Millisecond))
	for _, q := range []struct {
		name string
		d    []time.Duration
	}{{"ranked list", ranked}, {"severity filter", filtered}, {"one cluster", scoped}} {
		t.Logf("  GET /api/v1/images (%s): p50 %v, p99 %v over %d calls", q.name,
			percentile(q.d, 0.5).Round(time.Microsecond), percentile(q.d, 0.99).Round(time.Microsecond), len(q.d))
	}
}
