package driftcheck

import (
	"crypto/sha256"
	"slices"
)

// cached is a decoded index.
type cached struct {
	files     map[string][sha256.Size]byte
	truncated bool
}

// lru keeps the few decoded indexes judging uses, most recent last. Judging goes image by image, so a handful
// is enough, and a linear scan over them costs nothing beside a decode.
type lru struct {
	max   int
	order []string
	m     map[string]cached
}

func newLRU(max int) *lru { return &lru{max: max, m: map[string]cached{}} }

func (l *lru) get(k string) (cached, bool) {
	v, ok := l.m[k]
	if ok {
		l.touch(k)
	}
	return v, ok
}

func (l *lru) put(k string, v cached) {
	if _, ok := l.m[k]; !ok && len(l.m) >= l.max {
		delete(l.m, l.order[0])
		l.order = l.order[1:]
	}
	l.m[k] = v
	l.touch(k)
}

func (l *lru) touch(k string) {
	if i := slices.Index(l.order, k); i >= 0 {
		l.order = slices.Delete(l.order, i, i+1)
	}
	l.order = append(l.order, k)
}
