package ingest_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

func marshalLogs(t testing.TB, ld plog.Logs) []byte {
	t.Helper()
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeBoth decodes ld with Decode (pdata) and its encoding with the wire decoder alone, requires the wire
// decoder to have handled it itself, and both to agree.
func decodeBoth(t *testing.T, ld plog.Logs, c store.Cluster, now time.Time) *ingest.Decoded {
	t.Helper()
	want := ingest.Decode(ld, c, now)
	got, ok := ingest.DecodeWire(marshalLogs(t, ld), c, now)
	if !ok {
		t.Fatal("the wire decoder stepped aside for a plain request")
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("wire decoder and Decode differ:\nwire  %+v\npdata %+v", got, want)
	}
	return got
}

// pdataPath is what the service did before DecodeRequest: unmarshal into pdata, then Decode.
func pdataPath(b []byte, c store.Cluster, now time.Time) (*ingest.Decoded, error) {
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		return nil, err
	}
	return ingest.Decode(req.Logs(), c, now), nil
}

// Hand-built protobuf, for shapes pdata never produces itself.
func field(num protowire.Number, b []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
}
func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}
func fixed64Field(num protowire.Number, v uint64) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(nil, num, protowire.Fixed64Type), v)
}
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
func strValue(s string) []byte { return field(1, []byte(s)) }
func kv(key string, value []byte) []byte {
	return cat(field(1, []byte(key)), field(2, value))
}
func nodeRecord(extra ...[]byte) []byte {
	return cat(append([][]byte{
		fixed64Field(1, uint64(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())),
		field(12, []byte(records.EventK8sNode)),
		field(6, kv(records.AttrK8sNodeUID, strValue("uid-1"))),
		field(6, kv(records.AttrK8sNodeName, strValue("node-1"))),
	}, extra...)...)
}
func request(resource []byte, recs ...[]byte) []byte {
	var scope []byte
	for _, r := range recs {
		scope = append(scope, field(2, r)...)
	}
	rl := field(2, scope)
	if resource != nil {
		rl = cat(rl, field(1, resource)) // after the scope logs: the decoder must read it first anyway
	}
	return field(1, rl)
}

// TestWireDecoderMatchesPdata: hand-encoded requests in shapes the OTLP exporters rarely or never send; the
// service's decoder must store and reject exactly what pdata plus Decode would, and handle the plain ones itself.
func TestWireDecoderMatchesPdata(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	ownResource := field(1, kv(records.AttrK8sClusterUID, strValue(testCluster.UID)))
	cases := []struct {
		name     string
		b        []byte
		wireOnly bool   // the wire decoder handles it without pdata
		kept     int    // records kept
		errSub   string // for a request pdata cannot decode: part of the error
		msgSub   string // part of the rejection message
	}{
		{name: "resource after the records", b: request(ownResource, nodeRecord()), wireOnly: true, kept: 1},
		{name: "unknown fields everywhere", b: cat(varintField(99, 7), request(cat(ownResource, varintField(50, 1)),
			nodeRecord(field(40, []byte("x")), fixed64Field(41, 1)))), wireOnly: true, kept: 1},
		{name: "first of two equal keys wins", b: request(nil, nodeRecord(field(6, kv(records.AttrK8sNodeUID, strValue(""))))), wireOnly: true, kept: 1},
		{name: "last event name wins", b: request(nil, nodeRecord(field(12, []byte("bogus")))), wireOnly: true, msgSub: `unknown event name "bogus"`},
		{name: "last oneof field wins", b: request(nil, nodeRecord(field(6, kv(records.AttrK8sChange,
			cat(strValue(records.ChangeDeleted), varintField(3, 5)))))), wireOnly: true, msgSub: "runtrust.k8s.change is a Int; want a string"},
		{name: "value without a value", b: request(nil, nodeRecord(field(6, field(1, []byte(records.AttrK8sChange))))), wireOnly: true,
			msgSub: "runtrust.k8s.change is a Empty; want a string"},
		{name: "double and map and bytes", b: request(nil, nodeRecord(
			field(6, kv("d", fixed64Field(4, math.Float64bits(1.5)))),
			field(6, kv("m", field(6, field(1, kv("k", strValue("v")))))),
			field(6, kv("b", field(7, []byte{1, 2}))),
			field(5, field(5, field(1, strValue("body")))))), wireOnly: true, kept: 1},
		{name: "another cluster", b: request(field(1, kv(records.AttrK8sClusterUID, strValue("other"))), nodeRecord(), nodeRecord()),
			wireOnly: true, msgSub: `2 log record(s) rejected: record 0 in resource 0: k8s.cluster.uid "other" is not the cluster`},
		{name: "cluster uid as an int", b: request(field(1, kv(records.AttrK8sClusterUID, varintField(3, 7))), nodeRecord()),
			msgSub: `k8s.cluster.uid "7" is not the cluster`},
		{name: "repeated resource merges", b: field(1, cat(field(1, ownResource), field(2, field(2, nodeRecord())),
			field(1, field(1, kv(records.AttrK8sClusterUID, strValue("other")))))), kept: 1},
		{name: "string table index", b: request(nil, nodeRecord(field(6, cat(field(1, []byte("x")), varintField(3, 1))))), kept: 1},
		{name: "trace id of 16 bytes", b: request(nil, nodeRecord(field(9, make([]byte, 16)))), wireOnly: true, kept: 1},
		{name: "trace id of 3 bytes", b: request(nil, nodeRecord(field(9, []byte{1, 2, 3}))), errSub: "invalid TraceID length"},
		{name: "wrong wire type", b: request(nil, nodeRecord(varintField(12, 1))), errSub: "wrong wireType = 0 for field EventName"},
		{name: "truncated", b: request(nil, nodeRecord())[:20], errSub: "unexpected EOF"},
		{name: "field zero", b: []byte{0x02, 0x00}, errSub: "illegal field=0"},
		{name: "garbage", b: []byte("garbage"), errSub: "proto"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, wantErr := pdataPath(c.b, testCluster, now)
			got, err := ingest.DecodeRequest(c.b, testCluster, now)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeRequest: %+v, %v\npdata path:    %+v, %v", got, err, want, wantErr)
			}
			if c.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), c.errSub) {
					t.Fatalf("error %v; want it to say %q", err, c.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Batch.Len() != c.kept || !strings.Contains(got.Message(), c.msgSub) {
				t.Fatalf("kept %d (want %d), message %q (want %q)", got.Batch.Len(), c.kept, got.Message(), c.msgSub)
			}
			if _, ok := ingest.DecodeWire(c.b, testCluster, now); ok != c.wireOnly {
				t.Fatalf("wire decoder handled it itself: %v; want %v", ok, c.wireOnly)
			}
		})
	}
}

// FuzzDecodeRequestMatchesPdata: on any bytes, the service's decoder (the wire decoder, stepping aside to pdata
// when it must) gives the same rows, rejections and errors as unmarshalling into pdata and running Decode.
func FuzzDecodeRequestMatchesPdata(f *testing.F) {
	seed := logsOf(map[string]any{records.AttrK8sClusterUID: testCluster.UID},
		rec{records.EventK8sNode, nodeAttrs}, rec{records.EventK8sContainer, containerAttrs},
		rec{records.EventProcessExec, execAttrs}, rec{records.EventFileOpen, fileAttrs},
		rec{records.EventSensorHealth, merge(healthAttrs, map[string]any{records.AttrHostName: "h"})}, rec{"bogus", nil},
		rec{records.EventProcessExec, merge(execAttrs, map[string]any{records.AttrProcessCommandArgs: []any{"sh", 1}})})
	f.Add(marshalLogs(f, seed))
	f.Add(marshalLogs(f, logsOf(map[string]any{records.AttrK8sClusterUID: "other"}, rec{records.EventK8sNode, nodeAttrs})))
	f.Add(request(field(1, kv(records.AttrK8sClusterUID, varintField(3, 7))), nodeRecord()))
	f.Add(request(nil, nodeRecord(field(6, kv("m", field(6, field(1, kv("k", field(5, field(1, strValue("v")))))))))))
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := pdataPath(data, testCluster, now)
		got, err := ingest.DecodeRequest(data, testCluster, now)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("error %v; pdata path: %v", err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeRequest %+v\npdata path    %+v", got, want)
		}
		if w, ok := ingest.DecodeWire(data, testCluster, now); ok && !reflect.DeepEqual(w, want) {
			t.Fatalf("wire decoder %+v\npdata path   %+v", w, want)
		}
	})
}

// BenchmarkDecodeRequest: a 2,000-record request of exec and file-open events, as in the load test, through the
// wire decoder and through pdata plus Decode.
func BenchmarkDecodeRequest(b *testing.B) {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	for i := 0; i < 2000; i++ {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		attrs := execAttrs
		lr.SetEventName(records.EventProcessExec)
		if i%2 == 1 {
			attrs = fileAttrs
			lr.SetEventName(records.EventFileOpen)
		}
		putAll(lr.Attributes(), merge(attrs, map[string]any{records.AttrContainerID: fmt.Sprintf("cid-%d", i%50)}))
	}
	data := marshalLogs(b, ld)
	for _, path := range []struct {
		name   string
		decode func([]byte, store.Cluster, time.Time) (*ingest.Decoded, error)
	}{{"wire", ingest.DecodeRequest}, {"pdata", pdataPath}} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := path.decode(data, testCluster, now)
				if err != nil || d.Batch.Len() != 2000 {
					b.Fatalf("%v, %d records", err, d.Batch.Len())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/record")
		})
	}
}
