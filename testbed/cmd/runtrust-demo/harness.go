package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"testing"
)

// harness runs the testbed's parts, written for tests, in a program: it is the testing.TB they are given.
// Cleanups run last-registered first when the demo stops, as a test's do; Fatal unwinds the goroutine that
// called it with errFailNow, which run recovers.
type harness struct {
	// testing.TB, nil, gives the unexported method testing.TB requires; a method the testbed starts using that
	// harness does not override panics with a nil dereference, which run reports.
	testing.TB
	dir    string
	ctx    context.Context
	logger *log.Logger

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

var errFailNow = errors.New("the demo failed")

func newHarness(ctx context.Context, dir string, logger *log.Logger) *harness {
	return &harness{dir: dir, ctx: ctx, logger: logger}
}

func (h *harness) Helper()                    {}
func (h *harness) Name() string               { return "runtrust-demo" }
func (h *harness) Context() context.Context   { return h.ctx }
func (h *harness) Log(args ...any)            { h.logger.Print(args...) }
func (h *harness) Logf(f string, args ...any) { h.logger.Printf(f, args...) }

func (h *harness) Error(args ...any) {
	h.logger.Print(append([]any{"error: "}, args...)...)
	h.Fail()
}

func (h *harness) Errorf(f string, args ...any) {
	h.logger.Printf("error: "+f, args...)
	h.Fail()
}

func (h *harness) Fatal(args ...any) {
	h.Error(args...)
	h.FailNow()
}

func (h *harness) Fatalf(f string, args ...any) {
	h.Errorf(f, args...)
	h.FailNow()
}

// Skip means the demo cannot run a part: for a demo that is a failure, said with the reason.
func (h *harness) Skip(args ...any)            { h.Fatal(args...) }
func (h *harness) Skipf(f string, args ...any) { h.Fatalf(f, args...) }
func (h *harness) SkipNow()                    { h.FailNow() }
func (h *harness) Skipped() bool               { return false }

func (h *harness) Fail() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed = true
}

func (h *harness) FailNow() {
	h.Fail()
	panic(errFailNow)
}

func (h *harness) Failed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

func (h *harness) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}

// TempDir is a fresh directory under the demo's own, which the demo removes at the end.
func (h *harness) TempDir() string {
	dir, err := os.MkdirTemp(h.dir, "tmp-")
	if err != nil {
		h.Fatalf("temp dir: %v", err)
	}
	return dir
}

func (h *harness) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	if err := os.Setenv(key, value); err != nil {
		h.Fatalf("setenv %s: %v", key, err)
	}
	h.Cleanup(func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	})
}

// run calls f and turns a FailNow, or any panic, into an error.
func (h *harness) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r == errFailNow {
				err = errFailNow
				return
			}
			h.Fail()
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	f()
	if h.Failed() {
		return errFailNow
	}
	return nil
}

// stop runs the cleanups, last registered first; one that fails does not keep the others from running.
func (h *harness) stop() {
	for {
		h.mu.Lock()
		if len(h.cleanups) == 0 {
			h.mu.Unlock()
			return
		}
		f := h.cleanups[len(h.cleanups)-1]
		h.cleanups = h.cleanups[:len(h.cleanups)-1]
		h.mu.Unlock()
		if err := h.run(f); err != nil && err != errFailNow {
			h.logger.Printf("error: cleanup: %v", err)
		}
	}
}
