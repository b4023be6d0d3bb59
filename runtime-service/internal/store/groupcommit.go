package store

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Group commit. An ingest transaction has a large fixed cost besides its rows: a dozen statements, two COPYs
// into partitioned tables, the aggregate merges, the commit. Measured on PostgreSQL's side, COPYing events in
// transactions of 2,000 rows cost about twice the CPU per row of 20,000-row ones. So the batches waiting when a
// committer is free are applied together: one transaction, one COPY per table, one merge per aggregate table.
// Each caller still returns only after the commit that holds its batch.
//
// A batch that finds a committer free starts one at once: nothing waits on a timer, and a lone batch is
// applied as soon as it arrives. Groups form only when batches arrive faster than transactions commit, which
// is when they help.
//
// A group that fails for a reason other than the connection (a batch Postgres refuses) is applied again one
// batch per transaction, so that batch fails alone and the others are stored.

// maxGroupRecords bounds one group transaction: larger groups gain little (the per-transaction cost is already
// spread thin at 20,000 rows) and keep their first caller waiting longer.
const maxGroupRecords = 20000

// DefaultCommitters is how many group transactions run at once unless configured: two keep one transaction's
// round trips overlapping another's work in PostgreSQL without splitting the queue into small groups.
const DefaultCommitters = 2

// part is one caller's batch in the commit queue.
type part struct {
	ctx      context.Context
	c        Cluster
	key      string
	b        *Batch
	from, to time.Time

	res  ApplyResult
	err  error
	done chan struct{}
}

// commit queues p and waits for the transaction that holds it. A caller that gives up while its batch is still
// queued takes it back (nothing was stored); once a committer has it, the caller waits for its outcome, so an
// error always means the batch was not stored.
func (s *Store) commit(p *part) error {
	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	start := s.committers < s.opts.Committers
	if start {
		s.committers++
	}
	s.queueMu.Unlock()
	if start {
		go s.commitLoop()
	}
	select {
	case <-p.done:
		return p.err
	case <-p.ctx.Done():
	}
	s.queueMu.Lock()
	i := slices.Index(s.queue, p)
	if i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
	}
	s.queueMu.Unlock()
	if i >= 0 {
		return p.ctx.Err()
	}
	<-p.done
	return p.err
}

// commitLoop applies the queued batches, a group at a time, until the queue is empty.
func (s *Store) commitLoop() {
	for {
		s.queueMu.Lock()
		n, records := 0, 0
		for n < len(s.queue) && (n == 0 || records+s.queue[n].b.Len() <= maxGroupRecords) {
			records += s.queue[n].b.Len()
			n++
		}
		if n == 0 {
			s.committers--
			s.queueMu.Unlock()
			return
		}
		group := slices.Clone(s.queue[:n])
		s.queue = slices.Delete(s.queue, 0, n)
		s.queueMu.Unlock()

		s.groups.Add(1)
		s.grouped.Add(int64(len(group)))
		s.applyGroup(group)
		for _, p := range group {
			close(p.done)
		}
	}
}

// applyGroup applies group in one transaction or, when that fails for a reason of its own, each part alone.
func (s *Store) applyGroup(group []*part) {
	err := s.applyWithRetry(group)
	if err == nil {
		return
	}
	if len(group) == 1 || errors.Is(classify(err), ErrUnavailable) { // the connection: each part would fail alike
		for _, p := range group {
			p.res, p.err = ApplyResult{}, err
		}
		return
	}
	for _, p := range group {
		if p.err = s.applyWithRetry([]*part{p}); p.err != nil {
			p.res = ApplyResult{}
		}
	}
}

// applyWithRetry runs the group's transaction, again when PostgreSQL rolled it back for a deadlock or a
// serialization conflict with another group. Its context ends when every caller in the group has given up: one
// caller's timeout does not abort the others' batches.
func (s *Store) applyWithRetry(group []*part) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var left atomic.Int32
	left.Store(int32(len(group)))
	for _, p := range group {
		stop := context.AfterFunc(p.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.applyParts(ctx, tx, group) })
		if err == nil || !retryable(err) {
			break
		}
		s.conflicts.Add(1)
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return err
}

// CommitStats says how many group transactions committed or failed, and how many batches they held.
func (s *Store) CommitStats() (groups, batches int64) { return s.groups.Load(), s.grouped.Load() }

// Conflicts is how many group transactions PostgreSQL rolled back for a deadlock or serialization conflict
// (and the store ran again).
func (s *Store) Conflicts() int64 { return s.conflicts.Load() }
