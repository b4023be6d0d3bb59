// Package store is the runtime service's Postgres store. It is split by job, one set of files each, over one
// connection pool that never leaves the package (docs/decisions.md, "Store split by job"):
//
//   - store.go, model.go: opening (migrations applied at start), the records the write path takes, error classes;
//   - write path: ingest.go (Apply, idempotency keys), groupcommit.go (batches applied together),
//     ingest_state.go (state records through staging tables, image recompute, verdict changes),
//     ingest_events.go (aggregates, sensor health), copyevents.go (the raw events' binary COPY);
//   - read model: query.go (images, clusters, workloads), artifacts.go, timeline.go, and the read halves of
//     correlation.go and vulnerabilities.go, whose other halves the correlator and the scanner write with;
//   - enrolment: enrolment.go (join keys, clusters, collectors and their tokens), entitlement.go (the node
//     entitlement a sensor's enrolment is checked against);
//   - retention: retention.go (event partitions, idempotency keys).
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/runtrust/runtrust/runtime-service/internal/entitlement"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune the store.
type Options struct {
	// MaxConns bounds the pool. Zero: pgxpool's default (4 or the number of CPUs, whichever is larger).
	MaxConns int32
	// Retention is how long raw events are kept. Zero: 10 days.
	Retention time.Duration
	// Now is the clock (tests move it). Nil: time.Now.
	Now func() time.Time
	// SensorStaleAfter: a sensor without a health record for this long is stale. Zero: StaleIntervals of its
	// own reporting interval once known, SensorStaleAfter before.
	SensorStaleAfter time.Duration
	// Committers bounds the group-commit transactions running at once (groupcommit.go). Zero:
	// DefaultCommitters.
	Committers int
	// Entitlement is each cluster's licensed node count: EnrolCollector refuses a new sensor beyond it, the
	// cluster summaries report it (entitlement.go). The zero value is unlimited.
	Entitlement entitlement.Nodes
	// Placement is the placement policy each live container is judged by at first (placement.go); nil: none.
	// SetPlacement replaces it.
	Placement *placement.Policy
}

// Store is the Postgres store.
type Store struct {
	pool *pgxpool.Pool
	opts Options

	// placement is the placement policy in force: Options.Placement, then what SetPlacement put in force.
	placement atomic.Pointer[placement.Policy]

	partitionsMu sync.Mutex
	partitions   map[string]bool // "exec_events_p20260102" → exists

	queueMu    sync.Mutex
	queue      []*part // batches waiting for a committer
	committers int     // committers running
	groups     atomic.Int64
	grouped    atomic.Int64
	conflicts  atomic.Int64
}

// DefaultRetention is how long raw events are kept unless configured.
const DefaultRetention = 10 * 24 * time.Hour

// Open connects to dsn, applies the migrations, and prepares today's event partitions.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Committers <= 0 {
		opts.Committers = DefaultCommitters
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: database DSN: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.AfterConnect = createStagingTables
	if err := Migrate(ctx, dsn); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	s := &Store{pool: pool, opts: opts, partitions: map[string]bool{}}
	s.placement.Store(opts.Placement)
	if err := s.MaintainPartitions(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Migrate applies every migration not yet applied. tern takes an advisory lock, so two services starting
// against one database do not race.
func Migrate(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("store: connect to migrate: %w", err)
	}
	defer conn.Close(context.Background())
	m, err := migrate.NewMigrator(ctx, conn, "schema_version")
	if err != nil {
		return fmt.Errorf("store: migrator: %w", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("store: load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int32, error) {
	var v int32
	err := s.pool.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&v)
	return v, err
}

// Close closes the pool; it waits for connections in use to be released.
func (s *Store) Close() { s.pool.Close() }

// Ping says whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Staging tables, one set per connection, emptied at every commit: the ingest COPYs a batch's state records here
// and upserts from them in one statement per kind.
const stagingDDL = `
CREATE TEMP TABLE IF NOT EXISTS stage_nodes (LIKE nodes) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_workloads (LIKE workloads) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_pods (LIKE pods) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_containers (LIKE containers) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_exec_aggregates (LIKE exec_aggregates) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_file_aggregates (LIKE file_aggregates) ON COMMIT DELETE ROWS;
`

func createStagingTables(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, stagingDDL)
	return err
}

// ErrUnavailable wraps errors that say the database could not be reached or went away mid-transaction: the
// batch was not applied and the client should retry it.
var ErrUnavailable = errors.New("database unavailable")

// classify marks connection-level failures as ErrUnavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code[:2] == "08", // connection exception
			pgErr.Code[:2] == "53", // insufficient resources
			pgErr.Code[:2] == "57", // operator intervention: admin shutdown, crash shutdown, cannot connect now
			pgErr.Code == "40001", pgErr.Code == "40P01":
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	// Anything that is not a server-reported error is the connection: refused, reset, closed, timed out.
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// DiskFull says whether err is PostgreSQL out of disk space (SQLSTATE 53100): the database cannot grow a table
// until space returns; the batch was not stored and may be retried as it is.
func DiskFull(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53100"
}

// retryable says whether a transaction failed only because of concurrency and can run again at once.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
