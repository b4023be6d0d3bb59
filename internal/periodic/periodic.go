// Package periodic is the one ticker loop every long-running runtrust part needs: call a function on a fixed
// interval until a context ends, with calls that never overlap (a slow call delays the next one; ticks missed
// meanwhile are dropped, as time.Ticker drops them).
package periodic

import (
	"context"
	"time"
)

// Every calls f every d, the first time d after the call, until ctx ends. It returns when ctx ends.
func Every(ctx context.Context, d time.Duration, f func(context.Context)) {
	run(ctx, d, false, f)
}

// NowAndEvery calls f at once and then every d, until ctx ends. It returns when ctx ends.
func NowAndEvery(ctx context.Context, d time.Duration, f func(context.Context)) {
	run(ctx, d, true, f)
}

func run(ctx context.Context, d time.Duration, now bool, f func(context.Context)) {
	if now {
		f(ctx)
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil { // both ready: an ended context wins, so no call starts after it
				return
			}
			f(ctx)
		}
	}
}
