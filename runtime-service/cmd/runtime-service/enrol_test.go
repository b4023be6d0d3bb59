package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestEnrolCollectorIDs: `runtime-service enrol -collector-id` against the real ingest server on real Postgres:
// two collectors of one cluster enrol with one key into two token files, both tokens work, and running it again
// keeps a token that still works.
func TestEnrolCollectorIDs(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, store.Options{})
	const key = "enrol-subcommand-test-key"
	if err := st.SeedJoinKeys(ctx, []string{key}); err != nil {
		t.Fatal(err)
	}
	g := ingest.NewServer(st, slog.New(slog.NewTextHandler(io.Discard, nil)), ingest.DefaultLimits,
		ingest.NewMetrics(prometheus.NewRegistry())).GRPCServer(nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(l) }()
	defer g.Stop()

	dir := t.TempDir()
	env := map[string]string{"RUNTRUST_JOIN_KEY": key}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := enrol(append([]string{"-server", l.Addr().String(), "-cluster-uid", "uid-1", "-cluster-name", "one"}, args...),
			func(k string) string { return env[k] }, &out); err != nil {
			t.Fatalf("enrol %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	ids := map[string]string{}
	for _, id := range []string{"controller", "node-1"} {
		file := filepath.Join(dir, id+".token")
		if out := run("-collector-id", id, "-token-file", file); !strings.Contains(out, "collector "+id+" enrolled") {
			t.Fatalf("output %q does not name collector %s", out, id)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = strings.TrimSpace(string(b))
	}
	for id, tok := range ids {
		c, err := st.ClusterByToken(ctx, tok)
		if err != nil || c.CollectorID != id || c.UID != "uid-1" {
			t.Fatalf("%s's token: %+v, %v", id, c, err)
		}
	}
	if out := run("-collector-id", "controller", "-token-file", filepath.Join(dir, "controller.token")); !strings.Contains(out, "still valid") {
		t.Fatalf("a second run replaced a working token: %q", out)
	}
	// Without -collector-id, RUNTRUST_COLLECTOR_ID names the collector.
	env["RUNTRUST_COLLECTOR_ID"] = "node-2"
	if out := run("-token-file", filepath.Join(dir, "node-2.token")); !strings.Contains(out, "collector node-2 enrolled") {
		t.Fatalf("RUNTRUST_COLLECTOR_ID not used: %q", out)
	}
}
