package testbed

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Real lines (trimmed to the fields that matter stay exact), and names that break naive splitting.
	real := "1234 (otelcol-runtrust) S 1200 1234 1200 0 -1 4194560 9612 0 0 0 250 75 0 0 20 0 14 0 51234 2000000000 30000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0"
	for _, c := range []struct {
		name, line string
		want       ProcStat
		err        string
	}{
		{name: "collector", line: real, want: ProcStat{PPID: 1200, CPUTicks: 325, StartTicks: 51234}},
		{name: "name with spaces and parens", line: strings.Replace(real, "(otelcol-runtrust)", "(postgres: a) (b) c)", 1),
			want: ProcStat{PPID: 1200, CPUTicks: 325, StartTicks: 51234}},
		{name: "empty", line: "", err: "no (command name)"},
		{name: "no parens", line: "1234 otelcol S 1", err: "no (command name)"},
		{name: "reversed parens", line: "1 )x( S 1 2 3", err: "no (command name)"},
		{name: "truncated", line: "1234 (x) S 1200 1234", err: "want at least 20"},
		{name: "utime not a number", line: strings.Replace(real, " 250 75 ", " 2x0 75 ", 1), err: `utime "2x0"`},
		{name: "negative ppid", line: strings.Replace(real, "S 1200", "S -5", 1), err: `ppid "-5"`},
		{name: "ppid beyond pid_max", line: strings.Replace(real, "S 1200", "S 99999999", 1), err: "pid limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseProcStat(c.line)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	for _, c := range []struct {
		name, status string
		want         uint64
		err          string
	}{
		{name: "process", status: "Name:\tpostgres\nVmPeak:\t  225000 kB\nVmRSS:\t   28400 kB\nRssAnon:\t 3000 kB\n", want: 28400 * 1024},
		{name: "kernel thread", status: "Name:\tkworker/0:1\nState:\tI (idle)\n", err: "no VmRSS"},
		{name: "no unit", status: "VmRSS:\t 28400\n", err: `want "<n> kB"`},
		{name: "other unit", status: "VmRSS:\t 28 MB\n", err: `want "<n> kB"`},
		{name: "not a number", status: "VmRSS:\t 2e3 kB\n", err: "not a size"},
		{name: "absurd", status: "VmRSS:\t 99999999999999999 kB\n", err: "not a size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseRSS(c.status)
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

// TestParsePeakRSS reads the high-water mark, not the current resident set beside it.
func TestParsePeakRSS(t *testing.T) {
	got, err := ParsePeakRSS("Name:\totelcol\nVmHWM:\t  322000 kB\nVmRSS:\t   87000 kB\n")
	if err != nil || got != 322000*1024 {
		t.Fatalf("got %d, %v; want %d", got, err, 322000*1024)
	}
	if _, err := ParsePeakRSS("VmRSS:\t 87000 kB\n"); err == nil || !strings.Contains(err.Error(), "no VmHWM") {
		t.Fatalf("error %v, want one naming the missing VmHWM", err)
	}
}

// TestReadUsageSelf reads this test process: it has used CPU and holds memory, and a busy loop shows up.
func TestReadUsageSelf(t *testing.T) {
	a, err := ReadUsage(os.Getpid(), false)
	if err != nil {
		t.Fatal(err)
	}
	if a.RSS < 1<<20 {
		t.Fatalf("RSS %d bytes: implausibly small for a Go test binary", a.RSS)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	b, err := ReadUsage(os.Getpid(), false)
	if err != nil {
		t.Fatal(err)
	}
	// 300 ms of spinning is 100% of a core; on a loaded machine the scheduler may give it less.
	if p := CPUPercent(a, b); p < 20 || p > 250 {
		t.Fatalf("CPU %.0f%% over a busy loop", p)
	}
	if _, err := ReadUsage(1<<22+1, false); err == nil {
		t.Fatal("no error for a pid that cannot exist")
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 10 20 0 0 20 0 1 0 5 0 0")
	f.Add("1234 (a (b) c) R 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 0 0")
	f.Add(")(")
	f.Fuzz(func(t *testing.T, line string) {
		st, err := ParseProcStat(line)
		if err == nil && st.PPID > 1<<22 {
			t.Fatalf("accepted ppid %d", st.PPID)
		}
	})
}

func FuzzParseRSS(f *testing.F) {
	f.Add("VmRSS:\t 1024 kB\n")
	f.Add("Name: x\n")
	f.Add("VmRSS: 1 kB 2")
	f.Fuzz(func(t *testing.T, status string) {
		if rss, err := ParseRSS(status); err == nil && rss%1024 != 0 {
			t.Fatalf("RSS %d is not whole kB", rss)
		}
	})
}
