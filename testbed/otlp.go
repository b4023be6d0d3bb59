package testbed

import (
	"bufio"
	"context"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// SendLogs exports ld over real OTLP/gRPC to endpoint and fails the test on any error or partial success.
func SendLogs(t testing.TB, endpoint string, ld plog.Logs) {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	if err != nil {
		t.Fatalf("OTLP export to %s: %v", endpoint, err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedLogRecords() != 0 {
		t.Fatalf("OTLP export to %s: %d records rejected: %s", endpoint, ps.RejectedLogRecords(), ps.ErrorMessage())
	}
}

// Record is one log record as the file exporter wrote it, flattened with its resource attributes.
type Record struct {
	EventName string
	Resource  map[string]any
	Attrs     map[string]any
}

// ReadFileExport parses a file exporter's JSON-lines output (one OTLP JSON request per line).
func ReadFileExport(t testing.TB, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var um plog.JSONUnmarshaler
	for sc.Scan() {
		ld, err := um.UnmarshalLogs(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: a line is not OTLP JSON: %v", path, err)
		}
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			res := rls.At(i).Resource().Attributes().AsRaw()
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, Record{EventName: lrs.At(k).EventName(), Resource: res, Attrs: lrs.At(k).Attributes().AsRaw()})
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// WaitForRecords polls the file exporter's output until it holds at least n records or the timeout passes.
func WaitForRecords(t testing.TB, path string, n int, timeout time.Duration) []Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := ReadFileExport(t, path)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d records after %s, want %d", path, len(got), timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
