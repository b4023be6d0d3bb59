package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/runtrust/runtrust/internal/localpg"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// LoadStack is the controller pipeline under load, in the style of the collector-contrib testbed: the built
// collector with the shipped controller config (memory_limiter → registrytrust → imageintegrity → batch →
// runtime exporter with its persistent queue), fed by an OTLP receiver instead of the inventory receiver, the
// runtime service, and a PostgreSQL of its own (so its processes can be measured apart from other tests').
type LoadStack struct {
	*Stack
	OTLP       string // the collector's OTLP/gRPC endpoint
	DSN        string
	PG         *localpg.Server
	containers []loadContainer
}

type loadContainer struct{ podUID, id, image, digest string }

// StartLoadStack starts the parts and seeds nContainers containers running nImages images pushed to the
// trusted registry, through the pipeline, so events are attributed and the integrity cache is warm.
func StartLoadStack(t testing.TB, nContainers, nImages int) *LoadStack {
	t.Helper()
	return StartLoadStackWith(t, nContainers, nImages, "", "")
}

// StartLoadStackWith is StartLoadStack with more collector config merged over the shipped one, and another
// collector binary when bin is not "" (a variant of the pipeline to price).
func StartLoadStackWith(t testing.TB, nContainers, nImages int, override, bin string) *LoadStack {
	t.Helper()
	pg := pgtest.Own(t)
	dsn := pg.DSN("postgres")
	s := &Stack{dir: t.TempDir(), collectorBin: bin}
	s.Registry = registrytest.Start(t)
	s.GRPC = FreeAddr(t)
	httpAddr := FreeAddr(t)
	s.API = "http://" + httpAddr
	// The per-cluster rate limit (20,000 records/s by default) is a policy, not a capacity: it is lifted so the
	// load test measures what the parts can do.
	s.Service = StartProcess(t, "runtime-service", ServiceBinary(t), nil, "-database-url", dsn, "-grpc-listen", s.GRPC,
		"-http-listen", httpAddr, "-join-key", stackJoin, "-log-level", "warn", "-rate", "10000000", "-burst", "10000000")
	WaitHTTP(t, s.API+"/readyz", s.Service)
	s.ClusterUID = "6a0c1f7e-0000-4000-8000-00000000load"
	s.Token = s.enrol(t)

	ls := &LoadStack{Stack: s, DSN: dsn, PG: pg, OTLP: FreeAddr(t)}
	s.Controller = s.startCollector(t, "controller", map[string]string{
		"RUNTRUST_CLUSTER_UID":        s.ClusterUID,
		"RUNTRUST_TRUSTED_REGISTRIES": fmt.Sprintf("[%q]", s.Registry.Host),
	}, fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
        max_recv_msg_size_mib: 64
service:
  pipelines:
    logs:
      receivers: [otlp]
`, ls.OTLP)+override)

	digests := make([]string, nImages)
	for i := range digests {
		digests[i] = s.Registry.PushImage(t, fmt.Sprintf("load/app%d:1", i))
	}
	for i := 0; i < nContainers; i++ {
		img := i % nImages
		ls.containers = append(ls.containers, loadContainer{podUID: fmt.Sprintf("pod-%05d", i), id: fmt.Sprintf("%064x", i+1),
			image: s.Registry.Ref(fmt.Sprintf("load/app%d:1", img)), digest: digests[img]})
	}
	// The seed is sent again every 2 s, as the inventory's snapshots would, until every image is verified: the
	// first lookups of a cold cache can outlast the processor's batch deadline (unverified, "the lookup goes
	// on"), and the next pass finds the answer cached.
	client := plogotlp.NewGRPCClient(ls.dial(t))
	var lastSend time.Time
	WaitFor(t, 2*time.Minute, func() bool {
		if time.Since(lastSend) > 2*time.Second {
			ld := plog.NewLogs()
			lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
			for i := range ls.containers {
				ls.containerRecord(lrs.AppendEmpty(), i, time.Now())
			}
			if _, err := client.Export(context.Background(), plogotlp.NewExportRequestFromLogs(ld)); err != nil {
				t.Fatal(err)
			}
			lastSend = time.Now()
		}
		imgs := s.Images(t)
		return len(imgs) == nImages && !slices.ContainsFunc(imgs, func(i Image) bool { return Str(i.Verdict) != records.IntegrityVerified })
	}, func() string {
		return "seeded images not all verified:\n" + js(s.Images(t)) + "\n" + tail(s.Controller.Output())
	})
	return ls
}

func (ls *LoadStack) dial(t testing.TB) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(ls.OTLP, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// record starts record i of the load: its event name and time, and the container it is about (the i-th, cycling),
// whose container.id it carries.
func (ls *LoadStack) record(lr plog.LogRecord, event string, i int, now time.Time) (loadContainer, pcommon.Map) {
	c := ls.containers[i%len(ls.containers)]
	lr.SetEventName(event)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
	a := lr.Attributes()
	a.PutStr(records.AttrContainerID, c.id)
	return c, a
}

func (ls *LoadStack) containerRecord(lr plog.LogRecord, i int, now time.Time) {
	c, a := ls.record(lr, records.EventK8sContainer, i, now)
	a.PutStr(records.AttrK8sPodUID, c.podUID)
	a.PutStr(records.AttrK8sPodName, "app-"+c.podUID)
	a.PutStr(records.AttrK8sNamespaceName, "load")
	a.PutStr(records.AttrK8sNodeName, fmt.Sprintf("node-%d", i%20))
	a.PutStr(records.AttrK8sContainerName, "app")
	a.PutStr(records.AttrContainerImageName, c.image)
	a.PutStr(records.AttrImageRunningDigest, c.digest)
	a.PutStr(records.AttrImagePullPolicy, "IfNotPresent")
	a.PutStr(records.AttrK8sChange, "snapshot")
}

func (ls *LoadStack) execRecord(lr plog.LogRecord, i int, path string, now time.Time) {
	_, a := ls.record(lr, records.EventProcessExec, i, now)
	a.PutInt(records.AttrProcessPID, int64(1000+i))
	a.PutInt(records.AttrProcessParentPID, 1)
	a.PutStr(records.AttrProcessExecutablePath, path)
	a.PutStr(records.AttrProcessExecutableSHA256, fmt.Sprintf("%064x", len(path)))
	args := a.PutEmptySlice(records.AttrProcessCommandArgs)
	args.AppendEmpty().SetStr(filepath.Base(path))
	args.AppendEmpty().SetStr("--serve")
	a.PutInt(records.AttrProcessUserID, 1000)
	a.PutStr(records.AttrProcessWorkingDirectory, "/app")
}

func (ls *LoadStack) fileRecord(lr plog.LogRecord, i int, now time.Time) {
	_, a := ls.record(lr, records.EventFileOpen, i, now)
	a.PutInt(records.AttrProcessPID, int64(1000+i))
	a.PutStr(records.AttrProcessExecutablePath, "/usr/bin/app")
	a.PutStr(records.AttrFilePath, fmt.Sprintf("/etc/app/conf%d.yaml", i%200))
	a.PutInt(records.AttrFileFlags, 0)
}

// batch is n records in the mix a node with a sensor sends, per docs/records.md: 10% container state (the
// controller's snapshots, which pass the registry checks), 55% process execs, 35% file opens.
func (ls *LoadStack) batch(n, seq int, now time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, ClusterName)
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	lrs.EnsureCapacity(n)
	for i := 0; i < n; i++ {
		k := seq*n + i
		switch m := i % 20; {
		case m < 2:
			ls.containerRecord(lrs.AppendEmpty(), k, now)
		case m < 13:
			ls.execRecord(lrs.AppendEmpty(), k, fmt.Sprintf("/usr/bin/tool%d", k%40), now)
		default:
			ls.fileRecord(lrs.AppendEmpty(), k, now)
		}
	}
	return ld
}

// LoadResult is one run at one offered rate.
type LoadResult struct {
	Rate          int           // offered records/s
	Duration      time.Duration // sending time
	Sent          int64         // records the collector acknowledged
	Refused       int64         // records the collector refused (memory limiter, queue full)
	Skipped       int64         // records the generator could not offer in time (all senders busy)
	Stored        int64         // records the service accepted and committed
	Drain         time.Duration // from the end of sending until Stored reached Sent (or the drain limit)
	Drained       bool
	Sustained     float64 // Stored / (Duration + Drain)
	P50, P99      time.Duration
	Markers, Seen int
	CPU           map[string]float64 // percent of one core, mean over the sending time
	RSS           map[string]uint64  // bytes, peak over the sending time
	WatchErr      string             // why the marker watcher failed, if it did
	LoadAvg       string             // /proc/loadavg's 1, 5 and 15 minute averages when the run started
}

// Measured are the processes the load test samples.
var Measured = []string{"collector", "service", "postgres", "generator"}

// storedRecords is what the service has accepted and committed so far, from its metrics.
func (ls *LoadStack) storedRecords(t testing.TB) int64 {
	t.Helper()
	resp, err := http.Get(ls.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ParseAcceptedRecords(string(b))
	if err != nil {
		t.Fatalf("service metrics: %v", err)
	}
	return n
}

// ParseAcceptedRecords sums runtrust_ingest_records_total{…,result="accepted"} over every event name in a
// Prometheus text exposition.
func ParseAcceptedRecords(exposition string) (int64, error) {
	const name = "runtrust_ingest_records_total"
	var total int64
	found := false
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			return 0, fmt.Errorf("%s: no closing brace in %q", name, line)
		}
		if !strings.Contains(rest[:end], `result="accepted"`) {
			continue
		}
		f := strings.Fields(rest[end+1:])
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: no value in %q", name, line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || v < 0 || v > 1<<62 || v != float64(int64(v)) {
			return 0, fmt.Errorf("%s: value %q is not a count", name, f[0])
		}
		total += int64(v)
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		// Before the first record the counter has no series: that is zero, not an error.
		return 0, nil
	}
	return total, nil
}

// Percentile is the p-th percentile (0–1) of d, nearest rank; 0 for none.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// ParseRates parses a comma-separated list of records/s ("5000,10000,20k").
func ParseRates(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("rates: empty list")
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		p := strings.TrimSpace(part)
		mult := 1
		if v, ok := strings.CutSuffix(p, "k"); ok {
			p, mult = v, 1000
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 10_000_000/mult {
			return nil, fmt.Errorf("rates: %q is not a rate from 1 to 10,000,000 records/s", strings.TrimSpace(part))
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func postmasterPID(t testing.TB, pg *localpg.Server) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pg.Dir(), "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
