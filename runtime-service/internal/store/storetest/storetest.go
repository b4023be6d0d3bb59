// Package storetest is the setup every test against the store shares: a fresh database with the store's schema
// (cloned from a template migrated once per test binary, internal/pgtest), a store opened on it and closed when
// the test ends, clusters enrolled with their own join keys, and a connection pool of the test's own for
// assertions on rows the store's API does not show. The store's own pool never leaves the store package.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		s := storetest.Open(t, store.Options{})
//		c := storetest.Enrol(t, s, "uid-1", "prod")
//		…
//		storetest.SQL(t, s).QueryRow(ctx, "SELECT count(*) FROM exec_events")
//	}
package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// templateName is the migrated template database, one per test binary (each has its own cluster).
const templateName = "store_schema"

// opened is what SQL needs of each store opened here and not yet closed.
type opened struct {
	dsn  string
	pool *pgxpool.Pool // made by the first SQL call
}

var (
	mu     sync.Mutex
	stores = map[*store.Store]*opened{}
)

// DSN creates a database with the store's schema applied for this test and returns its DSN; it is dropped when
// the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	pgtest.Template(t, templateName, store.Migrate)
	return pgtest.DBFrom(t, templateName)
}

// Open opens a store on a fresh database (DSN); it is closed when the test ends.
func Open(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	return OpenAt(t, DSN(t), opts)
}

// OpenAt opens a store on dsn (a database from DSN, or one a test prepared itself); it is closed when the test
// ends.
func OpenAt(t testing.TB, dsn string, opts store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	stores[s] = &opened{dsn: dsn}
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		o := stores[s]
		delete(stores, s)
		mu.Unlock()
		if o.pool != nil {
			o.pool.Close()
		}
		s.Close()
	})
	return s
}

// JoinKey is the join key Enrol seeds for cluster uid.
func JoinKey(uid string) string { return "join-" + uid }

// Enrol seeds JoinKey(uid) and enrols cluster uid, named name, with it (its LegacyCollector).
func Enrol(t testing.TB, s *store.Store, uid, name string) store.Cluster {
	t.Helper()
	ctx := context.Background()
	if err := s.SeedJoinKeys(ctx, []string{JoinKey(uid)}); err != nil {
		t.Fatal(err)
	}
	_, c, err := s.Enrol(ctx, JoinKey(uid), uid, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SQL is a connection pool of the test's own on the database s (opened by Open or OpenAt) is on: for
// assertions on rows and for setup the store has no method for. It is closed with the store.
func SQL(t testing.TB, s *store.Store) *pgxpool.Pool {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	o, ok := stores[s]
	if !ok {
		t.Fatal("storetest: SQL needs a store opened by storetest.Open or OpenAt, not yet closed")
	}
	if o.pool == nil {
		pool, err := pgxpool.New(context.Background(), o.dsn)
		if err != nil {
			t.Fatal(err)
		}
		o.pool = pool
	}
	return o.pool
}
