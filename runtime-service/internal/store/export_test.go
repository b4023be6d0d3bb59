package store

import (
	"context"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
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
