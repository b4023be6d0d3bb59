// Package programtb runs test helpers in a program: the testbed's and kubetest's parts are written for tests and
// take a testing.TB; a Harness is one, for `make demo` and `make cluster`.
package programtb

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"testing"
)

// Harness runs parts written for tests in a program: it is the testing.TB they are given. Cleanups run
// last-registered first when the program stops (Stop), as a test's do; Fatal unwinds the goroutine that called
// it with ErrFailNow, which Run recovers.
type Harness struct {
	// testing.TB, nil, gives the unexported method testing.TB requires; a method the testbed starts using that
	// harness does not override panics with a nil dereference, which run reports.
	testing.TB
	name   string
	dir    string
	ctx    context.Context
	logger *log.Logger

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// ErrFailNow is what Run returns when the function it ran failed (Fatal, FailNow).
var ErrFailNow = errors.New("failed")

// New returns a harness named name whose temporary directories are made under dir and whose log goes to logger.
func New(ctx context.Context, name, dir string, logger *log.Logger) *Harness {
	return &Harness{name: name, dir: dir, ctx: ctx, logger: logger}
}

func (h *Harness) Helper()                    {}
func (h *Harness) Name() string               { return h.name }
func (h *Harness) Context() context.Context   { return h.ctx }
func (h *Harness) Log(args ...any)            { h.logger.Print(args...) }
func (h *Harness) Logf(f string, args ...any) { h.logger.Printf(f, args...) }

func (h *Harness) Error(args ...any) {
	h.logger.Print(append([]any{"error: "}, args...)...)
	h.Fail()
}

func (h *Harness) Errorf(f string, args ...any) {
	h.logger.Printf("error: "+f, args...)
	h.Fail()
}

func (h *Harness) Fatal(args ...any) {
	h.Error(args...)
	h.FailNow()
}

func (h *Harness) Fatalf(f string, args ...any) {
	h.Errorf(f, args...)
	h.FailNow()
}

// Skip means the program cannot run a part: for a program that is a failure, said with the reason.
func (h *Harness) Skip(args ...any)            { h.Fatal(args...) }
func (h *Harness) Skipf(f string, args ...any) { h.Fatalf(f, args...) }
func (h *Harness) SkipNow()                    { h.FailNow() }
func (h *Harness) Skipped() bool               { return false }

func (h *Harness) Fail() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed = true
}

func (h *Harness) FailNow() {
	h.Fail()
	panic(ErrFailNow)
}

func (h *Harness) Failed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

func (h *Harness) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}

// TempDir is a fresh directory under the harness's own, which the program removes at the end.
func (h *Harness) TempDir() string {
	dir, err := os.MkdirTemp(h.dir, "tmp-")
	if err != nil {
		h.Fatalf("temp dir: %v", err)
	}
	return dir
}

func (h *Harness) Setenv(key, value string) {
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

// Run calls f and turns a FailNow, or any panic, into an error.
func (h *Harness) Run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r == ErrFailNow {
				err = ErrFailNow
				return
			}
			h.Fail()
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	f()
	if h.Failed() {
		return ErrFailNow
	}
	return nil
}

// Stop runs the cleanups, last registered first; one that fails does not keep the others from running.
func (h *Harness) Stop() {
	for {
		h.mu.Lock()
		if len(h.cleanups) == 0 {
			h.mu.Unlock()
			return
		}
		f := h.cleanups[len(h.cleanups)-1]
		h.cleanups = h.cleanups[:len(h.cleanups)-1]
		h.mu.Unlock()
		if err := h.Run(f); err != nil && err != ErrFailNow {
			h.logger.Printf("error: cleanup: %v", err)
		}
	}
}
