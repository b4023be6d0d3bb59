package k8sinventoryreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	clientfeatures "k8s.io/client-go/features"

	"github.com/runtrust/runtrust/internal/k8sconfig"
	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

// envReceiverProcess makes the test binary run one receiver and report (see TestReceiverProcess).
const envReceiverProcess = "RUNTRUST_K8SINVENTORY_BENCH_KUBECONFIG"

type benchResult struct {
	FirstSnapshotMS float64 `json:"first_snapshot_ms"`
	Records         int64   `json:"records"`
	BaseHeapMB      float64 `json:"base_heap_mb"` // live heap after GC before Start (the test binary, client-go's scheme)
	HeapMB          float64 `json:"heap_mb"`      // live heap after GC, first snapshot sent
	WatchList       bool    `json:"watch_list"`   // whether client-go streamed the initial state (WatchListClient)
	RSSMB           float64 `json:"rss_mb"`       // VmRSS after GC, first snapshot sent
	PeakRSSMB       float64 `json:"peak_rss_mb"`
}

// BenchmarkFirstSnapshot10kPods measures, against a real kube-apiserver, how long the receiver takes from
// Start to its first full snapshot of 10,000 pods in 1,000 Deployments, and the memory of a process that runs
// only the receiver: each run is a fresh child process (the test binary, see TestReceiverProcess), so its
// resident set is the receiver's. "full-objects" turns the informer transforms off, for comparison.
//
//	go test -run='^$' -bench=FirstSnapshot10kPods -benchtime=5x ./receivers/k8sinventoryreceiver/
func BenchmarkFirstSnapshot10kPods(b *testing.B) {
	c := kubetest.Start(b)
	start := time.Now()
	shape := kubetest.BenchShape
	kubetest.Populate(b, c, shape)
	b.Logf("populated %d pods, %d deployments, %d nodes in %s", shape.Pods(), shape.Deployments, shape.Nodes,
		time.Since(start).Round(time.Second))
	for _, mode := range []string{"trimmed", "full-objects"} {
		b.Run(mode, func(b *testing.B) {
			var rs []benchResult
			for i := 0; i < b.N; i++ {
				rs = append(rs, runReceiverProcess(b, c.Kubeconfig, mode == "full-objects"))
			}
			med := func(f func(benchResult) float64) float64 {
				v := make([]float64, len(rs))
				for i, r := range rs {
					v[i] = f(r)
				}
				slices.Sort(v)
				return v[len(v)/2]
			}
			b.ReportMetric(med(func(r benchResult) float64 { return r.FirstSnapshotMS }), "ms-first-snapshot")
			b.ReportMetric(med(func(r benchResult) float64 { return r.HeapMB }), "MB-heap")
			b.ReportMetric(med(func(r benchResult) float64 { return r.BaseHeapMB }), "MB-base-heap")
			b.ReportMetric(med(func(r benchResult) float64 { return r.RSSMB }), "MB-rss")
			b.ReportMetric(med(func(r benchResult) float64 { return r.PeakRSSMB }), "MB-peak-rss")
			b.ReportMetric(float64(rs[0].Records), "records")
			b.Logf("%s runs: %+v", mode, rs)
		})
	}
}

// runReceiverProcess runs one receiver in a child process; full turns the transforms off.
func runReceiverProcess(b *testing.B, kubeconfig string, full bool) benchResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReceiverProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envReceiverProcess+"="+kubeconfig, "RUNTRUST_K8SINVENTORY_BENCH_FULL="+strconv.FormatBool(full))
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "%s", out)
	if path := os.Getenv("RUNTRUST_K8SINVENTORY_BENCH_CHILD_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		require.NoError(b, err)
		_, _ = f.Write(out)
		_ = f.Close()
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			var r benchResult
			require.NoError(b, json.Unmarshal([]byte(rest), &r))
			return r
		}
	}
	b.Fatalf("no RESULT line:\n%s", out)
	return benchResult{}
}

// TestReceiverProcess is the benchmark's child: with RUNTRUST_K8SINVENTORY_BENCH_KUBECONFIG set it runs one
// receiver to its first snapshot and prints a RESULT line; otherwise it does nothing and passes.
func TestReceiverProcess(t *testing.T) {
	kubeconfig := os.Getenv(envReceiverProcess)
	if kubeconfig == "" {
		return
	}
	cfg := testConfig()
	cfg.AuthType, cfg.KubeConfig = k8sconfig.AuthKubeConfig, kubeconfig
	cfg.keepFullObjects = os.Getenv("RUNTRUST_K8SINVENTORY_BENCH_FULL") == "true"
	var n atomic.Int64
	counter, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		n.Add(int64(ld.LogRecordCount()))
		return nil
	})
	require.NoError(t, err)
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, counter)
	require.NoError(t, err)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	start := time.Now()
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	select {
	case <-r.firstSnapshot:
	case <-time.After(10 * time.Minute):
		t.Fatal("no first snapshot within 10 minutes")
	}
	took := time.Since(start)
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res := benchResult{
		FirstSnapshotMS: float64(took.Microseconds()) / 1000,
		Records:         n.Load(),
		BaseHeapMB:      float64(base.HeapAlloc) / (1 << 20),
		HeapMB:          float64(ms.HeapAlloc) / (1 << 20),
		WatchList:       clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient),
		RSSMB:           procStatusMB(t, "VmRSS"),
		PeakRSSMB:       procStatusMB(t, "VmHWM"),
	}
	b, _ := json.Marshal(res)
	fmt.Println("RESULT " + string(b))
	require.NoError(t, r.Shutdown(context.Background()))
}

func procStatusMB(t *testing.T, field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			require.NoError(t, err)
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
