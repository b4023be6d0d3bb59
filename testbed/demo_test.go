package testbed

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
)

// demoReady is testbed/cmd/runtrust-demo's -ready-file.
type demoReady struct {
	UI     string      `json:"ui"`
	Images []DemoImage `json:"images"`
}

// TestDemo runs `make demo` as a user would, non-interactively: waits for it to say it is ready, checks on its
// own that the API shows every finding and the UI draws them, presses Ctrl-C (SIGINT to make's process group,
// as a terminal does) and checks that nothing it started is left: no process, no file, no listener.
// RUNTRUST_UPDATE_DOCS=1 also writes the README's screenshot, docs/images/demo-images.png.
func TestDemo(t *testing.T) {
	// A short directory: containerd's socket path under it must stay under 108 bytes.
	dir := filepath.Join(os.TempDir(), "rtdemo-"+randomHex(4))
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	addr := FreeAddr(t)
	m := startMake(t, nil, "-s", "demo", fmt.Sprintf("DEMO_FLAGS=-dir %s -http %s -ready-file %s", dir, addr, readyFile))
	out := m.out

	ready := waitDemoReady(t, readyFile, m)
	t.Logf("demo ready:\n%s", out.String())
	checkDemoAPI(t, &Stack{API: ready.UI}, ready)
	checkDemoUI(t, ready)

	stopping := time.Now()
	defer func() { t.Logf("stopped in %s:\n%s", time.Since(stopping).Round(time.Second), tail(out.String())) }()
	if err := m.interrupt(2 * time.Minute); err != nil {
		t.Fatalf("the demo: %v", err)
	}
	if !strings.Contains(out.String(), "stopped in") || strings.Contains(out.String(), "error:") {
		t.Errorf("the demo did not stop cleanly:\n%s", tail(out.String()))
	}
	checkNothingLeft(t, dir, addr, ready)
}

func waitDemoReady(t *testing.T, path string, m *makeRun) demoReady {
	t.Helper()
	deadline := time.Now().Add(8 * time.Minute)
	for {
		if b, err := os.ReadFile(path); err == nil {
			var r demoReady
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("ready file: %v\n%s", err, b)
			}
			return r
		}
		if m.exited() {
			t.Fatalf("make demo exited before it was ready (%v):\n%s", m.err, m.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("make demo not ready after 8 min:\n%s", m.out.String())
		}
		time.Sleep(time.Second)
	}
}

// checkDemoAPI asks the API itself, not the demo's summary, for every finding the demo promises.
func checkDemoAPI(t *testing.T, s *Stack, ready demoReady) {
	t.Helper()
	verdicts := map[string]bool{}
	for _, want := range ready.Images {
		img, ok := s.ImageDetail(t, want.Digest)
		if !ok {
			t.Errorf("%s: the API does not know %s", want.Scenario, want.Digest)
			continue
		}
		verdicts[Str(img.Verdict)] = true
		if Str(img.Verdict) != want.Verdict {
			t.Errorf("%s: verdict %q, want %q", want.Scenario, Str(img.Verdict), want.Verdict)
		}
		switch {
		case want.Finding == records.ReasonUntrustedRegistry && !HasReason(img.Reasons, want.Finding):
			t.Errorf("%s: reasons %v lack %s", want.Scenario, img.Reasons, want.Finding)
		case strings.HasPrefix(want.Finding, "/") &&
			!slices.ContainsFunc(img.Processes, func(p ExecInfo) bool { return p.Path == want.Finding }):
			t.Errorf("%s: processes %s lack %s", want.Scenario, js(img.Processes), want.Finding)
		case want.Finding == DemoDriftFinding && (Str(img.DriftCounts.Severity) != records.SeverityCritical || img.DriftCounts.Findings != 3):
			t.Errorf("%s: drift %s, want 3 findings, the worst critical", want.Scenario, js(img.DriftCounts))
		case strings.HasSuffix(want.Finding, " loaded") && s.vulns(t, want.Digest)["coreutils"].Reachability != "loaded":
			t.Errorf("%s: findings %s, want coreutils loaded", want.Scenario, js(s.vulns(t, want.Digest)))
		}
	}
	for _, v := range []string{records.IntegrityVerified, records.IntegrityStaleTag, records.IntegrityDigestMismatch,
		records.IntegrityArtifactMissing} {
		if !verdicts[v] {
			t.Errorf("no demo image is %s: %s", v, js(ready.Images))
		}
	}
	// As root with eBPF (this machine, CI) the demo runs its real containers: 8 images.
	if os.Geteuid() == 0 && len(ready.Images) != len(demoScenarios) {
		t.Errorf("%d demo images, want %d: %s", len(ready.Images), len(demoScenarios), js(ready.Images))
	}
}

// checkDemoUI opens the images view in Chromium and checks each demo image's row shows its verdict.
func checkDemoUI(t *testing.T, ready demoReady) {
	t.Helper()
	var conds []string
	for _, img := range ready.Images {
		row := fmt.Sprintf(`document.querySelector('tr[data-digest=%q]')`, img.Digest)
		conds = append(conds, fmt.Sprintf(`%s?.dataset.verdict === %q`, row, img.Verdict))
		if img.Finding == records.ReasonUntrustedRegistry {
			conds = append(conds, fmt.Sprintf(`!!%s?.querySelector('[data-verdict="untrusted"]')`, row))
		}
	}
	ui := startBrowser(t)
	ui.eventually(t, ready.UI+"/#/images", "images", strings.Join(conds, " && "))
	path := filepath.Join(repoRoot(t), "_build", "test-artifacts", "testbed", "demo-images.png")
	if os.Getenv("RUNTRUST_UPDATE_DOCS") == "1" {
		path = filepath.Join(repoRoot(t), "docs", "images", "demo-images.png")
	}
	ui.screenshotTo(t, path)
}

// checkNothingLeft: the demo's directory is gone with nothing mounted under it, no process names it or runs in
// one of its containers, and its UI port is closed.
func checkNothingLeft(t *testing.T, dir, addr string, ready demoReady) {
	t.Helper()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo left %s (%v)", dir, err)
	}
	if mounts, err := os.ReadFile("/proc/mounts"); err == nil && strings.Contains(string(mounts), dir) {
		t.Errorf("the demo left mounts under %s", dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if b, err := os.ReadFile(p + "/cmdline"); err == nil && strings.Contains(string(b), dir) {
			t.Errorf("process %s still runs: %s", filepath.Base(p), strings.ReplaceAll(string(b), "\x00", " "))
		}
		cg, _ := os.ReadFile(p + "/cgroup")
		for _, img := range ready.Images {
			if img.ContainerID != "" && strings.Contains(string(cg), img.ContainerID) {
				t.Errorf("process %s still runs in the container of %s", filepath.Base(p), img.Scenario)
			}
		}
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on the demo's UI address %s", addr)
	}
}
