package testbed

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The default is a smoke run that CI affords (one low rate, 10 s) and that must keep up without a drop;
// `make load` runs the full table (docs/performance.md, "Testbed load").
var (
	loadRates    = flag.String("load.rates", "2000", "offered records/s, comma-separated (5000,10000,20k)")
	loadRuns     = flag.Int("load.runs", 1, "runs per rate; the table shows each measure's median")
	loadDuration = flag.Duration("load.duration", 10*time.Second, "sending time per run")
	loadOut      = flag.String("load.out", "", "write the results table (Markdown) to this file")
)

// TestLoad drives the controller pipeline (built collector, shipped config) and the runtime service on
// PostgreSQL at fixed rates, samples CPU and RSS of each process from /proc every second, and reports records/s
// sustained, drops, and end-to-end latency (send → row in Postgres) p50/p99. Each run gets a fresh stack, so
// one run's backlog or table growth does not weigh on the next.
func TestLoad(t *testing.T) {
	rates, err := ParseRates(*loadRates)
	if err != nil {
		t.Fatal(err)
	}
	if *loadRuns < 1 || *loadDuration < time.Second {
		t.Fatalf("-load.runs %d and -load.duration %s: at least 1 run of 1 s", *loadRuns, *loadDuration)
	}
	smoke := *loadRates == "2000" && *loadRuns == 1
	results := map[int][]LoadResult{}
	for _, rate := range rates {
		for run := 0; run < *loadRuns; run++ {
			t.Run(fmt.Sprintf("%d/s run %d", rate, run+1), func(t *testing.T) {
				ls := StartLoadStack(t, 500, 20)
				r := ls.Run(t, rate, *loadDuration, 100*time.Millisecond, 3*time.Minute)
				t.Logf("offered %d/s for %s: sent %d, refused %d, skipped %d, stored %d, drained %v in %s, sustained %.0f/s, latency p50 %s p99 %s (%d/%d markers), CPU %v, RSS %v, load %s",
					rate, r.Duration.Round(time.Millisecond), r.Sent, r.Refused, r.Skipped, r.Stored, r.Drained, r.Drain.Round(time.Millisecond),
					r.Sustained, r.P50, r.P99, r.Seen, r.Markers, cpuString(r.CPU), rssString(r.RSS), r.LoadAvg)
				if r.Sent == 0 || r.Seen == 0 {
					t.Fatalf("nothing went through: sent %d, markers seen %d (watcher: %s)", r.Sent, r.Seen, r.WatchErr)
				}
				if r.Stored > r.Sent {
					// More stored than sent would be a replay the idempotency key should have stopped.
					t.Errorf("stored %d records, %d more than the collector acknowledged", r.Stored, r.Stored-r.Sent)
				}
				if smoke && (!r.Drained || r.Refused != 0 || r.Seen != r.Markers) {
					t.Errorf("at %d/s the pipeline must keep up: drained %v, refused %d, markers seen %d of %d", rate, r.Drained, r.Refused, r.Seen, r.Markers)
				}
				results[rate] = append(results[rate], r)
			})
		}
	}
	table := ResultsTable(rates, results)
	t.Logf("results:\n%s", table)
	if *loadOut != "" {
		if err := os.MkdirAll(filepath.Dir(*loadOut), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*loadOut, []byte(Machine()+"\n\n"+table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ResultsTable is the Markdown table: per rate, the median of each measure over the runs.
func ResultsTable(rates []int, results map[int][]LoadResult) string {
	var b strings.Builder
	b.WriteString("| offered rec/s | runs | sent rec/s | sustained rec/s | drops | refused | p50 | p99 | CPU % collector / service / postgres / generator | peak RSS MB collector / service / postgres |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rate := range rates {
		rs := results[rate]
		if len(rs) == 0 {
			continue
		}
		med := func(f func(LoadResult) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		drained := 0
		for _, r := range rs {
			if r.Drained {
				drained++
			}
		}
		drops := fmt.Sprintf("%.0f", med(func(r LoadResult) float64 { return float64(r.Sent - r.Stored) }))
		if drained < len(rs) {
			drops += fmt.Sprintf(" (%d of %d runs not drained in 3 min)", len(rs)-drained, len(rs))
		}
		cpu := []string{}
		rss := []string{}
		for _, name := range Measured {
			cpu = append(cpu, fmt.Sprintf("%.0f", med(func(r LoadResult) float64 { return r.CPU[name] })))
			if name != "generator" {
				rss = append(rss, fmt.Sprintf("%.0f", med(func(r LoadResult) float64 { return float64(r.RSS[name]) / (1 << 20) })))
			}
		}
		fmt.Fprintf(&b, "| %d | %d | %.0f | %.0f | %s | %.0f | %s | %s | %s | %s |\n", rate, len(rs),
			med(func(r LoadResult) float64 { return float64(r.Sent) / r.Duration.Seconds() }),
			med(func(r LoadResult) float64 { return r.Sustained }), drops,
			med(func(r LoadResult) float64 { return float64(r.Refused) }),
			time.Duration(med(func(r LoadResult) float64 { return float64(r.P50) })).Round(time.Millisecond),
			time.Duration(med(func(r LoadResult) float64 { return float64(r.P99) })).Round(time.Millisecond),
			strings.Join(cpu, " / "), strings.Join(rss, " / "))
	}
	return b.String()
}

// Machine describes where the numbers were taken.
func Machine() string {
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				mem = strings.TrimSpace(v)
			}
		}
	}
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("Machine: %d cores (%s), %s RAM, load average %s at the end, %s, %s", runtime.NumCPU(), model, mem, loadAvg(),
		time.Now().UTC().Format(time.RFC3339), runtime.Version())
}

func cpuString(m map[string]float64) string {
	var parts []string
	for _, n := range Measured {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", n, m[n]))
	}
	return strings.Join(parts, ", ")
}

func rssString(m map[string]uint64) string {
	var parts []string
	for _, n := range Measured {
		parts = append(parts, fmt.Sprintf("%s %d MB", n, m[n]>>20))
	}
	return strings.Join(parts, ", ")
}

func TestParseRates(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		err  string
	}{
		{in: "5000,10000,20000", want: []int{5000, 10000, 20000}},
		{in: " 5k, 10k ,20k", want: []int{5000, 10000, 20000}},
		{in: "1", want: []int{1}},
		{in: "", err: "empty list"},
		{in: "5000,,2", err: `"" is not a rate`},
		{in: "0", err: `"0" is not a rate`},
		{in: "-5", err: `"-5" is not a rate`},
		{in: "fast", err: `"fast" is not a rate`},
		{in: "20000000", err: "10,000,000"},
		{in: "99999999k", err: "10,000,000"},
		{in: "5kk", err: `"5kk"`},
	} {
		got, err := ParseRates(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseRates(%q): error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseRates(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func FuzzParseRates(f *testing.F) {
	for _, s := range []string{"5000,10000,20000", "5k", "", ",", "-1", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rates, err := ParseRates(s)
		if err != nil {
			return
		}
		for _, r := range rates {
			if r <= 0 || r > 10_000_000 {
				t.Fatalf("ParseRates(%q) accepted %d", s, r)
			}
		}
	})
}

func TestParseAcceptedRecords(t *testing.T) {
	real := `# HELP runtrust_ingest_records_total Records received, by event name and result.
# TYPE runtrust_ingest_records_total counter
runtrust_ingest_records_total{event="runtrust.file.open",result="accepted"} 350000
runtrust_ingest_records_total{event="runtrust.k8s.container",result="accepted"} 100500
runtrust_ingest_records_total{event="runtrust.k8s.container",result="rejected"} 3
runtrust_ingest_records_total{event="runtrust.process.exec",result="accepted"} 5.5e+06
runtrust_ingest_batches_total{result="ok"} 112
`
	for _, c := range []struct {
		name, in string
		want     int64
		err      string
	}{
		{name: "real", in: real, want: 350000 + 100500 + 5_500_000},
		{name: "no series yet", in: "# HELP runtrust_ingest_records_total x\n", want: 0},
		{name: "label order", in: `runtrust_ingest_records_total{result="accepted",event="e"} 7` + "\n", want: 7},
		{name: "timestamp after the value", in: `runtrust_ingest_records_total{result="accepted"} 7 1700000000000` + "\n", want: 7},
		{name: "no brace", in: `runtrust_ingest_records_total{result="accepted" 7` + "\n", err: "no closing brace"},
		{name: "no value", in: `runtrust_ingest_records_total{result="accepted"}` + "\n", err: "no value"},
		{name: "not a number", in: `runtrust_ingest_records_total{result="accepted"} many` + "\n", err: `"many" is not a count`},
		{name: "negative", in: `runtrust_ingest_records_total{result="accepted"} -1` + "\n", err: "not a count"},
		{name: "fraction", in: `runtrust_ingest_records_total{result="accepted"} 1.5` + "\n", err: "not a count"},
		{name: "NaN", in: `runtrust_ingest_records_total{result="accepted"} NaN` + "\n", err: "not a count"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseAcceptedRecords(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %d, %v; want %d", got, err, c.want)
			}
		})
	}
}

func FuzzParseAcceptedRecords(f *testing.F) {
	f.Add("runtrust_ingest_records_total{event=\"a\",result=\"accepted\"} 12\n")
	f.Add("runtrust_ingest_records_total{result=\"accepted\"} 1e3\nruntrust_ingest_records_total{result=\"accepted\"} 2\n")
	f.Add("runtrust_ingest_records_total{")
	f.Fuzz(func(t *testing.T, in string) {
		if n, err := ParseAcceptedRecords(in); err == nil && n < 0 {
			t.Fatalf("negative total %d", n)
		}
	})
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, c := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(5, 1, 3, 2, 4), 0.5, 3 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.5, 5 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0, time.Millisecond},
	} {
		if got := Percentile(c.in, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.in, c.p, got, c.want)
		}
	}
}
