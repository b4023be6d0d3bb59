package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The write path's state records (nodes, workloads, pods, containers) all reach their tables the same way: the
// batch's rows are COPYed into the connection's staging table (store.go) and upserted from there in one
// statement. stateTables says, per kind, what differs: the columns, how a record becomes a row, and the
// statements that read the staged rows around the upsert.

// stateTable is one kind of state record.
type stateTable struct {
	name    string   // the table; stage_<name> is its staging table
	key     []string // the table's conflict key, the leading columns
	columns []string // COPY order: key, then the updated columns, then first_seen, last_seen, deleted_at
	count   func(b *Batch) int
	row     func(c Cluster, b *Batch, i int) []any
	// before and after run over the staged rows before and after the upsert, in order.
	before, after []stagedStatement

	upsert string // built from the above by upsertFromStage
}

// stagedStatement is a statement over a staging table. With digests set it returns image digests whose
// assessment may have changed (one text column).
type stagedStatement struct {
	what, sql string
	digests   bool
}

// timeColumns end every state table's columns; the upsert sets them by its own rules.
var timeColumns = []string{"first_seen", "last_seen", "deleted_at"}

var stateTables = []*stateTable{
	{
		name: "nodes", key: []string{"cluster_id", "uid"},
		columns: []string{"cluster_id", "uid", "name", "first_seen", "last_seen", "deleted_at"},
		count:   func(b *Batch) int { return len(b.Nodes) },
		row: func(c Cluster, b *Batch, i int) []any {
			n := &b.Nodes[i]
			return []any{c.ID, n.UID, n.Name, n.Time, n.Time, deletedAt(n.Deleted, n.Time)}
		},
	},
	{
		name: "workloads", key: []string{"cluster_id", "uid"},
		columns: []string{"cluster_id", "uid", "kind", "name", "namespace", "first_seen", "last_seen", "deleted_at"},
		count:   func(b *Batch) int { return len(b.Workloads) },
		row: func(c Cluster, b *Batch, i int) []any {
			w := &b.Workloads[i]
			return []any{c.ID, w.UID, w.Kind, w.Name, w.Namespace, w.Time, w.Time, deletedAt(w.Deleted, w.Time)}
		},
	},
	{
		name: "pods", key: []string{"cluster_id", "uid"},
		columns: []string{"cluster_id", "uid", "name", "namespace", "node_name", "workload_uid", "workload_kind",
			"workload_name", "first_seen", "last_seen", "deleted_at"},
		count: func(b *Batch) int { return len(b.Pods) },
		row: func(c Cluster, b *Batch, i int) []any {
			p := &b.Pods[i]
			return []any{c.ID, p.UID, p.Name, p.Namespace, p.NodeName, p.WorkloadUID, p.WorkloadKind, p.WorkloadName,
				p.Time, p.Time, deletedAt(p.Deleted, p.Time)}
		},
		after: []stagedStatement{{
			// A deleted pod takes its containers with it, whether or not their own deletions arrive.
			what: "delete containers of deleted pods", digests: true, sql: `
			UPDATE containers k SET deleted_at = p.deleted_at, last_seen = p.last_seen
			FROM stage_pods p
			WHERE p.deleted_at IS NOT NULL AND k.cluster_id = p.cluster_id AND k.pod_uid = p.uid
			  AND k.deleted_at IS NULL AND k.last_seen <= p.last_seen
			RETURNING k.running_digest`,
		}},
	},
	{
		name: "containers", key: []string{"cluster_id", "pod_uid", "name"},
		columns: []string{"cluster_id", "pod_uid", "name", "container_id", "namespace", "pod_name", "node_name",
			"workload_uid", "workload_kind", "workload_name", "image_name", "image_ref", "registry_host",
			"registry_trusted", "tag_mutable", "running_digest", "pull_policy", "integrity", "verdict_rank",
			"expected_digest", "severity", "severity_rank", "reasons", "first_seen", "last_seen", "deleted_at"},
		count: func(b *Batch) int { return len(b.Containers) },
		row:   containerRow,
		before: []stagedStatement{{
			// The digests these containers ran before this batch: their images lose them if the digest changed.
			what: "previous digests", digests: true, sql: `
			SELECT DISTINCT k.running_digest FROM containers k
			JOIN stage_containers s USING (cluster_id, pod_uid, name)
			WHERE k.running_digest <> ''`,
		}},
		after: []stagedStatement{{
			what: "upsert images", sql: `
			INSERT INTO images AS i (digest, first_seen, last_seen)
			SELECT running_digest, min(first_seen), max(last_seen) FROM stage_containers
			WHERE running_digest <> '' GROUP BY running_digest ORDER BY running_digest
			ON CONFLICT (digest) DO UPDATE SET first_seen = least(i.first_seen, excluded.first_seen),
				last_seen = greatest(i.last_seen, excluded.last_seen), state_seen = true`,
		}, {
			what: "upsert image references", sql: `
			INSERT INTO image_refs AS r (ref, digest, registry_host, first_seen, last_seen)
			SELECT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END, running_digest, max(registry_host),
				min(first_seen), max(last_seen)
			FROM stage_containers WHERE running_digest <> '' AND (image_ref <> '' OR image_name <> '')
			GROUP BY 1, 2 ORDER BY 1, 2
			ON CONFLICT (ref, digest) DO UPDATE SET registry_host = excluded.registry_host,
				first_seen = least(r.first_seen, excluded.first_seen), last_seen = greatest(r.last_seen, excluded.last_seen)`,
		}},
	},
}

func init() {
	for _, t := range stateTables {
		t.upsert = upsertFromStage(t.name, t.key, updatedColumns(t))
	}
}

func containerRow(c Cluster, b *Batch, i int) []any {
	k := &b.Containers[i]
	return []any{c.ID, k.PodUID, k.Name, k.ContainerID, k.Namespace, k.PodName, k.NodeName,
		k.WorkloadUID, k.WorkloadKind, k.WorkloadName, k.ImageName, k.ImageRef, k.RegistryHost,
		k.RegistryTrusted, k.TagMutable, k.RunningDigest, k.PullPolicy, k.Integrity, VerdictRank(k.Integrity),
		k.ExpectedDigest, k.Severity, SeverityRank(k.Severity), nonNil(k.Reasons), k.Time, k.Time, deletedAt(k.Deleted, k.Time)}
}

// updatedColumns are the columns between the key and the time columns: a newer record overwrites them.
func updatedColumns(t *stateTable) []string {
	if !slices.Equal(t.columns[:len(t.key)], t.key) || !slices.Equal(t.columns[len(t.columns)-len(timeColumns):], timeColumns) {
		panic("store: state table " + t.name + ": columns must start with the key and end with " + strings.Join(timeColumns, ", "))
	}
	return t.columns[len(t.key) : len(t.columns)-len(timeColumns)]
}

func deletedAt(deleted bool, t time.Time) any {
	if deleted {
		return t
	}
	return nil
}

// upsertFromStage is the statement that moves the staged rows of one kind into their table: the newest record
// per key wins, and a stored row newer than the record is left alone (records can arrive out of order across
// batches).
func upsertFromStage(table string, key, update []string) string {
	keys := strings.Join(key, ", ")
	set := ""
	for _, col := range update {
		set += fmt.Sprintf("%s = excluded.%s, ", col, col)
	}
	return fmt.Sprintf(`INSERT INTO %[1]s AS t SELECT DISTINCT ON (%[2]s) * FROM stage_%[1]s
		ORDER BY %[2]s, last_seen DESC, deleted_at DESC NULLS LAST
		ON CONFLICT (%[2]s) DO UPDATE SET %[3]s last_seen = excluded.last_seen, deleted_at = excluded.deleted_at,
			first_seen = least(t.first_seen, excluded.first_seen)
		WHERE excluded.last_seen >= t.last_seen`, table, keys, set)
}

// hasState says whether b holds any state record.
func hasState(b *Batch) bool {
	for _, t := range stateTables {
		if t.count(b) > 0 {
			return true
		}
	}
	return false
}

// clearStaging empties the state staging tables, which hold the previous batch's rows until commit.
func clearStaging(ctx context.Context, tx pgx.Tx) error {
	var sql strings.Builder
	for _, t := range stateTables {
		sql.WriteString("DELETE FROM stage_" + t.name + "; ")
	}
	if _, err := tx.Exec(ctx, sql.String()); err != nil {
		return fmt.Errorf("clear staging tables: %w", err)
	}
	return nil
}

// applyState upserts nodes, workloads, pods and containers and returns the image digests whose assessment may
// have changed (every digest a touched container runs or ran).
func applyState(ctx context.Context, tx pgx.Tx, c Cluster, b *Batch) ([]string, error) {
	var digests []string
	for _, t := range stateTables {
		n := t.count(b)
		if n == 0 {
			continue
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_" + t.name}, t.columns,
			pgx.CopyFromSlice(n, func(i int) ([]any, error) { return t.row(c, b, i), nil }))
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", t.name, err)
		}
		if digests, err = runStaged(ctx, tx, t.before, digests); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, t.upsert); err != nil {
			return nil, fmt.Errorf("upsert %s: %w", t.name, err)
		}
		if digests, err = runStaged(ctx, tx, t.after, digests); err != nil {
			return nil, err
		}
	}
	for i := range b.Containers { // and the digests the batch's containers run now
		if d := b.Containers[i].RunningDigest; d != "" {
			digests = append(digests, d)
		}
	}
	return dedupe(digests), nil
}

// runStaged runs statements in order and appends the digests those that return them return.
func runStaged(ctx context.Context, tx pgx.Tx, statements []stagedStatement, digests []string) ([]string, error) {
	for _, st := range statements {
		if !st.digests {
			if _, err := tx.Exec(ctx, st.sql); err != nil {
				return nil, fmt.Errorf("%s: %w", st.what, err)
			}
			continue
		}
		rows, err := tx.Query(ctx, st.sql)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.what, err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.what, err)
		}
		digests = append(digests, found...)
	}
	return digests, nil
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
	// so a container record with an odd namespace cannot count a pod twice). A host container (no pod, no
	// namespace: runtrust.host.container) counts as a container only. The reasons are folded in a
	// second grouped pass over the same rows and joined, not gathered by a subquery per group: that subquery
	// had made container-heavy batches 4× slower.
	b.Queue(`WITH g AS (
			SELECT running_digest AS digest, coalesce(namespace, '') AS namespace, GROUPING(namespace) AS whole,
				(array_agg(severity ORDER BY severity_rank DESC))[1] AS severity, max(severity_rank) AS severity_rank,
				(array_agg(integrity ORDER BY verdict_rank DESC))[1] AS verdict, max(verdict_rank) AS verdict_rank,
				coalesce(array_agg(DISTINCT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END)
					FILTER (WHERE image_ref <> '' OR image_name <> ''), '{}') AS refs,
				coalesce(array_agg(DISTINCT expected_digest) FILTER (WHERE expected_digest <> ''), '{}') AS expected_digests,
				count(DISTINCT namespace) FILTER (WHERE namespace <> '') AS namespaces,
				count(DISTINCT workload_uid) FILTER (WHERE workload_uid <> '') AS workloads,
				count(DISTINCT pod_uid) FILTER (WHERE pod_uid <> '') AS pods, count(*) AS containers
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

// recordVerdictChanges runs in the ingest transaction after the images were recomputed: for every (digest,
// reference) of this cluster the batch touched, it compares the worst live verdict and severity with the last
// recorded one and appends a verdict_changes row when they differ. The images rows of these digests are
// locked by then (recomputeImages), so two batches cannot both record the same change.
func recordVerdictChanges(ctx context.Context, tx pgx.Tx, clusterID int64, digests []string) error {
	if len(digests) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
		WITH cur AS (
			-- One grouped pass: the reasons are unnested in the same pass, not gathered by a second aggregate
			-- joined back, which PostgreSQL (misjudging the batch's rows before an ANALYZE) ran as a nested loop
			-- re-sorting that aggregate once per (digest, reference): 1 s for an 800-image batch.
			SELECT k.running_digest AS digest, CASE WHEN k.image_ref <> '' THEN k.image_ref ELSE k.image_name END AS ref,
				(array_agg(k.integrity ORDER BY k.verdict_rank DESC))[1] AS verdict,
				(array_agg(k.severity ORDER BY k.severity_rank DESC))[1] AS severity, max(k.last_seen) AS at,
				coalesce(array_agg(DISTINCT r ORDER BY r) FILTER (WHERE r IS NOT NULL), '{}') AS reasons
			FROM containers k LEFT JOIN LATERAL unnest(k.reasons) r ON true
			WHERE k.cluster_id = $1 AND k.running_digest = ANY($2) AND k.deleted_at IS NULL
			GROUP BY 1, 2),
		changed AS (
			SELECT cur.*, v.verdict AS old_verdict, v.severity AS old_severity
			FROM cur LEFT JOIN image_verdicts v ON v.cluster_id = $1 AND v.digest = cur.digest AND v.ref = cur.ref
			WHERE CASE WHEN v.cluster_id IS NULL THEN cur.verdict <> '' OR cur.severity <> ''
				ELSE v.verdict <> cur.verdict OR v.severity <> cur.severity END),
		log AS (
			INSERT INTO verdict_changes (time, cluster_id, digest, ref, old_verdict, old_severity, new_verdict, new_severity, reasons)
			SELECT at, $1, digest, ref, old_verdict, old_severity, verdict, severity, reasons FROM changed)
		INSERT INTO image_verdicts (cluster_id, digest, ref, verdict, severity, changed_at)
		SELECT $1, digest, ref, verdict, severity, at FROM changed ORDER BY digest, ref
		ON CONFLICT (cluster_id, digest, ref) DO UPDATE SET verdict = excluded.verdict, severity = excluded.severity,
			changed_at = excluded.changed_at`, clusterID, digests)
	if err != nil {
		return fmt.Errorf("verdict changes: %w", err)
	}
	return nil
}
