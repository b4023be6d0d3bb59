package testbed

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/internal/records"
)

var (
	invRounds = flag.Int("inv.rounds", 3, "rounds: each runs every inventory variant once, on fresh processes")
	invSteady = flag.Duration("inv.steady", 30*time.Second, "how long each variant runs after its first snapshot")
	invOut    = flag.String("inv.out", "", "write the inventory table (Markdown) to this file")
)

// BenchmarkInventoryVsContrib runs runtrust's inventory receiver and contrib's k8sobjects and k8s_cluster
// receivers (the side distribution, `make contrib-collector`) against one real kube-apiserver holding
// kubetest.BenchShape (10,000 pods), each in a collector of its own, alternating, and prints (and with -inv.out
// writes) the table in docs/performance.md. `make bench-inventory` runs it.
//
//	go test -run='^$' -bench=InventoryVsContrib -benchtime=1x -timeout=60m ./testbed/ -args -inv.rounds=3
func BenchmarkInventoryVsContrib(b *testing.B) {
	CollectorBinary(b)
	ContribCollectorBinary(b)
	c := kubetest.Start(b)
	start := time.Now()
	kubetest.Populate(b, c, kubetest.BenchShape)
	b.Logf("populated %d pods in %s", kubetest.BenchShape.Pods(), time.Since(start).Round(time.Second))
	ib := StartInventoryBench(b, c.Kubeconfig, kubetest.BenchShape.Pods(), *invSteady)
	results := make([][]InventoryResult, len(InventoryVariants)) // variant → round
	for round := range *invRounds {
		for i, v := range InventoryVariants {
			r := ib.Run(b, v, 5*time.Minute)
			b.Logf("round %d: %+v", round+1, r)
			results[i] = append(results[i], r)
		}
	}
	table := InventoryTable(results, loadAvg())
	fmt.Println(table)
	if *invOut != "" {
		if err := os.WriteFile(*invOut, []byte(table), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// InventoryTable is the Markdown table of the runs: per variant the median of its rounds, and its ratio to
// runtrust's (the first variant) where a ratio means something.
func InventoryTable(results [][]InventoryResult, load string) string {
	med := func(rs []InventoryResult, f func(InventoryResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	const mb = 1 << 20
	var sb strings.Builder
	fmt.Fprintf(&sb, "| collector | first snapshot | log records | data points | OTLP MB | CPU to first snapshot | steady CPU | steady RSS | peak RSS |\n")
	fmt.Fprintf(&sb, "|---|---|---|---|---|---|---|---|---|\n")
	var base struct{ snap, cpu, rss, peak float64 }
	for i, rs := range results {
		snap := med(rs, func(r InventoryResult) float64 { return r.FirstSnapshot.Seconds() })
		cpu := med(rs, func(r InventoryResult) float64 { return r.StartCPU })
		rss := med(rs, func(r InventoryResult) float64 { return float64(r.SteadyRSS) / mb })
		peak := med(rs, func(r InventoryResult) float64 { return float64(r.PeakRSS) / mb })
		ratio := func(v, b float64) string {
			if i == 0 || b == 0 {
				return ""
			}
			return fmt.Sprintf(" (%.1f×)", v/b)
		}
		if i == 0 {
			base.snap, base.cpu, base.rss, base.peak = snap, cpu, rss, peak
		}
		fmt.Fprintf(&sb, "| %s | %.1f s%s | %.0f | %.0f | %.1f | %.1f s%s | %.1f %% | %.0f MB%s | %.0f MB%s |\n", rs[0].Variant,
			snap, ratio(snap, base.snap),
			med(rs, func(r InventoryResult) float64 { return float64(r.Logs) }),
			med(rs, func(r InventoryResult) float64 { return float64(r.DataPoints) }),
			med(rs, func(r InventoryResult) float64 { return float64(r.Bytes) / mb }),
			cpu, ratio(cpu, base.cpu),
			med(rs, func(r InventoryResult) float64 { return r.SteadyCPU }),
			rss, ratio(rss, base.rss), peak, ratio(peak, base.peak))
	}
	fmt.Fprintf(&sb, "\nMedian of %d rounds; load average %s.\n", len(results[0]), load)
	return sb.String()
}

// TestLogPodUID reads the pod a record describes from each receiver's shape of record.
func TestLogPodUID(t *testing.T) {
	attrs := func(kv ...string) pcommon.Map {
		m := pcommon.NewMap()
		for i := 0; i < len(kv); i += 2 {
			m.PutStr(kv[i], kv[i+1])
		}
		return m
	}
	object := func(kind, uid string) pcommon.Value {
		v := pcommon.NewValueMap()
		v.Map().PutStr("kind", kind)
		v.Map().PutEmptyMap("metadata").PutStr("uid", uid)
		return v
	}
	watchEvent := func(kind, uid string) pcommon.Value {
		v := pcommon.NewValueMap()
		v.Map().PutStr("type", "ADDED")
		object(kind, uid).Map().CopyTo(v.Map().PutEmptyMap("object"))
		return v
	}
	for _, c := range []struct {
		name       string
		res, attrs pcommon.Map
		body       pcommon.Value
		want       string
	}{
		{"runtrust record", attrs(), attrs(records.AttrK8sPodUID, "u1"), pcommon.NewValueStr("pod web-1 snapshot"), "u1"},
		{"pod in the resource", attrs(records.AttrK8sPodUID, "u2"), attrs(), pcommon.NewValueEmpty(), "u2"},
		{"k8sobjects pull", attrs(), attrs(), object("Pod", "u3"), "u3"},
		{"k8sobjects watch", attrs(), attrs(), watchEvent("Pod", "u4"), "u4"},
		{"another kind", attrs(), attrs(), object("Node", "n1"), ""},
		{"no metadata", attrs(), attrs(), func() pcommon.Value { v := pcommon.NewValueMap(); v.Map().PutStr("kind", "Pod"); return v }(), ""},
		{"a string body", attrs(), attrs(), pcommon.NewValueStr("Pod"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := logPodUID(c.res, c.attrs, c.body); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
