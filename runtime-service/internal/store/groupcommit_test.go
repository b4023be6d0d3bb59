package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests reach into the commit queue to make groups form deterministically: the public path forms them
// only when batches arrive faster than transactions commit.

func openForGroups(t *testing.T, opts Options) (*Store, []Cluster) {
	t.Helper()
	return openInternal(t, opts, "a", "b")
}

// holdCommitters makes the queue believe every committer is busy, so batches wait in it; release starts one
// committer, which takes them as groups.
func holdCommitters(t *testing.T, s *Store) (release func()) {
	t.Helper()
	// A committer that has just closed its last batch's done channel is still counted until it sees the empty
	// queue; holding only the free slots then would leave one free when it leaves, and the next batch would
	// start a committer instead of queueing. Wait for every committer to be gone, then hold them all.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.queueMu.Lock()
		if s.committers == 0 && len(s.queue) == 0 {
			break
		}
		s.queueMu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("committers still running after 10s")
		}
	}
	held := s.opts.Committers
	s.committers = held
	s.queueMu.Unlock()
	return func() {
		s.queueMu.Lock()
		s.committers -= held - 1
		s.queueMu.Unlock()
		go s.commitLoop()
	}
}

func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.queueMu.Lock()
		q := len(s.queue)
		s.queueMu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d batches queued; want %d", q, n)
		}
	}
}

func execs(first, n int) []ExecEvent {
	out := make([]ExecEvent, n)
	for i := range out {
		out[i] = ExecEvent{Time: time.Now(), ContainerID: "cid", ImageDigest: "sha256:" + strings.Repeat("e", 64),
			PID: int64(first + i), ExecutablePath: "/bin/true"}
	}
	return out
}

// TestGroupCommitAppliesQueuedBatchesTogetherOnce: batches from two clusters, with and without keys, one key
// sent twice in the group and one already stored, queue up and are applied in one transaction; each is stored
// once, the repeats are acknowledged as duplicates, and the aggregates count each event once.
func TestGroupCommitAppliesQueuedBatchesTogetherOnce(t *testing.T) {
	ctx := context.Background()
	s, cls := openForGroups(t, Options{})
	if _, err := s.Apply(ctx, cls[0], "stored-before", &Batch{Execs: execs(0, 10)}); err != nil {
		t.Fatal(err)
	}
	release := holdCommitters(t, s)
	type call struct {
		c   Cluster
		key string
		b   *Batch
	}
	calls := []call{
		{cls[0], "k1", &Batch{Execs: execs(100, 10)}},
		{cls[1], "k1", &Batch{Execs: execs(200, 10)}}, // the same key in another cluster is another batch
		{cls[0], "k1", &Batch{Execs: execs(100, 10)}}, // a retry racing its first attempt
		{cls[0], "stored-before", &Batch{Execs: execs(0, 10)}},
		{cls[1], "", &Batch{Execs: execs(300, 10), Containers: []Container{{PodUID: "p", Name: "app",
			ContainerID: "cid-p", RunningDigest: "sha256:" + strings.Repeat("d", 64), Time: time.Now()}}}},
		// A second batch with state records in the group: the staging tables are cleared between them.
		{cls[0], "k2", &Batch{Nodes: []Node{{UID: "n1", Name: "node-1", Time: time.Now()}}, Containers: []Container{{PodUID: "q",
			Name: "app", ContainerID: "cid-q", RunningDigest: "sha256:" + strings.Repeat("d", 64), Time: time.Now()}}}},
	}
	results := make([]ApplyResult, len(calls))
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Apply(ctx, c.c, c.key, c.b)
		}()
		waitQueued(t, s, i+1) // in this order
	}
	groups0, _ := s.CommitStats()
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if groups, _ := s.CommitStats(); groups != groups0+1 {
		t.Fatalf("%d transactions for the queued batches; want 1", groups-groups0)
	}
	for i, dup := range []bool{false, false, true, true, false, false} {
		if results[i].Duplicate != dup {
			t.Errorf("call %d: duplicate %v; want %v", i, results[i].Duplicate, dup)
		}
	}
	var rows, distinct, count int
	if err := s.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (cluster_id, pid)),
		(SELECT sum(count) FROM exec_aggregates) FROM exec_events`).Scan(&rows, &distinct, &count); err != nil {
		t.Fatal(err)
	}
	if rows != 40 || distinct != 40 || count != 40 {
		t.Fatalf("%d raw events (%d distinct), aggregates count %d; want 40 of each", rows, distinct, count)
	}
	if d, err := s.GetImage(ctx, "sha256:"+strings.Repeat("d", 64)); err != nil || d.Containers != 2 || d.Clusters != 2 {
		t.Fatalf("the group's container records: %+v, %v", d.ImageSummary, err)
	}
	var nodes, containers int
	if err := s.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM containers)").Scan(&nodes, &containers); err != nil {
		t.Fatal(err)
	}
	if nodes != 1 || containers != 2 {
		t.Fatalf("%d nodes, %d containers; want 1 and 2", nodes, containers)
	}
}

// TestGroupWithABatchPostgresRefusesStoresTheOthers: a batch PostgreSQL refuses (a NUL byte, which the decoder
// would have rejected) fails alone; the others in its group are stored.
func TestGroupWithABatchPostgresRefusesStoresTheOthers(t *testing.T) {
	ctx := context.Background()
	s, cls := openForGroups(t, Options{})
	from, to := s.rawWindow()
	good1 := &part{ctx: ctx, c: cls[0], key: "good-1", b: &Batch{Execs: execs(0, 5)}, from: from, to: to}
	bad := &part{ctx: ctx, c: cls[0], key: "bad", b: &Batch{Nodes: []Node{{UID: "n\x00", Name: "x", Time: time.Now()}}}, from: from, to: to}
	good2 := &part{ctx: ctx, c: cls[1], b: &Batch{Execs: execs(5, 5)}, from: from, to: to}
	s.applyGroup([]*part{good1, bad, good2})
	if good1.err != nil || good2.err != nil || bad.err == nil || !strings.Contains(bad.err.Error(), "0x00") {
		t.Fatalf("errors: good %v, %v; bad %v", good1.err, good2.err, bad.err)
	}
	var n, keys int
	if err := s.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM exec_events), (SELECT count(*) FROM ingest_batches)").Scan(&n, &keys); err != nil {
		t.Fatal(err)
	}
	if n != 10 || keys != 1 {
		t.Fatalf("%d events, %d keys stored; want 10 and only good-1's key", n, keys)
	}
}

// TestCallerGivingUpWhileQueuedTakesItsBatchBack: a caller whose context ends before a committer takes its batch
// gets the context's error, and the batch is not stored later.
func TestCallerGivingUpWhileQueuedTakesItsBatchBack(t *testing.T) {
	s, cls := openForGroups(t, Options{})
	release := holdCommitters(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Apply(ctx, cls[0], "k", &Batch{Execs: execs(0, 5)})
		errc <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v; want the cancellation, marked unavailable (nothing stored, retry)", err)
	}
	waitQueued(t, s, 0)
	release()
	if _, err := s.Apply(context.Background(), cls[0], "k", &Batch{Execs: execs(0, 5)}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(context.Background(), "SELECT count(*) FROM exec_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("%d events; want the retry's 5 only", n)
	}
}

// TestConcurrentKeyedGroupsOfOneClusterDoNotDeadlock: keyed batches of one cluster, committed by two committers
// at once, never deadlock. Each holds a FOR KEY SHARE lock on the cluster's row (the foreign keys of
// ingest_batches and the aggregates); the last_ingest_at update once took FOR UPDATE on that row, and two such
// transactions deadlocked, each deadlock costing a second before PostgreSQL broke it.
func TestConcurrentKeyedGroupsOfOneClusterDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	s, cls := openForGroups(t, Options{Committers: 64, MaxConns: 8}) // many transactions at once
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Apply(ctx, cls[0], fmt.Sprintf("key-%d", i), &Batch{Execs: execs(i*10, 10)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	groups, batches := s.CommitStats()
	if n := s.Conflicts(); n != 0 {
		t.Fatalf("%d deadlocks or conflicts in %d transactions for %d batches", n, groups, batches)
	}
	t.Logf("%d transactions for %d batches, no conflicts", groups, batches)
}
