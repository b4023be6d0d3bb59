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

// Apply stores batch b from cluster c in one transaction. It returns only after the transaction committed, so a
// nil error is an acknowledgement. With a non-empty idempotencyKey a batch applied before is not applied again.
// An error wrapping ErrUnavailable means nothing was stored and the batch may be retried as it is.
func (s *Store) Apply(ctx context.Context, c Cluster, idempotencyKey string, b *Batch) (ApplyResult, error) {
	from, to := s.rawWindow()
	if err := s.ensureEventPartitions(ctx, b, from, to); err != nil {
		return ApplyResult{}, err
	}
	var res ApplyResult
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		res, err = s.apply(ctx, c, idempotencyKey, b, from, to)
		if err == nil || !retryable(err) {
			break
		}
		// Two batches touching the same images deadlocked or conflicted; Postgres rolled one back. Run it again.
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	if err != nil {
		return ApplyResult{}, classify(fmt.Errorf("store: apply batch: %w", err))
	}
	return res, nil
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

func (s *Store) apply(ctx context.Context, c Cluster, key string, b *Batch, from, to time.Time) (ApplyResult, error) {
	var res ApplyResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if key != "" {
			tag, err := tx.Exec(ctx, `INSERT INTO ingest_batches (cluster_id, idempotency_key, received_at, records)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, c.ID, key, s.now(), b.Len())
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				res.Duplicate = true
				return nil
			}
		}
		digests, err := s.applyState(ctx, tx, c, b)
		if err != nil {
			return err
		}
		if err := s.applyEvents(ctx, tx, c, b, from, to, &res); err != nil {
			return err
		}
		if err := applySensorHealth(ctx, tx, c, b.SensorHealth); err != nil {
			return err
		}
		if err := recomputeImages(ctx, tx, digests); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE clusters SET last_ingest_at = $2 WHERE id = $1", c.ID, s.now())
		return err
	})
	return res, err
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
				last_seen = greatest(i.last_seen, excluded.last_seen)`)
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

// recomputeImages rewrites the live assessment of each digest from its live containers: worst severity and
// verdict, every reason, and the blast radius. It first locks the image rows in digest order, so two batches that
// touch one image take turns, and the second sees the first's containers.
func recomputeImages(ctx context.Context, tx pgx.Tx, digests []string) error {
	if len(digests) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM images WHERE digest = ANY($1) ORDER BY digest FOR UPDATE", digests); err != nil {
		return fmt.Errorf("lock images: %w", err)
	}
	_, err := tx.Exec(ctx, `
		UPDATE images i SET
			severity = coalesce(a.severity, ''), severity_rank = coalesce(a.severity_rank, 0),
			verdict = coalesce(a.verdict, ''), reasons = a.reasons, refs = coalesce(a.refs, '{}'),
			expected_digests = coalesce(a.expected, '{}'), clusters = a.clusters, namespaces = a.namespaces,
			workloads = a.workloads, pods = a.pods, containers = a.containers
		FROM unnest($1::text[]) AS t(d)
		CROSS JOIN LATERAL (
			SELECT (array_agg(k.severity ORDER BY k.severity_rank DESC))[1] AS severity,
				max(k.severity_rank) AS severity_rank,
				(array_agg(k.integrity ORDER BY k.verdict_rank DESC))[1] AS verdict,
				count(DISTINCT k.cluster_id) AS clusters,
				count(DISTINCT (k.cluster_id, k.namespace)) AS namespaces,
				count(DISTINCT (k.cluster_id, k.workload_uid)) FILTER (WHERE k.workload_uid <> '') AS workloads,
				count(DISTINCT (k.cluster_id, k.pod_uid)) AS pods,
				count(*) AS containers,
				array_agg(DISTINCT CASE WHEN k.image_ref <> '' THEN k.image_ref ELSE k.image_name END)
					FILTER (WHERE k.image_ref <> '' OR k.image_name <> '') AS refs,
				array_agg(DISTINCT k.expected_digest) FILTER (WHERE k.expected_digest <> '') AS expected,
				ARRAY(SELECT DISTINCT r FROM containers k2, unnest(k2.reasons) r
					WHERE k2.running_digest = t.d AND k2.deleted_at IS NULL ORDER BY r) AS reasons
			FROM containers k WHERE k.running_digest = t.d AND k.deleted_at IS NULL
		) a
		WHERE i.digest = t.d`, digests)
	if err != nil {
		return fmt.Errorf("recompute images: %w", err)
	}
	return nil
}

type execKey struct{ digest, path, sha string }
type fileKey struct{ digest, path string }

type aggregate struct {
	first, last time.Time
	count       int64
	containers  []string
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
// the raw window into their partitions, and folds every attributed event into the per-image aggregates.
func (s *Store) applyEvents(ctx context.Context, tx pgx.Tx, c Cluster, b *Batch, from, to time.Time, res *ApplyResult) error {
	if len(b.Execs) == 0 && len(b.FileOpens) == 0 {
		return nil
	}
	digestOf, err := containerDigests(ctx, tx, c, b)
	if err != nil {
		return err
	}
	resolve := func(digest, container string) string {
		if digest != "" {
			return digest
		}
		return digestOf[container]
	}
	inWindow := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }

	execAgg := map[execKey]*aggregate{}
	var rawExec [][]any
	for i := range b.Execs {
		e := &b.Execs[i]
		d := resolve(e.ImageDigest, e.ContainerID)
		if inWindow(e.Time) {
			args := e.CommandArgs
			if args == nil {
				args = []string{}
			}
			rawExec = append(rawExec, []any{c.ID, e.Time, e.ContainerID, d, e.PID, e.ParentPID, e.ExecutablePath, e.SHA256, args, e.UserID, e.WorkingDirectory})
		} else {
			res.RawSkipped++
		}
		if d == "" {
			res.Unattributed++
			continue
		}
		k := execKey{d, e.ExecutablePath, e.SHA256}
		if execAgg[k] == nil {
			execAgg[k] = &aggregate{}
		}
		execAgg[k].add(e.Time, e.ContainerID)
	}
	fileAgg := map[fileKey]*aggregate{}
	var rawFile [][]any
	for i := range b.FileOpens {
		f := &b.FileOpens[i]
		d := resolve(f.ImageDigest, f.ContainerID)
		if inWindow(f.Time) {
			rawFile = append(rawFile, []any{c.ID, f.Time, f.ContainerID, d, f.PID, f.ExecutablePath, f.FilePath, f.Flags})
		} else {
			res.RawSkipped++
		}
		if d == "" {
			res.Unattributed++
			continue
		}
		k := fileKey{d, f.FilePath}
		if fileAgg[k] == nil {
			fileAgg[k] = &aggregate{}
		}
		fileAgg[k].add(f.Time, f.ContainerID)
	}

	if len(rawExec) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"exec_events"}, ExecEventColumns, pgx.CopyFromRows(rawExec)); err != nil {
			return fmt.Errorf("copy exec events: %w", err)
		}
	}
	if len(rawFile) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"file_events"}, FileEventColumns, pgx.CopyFromRows(rawFile)); err != nil {
			return fmt.Errorf("copy file events: %w", err)
		}
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
				return []any{keys[i].digest, keys[i].path, keys[i].sha, c.ID, a.first, a.last, a.count, nonNil(a.containers)}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy exec aggregates: %w", err)
		}
		if err := mergeAggregates(ctx, tx, "exec_aggregates", "image_digest, executable_path, executable_sha256, cluster_id"); err != nil {
			return err
		}
	}
	if len(fileAgg) > 0 {
		keys := make([]fileKey, 0, len(fileAgg))
		for k := range fileAgg {
			keys = append(keys, k)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_file_aggregates"},
			[]string{"image_digest", "file_path", "cluster_id", "first_seen", "last_seen", "count", "containers"},
			pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) {
				a := fileAgg[keys[i]]
				return []any{keys[i].digest, keys[i].path, c.ID, a.first, a.last, a.count, nonNil(a.containers)}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy file aggregates: %w", err)
		}
		if err := mergeAggregates(ctx, tx, "file_aggregates", "image_digest, file_path, cluster_id"); err != nil {
			return err
		}
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

func mergeAggregates(ctx context.Context, tx pgx.Tx, table, key string) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`
		INSERT INTO %[1]s AS t SELECT * FROM stage_%[1]s ORDER BY %[2]s
		ON CONFLICT (%[2]s) DO UPDATE SET
			first_seen = least(t.first_seen, excluded.first_seen),
			last_seen = greatest(t.last_seen, excluded.last_seen),
			count = t.count + excluded.count,
			containers = CASE WHEN cardinality(t.containers) >= %[3]d THEN t.containers
				ELSE ARRAY(SELECT x FROM unnest(t.containers || excluded.containers) WITH ORDINALITY AS u(x, n)
					GROUP BY x ORDER BY min(n) LIMIT %[3]d) END`, table, key, maxContainersPerAggregate))
	if err != nil {
		return fmt.Errorf("merge %s: %w", table, err)
	}
	return nil
}

// containerDigests maps the container ids the batch's unattributed events name to the digest they run: from
// the batch's own container records first, else from the store.
func containerDigests(ctx context.Context, tx pgx.Tx, c Cluster, b *Batch) (map[string]string, error) {
	out := map[string]string{}
	for i := range b.Containers {
		if k := &b.Containers[i]; k.ContainerID != "" && k.RunningDigest != "" {
			out[k.ContainerID] = k.RunningDigest
		}
	}
	want := map[string]bool{}
	for i := range b.Execs {
		if e := &b.Execs[i]; e.ImageDigest == "" && e.ContainerID != "" && out[e.ContainerID] == "" {
			want[e.ContainerID] = true
		}
	}
	for i := range b.FileOpens {
		if f := &b.FileOpens[i]; f.ImageDigest == "" && f.ContainerID != "" && out[f.ContainerID] == "" {
			want[f.ContainerID] = true
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT ON (container_id) container_id, running_digest FROM containers
		WHERE cluster_id = $1 AND container_id = ANY($2) AND running_digest <> ''
		ORDER BY container_id, last_seen DESC`, c.ID, ids)
	if err != nil {
		return nil, fmt.Errorf("container digests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, d string
		if err := rows.Scan(&id, &d); err != nil {
			return nil, err
		}
		out[id] = d
	}
	return out, rows.Err()
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
		batch.Queue(`INSERT INTO sensor_health AS t (cluster_id, node_name, events_seen, events_dropped, kernel, program_status, last_seen)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
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
