package testbed

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"

	"github.com/runtrust/runtrust/internal/records"
)

// The inventory comparison: runtrust's k8sinventory receiver and contrib's k8sobjects and k8s_cluster
// receivers, each in a collector of its own, read the same kube-apiserver and export OTLP to one sink in the
// test process. The sink notes which pods each signal has described; a collector's first snapshot is the moment
// every pod of the cluster has reached it in every signal the variant sends.

// EnvContribCollector names the contrib side distribution (testbed/contrib/builder-config-v0.111.0.yaml);
// `make contrib-collector` builds it into the default path.
const EnvContribCollector = "RUNTRUST_CONTRIB_OTELCOL"

// ContribVersion is the contrib line of the side distribution: the one k8sobjectsreceiver version the module
// proxy serves (see the manifest).
const ContribVersion = "v0.111.0"

// ContribCollectorBinary is the contrib side distribution's binary; a missing one fails the caller.
func ContribCollectorBinary(t testing.TB) string {
	t.Helper()
	path := os.Getenv(EnvContribCollector)
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(home, ".cache", "runtrust", "otelcol-contrib-k8s-"+ContribVersion)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the contrib side distribution is not built at %s (%v): run `make contrib-collector`, or set %s",
			path, err, EnvContribCollector)
	}
	return path
}

// InventoryVariant is one collector the comparison runs.
type InventoryVariant struct {
	Name    string
	Contrib bool   // run the contrib side distribution, else runtrust's
	Config  string // the collector's config; {kubeconfig} and {sink} are replaced by the kubeconfig's path and the sink's address
	Logs    bool   // the first snapshot needs every pod in the logs
	Metrics bool   // the first snapshot needs every pod in the metrics
}

// InventoryVariants are what the comparison runs, in this order every round. The contrib receivers are set
// up as a user would for an inventory: k8sobjects pulls every kind the runtrust receiver reads (once at
// start and then hourly, runtrust's snapshot_interval) and watches them for changes; k8s_cluster reports its
// metrics at its default interval (10 s), so its first report comes up to 10 s after its caches synced.
var InventoryVariants = []InventoryVariant{
	{Name: "runtrust k8sinventory", Logs: true, Config: `receivers:
  k8sinventory:
    auth_type: kubeConfig
    kubeconfig: {kubeconfig}
    cluster_name: bench
exporters:
  otlp_grpc:
    endpoint: {sink}
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [k8sinventory]
      exporters: [otlp_grpc]
`},
	{Name: "contrib k8sobjects + k8s_cluster", Contrib: true, Logs: true, Metrics: true,
		Config: contribConfig(true, true)},
	{Name: "contrib k8sobjects", Contrib: true, Logs: true, Config: contribConfig(true, false)},
	{Name: "contrib k8s_cluster", Contrib: true, Metrics: true, Config: contribConfig(false, true)},
}

// k8sobjectsKinds are the kinds the runtrust receiver reads, as k8sobjects names them.
var k8sobjectsKinds = []struct{ name, group string }{
	{"pods", ""}, {"nodes", ""}, {"deployments", "apps"}, {"replicasets", "apps"}, {"statefulsets", "apps"},
	{"daemonsets", "apps"}, {"jobs", "batch"}, {"cronjobs", "batch"},
}

func contribConfig(objects, cluster bool) string {
	cfg := "receivers:\n"
	var pipelines string
	if objects {
		cfg += "  k8sobjects:\n    auth_type: kubeConfig\n    objects:\n"
		for _, k := range k8sobjectsKinds {
			for _, mode := range []string{"pull", "watch"} {
				cfg += fmt.Sprintf("      - name: %s\n        group: %q\n        mode: %s\n", k.name, k.group, mode)
				if mode == "pull" {
					cfg += "        interval: 1h\n"
				}
			}
		}
		pipelines += "    logs:\n      receivers: [k8sobjects]\n      exporters: [otlp]\n"
	}
	if cluster {
		cfg += "  k8s_cluster:\n    auth_type: kubeConfig\n"
		pipelines += "    metrics:\n      receivers: [k8s_cluster]\n      exporters: [otlp]\n"
	}
	// The contrib receivers read the kubeconfig from $KUBECONFIG (Run sets it): they have no path option.
	return cfg + `exporters:
  otlp:
    endpoint: {sink}
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
` + pipelines
}

// InventoryResult is one variant's run.
type InventoryResult struct {
	Variant       string
	FirstSnapshot time.Duration // from the process's start until every pod reached the sink
	Logs          int64         // log records received by the first snapshot
	DataPoints    int64         // metric data points received by the first snapshot
	Bytes         int64         // OTLP bytes received by the first snapshot
	StartCPU      float64       // CPU seconds from the start to the first snapshot
	SteadyCPU     float64       // percent of one core over the steady window after it
	SteadyRSS     uint64        // bytes, at the end of the steady window
	PeakRSS       uint64        // bytes, the process's high-water mark (VmHWM) at the end
}

// inventorySink is the OTLP sink of the comparison: it counts what arrives and which pods it describes.
type inventorySink struct {
	mu                  sync.Mutex
	logs, points, bytes int64
	logPods, metricPods map[string]bool
}

func (s *inventorySink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs, s.points, s.bytes = 0, 0, 0
	s.logPods, s.metricPods = map[string]bool{}, map[string]bool{}
}

// logsServer and metricsServer give the sink's two Export methods to their gRPC services.
type logsServer struct {
	plogotlp.UnimplementedGRPCServer
	*inventorySink
}

type metricsServer struct {
	pmetricotlp.UnimplementedGRPCServer
	*inventorySink
}

func (s logsServer) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	b, _ := req.MarshalProto()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes += int64(len(b))
	rls := req.Logs().ResourceLogs()
	for i := range rls.Len() {
		rl := rls.At(i)
		for j := range rl.ScopeLogs().Len() {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			s.logs += int64(lrs.Len())
			for k := range lrs.Len() {
				if uid := logPodUID(rl.Resource().Attributes(), lrs.At(k).Attributes(), lrs.At(k).Body()); uid != "" {
					s.logPods[uid] = true
				}
			}
		}
	}
	return plogotlp.NewExportResponse(), nil
}

func (s metricsServer) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	b, _ := req.MarshalProto()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes += int64(len(b))
	s.points += int64(req.Metrics().DataPointCount())
	rms := req.Metrics().ResourceMetrics()
	for i := range rms.Len() {
		if v, ok := rms.At(i).Resource().Attributes().Get(records.AttrK8sPodUID); ok {
			s.metricPods[v.Str()] = true
		}
	}
	return pmetricotlp.NewExportResponse(), nil
}

// logPodUID is the uid of the pod a log record describes: runtrust's attribute, or the body of a k8sobjects
// record (the object, or a watch event holding it), or "".
func logPodUID(res, attrs pcommon.Map, body pcommon.Value) string {
	for _, m := range []pcommon.Map{attrs, res} {
		if v, ok := m.Get(records.AttrK8sPodUID); ok {
			return v.Str()
		}
	}
	if body.Type() != pcommon.ValueTypeMap {
		return ""
	}
	obj := body.Map()
	if o, ok := obj.Get("object"); ok && o.Type() == pcommon.ValueTypeMap { // watch mode: {type, object}
		obj = o.Map()
	}
	if kind, ok := obj.Get("kind"); !ok || kind.Str() != "Pod" {
		return ""
	}
	if md, ok := obj.Get("metadata"); ok && md.Type() == pcommon.ValueTypeMap {
		if uid, ok := md.Map().Get("uid"); ok {
			return uid.Str()
		}
	}
	return ""
}

// InventoryBench runs the variants against one cluster, one sink.
type InventoryBench struct {
	Kubeconfig string
	Pods       int           // how many pods the cluster holds
	Steady     time.Duration // how long a variant runs after its first snapshot
	sink       *inventorySink
	addr       string
}

// StartInventoryBench starts the sink.
func StartInventoryBench(t testing.TB, kubeconfig string, pods int, steady time.Duration) *InventoryBench {
	t.Helper()
	lis, err := net.Listen("tcp", FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	sink := &inventorySink{}
	sink.reset()
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(256 << 20))
	plogotlp.RegisterGRPCServer(srv, &logsServer{inventorySink: sink})
	pmetricotlp.RegisterGRPCServer(srv, &metricsServer{inventorySink: sink})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &InventoryBench{Kubeconfig: kubeconfig, Pods: pods, Steady: steady, sink: sink, addr: lis.Addr().String()}
}

// Run runs one variant on a fresh collector process to its first snapshot and through the steady window.
func (ib *InventoryBench) Run(t testing.TB, v InventoryVariant, limit time.Duration) InventoryResult {
	t.Helper()
	ib.sink.reset()
	bin := CollectorBinary(t)
	if v.Contrib {
		bin = ContribCollectorBinary(t)
	}
	cfg := filepath.Join(t.TempDir(), "inventory.yaml")
	writeFile(t, cfg, strings.NewReplacer("{kubeconfig}", ib.Kubeconfig, "{sink}", ib.addr).Replace(v.Config))
	p := StartProcess(t, "inventory", bin, append(os.Environ(), "KUBECONFIG="+ib.Kubeconfig), "--config="+cfg)
	defer func() { _ = p.Stop(10 * time.Second) }()
	start := time.Now()
	res := InventoryResult{Variant: v.Name}
	done := func() bool {
		if exited, err := p.Exited(); exited {
			t.Fatalf("%s: the collector exited before its first snapshot (%v):\n%s", v.Name, err, tail(p.Output()))
		}
		ib.sink.mu.Lock()
		defer ib.sink.mu.Unlock()
		if (v.Logs && len(ib.sink.logPods) < ib.Pods) || (v.Metrics && len(ib.sink.metricPods) < ib.Pods) {
			return false
		}
		res.FirstSnapshot = time.Since(start)
		res.Logs, res.DataPoints, res.Bytes = ib.sink.logs, ib.sink.points, ib.sink.bytes
		return true
	}
	WaitFor(t, limit, done, func() string {
		ib.sink.mu.Lock()
		defer ib.sink.mu.Unlock()
		return fmt.Sprintf("%s: pods seen in logs %d, in metrics %d of %d\n%s", v.Name, len(ib.sink.logPods),
			len(ib.sink.metricPods), ib.Pods, tail(p.Output()))
	})
	atSnapshot, err := ReadUsage(p.PID(), false)
	if err != nil {
		t.Fatal(err)
	}
	res.StartCPU = float64(atSnapshot.CPUTicks) / clockTicks
	time.Sleep(ib.Steady)
	end, err := ReadUsage(p.PID(), false)
	if err != nil {
		t.Fatal(err)
	}
	res.SteadyCPU, res.SteadyRSS = CPUPercent(atSnapshot, end), end.RSS
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if res.PeakRSS, err = ParsePeakRSS(string(status)); err != nil {
		t.Fatal(err)
	}
	return res
}
