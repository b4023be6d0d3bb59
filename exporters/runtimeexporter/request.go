package runtimeexporter // import "github.com/runtrust/runtrust/exporters/runtimeexporter"

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/runtrust/runtrust/internal/wire"
)

// batch is what the sending queue holds: the records and the idempotency key they were stamped with when they
// entered the exporter. The key is part of the queued item (and of its encoding in a persistent queue), so a
// retry and a replay after a restart send the same key, and the service applies the batch once.
type batch struct {
	key string
	ld  plog.Logs
	// encoded: the batch was read back from a persistent queue and holds the records as their OTLP encoding
	// (raw, records of them), not decoded: a batch that fits one request is sent as those bytes. Decoding it
	// on the queue's read and encoding it again to send was a third of the collector's CPU at 80k records/s
	// (docs/performance.md).
	encoded bool
	raw     []byte
	records int
	// sent counts the leading requests of this batch the service has acknowledged (in memory only: after a
	// restart they are sent again and the service recognizes their keys).
	sent int
}

var _ xexporterhelper.Request = (*batch)(nil)

var (
	protoMarshaler   = &plog.ProtoMarshaler{}
	protoUnmarshaler = &plog.ProtoUnmarshaler{}
)

func (b *batch) ItemsCount() int {
	if b.encoded {
		return b.records
	}
	return b.ld.LogRecordCount()
}

func (b *batch) BytesSize() int {
	if b.encoded {
		return len(b.raw) + len(b.key)
	}
	return protoMarshaler.LogsSize(b.ld) + len(b.key)
}

// decode turns an encoded batch into records, for the one that must be split.
func (b *batch) decode() error {
	if !b.encoded {
		return nil
	}
	ld, err := protoUnmarshaler.UnmarshalLogs(b.raw)
	if err != nil {
		return fmt.Errorf("runtime exporter: queued item: %w", err)
	}
	if n := ld.LogRecordCount(); n != b.records {
		return fmt.Errorf("runtime exporter: queued item holds %d records, its header says %d", n, b.records)
	}
	b.ld, b.encoded, b.raw = ld, false, nil
	return nil
}

// errNoMerge: batching in the sending queue is refused by Config.Validate; this is the guard behind it.
var errNoMerge = errors.New("runtime exporter: queued batches are not merged or split (sending_queue.batch is not supported)")

// MergeSplit is never used: Config.Validate refuses sending_queue.batch, because a merged batch would need a
// new key, and after a restart the queue could merge differently and the service would store records twice.
// Large batches are split at send time instead, deterministically (requests).
func (b *batch) MergeSplit(context.Context, int, exporterhelper.RequestSizerType, xexporterhelper.Request) ([]xexporterhelper.Request, error) {
	return nil, errNoMerge
}

// newKey returns a fresh idempotency key: 128 random bits, hex.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// requests splits the batch into requests of at most max records, in a fixed order, each with the key
// "<batch key>" (one request) or "<batch key>.<i>". The same batch always splits the same way, so a replay
// sends the same requests under the same keys.
func (b *batch) requests(max int) ([]request, error) {
	if b.encoded && b.records <= max {
		return []request{{key: b.key, raw: b.raw, records: b.records}}, nil
	}
	if err := b.decode(); err != nil {
		return nil, err
	}
	n := b.ld.LogRecordCount()
	if n <= max {
		return []request{{key: b.key, ld: b.ld, records: n}}, nil
	}
	var out []request
	cur := plog.NewLogs()
	count := 0
	flush := func() {
		out = append(out, request{key: fmt.Sprintf("%s.%d", b.key, len(out)), ld: cur, records: count})
		cur = plog.NewLogs()
		count = 0
	}
	rls := b.ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		var curRL plog.ResourceLogs
		haveRL := false
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			var curSL plog.ScopeLogs
			haveSL := false
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if count == max {
					flush()
					haveRL, haveSL = false, false
				}
				if !haveRL {
					curRL = cur.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(curRL.Resource())
					curRL.SetSchemaUrl(rl.SchemaUrl())
					haveRL = true
				}
				if !haveSL {
					curSL = curRL.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(curSL.Scope())
					curSL.SetSchemaUrl(sl.SchemaUrl())
					haveSL = true
				}
				lrs.At(k).CopyTo(curSL.LogRecords().AppendEmpty())
				count++
			}
		}
	}
	if count > 0 {
		flush()
	}
	return out, nil
}

// request is one gRPC call's worth of a batch: records as ld, or as their encoding (raw, when not nil).
type request struct {
	key     string
	ld      plog.Logs
	raw     []byte
	records int
}

// encoding persists a batch with its key: "rtb2", the key's length (uvarint), the key, the record count
// (uvarint), the OTLP protobuf compressed with S2 (Snappy's block format, faster). Unmarshal decompresses but does
// not decode the protobuf (see batch.encoded). It still reads "rtb1" (no record count, not compressed; decoded),
// what a collector before the count queued, so an upgrade loses no queued batch.
//
// Compression: the queue's storage (bbolt: page spills, copies, the file's mapping) cost in proportion to the
// bytes queued, and was most of the collector's CPU at 40k records/s; the records compress about 10× at a
// fraction of that cost (docs/performance.md).
type encoding struct{}

const (
	encodingMagic   = "rtb2"
	encodingMagicV1 = "rtb1"
)

var _ exporterhelper.QueueBatchEncoding[xexporterhelper.Request] = encoding{}

func (encoding) Marshal(_ context.Context, r xexporterhelper.Request) ([]byte, error) {
	b, ok := r.(*batch)
	if !ok {
		return nil, fmt.Errorf("runtime exporter: cannot persist a %T", r)
	}
	body, records := b.raw, b.records
	if !b.encoded {
		var err error
		if body, err = protoMarshaler.MarshalLogs(b.ld); err != nil {
			return nil, err
		}
		records = b.ld.LogRecordCount()
	}
	bound := s2.MaxEncodedLen(len(body))
	if bound < 0 {
		return nil, fmt.Errorf("runtime exporter: a batch of %d bytes is too large to queue", len(body))
	}
	out := make([]byte, 0, len(encodingMagic)+2*binary.MaxVarintLen64+len(b.key)+bound)
	out = append(out, encodingMagic...)
	out = binary.AppendUvarint(out, uint64(len(b.key)))
	out = append(out, b.key...)
	out = binary.AppendUvarint(out, uint64(records))
	head := len(out)
	enc := s2.Encode(out[head:cap(out)], body) // the room left is MaxEncodedLen: it encodes in place
	return out[:head+len(enc)], nil
}

func (encoding) Unmarshal(data []byte) (context.Context, xexporterhelper.Request, error) {
	ctx := context.Background()
	var v1 bool
	switch {
	case len(data) >= len(encodingMagic) && string(data[:len(encodingMagic)]) == encodingMagic:
	case len(data) >= len(encodingMagicV1) && string(data[:len(encodingMagicV1)]) == encodingMagicV1:
		v1 = true
	default:
		return ctx, nil, errors.New("runtime exporter: queued item is not a runtime exporter batch (bad magic)")
	}
	rest := data[len(encodingMagic):]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n == 0 || n > maxKeyLen || uint64(len(rest)-w) < n {
		return ctx, nil, errors.New("runtime exporter: queued item has a malformed idempotency key")
	}
	key := string(rest[w : w+int(n)])
	rest = rest[w+int(n):]
	if v1 {
		ld, err := protoUnmarshaler.UnmarshalLogs(rest)
		if err != nil {
			return ctx, nil, fmt.Errorf("runtime exporter: queued item: %w", err)
		}
		return ctx, &batch{key: key, ld: ld}, nil
	}
	records, w := binary.Uvarint(rest)
	if w <= 0 {
		return ctx, nil, errors.New("runtime exporter: queued item has a malformed record count")
	}
	rest = rest[w:]
	size, err := s2.DecodedLen(rest)
	if err != nil || size > maxQueuedBytes {
		return ctx, nil, fmt.Errorf("runtime exporter: queued item is not an S2 block of at most %d bytes (%d): %v", maxQueuedBytes, size, err)
	}
	body, err := s2.Decode(make([]byte, size), rest)
	if err != nil {
		return ctx, nil, fmt.Errorf("runtime exporter: queued item: %w", err)
	}
	// A record takes at least 2 bytes of its batch's encoding (its tag and length), which bounds the count.
	if records > uint64(len(body))/2 {
		return ctx, nil, errors.New("runtime exporter: queued item has a malformed record count")
	}
	return ctx, &batch{key: key, encoded: true, raw: body, records: int(records)}, nil
}

// maxQueuedBytes bounds what a queued item may decompress to: well above any batch the service takes
// (wire.MaxRecordsPerRequest records), so a corrupt length cannot make it allocate without limit.
const maxQueuedBytes = 1 << 30

// maxKeyLen leaves room for the ".<i>" suffix within the service's limit.
const maxKeyLen = wire.MaxIdempotencyKeyLen - 28
