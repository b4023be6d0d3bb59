package store

import (
	"context"
	"io/fs"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/runtrust/runtrust/internal/pgtest"
)

// MigrateTo applies the migrations up to version, for tests of a migration over data written before it.
func MigrateTo(ctx context.Context, dsn string, version int32) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	m, err := migrate.NewMigrator(ctx, conn, "schema_version")
	if err != nil {
		return err
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(sub); err != nil {
		return err
	}
	return m.MigrateTo(ctx, version)
}

// openInternal is storetest.Open and storetest.Enrol for the tests inside package store, which cannot import
// storetest (it imports store): a store on a fresh migrated database, and one cluster per uid (named uid),
// enrolled with storetest's join key.
func openInternal(tb testing.TB, opts Options, uids ...string) (*Store, []Cluster) {
	tb.Helper()
	ctx := context.Background()
	pgtest.Template(tb, "store_schema", Migrate)
	s, err := Open(ctx, pgtest.DBFrom(tb, "store_schema"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	cls := make([]Cluster, len(uids))
	for i, uid := range uids {
		if err := s.SeedJoinKeys(ctx, []string{"join-" + uid}); err != nil {
			tb.Fatal(err)
		}
		if _, cls[i], err = s.Enrol(ctx, "join-"+uid, uid, uid); err != nil {
			tb.Fatal(err)
		}
	}
	return s, cls
}
