package runtimesensorreceiver

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/runtrust/runtrust/bpf/inject"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/sensor"
)

// BenchmarkReaderStorm drives the whole receiver (ring buffer, drain, decode, records, consumer) with exec
// events at fixed rates this machine's exec path cannot reach (it tops out near 1,800 execs/s): the test-only
// program in bpf/inject writes copies of a real exec event, captured from the kernel, into the sensor's own
// ring buffer, RUNTRUST_INJECT_RATES (default 50000,100000,200000) events/s for RUNTRUST_INJECT_SECONDS
// (default 5) each, in 100 bursts a second. It fails on any drop or any event that does not become a record.
//
// The receiver's CPU is this process's CPU minus the injecting program's run time (from the kernel's BPF
// statistics); it includes the pacing loop's own wake-ups, so it is an upper bound.
func BenchmarkReaderStorm(b *testing.B) {
	execRaw, _ := captureEvents(b)
	rates := []int{50000, 100000, 200000}
	if v := os.Getenv("RUNTRUST_INJECT_RATES"); v != "" {
		rates = rates[:0]
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(b, err, "RUNTRUST_INJECT_RATES")
			rates = append(rates, n)
		}
	}
	secs := envInt("RUNTRUST_INJECT_SECONDS", 5)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	require.NoError(b, err, "enabling BPF run-time statistics")
	defer stats.Close()
	for range b.N {
		for _, rate := range rates {
			injectRound(b, execRaw, rate, secs)
		}
	}
}

type injector struct {
	objs inject.InjectObjects
	link link.Link
}

// newInjector loads bpf/inject with the sensor's ring buffer in place of its own.
func newInjector(b *testing.B, s *sensor.Sensor, raw []byte, perCall int) *injector {
	spec, err := inject.LoadInject()
	require.NoError(b, err)
	ring := s.RingBuffer()
	spec.Maps[inject.InjectMapEvents].MaxEntries = ring.MaxEntries()
	require.NoError(b, spec.Variables["target_tgid"].Set(uint32(os.Getpid())))
	in := &injector{}
	require.NoError(b, spec.LoadAndAssign(&in.objs, &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{inject.InjectMapEvents: ring}}))
	var t inject.InjectTemplate
	require.Less(b, len(raw), len(t.Data))
	t.Size, t.Count = uint32(len(raw)), uint32(perCall)
	copy(t.Data[:], raw)
	require.NoError(b, in.objs.TemplateMap.Put(uint32(0), &t))
	in.link, err = link.Tracepoint("syscalls", "sys_enter_getppid", in.objs.Inject, nil)
	require.NoError(b, err)
	return in
}

func (in *injector) counts(b *testing.B) (sent, dropped uint64) {
	require.NoError(b, in.objs.Counts.Lookup(uint32(0), &sent))
	require.NoError(b, in.objs.Counts.Lookup(uint32(1), &dropped))
	return sent, dropped
}

func (in *injector) runtime(b *testing.B) time.Duration {
	st, err := in.objs.Inject.Stats()
	require.NoError(b, err)
	return st.Runtime
}

func (in *injector) close() {
	_ = in.link.Close()
	_ = in.objs.Close()
}

func injectRound(b *testing.B, raw []byte, rate, secs int) {
	run := startBenchSensor(b)
	in := newInjector(b, run.r.sensor, raw, rate/100)
	defer in.close()

	cpu0, _ := cpuTimes()
	start := time.Now()
	next := start
	for range secs * 100 {
		_ = unix.Getppid() // one burst of rate/100 events
		next = next.Add(10 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
	offered := time.Since(start)
	sent, dropped := in.counts(b)
	// Let the reader catch up; other processes' events only add records.
	for deadline := time.Now().Add(10 * time.Second); run.sink.records.Load() < int64(sent) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	caughtUp := time.Since(start) - offered
	cpu1, _ := cpuTimes()
	receiverCPU := cpu1 - cpu0 - in.runtime(b)
	records := run.sink.records.Load()
	st := run.stop(b)

	b.Logf("%d events/s for %v: sent %d, dropped %d (sensor's own drops %d), records %d, caught up %v after the last burst, receiver CPU %v (%.1f us per event, %.0f%% of one CPU), injecting program %v",
		rate, offered.Round(time.Millisecond), sent, dropped, st.Dropped, records, caughtUp.Round(time.Millisecond),
		receiverCPU.Round(time.Millisecond), float64(receiverCPU.Microseconds())/float64(max(sent, 1)),
		100*receiverCPU.Seconds()/offered.Seconds(), in.runtime(b).Round(time.Millisecond))
	fmt.Printf("reader storm %d events/s: sent %d, dropped %d, records %d, receiver CPU %.1f us/event (%.0f%% of one CPU)\n",
		rate, sent, dropped, records, float64(receiverCPU.Microseconds())/float64(max(sent, 1)), 100*receiverCPU.Seconds()/offered.Seconds())
	b.ReportMetric(float64(dropped), fmt.Sprintf("drops@%d/s", rate))
	b.ReportMetric(float64(receiverCPU.Microseconds())/float64(max(sent, 1)), fmt.Sprintf("us/event@%d/s", rate))
	if want := uint64(rate * secs); sent < want*99/100 {
		b.Errorf("%d events/s: the injector sent %d events, want about %d", rate, sent, want)
	}
	if dropped > 0 || st.Dropped > 0 {
		b.Errorf("%d events/s: %d events dropped by the injector, %d by the sensor", rate, dropped, st.Dropped)
	}
	if records < int64(sent) {
		b.Errorf("%d events/s: %d events sent, only %d records", rate, sent, records)
	}
}
