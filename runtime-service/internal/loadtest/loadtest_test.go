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
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/runtrust/runtrust/internal/grpcraw"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/api"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

var (
	clusters     = flag.Int("load.clusters", 2, "clusters sending at once")
	ratePer      = flag.Int("load.rate", 2000, "records per second each cluster tries to send")
	batchSize    = flag.Int("load.batch", 500, "records per Export call")
	loadDuration = flag.Duration("load.duration", 2*time.Second, "how long the clusters send")
	committers   = flag.Int("load.committers", 0, "group-commit transactions at once (0: the store's default; a large number gives every batch its own)")

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
	st := storetest.Open(t, store.Options{MaxConns: int32(max(4, *clusters+2, *committers+1)), Committers: *committers})
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

	// Requests are built and encoded before the clock starts, and sent as bytes: the load test measures the
	// service, not the generator (which shares the machine's cores with it).
	batchesPer := max(1, int(loadDuration.Seconds()*float64(*ratePer))/(*batchSize))
	now := time.Now()
	reqs := make([][][]byte, *clusters)
	for c := range reqs {
		for b := 0; b < batchesPer; b++ {
			raw, err := plogotlp.NewExportRequestFromLogs(eventBatch(c, b, *batchSize, now)).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			reqs[c] = append(reqs[c], raw)
		}
	}
	interval := time.Duration(float64(time.Second) * float64(*batchSize) / float64(*ratePer))
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
		failures  int
	)
	pg := postmaster(t, st)
	runtime.GC() // the generator's garbage is not the service's to collect
	cpu0 := cpuNow(t, pg)
	start := time.Now()
	for c := 0; c < *clusters; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cctx := metadata.AppendToOutgoingContext(ctx, ingest.AuthorizationHeader, "Bearer "+tokens[c])
			next := time.Now()
			for b, req := range reqs[c] {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(interval) // open loop: a slow call does not lower the offered rate
				t0 := time.Now()
				var resp grpcraw.Message
				err := conn.Invoke(metadata.AppendToOutgoingContext(cctx, ingest.IdempotencyKeyHeader, fmt.Sprintf("c%d-b%d", c, b)),
					"/opentelemetry.proto.collector.logs.v1.LogsService/Export", &grpcraw.Message{B: req}, &resp, grpc.ForceCodecV2(grpcraw.Codec{}))
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
	ingestCPU := cpuNow(t, pg).sub(cpu0)
	if failures > 0 {
		t.Fatalf("%d Export calls failed", failures)
	}
	total := *clusters * batchesPer * *batchSize
	var stored int
	if err := storetest.SQL(t, st).QueryRow(ctx, "SELECT (SELECT count(*) FROM exec_events) + (SELECT count(*) FROM file_events)").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != total {
		t.Fatalf("%d events stored; %d sent", stored, total)
	}
	ingestRate := float64(total) / elapsed.Seconds()

	// The limit: the same rows, COPYed into the same tables, one COPY per cluster at once.
	groups, grouped := st.CommitStats()
	copyElapsed, copyCPU := copyBaseline(t, st, pg, *clusters, batchesPer**batchSize, now)
	copyRate := float64(total) / copyElapsed.Seconds()
	t.Logf("ingest: %d clusters × %d records/s offered, batches of %d, %v: %d records in %v = %.0f records/s; Export latency p50 %v, p99 %v",
		*clusters, *ratePer, *batchSize, *loadDuration, total, elapsed.Round(time.Millisecond), ingestRate,
		percentile(latencies, 0.50).Round(time.Microsecond), percentile(latencies, 0.99).Round(time.Microsecond))
	t.Logf("%d transactions for %d batches (group commit, at most %d at once)", groups, grouped, max(*committers, store.DefaultCommitters))
	t.Logf("plain COPY of the same %d rows into the same tables: %v = %.0f rows/s; ingest reaches %.0f%% of it",
		total, copyElapsed.Round(time.Millisecond), copyRate, 100*ingestRate/copyRate)
	// CPU per record: on a machine shared with other work the rates above move with the load, the CPU each
	// record costs far less. When CPU is what bounds both, ingest reaches (COPY's CPU ÷ ingest's CPU) of COPY.
	perRec := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(total) }
	t.Logf("CPU per record: ingest %.2f µs (test process: service and client %.2f, PostgreSQL %.2f); COPY %.2f µs (test process %.2f, PostgreSQL %.2f); CPU-bound ratio %.0f%%",
		perRec(ingestCPU.self+ingestCPU.pg), perRec(ingestCPU.self), perRec(ingestCPU.pg),
		perRec(copyCPU.self+copyCPU.pg), perRec(copyCPU.self), perRec(copyCPU.pg),
		100*float64(copyCPU.self+copyCPU.pg)/float64(ingestCPU.self+ingestCPU.pg))
}

// cpu is CPU time used so far by this process and by the PostgreSQL server's processes.
type cpu struct{ self, pg time.Duration }

func (a cpu) sub(b cpu) cpu { return cpu{a.self - b.self, a.pg - b.pg} }

// postmaster is the PID of the PostgreSQL server the store talks to: the parent of a backend.
func postmaster(t *testing.T, st *store.Store) int {
	t.Helper()
	var backend int
	if err := storetest.SQL(t, st).QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", backend))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no PPid in /proc/%d/status", backend)
	return 0
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on Linux.
const clockTick = 10 * time.Millisecond

// cpuNow reads this process's CPU time (getrusage) and the PostgreSQL server's: the postmaster and its children
// (the pool's backends live for the whole test, so none of their time is lost with an exited process).
func cpuNow(t *testing.T, pg int) cpu {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	c := cpu{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone meanwhile
		}
		// Fields after the parenthesised command: state ppid … utime (14th field overall) stime (15th).
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); pid != pg && ppid != pg {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		c.pg += time.Duration(utime+stime) * clockTick
	}
	return c
}

// copyBaseline COPYs rows events per cluster (the same rows as the ingest's: half exec events, half file opens,
// attributed to the same digests) into exec_events and file_events, one transaction per cluster, concurrently,
// with the encoder the ingest uses (Store.CopyEvents).
func copyBaseline(t *testing.T, st *store.Store, pg, clusters, rows int, now time.Time) (time.Duration, cpu) {
	t.Helper()
	ctx := context.Background()
	type set struct {
		exec []store.ExecEvent
		file []store.FileOpenEvent
	}
	sets := make([]set, clusters)
	for c := range sets {
		for i := 0; i < rows; i++ {
			cid := fmt.Sprintf("cid-%d-%d", c, i%50)
			if i%2 == 0 {
				sets[c].exec = append(sets[c].exec, store.ExecEvent{Time: now, ContainerID: cid, ImageDigest: digestOf(i % 10),
					PID: int64(i), ParentPID: 1, ExecutablePath: fmt.Sprintf("/usr/bin/tool%d", i%40), SHA256: fmt.Sprintf("%064x", i%40),
					CommandArgs: []string{"tool", "--flag"}, UserID: 1000, WorkingDirectory: "/app"})
			} else {
				sets[c].file = append(sets[c].file, store.FileOpenEvent{Time: now, ContainerID: cid, ImageDigest: digestOf(i % 10),
					PID: int64(i), ExecutablePath: "/usr/bin/tool", FilePath: fmt.Sprintf("/etc/conf%d", i%200)})
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, clusters)
	runtime.GC()
	cpu0 := cpuNow(t, pg)
	start := time.Now()
	for c := range sets {
		wg.Add(1)
		go func(c int, s set) {
			defer wg.Done()
			errs <- st.CopyEvents(ctx, int64(c+1), s.exec, s.file)
		}(c, sets[c])
	}
	wg.Wait()
	elapsed := time.Since(start)
	used := cpuNow(t, pg).sub(cpu0)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return elapsed, used
}

// TestLiveAssessmentQuery times GET /api/v1/images (the ranked list, first page) over a store holding
// -assess.pods pods running -assess.images images across 5 clusters, and the same list scoped to one cluster, one
// namespace, and one namespace of one cluster.
func TestLiveAssessmentQuery(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, store.Options{MaxConns: 4})
	const nClusters, nNamespaces = 5, 40
	cls := make([]store.Cluster, nClusters)
	for i := range cls {
		cls[i] = storetest.Enrol(t, st, fmt.Sprintf("cluster-%d", i), fmt.Sprintf("cluster-%d", i))
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
	t.Logf("seeded %d pods running %d images through store.Apply (batches of %d containers) in %v", *assessPods, *assessImages, chunk, seeded.Round(time.Millisecond))
	if _, err := storetest.SQL(t, st).Exec(ctx, "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
	var pods, images int
	if err := storetest.SQL(t, st).QueryRow(ctx, "SELECT (SELECT count(*) FROM pods), (SELECT count(*) FROM images WHERE containers > 0)").Scan(&pods, &images); err != nil {
		t.Fatal(err)
	}
	if pods != *assessPods || images != min(*assessImages, *assessPods) {
		t.Fatalf("seeded %d pods, %d images", pods, images)
	}

	srv := httptest.NewServer(api.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(st, auth.ModeNone)))
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
	namespace := timeQuery("/api/v1/images?namespace=ns-1&limit=50")
	both := timeQuery("/api/v1/images?cluster=cluster-1&namespace=ns-1&limit=50")
	t.Logf("live assessment at %d pods, %d images (%d clusters; seeded through store.Apply in %v):", pods, images, nClusters, seeded.Round(time.Millisecond))
	for _, q := range []struct {
		name string
		d    []time.Duration
	}{{"ranked list", ranked}, {"severity filter", filtered}, {"one cluster", scoped}, {"one namespace, every cluster", namespace},
		{"one namespace of one cluster", both}} {
		t.Logf("  GET /api/v1/images (%s): p50 %v, p99 %v over %d calls", q.name,
			percentile(q.d, 0.5).Round(time.Microsecond), percentile(q.d, 0.99).Round(time.Microsecond), len(q.d))
	}
}
