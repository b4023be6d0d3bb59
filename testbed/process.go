package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/loopback"
)

// Process is a child process a test started, with its output kept for failure messages.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan error
}

func (p *Process) Write(b []byte) (int, error) { return p.out.Write(b) }

// Output is what the process printed so far (stdout and stderr together).
func (p *Process) Output() string { return p.out.String() }

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// StartProcess starts bin; env nil means the test's environment. It is stopped (SIGTERM, then SIGKILL) at the
// end of the test, and killed with the test binary if that dies first (Pdeathsig), so no run leaves one behind.
func StartProcess(t testing.TB, name, bin string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	// Its own process group: a terminal's Ctrl-C reaches the demo (or test) alone, which then stops its parts in
	// order; containerd interrupted before its containers would leave them behind.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	return p
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then kills it. Stopping a process that
// already ended is a no-op. An exit that took SIGKILL is reported as an error.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		return fmt.Errorf("did not stop within %s of SIGTERM", grace)
	}
}

// Kill ends the process with SIGKILL, no shutdown at all, and waits until it is gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// Wait waits up to d for the process to end and reports how; exited is false when it still runs after d.
func (p *Process) Wait(d time.Duration) (exited bool, err error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

var (
	serviceBinOnce sync.Once
	serviceBin     string
	serviceBinErr  error
)

// ServiceBinary builds the runtime service from this tree once per test binary (the build cache makes it a link
// step), as the image's Dockerfile builds it, or takes $RUNTRUST_SERVICE_BIN.
func ServiceBinary(t testing.TB) string {
	t.Helper()
	serviceBinOnce.Do(func() {
		if bin := os.Getenv("RUNTRUST_SERVICE_BIN"); bin != "" { // a prebuilt service instead of this tree's
			serviceBin = bin
			return
		}
		dir, err := os.MkdirTemp("", "testbed-runtime-service-")
		if err != nil {
			serviceBinErr = err
			return
		}
		serviceBin = filepath.Join(dir, "runtime-service")
		cmd := exec.Command("go", "build", "-o", serviceBin, "./runtime-service/cmd/runtime-service")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			serviceBinErr = fmt.Errorf("go build runtime-service: %v\n%s", err, out)
		}
	})
	if serviceBinErr != nil {
		t.Fatal(serviceBinErr)
	}
	return serviceBin
}

// FreeAddr returns a 127.0.0.1:port that was free a moment ago.
func FreeAddr(t testing.TB) string { return "127.0.0.1:" + strconv.Itoa(loopback.TestPort(t)) }

// WaitHTTP waits up to a minute until url answers 200; p's output explains a timeout.
func WaitHTTP(t testing.TB, url string, p *Process) {
	t.Helper()
	WaitFor(t, time.Minute, func() bool {
		if done, err := p.Exited(); done {
			t.Fatalf("%s exited (%v) before %s answered:\n%s", p.Name, err, url, p.Output())
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, p.Output)
}

// WaitFor polls ok every 250 ms until it is true, and fails the test with why() after d.
func WaitFor(t testing.TB, d time.Duration, ok func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s:\n%s", d, why())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// GetJSON decodes the JSON answer of a GET into into, failing the test on anything but 200.
func GetJSON(t testing.TB, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// GetStatus GETs url and, on 200, decodes the JSON answer into into; it returns the status code.
func GetStatus(t testing.TB, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func js(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func tail(s string) string {
	const n = 6000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
