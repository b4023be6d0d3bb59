package ingest

import (
	"errors"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// DecodeRequest decodes a serialized OTLP ExportLogsServiceRequest from cluster c into a store batch, with the
// same checks, results and messages as Decode over the request unmarshalled into pdata.
//
// Building pdata's object tree cost about half of the service's Go-side CPU per record (one allocation per
// record, attribute, value and string, then garbage). So the wire decoder below walks the protobuf encoding with
// protowire and fills the batch's rows directly: strings point into b (which the caller must not change while
// the batch is in use), attributes are looked up in a small reused slice, and the record checks are Decode's own
// (reader, Decoded.record).
//
// The wire decoder accepts only what pdata accepts and means the same by it; anything outside the plain shape
// collectors send (a malformed message, a repeated singular message, an entity reference, a string-table index,
// a resource whose cluster uid is not a string, deep nesting) makes it step aside, and the request goes through
// pdata and Decode instead. So a malformed request gets pdata's error, word for word, and an odd but valid one
// the same rows. FuzzDecodeRequestMatchesPdata holds the two paths to that.
func DecodeRequest(b []byte, c store.Cluster, now time.Time) (*Decoded, error) {
	w := wireDecoder{c: c, now: now}
	if d, err := w.decode(b); err == nil {
		return d, nil
	}
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		return nil, err
	}
	return Decode(req.Logs(), c, now), nil
}

// errStepAside: the wire decoder leaves this request to pdata. It never reaches a caller.
var errStepAside = errors.New("not the plain OTLP shape the wire decoder handles")

// maxWireDepth bounds AnyValue nesting in the wire decoder; deeper requests go through pdata.
const maxWireDepth = 32

type wireDecoder struct {
	c   store.Cluster
	now time.Time
	d   *Decoded
	n   int // records seen so far, for error messages

	res, rec wireAttrs // the current resource's and record's attributes, reused
}

// wireKV is an attribute as decoded from the wire; a Slice value keeps its ArrayValue encoding until read.
type wireKV struct {
	key string
	val attrValue
	arr []byte
}

type wireAttrs []wireKV

func (a *wireAttrs) lookup(key string) (attrValue, bool) {
	for i := range *a {
		kv := &(*a)[i]
		if kv.key != key {
			continue
		}
		v := kv.val
		if v.typ == pcommon.ValueTypeSlice {
			v.count = countArray(kv.arr)
			if v.count <= maxListEntries {
				v.elems = make([]attrValue, 0, v.count)
				_ = forEachField(kv.arr, func(num protowire.Number, typ protowire.Type, val []byte) error {
					if num == 1 {
						e, _, _ := parseAnyValue(val, 1) // validated when the record was read
						v.elems = append(v.elems, e)
					}
					return nil
				})
			}
		}
		return v, true
	}
	return attrValue{}, false
}

// view is b as a string without copying: the batch's strings share the request's memory (see DecodeRequest).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// forEachField calls f for each field of message b: a varint's value is returned encoded in val (decode with
// protowire.ConsumeVarint), fixed-size values as their bytes, length-delimited ones as their contents. Groups
// step aside (pdata and protowire disagree on where a malformed one ends).
func forEachField(b []byte, f func(num protowire.Number, typ protowire.Type, val []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errStepAside
		}
		b = b[n:]
		var val []byte
		switch typ {
		case protowire.VarintType:
			_, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return errStepAside
			}
			val, b = b[:m], b[m:]
		case protowire.Fixed64Type:
			if len(b) < 8 {
				return errStepAside
			}
			val, b = b[:8], b[8:]
		case protowire.Fixed32Type:
			if len(b) < 4 {
				return errStepAside
			}
			val, b = b[:4], b[4:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return errStepAside
			}
			val, b = v, b[m:]
		default:
			return errStepAside
		}
		if err := f(num, typ, val); err != nil {
			return err
		}
	}
	return nil
}

// countArray counts an ArrayValue's entries.
func countArray(b []byte) int {
	n := 0
	_ = forEachField(b, func(num protowire.Number, _ protowire.Type, _ []byte) error {
		if num == 1 {
			n++
		}
		return nil
	})
	return n
}

// parseAnyValue reads and checks an AnyValue as pdata would: the last of its oneof fields wins, a Slice's or a
// Map's entries are checked (to the same depth pdata would reach), a Slice keeps its encoding (arr).
func parseAnyValue(b []byte, depth int) (v attrValue, arr []byte, err error) {
	if depth > maxWireDepth {
		return v, nil, errStepAside
	}
	err = forEachField(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch num {
		case 1:
			if typ != protowire.BytesType {
				return errStepAside
			}
			v = attrValue{typ: pcommon.ValueTypeStr, str: view(val)}
		case 2, 3:
			if typ != protowire.VarintType {
				return errStepAside
			}
			x, _ := protowire.ConsumeVarint(val)
			if num == 2 {
				v = attrValue{typ: pcommon.ValueTypeBool, flag: x != 0}
			} else {
				v = attrValue{typ: pcommon.ValueTypeInt, num: int64(x)}
			}
		case 4:
			if typ != protowire.Fixed64Type {
				return errStepAside
			}
			v = attrValue{typ: pcommon.ValueTypeDouble}
		case 5:
			if typ != protowire.BytesType {
				return errStepAside
			}
			if err := forEachEntry(val, func(e []byte) error {
				_, _, err := parseAnyValue(e, depth+1)
				return err
			}); err != nil {
				return err
			}
			v, arr = attrValue{typ: pcommon.ValueTypeSlice}, val
			return nil
		case 6:
			if typ != protowire.BytesType {
				return errStepAside
			}
			if err := forEachEntry(val, func(e []byte) error {
				_, err := parseKeyValue(e, depth+1)
				return err
			}); err != nil {
				return err
			}
			v = attrValue{typ: pcommon.ValueTypeMap}
		case 7:
			if typ != protowire.BytesType {
				return errStepAside
			}
			v = attrValue{typ: pcommon.ValueTypeBytes}
		case 8: // string_value_strindex (profiles' string table): not in logs; pdata decides
			return errStepAside
		default:
			return unknownField(typ)
		}
		arr = nil
		return nil
	})
	return v, arr, err
}

// forEachEntry hands each entry of an ArrayValue or a KeyValueList (both: field 1, repeated) to parse.
func forEachEntry(b []byte, parse func(e []byte) error) error {
	return forEachField(b, func(num protowire.Number, typ protowire.Type, e []byte) error {
		if num != 1 {
			return unknownField(typ)
		}
		if typ != protowire.BytesType {
			return errStepAside
		}
		return parse(e)
	})
}

// unknownField skips a field the message does not define, as pdata does (ConsumeUnknown); forEachField has
// already checked that its value is well-formed.
func unknownField(protowire.Type) error { return nil }

// parseKeyValue reads one KeyValue. A repeated value field would merge in pdata; that steps aside.
func parseKeyValue(b []byte, depth int) (wireKV, error) {
	var kv wireKV
	seenValue := false
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch num {
		case 1:
			if typ != protowire.BytesType {
				return errStepAside
			}
			kv.key = view(val)
		case 2:
			if typ != protowire.BytesType || seenValue {
				return errStepAside
			}
			seenValue = true
			var err error
			kv.val, kv.arr, err = parseAnyValue(val, depth)
			return err
		case 3: // key_strindex
			return errStepAside
		default:
			return unknownField(typ)
		}
		return nil
	})
	return kv, err
}

// attrsInto appends KeyValue b to a.
func (a *wireAttrs) add(b []byte) error {
	kv, err := parseKeyValue(b, 0)
	if err != nil {
		return err
	}
	*a = append(*a, kv)
	return nil
}

func (w *wireDecoder) decode(b []byte) (*Decoded, error) {
	w.d = &Decoded{Kinds: map[string]int{}}
	w.presize(b)
	i := 0
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		if num != 1 {
			return unknownField(typ)
		}
		if typ != protowire.BytesType {
			return errStepAside
		}
		err := w.resourceLogs(i, val)
		i++
		return err
	})
	if err != nil {
		return nil, err
	}
	// A kind whose records were all rejected has no rows, as in Decode: nil, not an empty slice.
	bt := &w.d.Batch
	bt.Nodes, bt.Workloads, bt.Pods = nilIfEmpty(bt.Nodes), nilIfEmpty(bt.Workloads), nilIfEmpty(bt.Pods)
	bt.Containers, bt.Execs, bt.FileOpens = nilIfEmpty(bt.Containers), nilIfEmpty(bt.Execs), nilIfEmpty(bt.FileOpens)
	bt.SensorHealth = nilIfEmpty(bt.SensorHealth)
	return w.d, nil
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// presize gives the batch's row slices the capacity the request's records of each kind need, from a quick walk
// that reads only their event names: appending a thousand rows of 150 bytes one by one, doubling, had been a
// third of the decoder's time (copying and zeroing). A malformed request is left to the real walk to find.
func (w *wireDecoder) presize(b []byte) {
	var n [8]int
	kinds := map[string]int{records.EventK8sNode: 0, records.EventK8sWorkload: 1, records.EventK8sPod: 2,
		records.EventK8sContainer: 3, records.EventProcessExec: 4, records.EventFileOpen: 5, records.EventSensorHealth: 6}
	nested := func(want protowire.Number, f func([]byte) error) func(protowire.Number, protowire.Type, []byte) error {
		return func(num protowire.Number, typ protowire.Type, val []byte) error {
			if num == want && typ == protowire.BytesType {
				return f(val)
			}
			return nil
		}
	}
	_ = forEachField(b, nested(1, func(rl []byte) error {
		return forEachField(rl, nested(2, func(sl []byte) error {
			return forEachField(sl, nested(2, func(lr []byte) error {
				var event []byte
				_ = forEachField(lr, func(num protowire.Number, typ protowire.Type, val []byte) error {
					if num == 12 && typ == protowire.BytesType {
						event = val
					}
					return nil
				})
				if k, ok := kinds[string(event)]; ok {
					n[k]++
				}
				return nil
			}))
		}))
	}))
	bt := &w.d.Batch
	bt.Nodes, bt.Workloads, bt.Pods = make([]store.Node, 0, n[0]), make([]store.Workload, 0, n[1]), make([]store.Pod, 0, n[2])
	bt.Containers, bt.Execs = make([]store.Container, 0, n[3]), make([]store.ExecEvent, 0, n[4])
	bt.FileOpens, bt.SensorHealth = make([]store.FileOpenEvent, 0, n[5]), make([]store.SensorHealth, 0, n[6])
}

// resourceLogs reads one ResourceLogs: its resource first, wherever it sits in the encoding, then its records.
func (w *wireDecoder) resourceLogs(i int, b []byte) error {
	var resource []byte
	seenResource := false
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch num {
		case 1:
			if typ != protowire.BytesType || seenResource { // a repeated resource merges in pdata
				return errStepAside
			}
			seenResource, resource = true, val
		case 2, 3:
			if typ != protowire.BytesType {
				return errStepAside
			}
		default:
			return unknownField(typ)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.res = w.res[:0]
	if err := forEachField(resource, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch num {
		case 1:
			if typ != protowire.BytesType {
				return errStepAside
			}
			return w.res.add(val)
		case 2:
			if typ != protowire.VarintType {
				return errStepAside
			}
		case 3: // entity_refs
			return errStepAside
		default:
			return unknownField(typ)
		}
		return nil
	}); err != nil {
		return err
	}
	foreign := ""
	if v, ok := w.res.lookup(records.AttrK8sClusterUID); ok {
		if v.typ != pcommon.ValueTypeStr {
			return errStepAside // Decode compares its AsString form
		}
		if v.str != w.c.UID {
			foreign = foreignCluster(i, v.str, w.c.UID)
		}
	}
	return forEachField(b, func(num protowire.Number, _ protowire.Type, val []byte) error {
		if num != 2 {
			return nil
		}
		return w.scopeLogs(val, foreign)
	})
}

func (w *wireDecoder) scopeLogs(b []byte, foreign string) error {
	return forEachField(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch num {
		case 1:
			if typ != protowire.BytesType {
				return errStepAside
			}
			return checkScope(val)
		case 2:
			if typ != protowire.BytesType {
				return errStepAside
			}
			return w.logRecord(val, foreign)
		case 3:
			if typ != protowire.BytesType {
				return errStepAside
			}
		default:
			return unknownField(typ)
		}
		return nil
	})
}

// checkScope checks an InstrumentationScope; nothing in it is stored.
func checkScope(b []byte) error {
	return forEachField(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch num {
		case 1, 2:
			if typ != protowire.BytesType {
				return errStepAside
			}
		case 3:
			if typ != protowire.BytesType {
				return errStepAside
			}
			_, err := parseKeyValue(val, 0)
			return err
		case 4:
			if typ != protowire.VarintType {
				return errStepAside
			}
		default:
			return unknownField(typ)
		}
		return nil
	})
}

// Event names as constants, so that Decoded.Kinds (which becomes metric labels) holds no string that shares
// the request's memory.
var eventNames = map[string]string{
	records.EventK8sNode: records.EventK8sNode, records.EventK8sWorkload: records.EventK8sWorkload,
	records.EventK8sPod: records.EventK8sPod, records.EventK8sContainer: records.EventK8sContainer,
	records.EventProcessExec: records.EventProcessExec, records.EventFileOpen: records.EventFileOpen,
	records.EventSensorHealth: records.EventSensorHealth,
}

func (w *wireDecoder) logRecord(b []byte, foreign string) error {
	var ts, observed uint64
	var event []byte
	w.rec = w.rec[:0]
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		want := protowire.BytesType
		switch num {
		case 1, 11:
			want = protowire.Fixed64Type
		case 2, 7:
			want = protowire.VarintType
		case 8:
			want = protowire.Fixed32Type
		case 3, 5, 6, 9, 10, 12:
		default:
			return unknownField(typ)
		}
		if typ != want {
			return errStepAside
		}
		switch num {
		case 1:
			ts, _ = protowire.ConsumeFixed64(val)
		case 11:
			observed, _ = protowire.ConsumeFixed64(val)
		case 5: // body
			_, _, err := parseAnyValue(val, 0)
			return err
		case 6:
			return w.rec.add(val)
		case 9: // trace id: empty or 16 bytes, else pdata fails the request
			if len(val) != 0 && len(val) != 16 {
				return errStepAside
			}
		case 10: // span id
			if len(val) != 0 && len(val) != 8 {
				return errStepAside
			}
		case 12:
			event = val
		}
		return nil
	})
	if err != nil {
		return err
	}
	n := w.n
	w.n++
	if foreign != "" {
		w.d.reject(n, foreign)
		return nil
	}
	name, ok := eventNames[string(event)] // no allocation: the compiler looks up without converting
	if !ok {
		name = view(event) // unknown or empty: rejected, and the message copies it
	}
	var t time.Time
	switch {
	case ts != 0:
		t = time.Unix(0, int64(ts)).UTC()
	case observed != 0:
		t = time.Unix(0, int64(observed)).UTC()
	default:
		t = w.now.UTC()
	}
	w.d.record(n, name, t, &reader{rec: &w.rec, res: &w.res})
	return nil
}
