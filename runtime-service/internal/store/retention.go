package store

// Retention: raw events live in daily partitions, created ahead of the clock and dropped whole once past the
// retention window; idempotency keys are forgotten once no client would retry their batch.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Raw events live in daily partitions of these tables, named <table>_pYYYYMMDD and covering that UTC day.
var eventTables = []string{"exec_events", "file_events"}

const (
	partitionSuffix = "_p"
	partitionLayout = "20060102"
	day             = 24 * time.Hour
	// partitionsAhead is how many days after today get a partition in advance, so a collector whose clock runs
	// a little fast still lands in one.
	partitionsAhead = 1
)

func partitionName(table string, d time.Time) string {
	return table + partitionSuffix + d.UTC().Format(partitionLayout)
}

// rawWindow is the span of event times kept raw: from the retention cutoff to the end of the last partition made
// in advance. Events outside it are aggregated but not kept raw (they would be dropped at once, or need a
// partition days ahead of the clock).
func (s *Store) rawWindow() (from, to time.Time) {
	now := s.opts.Now().UTC()
	today := now.Truncate(day)
	return now.Add(-s.opts.Retention), today.Add((partitionsAhead + 1) * day)
}

// MaintainPartitions creates the partitions for every day of the retention window up to tomorrow and drops
// those wholly older than the retention: a DROP TABLE per day, not a DELETE per row. Open runs it; a running
// service runs Retain periodically, which does the same and more.
func (s *Store) MaintainPartitions(ctx context.Context) error {
	if err := s.ensureWindowPartitions(ctx); err != nil {
		return err
	}
	_, err := s.DropExpiredPartitions(ctx)
	return err
}

func (s *Store) ensureWindowPartitions(ctx context.Context) error {
	from, to := s.rawWindow()
	for d := from.Truncate(day); d.Before(to); d = d.Add(day) {
		for _, t := range eventTables {
			if err := s.ensurePartition(ctx, t, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// RetentionPass is what one Retain call removed.
type RetentionPass struct {
	DroppedPartitions []string // the event partitions dropped, by name
	ExpiredKeys       int64    // the idempotency keys forgotten
	ExpiredSessions   int64    // the sessions and logins in progress that had expired
	ExpiredHosts      int64    // the host containers no sensor described within HostContainerTTL
}

// Retain is the periodic retention pass: it creates the partitions the window now reaches, drops the event
// partitions past the retention, forgets idempotency keys older than keyTTL and expired sessions, and expires
// host containers no sensor describes any more (ExpireHostContainers). A step that fails does not stop
// the others; the error joins every step's.
func (s *Store) Retain(ctx context.Context, keyTTL time.Duration) (RetentionPass, error) {
	var pass RetentionPass
	errEnsure := s.ensureWindowPartitions(ctx)
	dropped, errDrop := s.DropExpiredPartitions(ctx)
	pass.DroppedPartitions = dropped
	expired, errExpire := s.ExpireIdempotencyKeys(ctx, keyTTL)
	pass.ExpiredKeys = expired
	access, errAccess := s.expireAccess(ctx)
	pass.ExpiredSessions = access
	hosts, errHosts := s.ExpireHostContainers(ctx, HostContainerTTL)
	pass.ExpiredHosts = hosts
	return pass, errors.Join(errEnsure, errDrop, errExpire, errAccess, errHosts)
}

// ensurePartition creates table's partition for day d if this process has not seen it yet. It runs in its own
// short transaction, never inside an ingest: creating a partition locks the parent table.
func (s *Store) ensurePartition(ctx context.Context, table string, d time.Time) error {
	d = d.UTC().Truncate(day)
	name := partitionName(table, d)
	s.partitionsMu.Lock()
	known := s.partitions[name]
	s.partitionsMu.Unlock()
	if known {
		return nil
	}
	sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{table}.Sanitize(),
		d.Format(time.RFC3339), d.Add(day).Format(time.RFC3339))
	if _, err := s.pool.Exec(ctx, sql); err != nil {
		return classify(fmt.Errorf("store: create partition %s: %w", name, err))
	}
	s.partitionsMu.Lock()
	s.partitions[name] = true
	s.partitionsMu.Unlock()
	return nil
}

// Partitions lists the existing event partitions, oldest first.
func (s *Store) Partitions(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = ANY($1)`, eventTables)
	if err != nil {
		return nil, classify(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify(err)
	}
	sort.Slice(names, func(i, j int) bool {
		return partitionDay(names[i]) < partitionDay(names[j]) ||
			partitionDay(names[i]) == partitionDay(names[j]) && names[i] < names[j]
	})
	return names, nil
}

func partitionDay(name string) string {
	i := strings.LastIndex(name, partitionSuffix)
	if i < 0 {
		return ""
	}
	return name[i+len(partitionSuffix):]
}

// DropExpiredPartitions drops every event partition whose day ended before the retention cutoff and returns
// their names.
func (s *Store) DropExpiredPartitions(ctx context.Context) ([]string, error) {
	names, err := s.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	cutoff, _ := s.rawWindow()
	var dropped []string
	for _, name := range names {
		d, err := time.Parse(partitionLayout, partitionDay(name))
		if err != nil {
			continue // not one of ours
		}
		if d.Add(day).After(cutoff) {
			continue
		}
		if _, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, classify(fmt.Errorf("store: drop partition %s: %w", name, err))
		}
		s.partitionsMu.Lock()
		delete(s.partitions, name)
		s.partitionsMu.Unlock()
		dropped = append(dropped, name)
	}
	return dropped, nil
}

// ExpireIdempotencyKeys forgets batch keys older than maxAge: a client retries a batch within minutes, not days.
func (s *Store) ExpireIdempotencyKeys(ctx context.Context, maxAge time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM ingest_batches WHERE received_at < $1", s.opts.Now().Add(-maxAge))
	if err != nil {
		return 0, classify(err)
	}
	return tag.RowsAffected(), nil
}
