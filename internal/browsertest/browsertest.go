// Package browsertest starts Debian's headless Chromium for a test, driven from Go with chromedp, and fails the
// test on anything the page reports as an error. Shared by the runtime service's UI tests and the testbed.
package browsertest

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start launches Chromium with a fresh profile and a 1400×1000 window, bounded by timeout, and returns a tab's
// context. The flags keep it from reaching out (component updates, sync, QUIC): on a closed network those
// connections are refused and only slow it down. An uncaught exception or a console error on any page fails the
// test when it ends, unless expected says the message was provoked on purpose (nil: none is).
func Start(t testing.TB, timeout time.Duration, expected func(m chromedp.ConsoleMessage) bool) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("Chromium is needed for the browser tests (apt-get install -y chromium; .ci/run installs it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	// Start the browser now, so a Chromium that cannot start says so here rather than in the first step.
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
			if expected != nil && expected(m) {
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
	return ctx
}
