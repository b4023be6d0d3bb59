package testbed

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/runtrust/runtrust/internal/records"
)

// The peers: what a user would run instead of the runtime sensor to see every exec and open on a host, each set
// up to capture the same events and write each one down (BenchmarkPeers, docs/performance.md):
//   - runtrust: the built collector, the runtime sensor (containers_only off: host processes too) → a file;
//   - auditd: execve and open/openat rules, each event written to its log (raw format, no flush per event);
//   - bpftrace: the same tracepoints the sensor's fallback uses, one printf per event, to a file.
const (
	PeerNone     = "none"
	PeerRuntrust = "runtrust"
	// PeerRuntrustEvery is the sensor with its in-kernel open dedup off (dedup_ttl 1ns): every open written
	// down, as the other tools do.
	PeerRuntrustEvery = "runtrust, every open"
	PeerAuditd        = "auditd"
	PeerBpftrace      = "bpftrace"
)

// Peers are the tools BenchmarkPeers measures, "none" (the storm alone) first.
var Peers = []string{PeerNone, PeerRuntrust, PeerRuntrustEvery, PeerAuditd, PeerBpftrace}

// PeerCount is what one tool wrote down of one storm.
type PeerCount struct {
	Execs, Opens int // events of the storm's execs (by the executed file) and opens (by the storm's pid)
	// Folded is what the tool counted but deliberately did not write: the sensor's in-kernel open dedup
	// (runtrust.sensor.dedup_hits, every process's).
	Folded int
	Drops  int // what the tool says it lost
}

// Peer is one running tool.
type Peer struct {
	Name string
	dir  string
	proc *Process
	// cpu is the process ids whose CPU is the tool's (auditd: the daemon and the kernel's kauditd thread).
	cpu   []int
	lost0 int // auditd's lost counter at start
}

// StartPeer starts tool name with its output in dir and returns once it captures.
func StartPeer(t testing.TB, name, dir string) *Peer {
	t.Helper()
	p := &Peer{Name: name, dir: dir}
	switch name {
	case PeerNone:
	case PeerRuntrust, PeerRuntrustEvery:
		dedupTTL := "0s"
		if name == PeerRuntrustEvery {
			dedupTTL = "1ns"
		}
		health := FreePort(t)
		config := fmt.Sprintf(`receivers:
  runtimesensor:
    containers_only: false
    file_opens: true
    dedup_ttl: %s
    health_interval: 1s
    host_containers: {containerd_socket: "", docker_socket: "", podman_socket: ""}
exporters:
  file:
    path: %s
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
service:
  telemetry:
    metrics:
      level: none
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [runtimesensor]
      exporters: [file]
`, dedupTTL, filepath.Join(dir, "runtrust.jsonl"), health)
		writeFile(t, filepath.Join(dir, "runtrust.yaml"), config)
		p.proc = StartProcess(t, "runtrust", CollectorBinary(t), nil, "--config", filepath.Join(dir, "runtrust.yaml"))
		WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", health), p.proc)
		p.cpu = []int{p.proc.PID()}
	case PeerAuditd:
		p.startAuditd(t)
	case PeerBpftrace:
		needTool(t, "bpftrace", "bpftrace")
		prog := `tracepoint:sched:sched_process_exec { printf("exec %d %s\n", pid, str(args->filename)); }
tracepoint:syscalls:sys_enter_openat { printf("open %d %s\n", pid, str(args->filename)); }
tracepoint:syscalls:sys_enter_open { printf("open %d %s\n", pid, str(args->filename)); }`
		p.proc = StartProcess(t, "bpftrace", "bpftrace", nil, "-B", "full", "-o", filepath.Join(dir, "bpftrace.out"), "-e", prog)
		WaitFor(t, 60*time.Second, func() bool {
			if done, err := p.proc.Exited(); done {
				t.Fatalf("bpftrace exited: %v\n%s", err, p.proc.Output())
			}
			// "Attaching N probes..." goes to -o's file, or to stderr.
			b, _ := os.ReadFile(filepath.Join(dir, "bpftrace.out"))
			return bytes.Contains(b, []byte("Attaching")) || strings.Contains(p.proc.Output(), "Attaching")
		}, p.proc.Output)
		time.Sleep(500 * time.Millisecond) // "Attaching" is printed before the probes are attached
		p.cpu = []int{p.proc.PID()}
	default:
		t.Fatalf("no peer %q (want one of %v)", name, Peers)
	}
	return p
}

func needTool(t testing.TB, bin, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("%s not found: apt-get install -y %s (make bench-peers and .ci/run do)", bin, pkg)
	}
}

// auditdConf writes every event to the log without a flush per event (flush = NONE, as a loaded host is set
// up) and never acts on disk space.
const auditdConf = `log_file = %s
log_format = RAW
flush = NONE
freq = 0
max_log_file = 0
max_log_file_action = IGNORE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
write_logs = yes
local_events = yes
`

func (p *Peer) startAuditd(t testing.TB) {
	t.Helper()
	needTool(t, "auditd", "auditd")
	needTool(t, "auditctl", "auditd")
	st := auditStatus(t)
	if st["pid"] != 0 {
		t.Fatalf("an audit daemon (pid %d) already runs on this machine: the kernel takes one", st["pid"])
	}
	// The kernel keeps auditing on, and the backlog as set, after the daemon stops: put both back.
	enabled, backlog := strconv.Itoa(st["enabled"]), strconv.Itoa(st["backlog_limit"])
	t.Cleanup(func() { _, _ = exec.Command("auditctl", "-e", enabled, "-b", backlog).CombinedOutput() })
	writeFile(t, filepath.Join(p.dir, "auditd.conf"), fmt.Sprintf(auditdConf, filepath.Join(p.dir, "audit.log")))
	if err := os.Chmod(filepath.Join(p.dir, "auditd.conf"), 0o640); err != nil { // auditd refuses a world-readable one
		t.Fatal(err)
	}
	p.proc = StartProcess(t, "auditd", "auditd", nil, "-n", "-c", p.dir)
	WaitFor(t, 30*time.Second, func() bool {
		if done, err := p.proc.Exited(); done {
			t.Fatalf("auditd exited: %v\n%s", err, p.proc.Output())
		}
		return auditStatus(t)["pid"] == p.proc.PID()
	}, p.proc.Output)
	// 8192: a common production backlog; the kernel makes a process wait (backlog_wait_time) rather than lose
	// its event while the backlog is full.
	auditctl(t, "-b", "8192")
	auditctl(t, "-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-k", "rtexec")
	auditctl(t, "-a", "always,exit", "-F", "arch=b64", "-S", "open", "-S", "openat", "-k", "rtopen")
	t.Cleanup(func() { _, _ = exec.Command("auditctl", "-D").CombinedOutput() })
	p.lost0 = auditStatus(t)["lost"]
	p.cpu = []int{p.proc.PID()}
	if k := kernelThread("kauditd"); k > 0 {
		p.cpu = append(p.cpu, k)
	}
}

func auditctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("auditctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("auditctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// auditStatus is `auditctl -s` as numbers (enabled, pid, lost, backlog, …).
func auditStatus(t testing.TB) map[string]int {
	t.Helper()
	st, err := ParseAuditStatus(auditctl(t, "-s"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// ParseAuditStatus reads `auditctl -s`: lines of "name value"; values that are not numbers are left out.
func ParseAuditStatus(out string) (map[string]int, error) {
	st := map[string]int{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.Atoi(f[1]); err == nil {
			st[f[0]] = v
		}
	}
	if _, ok := st["pid"]; !ok {
		return nil, fmt.Errorf("auditctl -s printed no pid line: %q", printableTail(out))
	}
	return st, nil
}

func printableTail(s string) string {
	if len(s) > 200 {
		s = s[len(s)-200:]
	}
	return s
}

// kernelThread is the pid of the kernel thread named comm, or 0.
func kernelThread(comm string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil && strings.TrimSpace(string(b)) == comm {
			return pid
		}
	}
	return 0
}

// PeerSettle is how long a tool is left after a storm to write down what it holds (the sensor's ring buffer
// and batch, auditd's backlog, bpftrace's perf buffers), and for the sensor to send a health record.
const PeerSettle = 2 * time.Second

// CPUTicks is the tool's CPU so far, in clock ticks.
func (p *Peer) CPUTicks(t testing.TB) uint64 {
	var sum uint64
	for _, pid := range p.cpu {
		// /proc/<pid>/stat, not ReadUsage: a kernel thread (kauditd) has no memory to read.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		st, err := ParseProcStat(string(b))
		if err != nil {
			t.Fatalf("%s: process %d: %v", p.Name, pid, err)
		}
		sum += st.CPUTicks
	}
	return sum
}

// Stop ends the tool and counts, of what it wrote down, the execs of bin and the opens of process pid. Give
// it PeerSettle after the storm first, to write down what it still holds.
func (p *Peer) Stop(t testing.TB, bin string, pid int) PeerCount {
	t.Helper()
	switch p.Name {
	case PeerNone:
		return PeerCount{}
	case PeerRuntrust, PeerRuntrustEvery:
		stopProc(t, p.proc, syscall.SIGTERM)
		b, err := os.ReadFile(filepath.Join(p.dir, "runtrust.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := CountRuntrust(b, bin, pid)
		if err != nil {
			t.Fatal(err)
		}
		return c
	case PeerAuditd:
		lost := auditStatus(t)["lost"] - p.lost0
		auditctl(t, "-D")
		stopProc(t, p.proc, syscall.SIGTERM)
		b, err := os.ReadFile(filepath.Join(p.dir, "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		c := CountAudit(b, bin, pid)
		c.Drops = lost
		return c
	case PeerBpftrace:
		stopProc(t, p.proc, syscall.SIGINT) // bpftrace says what it lost as it exits
		b, err := os.ReadFile(filepath.Join(p.dir, "bpftrace.out"))
		if err != nil {
			t.Fatal(err)
		}
		return CountBpftrace(append(b, p.proc.Output()...), bin, pid)
	}
	return PeerCount{}
}

func stopProc(t testing.TB, p *Process, sig syscall.Signal) {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	if exited, _ := p.Wait(60 * time.Second); !exited {
		t.Errorf("%s did not exit within 60 s of %v", p.Name, sig)
		p.Kill()
	}
}

// CountRuntrust counts, in the file exporter's JSON lines, the exec records of bin and the open records of pid,
// and takes the drops and the in-kernel dedup hits from the last health record.
func CountRuntrust(file []byte, bin string, pid int) (PeerCount, error) {
	var c PeerCount
	var u plog.JSONUnmarshaler
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		ld, err := u.UnmarshalLogs(sc.Bytes())
		if err != nil {
			return c, fmt.Errorf("line %d of the file exporter's output: %w", n, err)
		}
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					a := lr.Attributes()
					switch lr.EventName() {
					case records.EventProcessExec:
						if v, ok := a.Get(records.AttrProcessExecutablePath); ok && v.Str() == bin {
							c.Execs++
						}
					case records.EventFileOpen:
						if v, ok := a.Get(records.AttrProcessPID); ok && v.Int() == int64(pid) {
							c.Opens++
						}
					case records.EventSensorHealth:
						if v, ok := a.Get(records.AttrSensorDedupHits); ok {
							c.Folded = int(v.Int())
						}
						if v, ok := a.Get(records.AttrSensorEventsDropped); ok {
							c.Drops = int(v.Int())
						}
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	return c, nil
}

// CountAudit counts, in a raw audit log, the execve SYSCALL records (key rtexec) whose exe is bin and the open
// ones (key rtopen) of process pid.
func CountAudit(log []byte, bin string, pid int) PeerCount {
	var c PeerCount
	exe, proc := ` exe="`+bin+`"`, ` pid=`+strconv.Itoa(pid)+` `
	for line := range strings.Lines(string(log)) {
		if !strings.HasPrefix(line, "type=SYSCALL ") {
			continue
		}
		switch {
		case strings.Contains(line, `key="rtexec"`) && strings.Contains(line, exe):
			c.Execs++
		case strings.Contains(line, `key="rtopen"`) && strings.Contains(line, proc):
			c.Opens++
		}
	}
	return c
}

// CountBpftrace counts the "exec <pid> <path>" lines of bin and the "open <pid> <path>" lines of pid, and sums
// what bpftrace says it lost ("Lost N events").
func CountBpftrace(out []byte, bin string, pid int) PeerCount {
	var c PeerCount
	ours := strconv.Itoa(pid)
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\n")
		f := strings.SplitN(line, " ", 3)
		switch {
		case len(f) == 3 && f[0] == "exec" && f[2] == bin:
			c.Execs++
		case len(f) == 3 && f[0] == "open" && f[1] == ours:
			c.Opens++
		case strings.HasPrefix(line, "Lost "):
			if w := strings.Fields(line); len(w) > 1 {
				if n, err := strconv.Atoi(w[1]); err == nil && n > 0 {
					c.Drops += n
				}
			}
		}
	}
	return c
}
