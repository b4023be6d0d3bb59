package runtimeexporter // import "github.com/runtrust/runtrust/exporters/runtimeexporter"

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

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
	// sent counts the leading requests of this batch the service has acknowledged (in memory only: after a
	// restart they are sent again and the service recognizes their keys).
	sent int
}

var _ xexporterhelper.Request = (*batch)(nil)

var (
	protoMarshaler   = &plog.ProtoMarshaler{}
	protoUnmarshaler = &plog.ProtoUnmarshaler{}
)

func (b *batch) ItemsCount() int { return b.ld.LogRecordCount() }

func (b *batch) BytesSize() int { return protoMarshaler.LogsSize(b.ld) + len(b.key) }

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
func (b *batch) requests(max int) []request {
	n := b.ld.LogRecordCount()
	if n <= max {
		return []request{{key: b.key, ld: b.ld, records: n}}
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
	return out
}

// request is one gRPC call's worth of a batch.
type request struct {
	key     string
	ld      plog.Logs
	records int
}

// encoding persists a batch with its key: "rtb1", the key's length (uvarint), the key, the OTLP protobuf.
type encoding struct{}

const encodingMagic = "rtb1"

var _ exporterhelper.QueueBatchEncoding[xexporterhelper.Request] = encoding{}

func (encoding) Marshal(_ context.Context, r xexporterhelper.Request) ([]byte, error) {
	b, ok := r.(*batch)
	if !ok {
		return nil, fmt.Errorf("runtime exporter: cannot persist a %T", r)
	}
	body, err := protoMarshaler.MarshalLogs(b.ld)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(encodingMagic)+binary.MaxVarintLen64+len(b.key)+len(body))
	out = append(out, encodingMagic...)
	out = binary.AppendUvarint(out, uint64(len(b.key)))
	out = append(out, b.key...)
	return append(out, body...), nil
}

func (encoding) Unmarshal(data []byte) (context.Context, xexporterhelper.Request, error) {
	ctx := context.Background()
	if len(data) < len(encodingMagic) || string(data[:len(encodingMagic)]) != encodingMagic {
		return ctx, nil, errors.New("runtime exporter: queued item is not a runtime exporter batch (bad magic)")
	}
	rest := data[len(encodingMagic):]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n == 0 || n > maxKeyLen || uint64(len(rest)-w) < n {
		return ctx, nil, errors.New("runtime exporter: queued item has a malformed idempotency key")
	}
	key := string(rest[w : w+int(n)])
	ld, err := protoUnmarshaler.UnmarshalLogs(rest[w+int(n):])
	if err != nil {
		return ctx, nil, fmt.Errorf("runtime exporter: queued item: %w", err)
	}
	return ctx, &batch{key: key, ld: ld}, nil
}

// maxKeyLen leaves room for the ".<i>" suffix within the service's limit.
const maxKeyLen = wire.MaxIdempotencyKeyLen - 28
