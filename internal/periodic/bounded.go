package periodic

import (
	"context"
	"sync"
)

// Each calls do for every item, at most limit at a time, and returns when all calls have returned. Once ctx
// ends it starts no more (the calls running finish first): a periodic pass over the work that is due.
func Each[T any](ctx context.Context, limit int, items []T, do func(context.Context, T)) {
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, it := range items {
		if ctx.Err() != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			do(ctx, it)
		}()
	}
}
