package k8sinventoryreceiver

import "sync"

// itemKind says what a queued item is.
type itemKind uint8

const (
	// itemChange is an informer notification: obj (and old for an update) with its change.
	itemChange itemKind = iota
	// itemFirstSnapshotEnd follows the notifications of every object present at start.
	itemFirstSnapshotEnd
)

// item is one entry of the queue.
type item struct {
	kind     itemKind
	change   string // records.Change*, for itemChange
	obj, old any
}

// queue is a bounded FIFO between the informers' handlers and the run goroutine: a handler never blocks on the
// next consumer, and changes keep their arrival order. When it is full a change is dropped and counted; the run
// goroutine then sends every object again from the informers' caches, which are always current, so the records
// converge (a deletion dropped is not sent: the object is simply absent from the snapshot).
type queue struct {
	mu      sync.Mutex
	items   []item
	limit   int
	dropped int // changes dropped since the last take
	ch      chan struct{}
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, ch: make(chan struct{}, 1)}
}

// push queues a change and wakes the run goroutine; it reports false when the queue was full and the change
// was dropped. Items other than changes are always queued (one per receiver).
func (q *queue) push(it item) bool {
	q.mu.Lock()
	full := it.kind == itemChange && len(q.items) >= q.limit
	if full {
		q.dropped++
	} else {
		q.items = append(q.items, it)
	}
	q.mu.Unlock()
	q.wake()
	return !full
}

// wake makes signal ready (Shutdown uses it to end a wait).
func (q *queue) wake() {
	select {
	case q.ch <- struct{}{}:
	default:
	}
}

func (q *queue) signal() <-chan struct{} { return q.ch }

// take returns the queued items and how many changes were dropped since the last take, and empties the queue.
func (q *queue) take() (items []item, dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, dropped = q.items, q.dropped
	q.items, q.dropped = nil, 0
	return items, dropped
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
