package runtimesensorreceiver

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/hostcontainers"
)

// TestHostImages: a container's first record queues a lookup and goes out without an image; later ones carry
// what the runtime said. A container the runtime does not know, or a runtime that fails, is asked again only
// after the retry interval, and a failing runtime is said in the log once, not per container.
func TestHostImages(t *testing.T) {
	var calls atomic.Int32
	want := hostcontainers.Image{Name: "registry.example/app:1", Digest: "sha256:ab", Namespace: "default"}
	lookup := func(_ context.Context, id string) (hostcontainers.Image, error) {
		calls.Add(1)
		switch id {
		case "known":
			return want, nil
		case "gone":
			return hostcontainers.Image{}, hostcontainers.ErrNotFound
		default:
			return hostcontainers.Image{}, errors.New("dial unix /run/containerd/containerd.sock: connect: no such file or directory")
		}
	}
	core, logs := observer.New(zap.InfoLevel)
	h := newHostImages(lookup, zap.New(core))
	h.retry = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)

	if _, ok := h.ImageFor("known"); ok {
		t.Fatal("an answer before the runtime was asked")
	}
	waitUntil(t, func() bool { _, ok := h.ImageFor("known"); return ok })
	if got, _ := h.ImageFor("known"); got != want {
		t.Errorf("ImageFor = %+v, want %+v", got, want)
	}
	for range 100 {
		h.ImageFor("gone")
		h.ImageFor("broken-1")
		h.ImageFor("broken-2")
	}
	waitUntil(t, func() bool { return calls.Load() >= 4 })
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 4 {
		t.Errorf("%d lookups for 301 records of 4 containers inside the retry interval; want 4", n)
	}
	if n := logs.Len(); n != 1 {
		t.Errorf("%d log lines for one failing runtime; want 1: %v", n, logs.All())
	}
	time.Sleep(h.retry)
	h.ImageFor("gone")
	waitUntil(t, func() bool { return calls.Load() == 5 })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
