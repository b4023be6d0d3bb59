package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The runtime service's own browser helpers live in an internal package the testbed cannot import; these are
// the few the scenarios need, driving Debian's headless Chromium as those tests do.

// page is one headless Chromium tab for a test.
type page struct {
	t   *testing.T
	ctx context.Context
}

// startBrowser starts Chromium with a fresh profile and no outbound connections of its own; an uncaught
// exception or console error on any page fails the test.
func startBrowser(t *testing.T) *page {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("Chromium is needed for the UI assertions (apt-get install -y chromium; .ci/run installs it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			// The page asks the images API for "q" once to learn whether it searches; that 400 is expected.
			if m.Source == "network" && strings.Contains(m.URL, "q=") {
				continue
			}
			if m.IsException() || m.Type == "error" {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) > 0 {
			t.Errorf("the page reported errors:\n%s", strings.Join(problems, "\n"))
		}
	})
	return &page{t: t, ctx: ctx}
}

// open loads url afresh and waits until the view has drawn (main[data-ready] names it).
func (p *page) open(t *testing.T, url, view string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	// Through about:blank, so every open is a fresh page load (as a shared link is), never an in-page hash change.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`main[data-ready=%q]`, view)))); err != nil {
		t.Fatalf("open %s (view %s): %v", url, view, err)
	}
}

// eventually reloads url until expr (a JavaScript boolean) holds: the page shows the API's state at load time,
// and the pipeline takes a moment to get there.
func (p *page) eventually(t *testing.T, url, view, expr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p.open(t, url, view)
		if eval[bool](t, p, expr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held at %s; the page shows:\n%s", expr, url, eval[string](t, p, `document.querySelector('main').innerText.slice(0, 3000)`))
		}
		time.Sleep(time.Second)
	}
}

func eval[T any](t *testing.T, p *page, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshot keeps a full-page PNG in $RUNTRUST_TEST_ARTIFACTS or _build/test-artifacts/testbed.
func (p *page) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("RUNTRUST_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "_build", "test-artifacts", "testbed")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
