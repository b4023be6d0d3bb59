package localpg_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/localpg"
)

func newServer(t *testing.T) *localpg.Server {
	t.Helper()
	if _, err := localpg.FindBinDir(); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "localpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := localpg.New(ctx, localpg.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func ping(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// TestStartStopRestartKeepsData: the server initialises once, serves on loopback, and a restart (also after a
// crash-like immediate stop) finds committed data again.
func TestStartStopRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := s.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, s.DSN("postgres")); err == nil {
		t.Fatal("server still answers after Kill")
	}
	// A restart keeps the port, so DSNs handed out before stay good.
	dsn := s.DSN("postgres")
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, dsn); err != nil {
		t.Fatalf("the old DSN after a restart: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// New on an initialised directory must not run initdb again.
	s2, err := localpg.New(ctx, localpg.Options{Dir: s.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s2.Stop(ctx)
	conn, err = pgx.Connect(ctx, s2.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: v=%d err=%v", v, err)
	}
}

// TestStartTakesOverALeftoverServer: a server left running by a killed owner is restarted, not an error.
func TestStartTakesOverALeftoverServer(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := localpg.New(ctx, localpg.Options{Dir: s.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer again.Stop(ctx)
	if err := ping(ctx, again.DSN("postgres")); err != nil {
		t.Fatal(err)
	}
}

func TestNewNamesMissingBinaries(t *testing.T) {
	_, err := localpg.New(context.Background(), localpg.Options{Dir: t.TempDir(), BinDir: "/nonexistent/bin"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/bin") {
		t.Fatalf("err = %v; want it to name the directory", err)
	}
}
