package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func query(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// TestDatabasesAreFreshAndFromTheTemplate: each test database is new, and one cloned from a template carries
// what the template's prepare step made.
func TestDatabasesAreFreshAndFromTheTemplate(t *testing.T) {
	pgtest.Template(t, "tmpl_demo", func(ctx context.Context, dsn string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE TABLE demo (v text); INSERT INTO demo VALUES ('from template')")
		return err
	})
	a := pgtest.DBFrom(t, "tmpl_demo")
	b := pgtest.DBFrom(t, "tmpl_demo")
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	if got := query(t, a, "SELECT v FROM demo"); got != "from template" {
		t.Fatalf("template content = %q", got)
	}
	if got := query(t, pgtest.DB(t), "SELECT count(*)::text FROM pg_tables WHERE tablename = 'demo'"); got != "0" {
		t.Fatalf("a plain database has the template's table (%s)", got)
	}
	if got := query(t, a, "SELECT current_setting('fsync')"); got != "off" {
		t.Fatalf("fsync = %s; the test cluster runs without it", got)
	}
}
