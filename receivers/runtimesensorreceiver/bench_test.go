package runtimesensorreceiver

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

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

// tinyELF is a complete static x86-64 program of 129 bytes: exit(0). One ELF header, one PT_LOAD segment.
func tinyELF() []byte {
	code := []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax, 60; xor edi, edi; syscall
	const base, hdr = 0x400000, 64 + 56
	b := make([]byte, hdr, hdr+len(code))
	le := binary.LittleEndian
	copy(b, "\x7fELF\x02\x01\x01") // 64-bit, little endian, version 1
	le.PutUint16(b[16:], 2)        // ET_EXEC
	le.PutUint16(b[18:], 62)       // EM_X86_64
	le.PutUint32(b[20:], 1)        // EV_CURRENT
	le.PutUint64(b[24:], base+hdr) // entry
	le.PutUint64(b[32:], 64)       // program headers at 64
	le.PutUint16(b[52:], 64)       // ELF header size
	le.PutUint16(b[54:], 56)       // program header size
	le.PutUint16(b[56:], 1)        // one program header
	ph := b[64:]
	le.PutUint32(ph[0:], 1)                      // PT_LOAD
	le.PutUint32(ph[4:], 5)                      // R+X
	le.PutUint64(ph[16:], base)                  // vaddr
	le.PutUint64(ph[24:], base)                  // paddr
	le.PutUint64(ph[32:], uint64(hdr+len(code))) // filesz
	le.PutUint64(ph[40:], uint64(hdr+len(code))) // memsz
	le.PutUint64(ph[48:], 0x1000)                // align
	return append(b, code...)
}

// staticBinary returns a do-nothing static binary to exec: the 129-byte ELF on amd64, else a Go program built
// with CGO off (whose runtime start-up then dominates each exec).
func staticBinary(b *testing.B) string {
	dir := b.TempDir()
	if runtime.GOARCH == "amd64" {
		p := filepath.Join(dir, "exit0")
		require.NoError(b, os.WriteFile(p, tinyELF(), 0o755))
		return p
	}
	src := filepath.Join(dir, "main.go")
	require.NoError(b, os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644))
	out := filepath.Join(dir, "nop")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", out, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	cmd.Dir = dir
	o, err := cmd.CombinedOutput()
	require.NoError(b, err, "%s", o)
	return out
}

// forkDriverC is the exec storm's driver: P worker processes between them fork+exec the binary N times in total,
// each waiting for its child, so the exec rate is bounded by the kernel rather than by forking a Go process.
// The workers use vfork (as posix_spawn and Go's os/exec do): on the measuring VM a plain fork of even this
// small static process costs ~1 ms (copying the address space), vfork ~50 µs, so vfork leaves exec itself as
// the bound. Usage: driver BIN N P. It prints the number of execs, all of which exited 0.
const forkDriverC = `#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
	if (argc != 4) return 2;
	char *bin = argv[1];
	long n = atol(argv[2]), p = atol(argv[3]);
	char *cargv[] = {bin, "storm", NULL};
	char *cenv[] = {NULL};
	for (long w = 0; w < p; w++) {
		long share = n / p + (w < n % p);
		pid_t wp = fork();
		if (wp < 0) { perror("fork"); return 1; }
		if (wp == 0) {
			for (long i = 0; i < share; i++) {
				pid_t c = vfork();
				if (c < 0) { perror("vfork"); _exit(1); }
				if (c == 0) { execve(bin, cargv, cenv); _exit(127); }
				int st;
				if (waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(1);
			}
			_exit(0);
		}
	}
	long ok = 0;
	for (long w = 0; w < p; w++) {
		int st;
		if (wait(&st) < 0) { perror("wait"); return 1; }
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
	}
	if (ok != p) { fprintf(stderr, "%ld of %ld workers failed\n", p - ok, p); return 1; }
	printf("%ld\n", n);
	return 0;
}
`

// forkDriver compiles forkDriverC with gcc -O2 -static into a temporary directory.
func forkDriver(b *testing.B) string {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		b.Fatalf("the exec storm needs gcc to build its C fork+exec driver: apt-get install gcc (%v)", err)
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "forkdriver.c")
	require.NoError(b, os.WriteFile(src, []byte(forkDriverC), 0o644))
	out := filepath.Join(dir, "forkdriver")
	if o, err := exec.Command(gcc, "-O2", "-static", "-o", out, src).CombinedOutput(); err != nil {
		b.Fatalf("gcc -O2 -static forkdriver.c: %v\n%s", err, o)
	}
	return out
}

// execStorm runs the C driver once: workers (one per CPU) fork+exec bin n times in total.
func execStorm(b *testing.B, driver, bin string, n int) {
	out, err := exec.Command(driver, bin, strconv.Itoa(n), strconv.Itoa(runtime.NumCPU())).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		b.Fatalf("fork driver: %v: %s", err, stderr)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(n) {
		b.Fatalf("fork driver reported %q execs, want %d", got, n)
	}
}

func openStorm(b *testing.B, files []string, n int) {
	for i := 0; i < n; i++ {
		fd, err := syscall.Open(files[i%len(files)], syscall.O_RDONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		_ = syscall.Close(fd)
	}
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
	dir := b.TempDir()
	files := make([]string, 1000)
	for i := range files {
		files[i] = filepath.Join(dir, fmt.Sprintf("f%04d", i))
		require.NoError(b, os.WriteFile(files[i], nil, 0o644))
	}
	n := envInt("RUNTRUST_STORM_OPENS", 200000)
	for range b.N {
		runStorm(b, fmt.Sprintf("open storm (%d opens of %d files)", n, len(files)), func() { openStorm(b, files, n) },
			func(st sensor.Stats) uint64 { return st.Open + st.DedupHits }, uint64(n))
	}
}
