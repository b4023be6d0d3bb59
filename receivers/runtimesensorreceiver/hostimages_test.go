package runtimesensorreceiver

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/hostcontainers"
)

// announcements records what hostImages announced, in order.
type announcements struct {
	mu  sync.Mutex
	got []string // "+id" added, "=id" described again, "-id" gone
}

func (a *announcements) add(c hostContainer, _ hostcontainers.Image, change string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sign := map[string]string{records.ChangeAdded: "+", records.ChangeSnapshot: "=", records.ChangeDeleted: "-"}[change]
	a.got = append(a.got, sign+c.id)
}

func (a *announcements) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

// TestHostImages: a container's first record queues a lookup and goes out without an image; later ones carry
// what the runtime said, and the container is announced once. A container the runtime does not know, or a
// runtime that fails, is asked again only after the retry interval, and a failing runtime is said in the log
// once, not per container.
func TestHostImages(t *testing.T) {
	var calls atomic.Int32
	want := hostcontainers.Image{Name: "registry.example/app:1", Digest: "sha256:ab", Namespace: "default"}
	lookup := func(_ context.Context, c hostContainer) (hostcontainers.Image, error) {
		calls.Add(1)
		switch c.id {
		case "known":
			return want, nil
		case "gone":
			return hostcontainers.Image{}, hostcontainers.ErrNotFound
		default:
			return hostcontainers.Image{}, errors.New("dial unix /run/containerd/containerd.sock: connect: no such file or directory")
		}
	}
	core, logs := observer.New(zap.InfoLevel)
	var ann announcements
	h := newHostImages(lookup, ann.add, zap.New(core))
	h.retry = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)

	known := hostContainer{id: "known", runtime: "containerd"}
	if _, ok := h.ImageFor(known); ok {
		t.Fatal("an answer before the runtime was asked")
	}
	waitUntil(t, func() bool { _, ok := h.ImageFor(known); return ok })
	if got, _ := h.ImageFor(known); got != want {
		t.Errorf("ImageFor = %+v, want %+v", got, want)
	}
	for range 100 {
		h.ImageFor(hostContainer{id: "gone"})
		h.ImageFor(hostContainer{id: "broken-1"})
		h.ImageFor(hostContainer{id: "broken-2"})
	}
	waitUntil(t, func() bool { return calls.Load() >= 4 })
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 4 {
		t.Errorf("%d lookups for 301 records of 4 containers inside the retry interval; want 4", n)
	}
	if n := logs.Len(); n != 1 {
		t.Errorf("%d log lines for one failing runtime; want 1: %v", n, logs.All())
	}
	if got := ann.list(); !slices.Equal(got, []string{"+known"}) {
		t.Errorf("announced %v; want the one container the runtime described, once", got)
	}
	time.Sleep(h.retry)
	h.ImageFor(hostContainer{id: "gone"})
	waitUntil(t, func() bool { return calls.Load() == 5 })
}

// TestHostImagesObserve: a cgroup scan asks about the containers it finds, whether or not they ran anything;
// one still there after the refresh interval is described again; a container announced and then no longer found
// is announced gone, once. A container in a pod's cgroup (no
// pod watch knew it) carries its image but is the inventory's: never announced, never forgotten by a scan.
func TestHostImagesObserve(t *testing.T) {
	img := hostcontainers.Image{Name: "app:1", Digest: "sha256:ab"}
	lookup := func(context.Context, hostContainer) (hostcontainers.Image, error) { return img, nil }
	var ann announcements
	h := newHostImages(lookup, ann.add, zap.NewNop())
	h.refresh = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)

	idle := hostContainer{id: "idle", runtime: "docker", cgroupPath: "/docker/idle"}
	inPod := hostContainer{id: "in-pod", podUID: "0b4c3a52-0000-4000-8000-000000000001"}
	h.ImageFor(inPod)
	h.observe(map[string]hostContainer{idle.id: idle})
	waitUntil(t, func() bool { _, a := h.ImageFor(idle); _, b := h.ImageFor(inPod); return a && b })
	if got := ann.list(); !slices.Equal(got, []string{"+idle"}) {
		t.Fatalf("announced %v; want the idle host container only", got)
	}
	h.observe(map[string]hostContainer{idle.id: idle})
	if got := ann.list(); !slices.Equal(got, []string{"+idle"}) {
		t.Fatalf("announced %v; want no second description inside the refresh interval", got)
	}
	time.Sleep(h.refresh)
	h.observe(map[string]hostContainer{idle.id: idle})
	h.observe(map[string]hostContainer{idle.id: idle})
	h.observe(map[string]hostContainer{})
	h.observe(map[string]hostContainer{})
	if got := ann.list(); !slices.Equal(got, []string{"+idle", "=idle", "-idle"}) {
		t.Fatalf("announced %v; want it added, described again once after the refresh, then gone once", got)
	}
	if _, ok := h.ImageFor(inPod); !ok {
		t.Error("a scan forgot the container of a pod's cgroup")
	}
}

// TestHostRuntimesRoute: a container's cgroup pattern decides which runtime is asked; an unconfigured one
// says so.
func TestHostRuntimesRoute(t *testing.T) {
	answer := func(name string) func(context.Context, string) (hostcontainers.Image, error) {
		return func(context.Context, string) (hostcontainers.Image, error) {
			return hostcontainers.Image{Name: name}, nil
		}
	}
	rt := hostRuntimes{containerd: answer("containerd"), docker: answer("docker")}
	for runtime, want := range map[string]string{"containerd": "containerd", "": "containerd", "cri-o": "containerd", "docker": "docker"} {
		if got, err := rt.lookup(context.Background(), hostContainer{id: "x", runtime: runtime}); err != nil || got.Name != want {
			t.Errorf("runtime %q: asked %q (%v), want %q", runtime, got.Name, err, want)
		}
	}
	if _, err := rt.lookup(context.Background(), hostContainer{id: "x", runtime: "podman"}); !errors.Is(err, errRuntimeOff) {
		t.Errorf("podman with no socket: %v, want errRuntimeOff", err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
