package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The write path's events: exec and file-open records, kept raw in daily partitions (copyevents.go) and folded
// into per-image aggregates; and the sensors' health.

// maxContainersPerAggregate bounds the container ids an aggregate row lists (see the migration).
const maxContainersPerAggregate = 32

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
func applyEvents(ctx context.Context, tx pgx.Tx, parts []*part) error {
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
	fold := eventFold{stored: stored, execs: map[execKey]*aggregate{}, files: map[fileKey]*aggregate{}}
	for _, p := range parts {
		fold.add(p)
	}
	if err := upsertEventImages(ctx, tx, parts); err != nil {
		return err
	}
	return fold.write(ctx, tx)
}

// eventFold gathers a group's events: the raw rows to COPY and the aggregates to merge.
type eventFold struct {
	stored           map[containerRef]string // containerDigests
	execs            map[execKey]*aggregate
	files            map[fileKey]*aggregate
	rawExec, rawFile eventCopy
}

// add folds part p's events in and counts, in p.res, those kept unattributed or not kept raw.
func (f *eventFold) add(p *part) {
	c, b := p.c, p.b
	if len(b.Execs)+len(b.FileOpens) == 0 {
		return
	}
	own := map[string]string{} // the batch's own container records come first
	for i := range b.Containers {
		if k := &b.Containers[i]; k.ContainerID != "" && k.RunningDigest != "" {
			own[k.ContainerID] = k.RunningDigest
		}
	}
	// route resolves an event's image digest and says whether its raw row is kept and whether it counts in the
	// image's aggregates.
	route := func(t time.Time, digest, container string) (d string, raw, aggregate bool) {
		switch {
		case digest != "":
			d = digest
		case own[container] != "":
			d = own[container]
		default:
			d = f.stored[containerRef{c.ID, container}]
		}
		return d, p.keepRaw(t), p.attributed(d)
	}
	for i := range b.Execs {
		e := &b.Execs[i]
		d, raw, aggregate := route(e.Time, e.ImageDigest, e.ContainerID)
		if raw {
			f.rawExec.addExec(c.ID, e, d)
		}
		if aggregate {
			aggregateOf(f.execs, execKey{c.ID, d, e.ExecutablePath, e.SHA256}).add(e.Time, e.ContainerID)
		}
	}
	for i := range b.FileOpens {
		o := &b.FileOpens[i]
		d, raw, aggregate := route(o.Time, o.ImageDigest, o.ContainerID)
		if raw {
			f.rawFile.addFile(c.ID, o, d)
		}
		if !aggregate {
			continue
		}
		a := aggregateOf(f.files, fileKey{c.ID, d, o.FilePath})
		a.add(o.Time, o.ContainerID)
		if a.first.Equal(o.Time) { // the earliest open so far: its process is the one to name
			a.process = o.ExecutablePath
		}
	}
}

// keepRaw says whether an event at t is kept raw (inside the raw window), and counts it in RawSkipped if not.
func (p *part) keepRaw(t time.Time) bool {
	if !t.Before(p.from) && t.Before(p.to) {
		return true
	}
	p.res.RawSkipped++
	return false
}

// attributed says whether an event's resolved digest names an image, and counts it in Unattributed if not.
func (p *part) attributed(digest string) bool {
	if digest == "" {
		p.res.Unattributed++
	}
	return digest != ""
}

func aggregateOf[K comparable](m map[K]*aggregate, k K) *aggregate {
	if m[k] == nil {
		m[k] = &aggregate{}
	}
	return m[k]
}

// write COPYs the raw events and merges the aggregates.
func (f *eventFold) write(ctx context.Context, tx pgx.Tx) error {
	if err := f.rawExec.copyTo(ctx, tx, "exec_events", ExecEventColumns); err != nil {
		return fmt.Errorf("copy exec events: %w", err)
	}
	if err := f.rawFile.copyTo(ctx, tx, "file_events", FileEventColumns); err != nil {
		return fmt.Errorf("copy file events: %w", err)
	}
	err := mergeAggregates(ctx, tx, execAggregates, f.execs, func(k execKey, a *aggregate) []any {
		return []any{k.digest, k.path, k.sha, k.cluster, a.first, a.last, a.count, nonNil(a.containers)}
	})
	if err != nil {
		return err
	}
	return mergeAggregates(ctx, tx, fileAggregates, f.files, func(k fileKey, a *aggregate) []any {
		return []any{k.digest, k.path, k.cluster, a.first, a.last, a.count, nonNil(a.containers), a.process}
	})
}

// aggregateTable is a per-image aggregate table: staged with COPY, then merged (mergeAggregates).
type aggregateTable struct {
	name    string
	key     string   // the conflict key, for ORDER BY and ON CONFLICT
	columns []string // COPY order
	// extra is more assignments for the conflict's SET list, each ending in a comma ("" for none); they read
	// the row as it was before the update.
	extra string
}

var (
	execAggregates = aggregateTable{
		name: "exec_aggregates", key: "image_digest, executable_path, executable_sha256, cluster_id",
		columns: []string{"image_digest", "executable_path", "executable_sha256", "cluster_id", "first_seen", "last_seen", "count", "containers"},
	}
	fileAggregates = aggregateTable{
		name: "file_aggregates", key: "image_digest, file_path, cluster_id",
		columns: []string{"image_digest", "file_path", "cluster_id", "first_seen", "last_seen", "count", "containers", "first_process"},
		extra:   "first_process = CASE WHEN excluded.first_seen < t.first_seen THEN excluded.first_process ELSE t.first_process END,",
	}
)

// mergeAggregates COPYs aggs into table's staging table (row gives a row in its column order) and folds them
// into the table.
func mergeAggregates[K comparable](ctx context.Context, tx pgx.Tx, table aggregateTable, aggs map[K]*aggregate, row func(K, *aggregate) []any) error {
	if len(aggs) == 0 {
		return nil
	}
	keys := make([]K, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_" + table.name}, table.columns,
		pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) { return row(keys[i], aggs[keys[i]]), nil }))
	if err != nil {
		return fmt.Errorf("copy %s: %w", strings.ReplaceAll(table.name, "_", " "), err)
	}
	_, err = tx.Exec(ctx, fmt.Sprintf(`
		INSERT INTO %[1]s AS t SELECT * FROM stage_%[1]s ORDER BY %[2]s
		ON CONFLICT (%[2]s) DO UPDATE SET %[4]s
			first_seen = least(t.first_seen, excluded.first_seen),
			last_seen = greatest(t.last_seen, excluded.last_seen),
			count = t.count + excluded.count,
			containers = CASE WHEN cardinality(t.containers) >= %[3]d THEN t.containers
				ELSE ARRAY(SELECT x FROM unnest(t.containers || excluded.containers) WITH ORDINALITY AS u(x, n)
					GROUP BY x ORDER BY min(n) LIMIT %[3]d) END`, table.name, table.key, maxContainersPerAggregate, table.extra))
	if err != nil {
		return fmt.Errorf("merge %s: %w", table.name, err)
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
		batch.Queue(`INSERT INTO sensor_health AS t (cluster_id, node_name, events_seen, events_dropped, kernel, program_status,
				open_hook, hooks_refused, last_seen, first_seen)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
			ON CONFLICT (cluster_id, node_name) DO UPDATE SET events_seen = excluded.events_seen,
				events_dropped = excluded.events_dropped, kernel = excluded.kernel,
				program_status = excluded.program_status, open_hook = excluded.open_hook,
				hooks_refused = excluded.hooks_refused, last_seen = excluded.last_seen
			WHERE excluded.last_seen >= t.last_seen`, c.ID, n, h.EventsSeen, h.EventsDropped, h.Kernel, h.ProgramStatus,
			h.OpenHook, h.HooksRefused, h.Time)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("sensor health: %w", err)
	}
	return nil
}
