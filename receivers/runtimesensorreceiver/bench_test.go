package runtimesensorreceiver

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/runtrust/runtrust/internal/storm"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/metadata"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/sensor"
)

// The storm benchmarks run a fixed storm once per round, alternating without and with the sensor attached in the
// same process, and report the medians. Run them alone:
//
//	go test -run='^$' -bench=Storm -benchtime=1x ./receivers/runtimesensorreceiver/
//
// RUNTRUST_STORM_EXECS (default 20000), RUNTRUST_STORM_OPENS (default 200000) and RUNTRUST_STORM_ROUNDS
// (default 3) size them; RUNTRUST_STORM_POLL overrides poll_interval. BenchmarkReaderStorm
// (reader_storm_bench_test.go) drives the reader at rates real execs cannot reach here, and BenchmarkPipeline
// (pipeline_bench_test.go) is the user-space cost per event without the kernel. docs/performance.md has the
// numbers.

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type stormResult struct {
	wall           time.Duration
	selfCPU, child time.Duration // this process's CPU (driver + sensor pipeline), the children's
}

func cpuTimes() (self, children time.Duration) {
	var s, c syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(s.Utime) + tv(s.Stime), tv(c.Utime) + tv(c.Stime)
}

func measure(f func()) stormResult {
	s0, c0 := cpuTimes()
	start := time.Now()
	f()
	wall := time.Since(start)
	s1, c1 := cpuTimes()
	return stormResult{wall: wall, selfCPU: s1 - s0, child: c1 - c0}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// staticBinary is storm.StaticBinary in a temporary directory.
func staticBinary(b *testing.B) string {
	p, err := storm.StaticBinary(b.TempDir())
	require.NoError(b, err)
	return p
}

// forkDriver is storm.ForkDriver in a temporary directory.
func forkDriver(b *testing.B) string {
	p, err := storm.ForkDriver(b.TempDir())
	require.NoError(b, err)
	return p
}

// execStorm runs the C driver once: workers (one per CPU) fork+exec bin n times in total.
func execStorm(b *testing.B, driver, bin string, n int) {
	require.NoError(b, storm.Execs(driver, bin, n, runtime.NumCPU()))
}

func openStorm(b *testing.B, files []string, n int) {
	require.NoError(b, storm.Opens(files, n))
}

type sensorRun struct {
	r    *sensorReceiver
	sink *countingSink
}

func startBenchSensor(b *testing.B) *sensorRun {
	cfg := createDefaultConfig().(*Config)
	cfg.NodeName = "bench"
	cfg.HealthInterval = time.Hour
	if d, err := time.ParseDuration(os.Getenv("RUNTRUST_STORM_POLL")); err == nil {
		cfg.PollInterval = d
	}
	if err := sensor.Preflight(true); err != nil {
		b.Skipf("the runtime sensor cannot load on this machine: %v", err)
	}
	sink := new(countingSink)
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, sink, nil)
	require.NoError(b, err)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	return &sensorRun{r: r, sink: sink}
}

// countingSink counts the records it is handed and keeps none (a storm would otherwise hold them all in memory,
// and the garbage collector's work on them would count as the sensor's CPU).
type countingSink struct{ records atomic.Int64 }

func (s *countingSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *countingSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.records.Add(int64(ld.LogRecordCount()))
	return nil
}

func (s *sensorRun) stop(b *testing.B) sensor.Stats {
	st, err := s.r.sensor.Stats()
	require.NoError(b, err)
	require.NoError(b, s.r.Shutdown(context.Background()))
	return st
}

// runStorm alternates the storm without and with the sensor. Each "with" round must count at least minEvents
// events (the storm's own; other processes on the machine can only add to it).
func runStorm(b *testing.B, name string, storm func(), eventsOf func(sensor.Stats) uint64, minEvents uint64) {
	rounds := envInt("RUNTRUST_STORM_ROUNDS", 3)
	var base, with, sensorCPU []time.Duration
	var rates []float64
	var drops, events uint64
	for round := 0; round < rounds; round++ {
		without := measure(storm)
		s := startBenchSensor(b)
		withSensor := measure(storm)
		// Let the reader drain what is still in the ring buffer before counting.
		time.Sleep(300 * time.Millisecond)
		drainStart, _ := cpuTimes()
		st := s.stop(b)
		drainEnd, _ := cpuTimes()
		base = append(base, without.wall)
		with = append(with, withSensor.wall)
		// The sensor's CPU: this process's CPU with the sensor minus without (the storm driver is the same).
		sensorCPU = append(sensorCPU, withSensor.selfCPU-without.selfCPU+(drainEnd-drainStart))
		ev := eventsOf(st)
		if ev < minEvents {
			b.Errorf("%s round %d: the sensor counted %d events, want at least %d", name, round, ev, minEvents)
		}
		events += ev
		drops += st.Dropped
		rates = append(rates, float64(ev)/withSensor.wall.Seconds())
		b.Logf("%s round %d: without %v, with %v (%.1f%%), events %d, dropped %d, dedup hits %d, sensor CPU %v",
			name, round, without.wall, withSensor.wall, 100*(withSensor.wall.Seconds()/without.wall.Seconds()-1),
			ev, st.Dropped, st.DedupHits, sensorCPU[len(sensorCPU)-1])
	}
	mb, mw := median(base), median(with)
	sort.Float64s(rates)
	b.ReportMetric(100*(mw.Seconds()/mb.Seconds()-1), "slowdown_%")
	b.ReportMetric(mb.Seconds(), "s_without")
	b.ReportMetric(mw.Seconds(), "s_with")
	b.ReportMetric(rates[len(rates)/2], "events/s")
	b.ReportMetric(float64(drops), "drops")
	b.ReportMetric(median(sensorCPU).Seconds(), "sensor_cpu_s")
	fmt.Printf("%s: median without %v, with %v, slowdown %.1f%%, events/s %.0f, drops %d (of %d), sensor CPU %v\n",
		name, mb, mw, 100*(mw.Seconds()/mb.Seconds()-1), rates[len(rates)/2], drops, events, median(sensorCPU))
}

func BenchmarkExecStorm(b *testing.B) {
	bin := staticBinary(b)
	driver := forkDriver(b)
	n := envInt("RUNTRUST_STORM_EXECS", 20000)
	for range b.N {
		runStorm(b, fmt.Sprintf("exec storm (%d execs, %d C workers)", n, runtime.NumCPU()),
			func() { execStorm(b, driver, bin, n) },
			func(st sensor.Stats) uint64 { return st.Exec }, uint64(n))
	}
}

func BenchmarkOpenStorm(b *testing.B) {
	files, err := storm.Files(b.TempDir(), 1000)
	require.NoError(b, err)
	n := envInt("RUNTRUST_STORM_OPENS", 200000)
	for range b.N {
		runStorm(b, fmt.Sprintf("open storm (%d opens of %d files)", n, len(files)), func() { openStorm(b, files, n) },
			func(st sensor.Stats) uint64 { return st.Open + st.DedupHits }, uint64(n))
	}
}
