package periodic

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNowAndEveryCallsAtOnceAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		NowAndEvery(ctx, time.Hour, func(context.Context) {
			if calls.Add(1) == 1 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("NowAndEvery did not return after its context ended")
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("calls = %d, want 1 (at once, then none after an hour's interval was cut short)", got)
	}
}

func TestEveryWaitsThenRepeats(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	got := make(chan time.Duration, 3)
	go Every(ctx, 20*time.Millisecond, func(context.Context) {
		select {
		case got <- time.Since(start):
		default:
		}
	})
	first := <-got
	if first < 20*time.Millisecond {
		t.Fatalf("first call after %s, want at least the interval", first)
	}
	<-got
	<-got // three calls: it repeats
}

func TestEveryNeverCallsAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32
	Every(ctx, time.Millisecond, func(context.Context) { calls.Add(1) })
	if calls.Load() != 0 {
		t.Fatalf("called %d times on a context that had ended", calls.Load())
	}
}

// TestEach: every item is done once, never more than limit at a time; a cancelled context starts no more.
func TestEach(t *testing.T) {
	items := make([]int, 50)
	for i := range items {
		items[i] = i
	}
	var mu sync.Mutex
	running, most, done := 0, 0, map[int]int{}
	Each(context.Background(), 3, items, func(_ context.Context, i int) {
		mu.Lock()
		running++
		most = max(most, running)
		done[i]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
	})
	if len(done) != 50 || most > 3 || most < 2 {
		t.Fatalf("done %d items, at most %d at a time; want 50, 2–3", len(done), most)
	}
	for i, n := range done {
		if n != 1 {
			t.Fatalf("item %d done %d times", i, n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	Each(ctx, 1, items, func(context.Context, int) { calls++ })
	if calls != 0 {
		t.Fatalf("%d calls after the context ended", calls)
	}
}
