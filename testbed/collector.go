package testbed

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/loopback"
)

// CollectorBinary returns the path of the built otelcol-runtrust: $RUNTRUST_OTELCOL, or _build/ at the
// repository root. A missing binary fails the test: skipping would hide that the distribution was never built.
func CollectorBinary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("RUNTRUST_OTELCOL")
	if path == "" {
		path = filepath.Join(repoRoot(t), "_build", "otelcol-runtrust")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the otelcol-runtrust distribution is not built at %s (%v): run `make dist`, or set RUNTRUST_OTELCOL", path, err)
	}
	return path
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int { return loopback.TestPort(t) }

// Collector is a running otelcol-runtrust process.
type Collector struct {
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan error
}

// StartCollector writes config to a temp file, starts the binary with it, and waits until the health_check
// extension on healthPort answers. The process is stopped (SIGTERM, then SIGKILL) when the test ends.
func StartCollector(t testing.TB, config string, healthPort int) *Collector {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Collector{output: &syncBuffer{}, done: make(chan error, 1)}
	c.cmd = exec.Command(CollectorBinary(t), "--config", path)
	c.cmd.Stdout, c.cmd.Stderr = c.output, c.output
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.Stop(t) })

	url := fmt.Sprintf("http://127.0.0.1:%d/", healthPort)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("collector exited before it was healthy: %v\n%s", err, c.output)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not healthy on %s after 60s:\n%s", url, c.output)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FilePipeline is a running collector whose one logs pipeline is otlp (gRPC) → the given processors → a file.
type FilePipeline struct {
	*Collector
	Endpoint string // the OTLP/gRPC receiver, host:port
	File     string // the file exporter's JSON-lines output
}

// StartFilePipeline starts the collector with processorsYAML as the body of its `processors:` section (indented
// two spaces) and the named processors, in order, in the pipeline.
func StartFilePipeline(t testing.TB, processorsYAML string, processors ...string) *FilePipeline {
	t.Helper()
	grpcPort, healthPort := FreePort(t), FreePort(t)
	p := &FilePipeline{
		Endpoint: fmt.Sprintf("127.0.0.1:%d", grpcPort),
		File:     filepath.Join(t.TempDir(), "findings.jsonl"),
	}
	config := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
%s
exporters:
  file:
    path: %s
    flush_interval: 100ms
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      processors: [%s]
      exporters: [file]
`, p.Endpoint, strings.TrimRight(processorsYAML, "\n"), p.File, healthPort, strings.Join(processors, ", "))
	p.Collector = StartCollector(t, config, healthPort)
	return p
}

// Stop ends the collector gracefully and fails the test if it does not exit cleanly within 20 s.
func (c *Collector) Stop(t testing.TB) {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			t.Errorf("collector exited with %v:\n%s", err, c.output)
		}
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		t.Errorf("collector did not stop within 20s of SIGTERM:\n%s", c.output)
	}
}

// Output is what the collector printed so far.
func (c *Collector) Output() string { return c.output.String() }

// RunCollector runs the binary with args to completion and returns its combined output and exit error.
func RunCollector(ctx context.Context, t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(ctx, CollectorBinary(t), args...).CombinedOutput()
	return string(out), err
}

// syncBuffer is a buffer that a child process's output and a test's reads share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
