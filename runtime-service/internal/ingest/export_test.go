package ingest

import (
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// DecodeWire is the wire decoder alone, for tests that must know it handled a request itself rather than
// stepping aside to pdata.
func DecodeWire(b []byte, c store.Cluster, now time.Time) (*Decoded, bool) {
	w := wireDecoder{c: c, now: now}
	d, err := w.decode(b)
	return d, err == nil
}
