package periodic

import (
	"context"
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
