// Package pgtest gives a test package a real, throwaway PostgreSQL: one cluster per test package (started through
// internal/localpg by the first test that needs it, removed by Main at the end) and a fresh database per test, cloned from a template
// with CREATE DATABASE … TEMPLATE, so a schema is migrated once and each test still starts clean.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) { dsn := pgtest.DB(t) … }
//
// When no PostgreSQL is installed the tests that ask for a database skip and say which binaries were missing;
// on a machine of the project's kind they are there, so a skip there is a failure to look into.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/localpg"
)

var (
	server    *localpg.Server
	startErr  error
	startOnce sync.Once
	serverDir string
	dbSeq     atomic.Int64

	templatesMu sync.Mutex
	templates   = map[string]error{}
)

// Main runs the package's tests and then stops its cluster and removes it. The cluster starts on the first
// test that asks for a database, so tests and fuzz targets that need none (a fuzz worker, say) pay nothing.
func Main(m *testing.M) {
	code := m.Run()
	startOnce.Do(func() { startErr = errors.New("pgtest: the run is over") }) // no start after this point
	if server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := server.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		cancel()
	}
	if serverDir != "" {
		os.RemoveAll(serverDir)
	}
	os.Exit(code)
}

// start starts the package's cluster, once.
func start() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reapOrphans(ctx)
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		startErr = err
		return
	}
	serverDir = dir
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		startErr = err
		return
	}
	server, startErr = Start(ctx, dir)
}

const (
	dirPrefix = "pgtest-"
	ownerFile = "owner.pid"
)

// reapOrphans stops and removes the clusters of test binaries that died without cleaning up (a test timeout
// panics past every deferred call), so they do not pile up on a machine that runs the tests all day.
func reapOrphans(ctx context.Context) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // alive, or not ours to judge
		}
		if s, err := localpg.New(ctx, localpg.Options{Dir: dir}); err == nil {
			_ = s.Kill(ctx)
		}
		_ = os.RemoveAll(dir)
	}
}

// Own starts a cluster for this test alone (to stop it mid-test, say); it is removed when the test ends.
func Own(t testing.TB) *localpg.Server {
	t.Helper()
	return OwnOn(t, "")
}

// OwnOn is Own with the cluster's data in dataDir (a volume of the test's, say, to fill it) and its
// write-ahead log beside the rest of the cluster's files, so a full dataDir fails writes with "no space" and
// does not stop the server. An empty dataDir is Own.
func OwnOn(t testing.TB, dataDir string) *localpg.Server {
	t.Helper()
	if _, err := localpg.FindBinDir(); err != nil {
		t.Skipf("pgtest: %v", err)
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := options(dir)
	if dataDir != "" {
		opts.DataDir, opts.WALDir = dataDir, filepath.Join(dir, "wal")
	}
	s, err := startWith(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("pgtest: %v", err)
		}
		os.RemoveAll(dir)
	})
	return s
}

// Start initialises and starts a throwaway cluster in dir (fsync off, a free port).
func Start(ctx context.Context, dir string) (*localpg.Server, error) {
	return startWith(ctx, options(dir))
}

func options(dir string) localpg.Options {
	return localpg.Options{Dir: dir, Settings: map[string]string{"max_connections": "200"}}
}

func startWith(ctx context.Context, opts localpg.Options) (*localpg.Server, error) {
	s, err := localpg.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Server returns the package's cluster, or skips (binaries absent) or fails (they are there but it did not start).
func Server(t testing.TB) *localpg.Server {
	t.Helper()
	startOnce.Do(start)
	if startErr != nil {
		if isNoBinaries(startErr) {
			t.Skipf("pgtest: %v", startErr)
		}
		t.Fatalf("pgtest: the test cluster did not start: %v", startErr)
	}
	if server == nil {
		t.Fatal("pgtest: no cluster")
	}
	return server
}

func isNoBinaries(err error) bool { return errors.Is(err, localpg.ErrNoBinaries) }

// DB creates an empty database for this test and returns its DSN. It is dropped when the test ends.
func DB(t testing.TB) string { return DBFrom(t, "template1") }

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// DBFrom creates a database for this test as a copy of template (see Template) and returns its DSN.
func DBFrom(t testing.TB, template string) string {
	t.Helper()
	s := Server(t)
	if !identRE.MatchString(template) {
		t.Fatalf("pgtest: template name %q is not a plain identifier", template)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := exec(ctx, s.DSN("postgres"), fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		t.Fatalf("pgtest: create database from %s: %v", template, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends sessions a test left open (a pool not yet closed), so the drop never waits.
		if err := exec(ctx, s.DSN("postgres"), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// Template creates database name once per test binary, runs prepare against it (migrations, say), and marks it
// a template. Later calls with the same name return the first call's result.
func Template(t testing.TB, name string, prepare func(ctx context.Context, dsn string) error) {
	t.Helper()
	s := Server(t)
	if !identRE.MatchString(name) {
		t.Fatalf("pgtest: template name %q is not a plain identifier", name)
	}
	templatesMu.Lock()
	defer templatesMu.Unlock()
	err, done := templates[name]
	if !done {
		err = makeTemplate(s, name, prepare)
		templates[name] = err
	}
	if err != nil {
		t.Fatalf("pgtest: template %s: %v", name, err)
	}
}

func makeTemplate(s *localpg.Server, name string, prepare func(ctx context.Context, dsn string) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := exec(ctx, s.DSN("postgres"), "CREATE DATABASE "+name); err != nil {
		return err
	}
	if err := prepare(ctx, s.DSN(name)); err != nil {
		return err
	}
	// No session may stay connected to a template while it is copied.
	return exec(ctx, s.DSN("postgres"), fmt.Sprintf("ALTER DATABASE %s WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", name))
}

func exec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}
