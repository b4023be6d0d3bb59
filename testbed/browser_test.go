package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runtrust/runtrust/internal/browsertest"
)

// The few page helpers the scenarios need; the runtime service's UI tests have their own, richer ones.

// page is one headless Chromium tab for a test.
type page struct {
	t   *testing.T
	ctx context.Context
}

// startBrowser starts Debian's headless Chromium (internal/browsertest); an uncaught exception or console error
// on any page fails the test.
func startBrowser(t *testing.T) *page {
	t.Helper()
	return &page{t: t, ctx: browsertest.Start(t, 10*time.Minute, nil)}
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
	p.screenshotTo(t, filepath.Join(dir, name+".png"))
}

// screenshotTo writes a full-page PNG to path (quality 100 is what makes chromedp capture PNG, not JPEG).
func (p *page) screenshotTo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
