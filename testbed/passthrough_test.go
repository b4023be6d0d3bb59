package testbed

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	vsRates    = flag.String("vs.rates", "2000", "offered records/s, comma-separated (10k,20k,40k)")
	vsRounds   = flag.Int("vs.rounds", 1, "rounds per rate: each round runs every variant once on fresh processes")
	vsDuration = flag.Duration("vs.duration", 5*time.Second, "sending time per run")
	vsOut      = flag.String("vs.out", "", "write the table (Markdown) to this file")
	vsBaseline = flag.String("vs.baseline", "", "another collector binary (an earlier build) to run the shipped pipeline with, as a variant of its own")
)

// PipelineVariant is one collector the comparison runs: the shipped controller pipeline, a variant of it, or the
// stock pass-through.
type PipelineVariant struct {
	Name     string
	Override string // merged over the shipped controller config; ignored for the pass-through
	Bin      string // the collector binary; "" is the one under test
	Pass     bool   // the stock otlp → otlp_grpc pass-through
}

// PipelineVariants are what TestPipelineVsPassThrough runs, in this order in every round.
var PipelineVariants = []PipelineVariant{
	{Name: "controller pipeline"},
	{Name: "controller pipeline, in-memory queue", Override: "exporters:\n  runtime:\n    sending_queue:\n      storage: null\n"},
	{Name: "otlp → otlp pass-through", Pass: true},
}

// TestPipelineVsPassThrough prices the controller pipeline (trust + integrity + batch + the runtime exporter's
// persistent queue, shipping to the runtime service) against the stock pass-through on the same offered load, in
// one run: each round runs every variant on fresh processes, and the ratios are paired within a round. CI runs it
// small (2,000/s for 5 s), checking both deliver everything; `make bench-pipeline` runs the table in
// docs/performance.md.
func TestPipelineVsPassThrough(t *testing.T) {
	rates, err := ParseRates(*vsRates)
	if err != nil {
		t.Fatal(err)
	}
	if *vsRounds < 1 || *vsDuration < time.Second {
		t.Fatalf("-vs.rounds %d and -vs.duration %s: at least 1 round of 1 s", *vsRounds, *vsDuration)
	}
	smoke := *vsRates == "2000" && *vsRounds == 1
	variants := PipelineVariants
	if *vsBaseline != "" {
		variants = append([]PipelineVariant{{Name: "controller pipeline, " + filepath.Base(*vsBaseline), Bin: *vsBaseline}}, variants...)
	}
	results := map[int][][]LoadResult{} // rate → round → variant
	for _, rate := range rates {
		for round := 0; round < *vsRounds; round++ {
			var row []LoadResult
			for _, v := range variants {
				t.Run(fmt.Sprintf("%d/s round %d %s", rate, round+1, v.Name), func(t *testing.T) {
					r := runVariant(t, v, rate)
					t.Logf("%s at %d/s: sent %d, refused %d, skipped %d, delivered %d (drained %v in %s), collector CPU %.0f%%, peak RSS %d MB, load %s",
						v.Name, rate, r.Sent, r.Refused, r.Skipped, r.Stored, r.Drained, r.Drain.Round(time.Millisecond),
						r.CPU["collector"], r.RSS["collector"]>>20, r.LoadAvg)
					if r.Sent == 0 {
						t.Fatalf("nothing went through")
					}
					if smoke && (!r.Drained || r.Refused != 0 || r.Skipped != 0) {
						t.Errorf("at %d/s every variant must keep up: drained %v, refused %d, skipped %d", rate, r.Drained, r.Refused, r.Skipped)
					}
					if r.CPU["collector"] <= 0 || r.RSS["collector"] == 0 {
						t.Errorf("the collector was not measured: CPU %v, RSS %v", r.CPU, r.RSS)
					}
					row = append(row, r)
				})
			}
			if len(row) == len(variants) {
				results[rate] = append(results[rate], row)
			}
		}
	}
	table := PipelineTable(variants, rates, results)
	t.Logf("pipeline vs pass-through:\n%s", table)
	if *vsOut != "" {
		if err := os.MkdirAll(filepath.Dir(*vsOut), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*vsOut, []byte(Machine()+"\n\n"+table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runVariant(t *testing.T, v PipelineVariant, rate int) LoadResult {
	// The pass-through needs the load stack only for its batches (the same containers, images and mix); its
	// collector is stopped first, so it takes no CPU beside the one measured.
	ls := StartLoadStackWith(t, 500, 20, v.Override, v.Bin)
	if !v.Pass {
		r := ls.Run(t, rate, *vsDuration, 100*time.Millisecond, 3*time.Minute)
		// The variant is what it says: the persistent queue keeps its file in file_storage's directory.
		_, err := os.Stat(filepath.Join(ls.dir, "controller-queue", "exporter_runtime__logs"))
		if persistent := v.Override == ""; persistent != (err == nil) {
			t.Errorf("%s: the persistent queue's file: %v", v.Name, err)
		}
		return r
	}
	if err := ls.Controller.Stop(10 * time.Second); err != nil {
		t.Logf("stopping the load stack's collector: %v", err)
	}
	return ls.RunPassThrough(t, StartPassThrough(t), rate, *vsDuration, 100*time.Millisecond, 3*time.Minute)
}

// PipelineTable is, per rate, each variant's delivered rate, collector CPU and peak RSS (medians over the
// rounds), and each one's ratio to the last variant (the pass-through), paired within a round: the median and
// the range over the rounds.
func PipelineTable(variants []PipelineVariant, rates []int, results map[int][][]LoadResult) string {
	var b strings.Builder
	b.WriteString("| offered rec/s | collector | rounds | delivered rec/s | CPU % of a core | × pass-through CPU | peak RSS MB | × pass-through RSS |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	for _, rate := range rates {
		rounds := results[rate]
		if len(rounds) == 0 {
			continue
		}
		base := len(variants) - 1
		for vi, v := range variants {
			var delivered, cpu, rss, cpuRatio, rssRatio []float64
			for _, row := range rounds {
				r, p := row[vi], row[base]
				delivered = append(delivered, r.Sustained)
				cpu = append(cpu, r.CPU["collector"])
				rss = append(rss, float64(r.RSS["collector"])/(1<<20))
				if p.CPU["collector"] > 0 && p.RSS["collector"] > 0 {
					cpuRatio = append(cpuRatio, r.CPU["collector"]/p.CPU["collector"])
					rssRatio = append(rssRatio, float64(r.RSS["collector"])/float64(p.RSS["collector"]))
				}
			}
			ratio := func(x []float64) string {
				if vi == base {
					return "1"
				}
				if len(x) == 0 {
					return "—"
				}
				if len(x) == 1 {
					return fmt.Sprintf("%.1f", x[0])
				}
				return fmt.Sprintf("%.1f (%.1f–%.1f)", median(x), slices.Min(x), slices.Max(x))
			}
			fmt.Fprintf(&b, "| %d | %s | %d | %.0f | %.0f | %s | %.0f | %s |\n", rate, v.Name, len(rounds),
				median(delivered), median(cpu), ratio(cpuRatio), median(rss), ratio(rssRatio))
		}
	}
	return b.String()
}

func TestPipelineTable(t *testing.T) {
	res := func(sustained, cpu float64, rssMB uint64) LoadResult {
		return LoadResult{Sustained: sustained, CPU: map[string]float64{"collector": cpu}, RSS: map[string]uint64{"collector": rssMB << 20}}
	}
	got := PipelineTable(PipelineVariants, []int{10000, 20000}, map[int][][]LoadResult{
		10000: {
			{res(9900, 30, 120), res(9950, 20, 90), res(10000, 10, 40)},
			{res(9800, 40, 130), res(9900, 25, 95), res(10000, 10, 50)},
			{res(9700, 60, 110), res(9800, 30, 80), res(9990, 20, 40)},
		},
	})
	want := `| offered rec/s | collector | rounds | delivered rec/s | CPU % of a core | × pass-through CPU | peak RSS MB | × pass-through RSS |
|---|---|---|---|---|---|---|---|
| 10000 | controller pipeline | 3 | 9800 | 40 | 3.0 (3.0–4.0) | 120 | 2.8 (2.6–3.0) |
| 10000 | controller pipeline, in-memory queue | 3 | 9900 | 25 | 2.0 (1.5–2.5) | 90 | 2.0 (1.9–2.2) |
| 10000 | otlp → otlp pass-through | 3 | 10000 | 10 | 1 | 40 | 1 |
`
	require := func(cond bool) {
		t.Helper()
		if !cond {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	}
	require(got == want)
}
