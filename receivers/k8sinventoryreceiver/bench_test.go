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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/kubernetes"

	"github.com/runtrust/runtrust/internal/k8sconfig"
	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

// The benchmark's cluster: 1,000 Deployments with a ReplicaSet each and 10 pods each, in 10 namespaces, on
// 100 nodes. Pods look like real ones: two containers with env, resources, probes, mounts, labels and
// annotations, four conditions and running container statuses with imageIDs, and managedFields.
const (
	benchNamespaces  = 10
	benchDeployments = 1000
	benchPodsPerDep  = 10
	benchNodes       = 100
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
	populate(b, c)
	b.Logf("populated %d pods, %d deployments, %d nodes in %s", benchDeployments*benchPodsPerDep, benchDeployments,
		benchNodes, time.Since(start).Round(time.Second))
	for _, mode := range []string{"trimmed", "full-objects", "trimmed-paged-list"} {
		b.Run(mode, func(b *testing.B) {
			var rs []benchResult
			for i := 0; i < b.N; i++ {
				rs = append(rs, runReceiverProcess(b, c.Kubeconfig, mode == "full-objects", mode == "trimmed-paged-list"))
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

// runReceiverProcess runs one receiver in a child process. full turns the transforms off; noWatchList makes
// client-go list the initial state in pages instead of streaming it (KUBE_FEATURE_WatchListClient=false).
func runReceiverProcess(b *testing.B, kubeconfig string, full, noWatchList bool) benchResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReceiverProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envReceiverProcess+"="+kubeconfig, "RUNTRUST_K8SINVENTORY_BENCH_FULL="+strconv.FormatBool(full))
	if noWatchList {
		cmd.Env = append(cmd.Env, "KUBE_FEATURE_WatchListClient=false")
	}
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

// populate creates the benchmark's cluster through the API, with 8 concurrent clients.
func populate(b *testing.B, c *kubetest.Cluster) {
	b.Helper()
	rc := c.RESTConfig()
	rc.QPS = -1 // no client-side rate limit
	admin, err := kubernetes.NewForConfig(rc)
	require.NoError(b, err)
	ctx := context.Background()
	work := make(chan func() error)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				if err := f(); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for i := range benchNodes {
		work <- func() error {
			n := node(fmt.Sprintf("node-%03d", i), "", "v1.34.2")
			st := n.Status
			n, err := admin.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			n.Status = st
			_, err = admin.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		}
	}
	for i := range benchNamespaces {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%02d", i)}}, metav1.CreateOptions{})
		require.NoError(b, err)
	}
	for d := range benchDeployments {
		work <- func() error {
			ns, name := fmt.Sprintf("ns-%02d", d%benchNamespaces), fmt.Sprintf("app-%04d", d)
			tmpl := benchTemplate(name, d)
			dep := deployment(ns, name, "", "x")
			dep.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: ns, Labels: tmpl.Labels}
			dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
			dep.Spec.Template = tmpl
			dep, err := admin.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			rs := replicaSetSpec(name+"-7f9c5d", ctrl(kindDeployment, name, string(dep.UID)), tmpl)
			rs.Namespace = ns
			rs, err = admin.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			for p := range benchPodsPerDep {
				pd := podSpec(fmt.Sprintf("%s-%05d", rs.Name, p), ctrl(kindReplicaSet, rs.Name, string(rs.UID)), tmpl)
				pd.Namespace = ns
				pd.Spec.NodeName = fmt.Sprintf("node-%03d", (d*benchPodsPerDep+p)%benchNodes)
				pd, err := admin.CoreV1().Pods(ns).Create(ctx, pd, metav1.CreateOptions{})
				if err != nil {
					return err
				}
				st := running(pd, time.Now(), "docker-pullable://ghcr.io/acme/"+name+"@"+sha1, "registry.corp.example/envoy@"+sha2)
				st.Status.Conditions = []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
					{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
					{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
					{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
				}
				st.Status.HostIP, st.Status.PodIP = "10.0.0.1", fmt.Sprintf("10.1.%d.%d", p, d%250)
				st.Status.QOSClass = corev1.PodQOSBurstable
				if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, st, metav1.UpdateOptions{}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	close(work)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		b.Fatal(err)
	}
}

func benchTemplate(name string, i int) corev1.PodTemplateSpec {
	env := make([]corev1.EnvVar, 8)
	for j := range env {
		env[j] = corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", j), Value: fmt.Sprintf("value-%d-%d", i, j)}
	}
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 10}
	mounts := []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "data", MountPath: "/var/lib/app"}}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{"app": name, "team": "team-" + strconv.Itoa(i%20), "tier": "backend",
				"app.kubernetes.io/version": "1.0." + strconv.Itoa(i%7)},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				{Name: "app", Image: "ghcr.io/acme/" + name + ":1.0", ImagePullPolicy: corev1.PullIfNotPresent,
					Env: env, Resources: res, LivenessProbe: probe, ReadinessProbe: probe, VolumeMounts: mounts,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}}},
				{Name: "envoy", Image: "registry.corp.example/envoy:v1.31", ImagePullPolicy: corev1.PullIfNotPresent,
					Args: []string{"--config-path", "/etc/envoy/envoy.yaml", "--log-level", "warn"}, Resources: res},
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: name + "-config"}}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
}
