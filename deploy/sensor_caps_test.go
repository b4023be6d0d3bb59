package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/cgrouptest"
	"github.com/runtrust/runtrust/internal/loopback"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/testbed"
)

// TestSensorRunsWithChartCapabilities runs the built collector's sensor on the real kernel with exactly the
// capabilities the chart's DaemonSet grants (uid 0, every other capability out of the bounding set, no new
// privileges: what the container runtime gives the pod), then with each one taken away, to show that the set is
// enough and that each member is needed for what docs/install.md says it is for:
//
//   - all four: the programs load, and a container process running as another user, executing a file it may
//     run but not read, is recorded with the file's SHA-256;
//   - without BPF or PERFMON: the sensor refuses to start and names the capability;
//   - without SYS_PTRACE (the /proc/<pid>/root of another user's process) or DAC_READ_SEARCH (a file root does
//     not own and may not read): the exec is recorded, without a hash.
func TestSensorRunsWithChartCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the sensor as the DaemonSet does, as uid 0 with four capabilities: run it as root")
	}
	m := decodeManifests(t, mustTemplate(t, "runtrust", []string{testdata("values-minimal.yaml")},
		"auth.joinKey=", "auth.token=rtc_test", "sensor.enabled=true"))
	ds := m.daemonSets["rt-runtrust-sensor"]
	if ds == nil {
		t.Fatalf("no sensor DaemonSet in %v", m.kinds)
	}
	chartCaps := capNames(ds.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add)
	ensureTracefs(t)

	// A file that others may execute but not read, owned by neither root nor the user who runs it.
	dir, err := os.MkdirTemp("/tmp", "runtrust-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "exec-only-sleep")
	copyFile(t, "/bin/sleep", bin)
	if err := os.Chown(bin, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o711); err != nil {
		t.Fatal(err)
	}
	wantSum := fileSHA256(t, bin)

	for _, c := range []struct {
		name      string
		drop      string
		startErr  string
		wantHash  bool
		hashError string
	}{
		{name: "the chart's set", wantHash: true},
		{name: "without BPF", drop: "BPF", startErr: "CAP_BPF"},
		{name: "without PERFMON", drop: "PERFMON", startErr: "CAP_PERFMON"},
		{name: "without SYS_PTRACE", drop: "SYS_PTRACE"},
		{name: "without DAC_READ_SEARCH", drop: "DAC_READ_SEARCH"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var caps []string
			for _, cp := range chartCaps {
				if cp != c.drop {
					caps = append(caps, cp)
				}
			}
			if c.drop != "" && len(caps) == len(chartCaps) {
				t.Fatalf("the chart does not grant %s any more: update this test and docs/install.md", c.drop)
			}
			// The container cgroup exists before the sensor starts, so containers_only (the chart's default)
			// allows it from the first scan.
			cg, id := cgrouptest.Containerd(t)
			col := startCappedSensor(t, caps)
			if c.startErr != "" {
				exited, err := col.Wait(60 * time.Second)
				if !exited {
					t.Fatalf("the sensor still runs 60s after starting without %s:\n%s", c.drop, col.Output())
				}
				if err == nil {
					t.Fatalf("the sensor started without %s:\n%s", c.drop, col.Output())
				}
				for _, w := range []string{"not privileged", c.startErr} {
					if !strings.Contains(col.Output(), w) {
						t.Errorf("the collector's output lacks %q:\n%s", w, col.Output())
					}
				}
				return
			}
			col.waitHealthy(t)
			if got, want := col.effectiveCaps(t), capMask(t, caps); got != want {
				t.Fatalf("the collector runs with capabilities %#x, want %#x (%v)", got, want, caps)
			}

			// As uid 65534, in the container cgroup: a shell (the parent, same user) runs the file.
			script := fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec setpriv --reuid=65534 --regid=65534 --clear-groups -- /bin/sh -c '%s 1; true'`, cg, bin)
			if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
				t.Fatalf("running %s: %v\n%s", bin, err, out)
			}
			rec := col.waitExec(t, bin)
			if rec.Attrs[records.AttrContainerID] != id {
				t.Errorf("container.id = %v, want %s", rec.Attrs[records.AttrContainerID], id)
			}
			sum, hashed := rec.Attrs[records.AttrProcessExecutableSHA256]
			switch {
			case c.wantHash && sum != wantSum:
				t.Errorf("%s = %v, want %s\n%s", records.AttrProcessExecutableSHA256, sum, wantSum, col.Output())
			case !c.wantHash && hashed:
				t.Errorf("hashed %s without %s: the capability is not needed for it", bin, c.drop)
			}
		})
	}
}

// cappedCollector is the collector running under setpriv, with where its records and health endpoint are.
type cappedCollector struct {
	*testbed.Process
	file   string
	health string
}

// startCappedSensor starts the collector with the sensor → file pipeline under setpriv: uid 0 with the bounding
// set cut to caps (so exec leaves exactly those permitted and effective), nothing inheritable, no_new_privs.
func startCappedSensor(t *testing.T, caps []string) *cappedCollector {
	t.Helper()
	dir := t.TempDir()
	c := &cappedCollector{file: filepath.Join(dir, "records.jsonl"), health: "127.0.0.1:" + strconv.Itoa(loopback.TestPort(t))}
	config := fmt.Sprintf(`
receivers:
  runtimesensor:
    node_name: caps-test
    containers_only: true
    file_opens: true
    health_interval: 1s
exporters:
  file:
    path: %s
    flush_interval: 100ms
extensions:
  health_check:
    endpoint: %s
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [runtimesensor]
      exporters: [file]
`, c.file, c.health)
	cfg := filepath.Join(dir, "config.yaml")
	writeTestFile(t, cfg, config)
	bounding := "-all"
	for _, cp := range caps {
		bounding += ",+" + strings.ToLower(cp)
	}
	c.Process = testbed.StartProcess(t, "collector", "setpriv", nil, "--no-new-privs", "--inh-caps=-all",
		"--bounding-set="+bounding, "--", testbed.CollectorBinary(t), "--config", cfg)
	return c
}

func (c *cappedCollector) waitHealthy(t *testing.T) {
	testbed.WaitHTTP(t, "http://"+c.health+"/", c.Process)
}

// effectiveCaps reads the collector process's CapEff.
func (c *cappedCollector) effectiveCaps(t *testing.T) uint64 {
	t.Helper()
	status := readFile(t, fmt.Sprintf("/proc/%d/status", c.PID()))
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no CapEff in /proc/<pid>/status")
	return 0
}

func (c *cappedCollector) waitExec(t *testing.T, path string) testbed.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, r := range testbed.ReadFileExport(t, c.file) {
			if r.EventName == records.EventProcessExec && r.Attrs[records.AttrProcessExecutablePath] == path {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no exec record of %s after 30s:\n%s", path, c.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// capMask is the CapEff bit mask of Kubernetes capability names.
func capMask(t *testing.T, caps []string) uint64 {
	t.Helper()
	bits := map[string]uint{"DAC_READ_SEARCH": 2, "SYS_PTRACE": 19, "PERFMON": 38, "BPF": 39}
	var m uint64
	for _, c := range caps {
		b, ok := bits[c]
		if !ok {
			t.Fatalf("capability %s: add its bit number to capMask", c)
		}
		m |= 1 << b
	}
	return m
}

// ensureTracefs mounts tracefs where the sensor looks for it, as a node's systemd does.
func ensureTracefs(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/tracing/events/syscalls"); err == nil {
		return
	}
	if out, err := exec.Command("mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing").CombinedOutput(); err != nil {
		t.Fatalf("mounting tracefs at /sys/kernel/tracing: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
