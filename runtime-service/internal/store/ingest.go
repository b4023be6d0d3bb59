package store

import (
	"context"
	"fmt"
	"sort"
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

// maxContainersPerAggregate bounds the container ids an aggregate row lists (see the migration).
const maxContainersPerAggregate = 32

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

// applyParts applies parts in transaction tx and sets each one's result. The idempotency keys go first, in one
// statement: a part whose key is stored already, or repeats an earlier part's in the group, is a duplicate and
// applies nothing. State records are applied batch by batch (each batch's image recompute and verdict changes
// are its cluster's); the events of all batches together, one COPY per table and one merge per aggregate.
func (s *Store) applyParts(ctx context.Context, tx pgx.Tx, parts []*part) error {
	now := s.now()
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
	if len(keyed) > 0 {
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
			return err
		}
		inserted := map[batchKey]bool{}
		var k batchKey
		if _, err := pgx.ForEachRow(rows, []any{&k.cluster, &k.key}, func() error {
			inserted[k] = true
			return nil
		}); err != nil {
			return err
		}
		for _, p := range keyed {
			if inserted[batchKey{p.c.ID, p.key}] {
				live = append(live, p)
			} else {
				p.res.Duplicate = true
			}
		}
	}
	if len(live) == 0 {
		return nil
	}
	staged := false
	for _, p := range live {
		b := p.b
		if len(b.Nodes)+len(b.Workloads)+len(b.Pods)+len(b.Containers) == 0 {
			continue
		}
		if staged { // the staging tables hold the previous batch's rows until commit
			if _, err := tx.Exec(ctx, "DELETE FROM stage_nodes; DELETE FROM stage_workloads; DELETE FROM stage_pods; DELETE FROM stage_containers"); err != nil {
				return fmt.Errorf("clear staging tables: %w", err)
			}
		}
		staged = true
		digests, err := s.applyState(ctx, tx, p.c, b)
		if err != nil {
			return err
		}
		if err := recomputeImages(ctx, tx, p.c.ID, digests); err != nil {
			return err
		}
		if err := recordVerdictChanges(ctx, tx, p.c.ID, digests); err != nil { // timeline.go
			return err
		}
	}
	if err := s.applyEvents(ctx, tx, live); err != nil {
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
	_, err := tx.Exec(ctx, `UPDATE clusters SET last_ingest_at = $2
		WHERE id IN (SELECT id FROM clusters WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE)`, clusters, now)
	return err
}

type batchKey struct {
	cluster int64
	key     string
}

func deletedAt(deleted bool, t time.Time) any {
	if deleted {
		return t
	}
	return nil
}

// upsertFromStage moves the staged rows of one kind into their table: the newest record per key wins, and a
// stored row newer than the record is left alone (records can arrive out of order across batches).
func upsertFromStage(ctx context.Context, tx pgx.Tx, table string, key, update []string) error {
	keys := join(key, ", ")
	set := ""
	for _, col := range update {
		set += fmt.Sprintf("%s = excluded.%s, ", col, col)
	}
	sql := fmt.Sprintf(`INSERT INTO %[1]s AS t SELECT DISTINCT ON (%[2]s) * FROM stage_%[1]s
		ORDER BY %[2]s, last_seen DESC, deleted_at DESC NULLS LAST
		ON CONFLICT (%[2]s) DO UPDATE SET %[3]s last_seen = excluded.last_seen, deleted_at = excluded.deleted_at,
			first_seen = least(t.first_seen, excluded.first_seen)
		WHERE excluded.last_seen >= t.last_seen`, table, keys, set)
	_, err := tx.Exec(ctx, sql)
	return err
}

func join(s []string, sep string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += sep
		}
		out += v
	}
	return out
}

// applyState upserts nodes, workloads, pods and containers and returns the image digests whose assessment may
// have changed (every digest a touched container runs or ran).
func (s *Store) applyState(ctx context.Context, tx pgx.Tx, c Cluster, b *Batch) ([]string, error) {
	if len(b.Nodes) > 0 {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_nodes"},
			[]string{"cluster_id", "uid", "name", "first_seen", "last_seen", "deleted_at"},
			pgx.CopyFromSlice(len(b.Nodes), func(i int) ([]any, error) {
				n := &b.Nodes[i]
				return []any{c.ID, n.UID, n.Name, n.Time, n.Time, deletedAt(n.Deleted, n.Time)}, nil
			}))
		if err != nil {
			return nil, fmt.Errorf("copy nodes: %w", err)
		}
		if err := upsertFromStage(ctx, tx, "nodes", []string{"cluster_id", "uid"}, []string{"name"}); err != nil {
			return nil, fmt.Errorf("upsert nodes: %w", err)
		}
	}
	if len(b.Workloads) > 0 {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_workloads"},
			[]string{"cluster_id", "uid", "kind", "name", "namespace", "first_seen", "last_seen", "deleted_at"},
			pgx.CopyFromSlice(len(b.Workloads), func(i int) ([]any, error) {
				w := &b.Workloads[i]
				return []any{c.ID, w.UID, w.Kind, w.Name, w.Namespace, w.Time, w.Time, deletedAt(w.Deleted, w.Time)}, nil
			}))
		if err != nil {
			return nil, fmt.Errorf("copy workloads: %w", err)
		}
		if err := upsertFromStage(ctx, tx, "workloads", []string{"cluster_id", "uid"}, []string{"kind", "name", "namespace"}); err != nil {
			return nil, fmt.Errorf("upsert workloads: %w", err)
		}
	}
	var digests []string
	if len(b.Pods) > 0 {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_pods"},
			[]string{"cluster_id", "uid", "name", "namespace", "node_name", "workload_uid", "workload_kind", "workload_name", "first_seen", "last_seen", "deleted_at"},
			pgx.CopyFromSlice(len(b.Pods), func(i int) ([]any, error) {
				p := &b.Pods[i]
				return []any{c.ID, p.UID, p.Name, p.Namespace, p.NodeName, p.WorkloadUID, p.WorkloadKind, p.WorkloadName, p.Time, p.Time, deletedAt(p.Deleted, p.Time)}, nil
			}))
		if err != nil {
			return nil, fmt.Errorf("copy pods: %w", err)
		}
		if err := upsertFromStage(ctx, tx, "pods", []string{"cluster_id", "uid"},
			[]string{"name", "namespace", "node_name", "workload_uid", "workload_kind", "workload_name"}); err != nil {
			return nil, fmt.Errorf("upsert pods: %w", err)
		}
		// A deleted pod takes its containers with it, whether or not their own deletions arrive.
		rows, err := tx.Query(ctx, `
			UPDATE containers k SET deleted_at = p.deleted_at, last_seen = p.last_seen
			FROM stage_pods p
			WHERE p.deleted_at IS NOT NULL AND k.cluster_id = p.cluster_id AND k.pod_uid = p.uid
			  AND k.deleted_at IS NULL AND k.last_seen <= p.last_seen
			RETURNING k.running_digest`)
		if err != nil {
			return nil, fmt.Errorf("delete containers of deleted pods: %w", err)
		}
		gone, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("delete containers of deleted pods: %w", err)
		}
		digests = append(digests, gone...)
	}
	if len(b.Containers) > 0 {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_containers"},
			[]string{"cluster_id", "pod_uid", "name", "container_id", "namespace", "pod_name", "node_name",
				"workload_uid", "workload_kind", "workload_name", "image_name", "image_ref", "registry_host",
				"registry_trusted", "tag_mutable", "running_digest", "pull_policy", "integrity", "verdict_rank",
				"expected_digest", "severity", "severity_rank", "reasons", "first_seen", "last_seen", "deleted_at"},
			pgx.CopyFromSlice(len(b.Containers), func(i int) ([]any, error) {
				k := &b.Containers[i]
				reasons := k.Reasons
				if reasons == nil {
					reasons = []string{}
				}
				return []any{c.ID, k.PodUID, k.Name, k.ContainerID, k.Namespace, k.PodName, k.NodeName,
					k.WorkloadUID, k.WorkloadKind, k.WorkloadName, k.ImageName, k.ImageRef, k.RegistryHost,
					k.RegistryTrusted, k.TagMutable, k.RunningDigest, k.PullPolicy, k.Integrity, VerdictRank(k.Integrity),
					k.ExpectedDigest, k.Severity, SeverityRank(k.Severity), reasons, k.Time, k.Time, deletedAt(k.Deleted, k.Time)}, nil
			}))
		if err != nil {
			return nil, fmt.Errorf("copy containers: %w", err)
		}
		// The digests these containers ran before this batch: their images lose them if the digest changed.
		rows, err := tx.Query(ctx, `
			SELECT DISTINCT k.running_digest FROM containers k
			JOIN stage_containers s USING (cluster_id, pod_uid, name)
			WHERE k.running_digest <> ''`)
		if err != nil {
			return nil, fmt.Errorf("previous digests: %w", err)
		}
		old, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("previous digests: %w", err)
		}
		digests = append(digests, old...)
		if err := upsertFromStage(ctx, tx, "containers", []string{"cluster_id", "pod_uid", "name"},
			[]string{"container_id", "namespace", "pod_name", "node_name", "workload_uid", "workload_kind",
				"workload_name", "image_name", "image_ref", "registry_host", "registry_trusted", "tag_mutable",
				"running_digest", "pull_policy", "integrity", "verdict_rank", "expected_digest", "severity",
				"severity_rank", "reasons"}); err != nil {
			return nil, fmt.Errorf("upsert containers: %w", err)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO images AS i (digest, first_seen, last_seen)
			SELECT running_digest, min(first_seen), max(last_seen) FROM stage_containers
			WHERE running_digest <> '' GROUP BY running_digest ORDER BY running_digest
			ON CONFLICT (digest) DO UPDATE SET first_seen = least(i.first_seen, excluded.first_seen),
				last_seen = greatest(i.last_seen, excluded.last_seen), state_seen = true`)
		if err != nil {
			return nil, fmt.Errorf("upsert images: %w", err)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO image_refs AS r (ref, digest, registry_host, first_seen, last_seen)
			SELECT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END, running_digest, max(registry_host),
				min(first_seen), max(last_seen)
			FROM stage_containers WHERE running_digest <> '' AND (image_ref <> '' OR image_name <> '')
			GROUP BY 1, 2 ORDER BY 1, 2
			ON CONFLICT (ref, digest) DO UPDATE SET registry_host = excluded.registry_host,
				first_seen = least(r.first_seen, excluded.first_seen), last_seen = greatest(r.last_seen, excluded.last_seen)`)
		if err != nil {
			return nil, fmt.Errorf("upsert image references: %w", err)
		}
		for i := range b.Containers {
			if d := b.Containers[i].RunningDigest; d != "" {
				digests = append(digests, d)
			}
		}
	}
	return dedupe(digests), nil
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if v != "" && (i == 0 || v != s[i-1]) {
			out = append(out, v)
		}
	}
	return out
}

// recomputeImages rewrites the live assessment of each digest after cluster clusterID's containers changed:
// worst severity and verdict, every reason, reference and expected digest, and the blast radius. It works up
// from what changed (migrations/003_image_scopes.sql): the (digest, cluster, namespace) rollups of this cluster
// from its live containers, the (digest, cluster) rollups from those, and the images rows from every cluster's
// rollup of the digest, so no statement reads another cluster's containers. It first locks the image rows in
// digest order, so two batches that touch one image take turns, and the second sees the first's rollups.
func recomputeImages(ctx context.Context, tx pgx.Tx, clusterID int64, digests []string) error {
	if len(digests) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM images WHERE digest = ANY($1) ORDER BY digest FOR UPDATE", digests); err != nil {
		return fmt.Errorf("lock images: %w", err)
	}
	// One round trip: the statements run in order, each seeing the ones before.
	b := &pgx.Batch{}
	b.Queue("DELETE FROM image_namespaces WHERE digest = ANY($2) AND cluster_id = $1", clusterID, digests)
	b.Queue("DELETE FROM image_clusters WHERE digest = ANY($2) AND cluster_id = $1", clusterID, digests)
	// Both rollups from one grouped pass over this cluster's live containers of the digests (GROUPING SETS:
	// per namespace, and per cluster, where distinct pods and workloads are counted again rather than summed,
	// so a container record with an odd namespace cannot count a pod twice). The reasons are folded in a
	// second grouped pass over the same rows and joined, not gathered by a subquery per group: that subquery
	// had made container-heavy batches 4× slower.
	b.Queue(`WITH g AS (
			SELECT running_digest AS digest, coalesce(namespace, '') AS namespace, GROUPING(namespace) AS whole,
				(array_agg(severity ORDER BY severity_rank DESC))[1] AS severity, max(severity_rank) AS severity_rank,
				(array_agg(integrity ORDER BY verdict_rank DESC))[1] AS verdict, max(verdict_rank) AS verdict_rank,
				coalesce(array_agg(DISTINCT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END)
					FILTER (WHERE image_ref <> '' OR image_name <> ''), '{}') AS refs,
				coalesce(array_agg(DISTINCT expected_digest) FILTER (WHERE expected_digest <> ''), '{}') AS expected_digests,
				count(DISTINCT namespace) AS namespaces,
				count(DISTINCT workload_uid) FILTER (WHERE workload_uid <> '') AS workloads,
				count(DISTINCT pod_uid) AS pods, count(*) AS containers
			FROM containers WHERE running_digest = ANY($2) AND cluster_id = $1 AND deleted_at IS NULL
			GROUP BY GROUPING SETS ((running_digest, namespace), (running_digest))),
		r AS (
			SELECT running_digest AS digest, coalesce(namespace, '') AS namespace, GROUPING(namespace) AS whole,
				array_agg(DISTINCT x ORDER BY x) AS reasons
			FROM containers, unnest(reasons) x
			WHERE running_digest = ANY($2) AND cluster_id = $1 AND deleted_at IS NULL
			GROUP BY GROUPING SETS ((running_digest, namespace), (running_digest))),
		j AS (SELECT g.*, coalesce(r.reasons, '{}') AS reasons FROM g LEFT JOIN r USING (digest, namespace, whole)),
		ns AS (
			INSERT INTO image_namespaces
			SELECT digest, $1, namespace, severity, severity_rank, verdict, verdict_rank, reasons, refs,
				expected_digests, workloads, pods, containers
			FROM j WHERE whole = 0)
		INSERT INTO image_clusters
		SELECT digest, $1, severity, severity_rank, verdict, verdict_rank, reasons, refs, expected_digests,
			namespaces, workloads, pods, containers
		FROM j WHERE whole = 1`, clusterID, digests)
	b.Queue(`
		UPDATE images i SET
			severity = coalesce(a.severity, ''), severity_rank = coalesce(a.severity_rank, 0),
			verdict = coalesce(a.verdict, ''), reasons = a.reasons, refs = a.refs, expected_digests = a.expected,
			clusters = a.clusters, namespaces = coalesce(a.namespaces, 0), workloads = coalesce(a.workloads, 0),
			pods = coalesce(a.pods, 0), containers = coalesce(a.containers, 0)
		FROM unnest($1::text[]) AS t(d)
		CROSS JOIN LATERAL (
			SELECT (array_agg(n.severity ORDER BY n.severity_rank DESC))[1] AS severity,
				max(n.severity_rank) AS severity_rank,
				(array_agg(n.verdict ORDER BY n.verdict_rank DESC))[1] AS verdict,
				count(*) AS clusters, sum(n.namespaces) AS namespaces, sum(n.workloads) AS workloads,
				sum(n.pods) AS pods, sum(n.containers) AS containers,
				`+unionOf("reasons")+` AS reasons,
				`+unionOf("refs")+` AS refs,
				`+unionOf("expected_digests")+` AS expected
			FROM image_clusters n WHERE n.digest = t.d
		) a
		WHERE i.digest = t.d`, digests)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("recompute images: %w", err)
	}
	return nil
}

// unionOf is the sorted, distinct union of column col over the digest's (image, cluster) rollups: one row per
// cluster that runs it, found through the table's digest index.
func unionOf(col string) string {
	return "ARRAY(SELECT DISTINCT x FROM image_clusters m, unnest(m." + col + ") x WHERE m.digest = t.d ORDER BY x)"
}

// Aggregate keys carry the cluster: a group holds several clusters' batches, and aggregate rows are per cluster.
type execKey struct {
	cluster           int64
	digest, path, sha string
}
type fileKey struct {
	cluster      int64
	digest, path string
}

type aggregate struct {
	first, last time.Time
	count       int64
	containers  []string
	process     string // file opens: the executable behind the first open
}

func (a *aggregate) add(t time.Time, container string) {
	if a.count == 0 || t.Before(a.first) {
		a.first = t
	}
	if a.count == 0 || t.After(a.last) {
		a.last = t
	}
	a.count++
	if container == "" || len(a.containers) >= maxContainersPerAggregate {
		return
	}
	for _, c := range a.containers {
		if c == container {
			return
		}
	}
	a.containers = append(a.containers, container)
}

// applyEvents resolves each event's image digest (the record's own, else the container's), COPYs the events in
// the raw window into their partitions, and folds every attributed event into the per-image aggregates: for all
// the parts at once.
func (s *Store) applyEvents(ctx context.Context, tx pgx.Tx, parts []*part) error {
	n := 0
	for _, p := range parts {
		n += len(p.b.Execs) + len(p.b.FileOpens)
	}
	if n == 0 {
		return nil
	}
	stored, err := containerDigests(ctx, tx, parts)
	if err != nil {
		return err
	}
	execAgg := map[execKey]*aggregate{}
	fileAgg := map[fileKey]*aggregate{}
	var rawExec, rawFile eventCopy
	for _, p := range parts {
		c, b, res := p.c, p.b, &p.res
		if len(b.Execs)+len(b.FileOpens) == 0 {
			continue
		}
		own := map[string]string{} // the batch's own container records come first
		for i := range b.Containers {
			if k := &b.Containers[i]; k.ContainerID != "" && k.RunningDigest != "" {
				own[k.ContainerID] = k.RunningDigest
			}
		}
		resolve := func(digest, container string) string {
			if digest != "" {
				return digest
			}
			if d := own[container]; d != "" {
				return d
			}
			return stored[containerRef{c.ID, container}]
		}
		inWindow := func(t time.Time) bool { return !t.Before(p.from) && t.Before(p.to) }
		for i := range b.Execs {
			e := &b.Execs[i]
			d := resolve(e.ImageDigest, e.ContainerID)
			if inWindow(e.Time) {
				rawExec.addExec(c.ID, e, d)
			} else {
				res.RawSkipped++
			}
			if d == "" {
				res.Unattributed++
				continue
			}
			k := execKey{c.ID, d, e.ExecutablePath, e.SHA256}
			if execAgg[k] == nil {
				execAgg[k] = &aggregate{}
			}
			execAgg[k].add(e.Time, e.ContainerID)
		}
		for i := range b.FileOpens {
			f := &b.FileOpens[i]
			d := resolve(f.ImageDigest, f.ContainerID)
			if inWindow(f.Time) {
				rawFile.addFile(c.ID, f, d)
			} else {
				res.RawSkipped++
			}
			if d == "" {
				res.Unattributed++
				continue
			}
			k := fileKey{c.ID, d, f.FilePath}
			if fileAgg[k] == nil {
				fileAgg[k] = &aggregate{}
			}
			a := fileAgg[k]
			a.add(f.Time, f.ContainerID)
			if a.first.Equal(f.Time) { // the earliest open so far: its process is the one to name
				a.process = f.ExecutablePath
			}
		}
	}
	if err := upsertEventImages(ctx, tx, parts); err != nil {
		return err
	}
	if err := rawExec.copyTo(ctx, tx, "exec_events", ExecEventColumns); err != nil {
		return fmt.Errorf("copy exec events: %w", err)
	}
	if err := rawFile.copyTo(ctx, tx, "file_events", FileEventColumns); err != nil {
		return fmt.Errorf("copy file events: %w", err)
	}
	if len(execAgg) > 0 {
		keys := make([]execKey, 0, len(execAgg))
		for k := range execAgg {
			keys = append(keys, k)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_exec_aggregates"},
			[]string{"image_digest", "executable_path", "executable_sha256", "cluster_id", "first_seen", "last_seen", "count", "containers"},
			pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) {
				a := execAgg[keys[i]]
				return []any{keys[i].digest, keys[i].path, keys[i].sha, keys[i].cluster, a.first, a.last, a.count, nonNil(a.containers)}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy exec aggregates: %w", err)
		}
		if err := mergeAggregates(ctx, tx, "exec_aggregates", "image_digest, executable_path, executable_sha256, cluster_id", ""); err != nil {
			return err
		}
	}
	if len(fileAgg) > 0 {
		keys := make([]fileKey, 0, len(fileAgg))
		for k := range fileAgg {
			keys = append(keys, k)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_file_aggregates"},
			[]string{"image_digest", "file_path", "cluster_id", "first_seen", "last_seen", "count", "containers", "first_process"},
			pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) {
				a := fileAgg[keys[i]]
				return []any{keys[i].digest, keys[i].path, keys[i].cluster, a.first, a.last, a.count, nonNil(a.containers), a.process}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy file aggregates: %w", err)
		}
		if err := mergeAggregates(ctx, tx, "file_aggregates", "image_digest, file_path, cluster_id",
			"first_process = CASE WHEN excluded.first_seen < t.first_seen THEN excluded.first_process ELSE t.first_process END,"); err != nil {
			return err
		}
	}
	return nil
}

// eventImageRefresh is how stale an events-only image's last_seen may get before an event batch moves it on:
// often enough for the list (store/query.go, EventImagesListedFor), rarely enough that event batches do not
// queue on the image's row lock.
const eventImageRefresh = time.Minute

// upsertEventImages gives every digest the batch's events name themselves an images row, so an image seen only
// through its processes and files is listed and has a detail page. The row is minimal (state_seen false, no
// assessment) and never overwrites one: state records fill it in when they name the digest (applyState). Its
// last_seen follows the events, at most once per eventImageRefresh, and only while no state record named it.
// Events whose digest came from their container need nothing: the container's record made the row.
func upsertEventImages(ctx context.Context, tx pgx.Tx, parts []*part) error {
	type span struct{ first, last time.Time }
	seen := map[string]*span{}
	add := func(d string, t time.Time) {
		if d == "" {
			return
		}
		if sp := seen[d]; sp != nil {
			if t.Before(sp.first) {
				sp.first = t
			}
			if t.After(sp.last) {
				sp.last = t
			}
			return
		}
		seen[d] = &span{t, t}
	}
	for _, p := range parts {
		for i := range p.b.Execs {
			add(p.b.Execs[i].ImageDigest, p.b.Execs[i].Time)
		}
		for i := range p.b.FileOpens {
			add(p.b.FileOpens[i].ImageDigest, p.b.FileOpens[i].Time)
		}
	}
	if len(seen) == 0 {
		return nil
	}
	digests := make([]string, 0, len(seen))
	for d := range seen {
		digests = append(digests, d)
	}
	sort.Strings(digests) // rows inserted in one order, so two batches naming the same new images cannot deadlock
	firsts, lasts := make([]time.Time, len(digests)), make([]time.Time, len(digests))
	for i, d := range digests {
		firsts[i], lasts[i] = seen[d].first, seen[d].last
	}
	batch := &pgx.Batch{}
	// DO NOTHING, not DO UPDATE: an existing row is neither overwritten nor locked.
	batch.Queue(`INSERT INTO images (digest, first_seen, last_seen, state_seen)
		SELECT d, f, l, false FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(d, f, l)
		ON CONFLICT (digest) DO NOTHING`, digests, firsts, lasts)
	batch.Queue(`UPDATE images i SET last_seen = u.l FROM unnest($1::text[], $2::timestamptz[]) AS u(d, l)
		WHERE i.digest = u.d AND NOT i.state_seen AND i.last_seen < u.l - $3::interval`, digests, lasts, eventImageRefresh)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("images seen through events: %w", err)
	}
	return nil
}

// ExecEventColumns and FileEventColumns are the raw event tables' columns in COPY order (the load test's
// baseline COPYs the same rows).
var (
	ExecEventColumns = []string{"cluster_id", "time", "container_id", "image_digest", "pid", "parent_pid", "executable_path", "executable_sha256", "command_args", "user_id", "working_directory"}
	FileEventColumns = []string{"cluster_id", "time", "container_id", "image_digest", "pid", "executable_path", "file_path", "flags"}
)

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// mergeAggregates folds a staged aggregate table into its table. extra is more assignments for the conflict's
// SET list, each ending in a comma ("" for none); they read the row as it was before the update.
func mergeAggregates(ctx context.Context, tx pgx.Tx, table, key, extra string) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`
		INSERT INTO %[1]s AS t SELECT * FROM stage_%[1]s ORDER BY %[2]s
		ON CONFLICT (%[2]s) DO UPDATE SET %[4]s
			first_seen = least(t.first_seen, excluded.first_seen),
			last_seen = greatest(t.last_seen, excluded.last_seen),
			count = t.count + excluded.count,
			containers = CASE WHEN cardinality(t.containers) >= %[3]d THEN t.containers
				ELSE ARRAY(SELECT x FROM unnest(t.containers || excluded.containers) WITH ORDINALITY AS u(x, n)
					GROUP BY x ORDER BY min(n) LIMIT %[3]d) END`, table, key, maxContainersPerAggregate, extra))
	if err != nil {
		return fmt.Errorf("merge %s: %w", table, err)
	}
	return nil
}

type containerRef struct {
	cluster int64
	id      string
}

// containerDigests maps the containers that the parts' unattributed events name, and that their own batch's
// container records do not, to the digest the store says they run (the group's state records are applied by
// then, so a container another batch of the group brought is found).
func containerDigests(ctx context.Context, tx pgx.Tx, parts []*part) (map[containerRef]string, error) {
	want := map[containerRef]bool{}
	for _, p := range parts {
		own := map[string]bool{}
		for i := range p.b.Containers {
			if k := &p.b.Containers[i]; k.ContainerID != "" && k.RunningDigest != "" {
				own[k.ContainerID] = true
			}
		}
		for i := range p.b.Execs {
			if e := &p.b.Execs[i]; e.ImageDigest == "" && e.ContainerID != "" && !own[e.ContainerID] {
				want[containerRef{p.c.ID, e.ContainerID}] = true
			}
		}
		for i := range p.b.FileOpens {
			if f := &p.b.FileOpens[i]; f.ImageDigest == "" && f.ContainerID != "" && !own[f.ContainerID] {
				want[containerRef{p.c.ID, f.ContainerID}] = true
			}
		}
	}
	out := map[containerRef]string{}
	if len(want) == 0 {
		return out, nil
	}
	clusters := make([]int64, 0, len(want))
	ids := make([]string, 0, len(want))
	for r := range want {
		clusters = append(clusters, r.cluster)
		ids = append(ids, r.id)
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT ON (k.cluster_id, k.container_id) k.cluster_id, k.container_id, k.running_digest
		FROM unnest($1::bigint[], $2::text[]) AS w(cluster_id, container_id)
		JOIN containers k ON k.cluster_id = w.cluster_id AND k.container_id = w.container_id
		WHERE k.running_digest <> ''
		ORDER BY k.cluster_id, k.container_id, k.last_seen DESC`, clusters, ids)
	if err != nil {
		return nil, fmt.Errorf("container digests: %w", err)
	}
	var r containerRef
	var d string
	if _, err := pgx.ForEachRow(rows, []any{&r.cluster, &r.id, &d}, func() error {
		out[r] = d
		return nil
	}); err != nil {
		return nil, fmt.Errorf("container digests: %w", err)
	}
	return out, nil
}

func applySensorHealth(ctx context.Context, tx pgx.Tx, c Cluster, hs []SensorHealth) error {
	if len(hs) == 0 {
		return nil
	}
	latest := map[string]SensorHealth{}
	for _, h := range hs {
		if cur, ok := latest[h.NodeName]; !ok || !h.Time.Before(cur.Time) {
			latest[h.NodeName] = h
		}
	}
	nodes := make([]string, 0, len(latest))
	for n := range latest {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	batch := &pgx.Batch{}
	for _, n := range nodes {
		h := latest[n]
		batch.Queue(`INSERT INTO sensor_health AS t (cluster_id, node_name, events_seen, events_dropped, kernel, program_status, last_seen, first_seen)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
			ON CONFLICT (cluster_id, node_name) DO UPDATE SET events_seen = excluded.events_seen,
				events_dropped = excluded.events_dropped, kernel = excluded.kernel,
				program_status = excluded.program_status, last_seen = excluded.last_seen
			WHERE excluded.last_seen >= t.last_seen`, c.ID, n, h.EventsSeen, h.EventsDropped, h.Kernel, h.ProgramStatus, h.Time)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("sensor health: %w", err)
	}
	return nil
}
