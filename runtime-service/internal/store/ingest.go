package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ApplyResult says what Apply did beyond storing the batch.
type ApplyResult struct {
	// Duplicate: a batch with this idempotency key was applied before; nothing changed.
	Duplicate bool
	// Unattributed events named no container the store knows and carried no digest: kept raw, not aggregated.
	Unattributed int
	// RawSkipped events fell outside the raw retention window: aggregated, not kept raw.
	RawSkipped int
}

// Apply stores batch b from cluster c. It returns only after the transaction that holds the batch committed, so
// a nil error is an acknowledgement. With a non-empty idempotencyKey a batch applied before is not applied again.
// An error wrapping ErrUnavailable means nothing was stored and the batch may be retried as it is.
//
// Batches are group-committed (groupcommit.go): the batches waiting when a committer is free are applied in one
// transaction; a group that fails is applied again one batch per transaction, so one bad batch fails alone.
func (s *Store) Apply(ctx context.Context, c Cluster, idempotencyKey string, b *Batch) (ApplyResult, error) {
	from, to := s.rawWindow()
	if err := s.ensureEventPartitions(ctx, b, from, to); err != nil {
		return ApplyResult{}, err
	}
	p := &part{ctx: ctx, c: c, key: idempotencyKey, b: b, from: from, to: to, done: make(chan struct{})}
	if err := s.commit(p); err != nil {
		return ApplyResult{}, classify(fmt.Errorf("store: apply batch: %w", err))
	}
	return p.res, nil
}

func (s *Store) ensureEventPartitions(ctx context.Context, b *Batch, from, to time.Time) error {
	need := map[string]map[time.Time]bool{}
	add := func(table string, t time.Time) {
		if t.Before(from) || !t.Before(to) {
			return
		}
		if need[table] == nil {
			need[table] = map[time.Time]bool{}
		}
		need[table][t.UTC().Truncate(day)] = true
	}
	for i := range b.Execs {
		add("exec_events", b.Execs[i].Time)
	}
	for i := range b.FileOpens {
		add("file_events", b.FileOpens[i].Time)
	}
	for table, days := range need {
		for d := range days {
			if err := s.ensurePartition(ctx, table, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyParts applies parts in transaction tx and sets each one's result. A part whose idempotency key is stored
// already, or repeats an earlier part's in the group, is a duplicate and applies nothing (claimKeys). State
// records are applied batch by batch (each batch's image recompute and verdict changes are its cluster's); the
// events of all batches together, one COPY per table and one merge per aggregate.
func (s *Store) applyParts(ctx context.Context, tx pgx.Tx, parts []*part) error {
	now := s.now()
	live, err := claimKeys(ctx, tx, parts, now)
	if err != nil || len(live) == 0 {
		return err
	}
	staged := false
	for _, p := range live {
		if !hasState(p.b) {
			continue
		}
		if staged { // the staging tables hold the previous batch's rows until commit
			if err := clearStaging(ctx, tx); err != nil {
				return err
			}
		}
		staged = true
		digests, err := applyState(ctx, tx, p.c, p.b) // ingest_state.go
		if err != nil {
			return err
		}
		if err := recomputeImages(ctx, tx, p.c.ID, digests); err != nil {
			return err
		}
		if err := recordVerdictChanges(ctx, tx, p.c.ID, digests); err != nil {
			return err
		}
		cluster := p.c.ID
		if err := s.decidePlacement(ctx, tx, &cluster, digests); err != nil { // placement.go
			return err
		}
	}
	if err := applyEvents(ctx, tx, live); err != nil { // ingest_events.go
		return err
	}
	clusters := make([]int64, 0, len(live))
	for _, p := range live {
		if err := applySensorHealth(ctx, tx, p.c, p.b.SensorHealth); err != nil {
			return err
		}
		clusters = append(clusters, p.c.ID)
	}
	// The cluster rows are locked in id order (a group can hold several clusters) and FOR NO KEY UPDATE, the
	// lock a plain UPDATE of a non-key column takes. FOR UPDATE would conflict with the FOR KEY SHARE locks
	// that this and every other ingest transaction hold on their cluster's row through the foreign keys of
	// ingest_batches and the aggregates: two transactions of one cluster then deadlock, and each deadlock
	// costs deadlock_timeout (1 s) before PostgreSQL breaks it. That was the keyed-batch regression of the
	// first group-commit attempt.
	_, err = tx.Exec(ctx, `UPDATE clusters SET last_ingest_at = $2
		WHERE id IN (SELECT id FROM clusters WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE)`, clusters, now)
	return err
}

// claimKeys resets each part's result and returns the parts to apply: those without an idempotency key, and
// those whose key it stored now, in one statement. The others are marked Duplicate.
func claimKeys(ctx context.Context, tx pgx.Tx, parts []*part, now time.Time) ([]*part, error) {
	live := make([]*part, 0, len(parts))
	var keyed []*part
	seen := map[batchKey]bool{}
	for _, p := range parts {
		p.res = ApplyResult{}
		if p.key == "" {
			live = append(live, p)
			continue
		}
		if k := (batchKey{p.c.ID, p.key}); seen[k] {
			p.res.Duplicate = true
		} else {
			seen[k] = true
			keyed = append(keyed, p)
		}
	}
	if len(keyed) == 0 {
		return live, nil
	}
	ids, keys, counts := make([]int64, len(keyed)), make([]string, len(keyed)), make([]int32, len(keyed))
	for i, p := range keyed {
		ids[i], keys[i], counts[i] = p.c.ID, p.key, int32(p.b.Len())
	}
	// In key order, so two groups inserting some of the same keys (a client's retry racing its first
	// attempt) wait for each other instead of deadlocking.
	rows, err := tx.Query(ctx, `INSERT INTO ingest_batches (cluster_id, idempotency_key, received_at, records)
		SELECT id, key, $4, n FROM unnest($1::bigint[], $2::text[], $3::int[]) AS u(id, key, n) ORDER BY id, key
		ON CONFLICT DO NOTHING RETURNING cluster_id, idempotency_key`, ids, keys, counts, now)
	if err != nil {
		return nil, err
	}
	inserted := map[batchKey]bool{}
	var k batchKey
	if _, err := pgx.ForEachRow(rows, []any{&k.cluster, &k.key}, func() error {
		inserted[k] = true
		return nil
	}); err != nil {
		return nil, err
	}
	for _, p := range keyed {
		if inserted[batchKey{p.c.ID, p.key}] {
			live = append(live, p)
		} else {
			p.res.Duplicate = true
		}
	}
	return live, nil
}

type batchKey struct {
	cluster int64
	key     string
}
