package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Filter narrows and orders a list. Empty fields do not filter. The HTTP API validates every field before it
// gets here (api/params.go); the store still passes each value as a query parameter, never as SQL.
type Filter struct {
	Cluster    string   // a cluster's uid or name
	Namespace  string   // a Kubernetes namespace
	Severities []string // any of these runtrust.risk.severity values
	Verdicts   []string // any of these runtrust.image.integrity values
	Registry   string   // artifacts: the registry host
	Sort       string   // one of the list's sort orders; "" is its default
	Limit      int
	Offset     int
}

// Page is one page of a list and the size of the whole list.
type Page[T any] struct {
	Items []T
	Total int
}

// ImageSummary is one image (by running digest) with its live assessment and blast radius.
type ImageSummary struct {
	Digest          string
	Severity        string
	Verdict         string
	Reasons         []string
	Refs            []string
	ExpectedDigests []string
	Clusters        int
	Namespaces      int
	Workloads       int
	Pods            int
	Containers      int
	FirstSeen       time.Time
	LastSeen        time.Time
}

// Image sort orders.
const (
	SortRisk     = "risk"
	SortLastSeen = "last_seen"
	SortDigest   = "digest"
	SortName     = "name"
	SortRef      = "ref"
)

var imageOrder = map[string]string{
	"":           "severity_rank DESC, clusters DESC, namespaces DESC, workloads DESC, pods DESC, digest",
	SortRisk:     "severity_rank DESC, clusters DESC, namespaces DESC, workloads DESC, pods DESC, digest",
	SortLastSeen: "last_seen DESC, digest",
	SortDigest:   "digest",
}

// args collects query parameters and hands out their placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// riskConditions appends the filter's severity and verdict conditions on the columns of the named table alias
// ("" for none): every list that can be filtered by risk filters the same way.
func riskConditions(where []string, a *args, f Filter, alias string) []string {
	if alias != "" {
		alias += "."
	}
	if len(f.Severities) > 0 {
		where = append(where, alias+"severity = ANY("+a.add(f.Severities)+")")
	}
	if len(f.Verdicts) > 0 {
		where = append(where, alias+"verdict = ANY("+a.add(f.Verdicts)+")")
	}
	return where
}

// ErrBadSort: the sort order is not one the list offers.
var ErrBadSort = errors.New("unknown sort order")

// ListImages ranks the images running now. Without a cluster or namespace filter it reads the maintained
// assessment (one index scan); with one it computes the blast radius inside that scope from the containers.
func (s *Store) ListImages(ctx context.Context, f Filter) (Page[ImageSummary], error) {
	order, ok := imageOrder[f.Sort]
	if !ok {
		return Page[ImageSummary]{}, fmt.Errorf("%w %q", ErrBadSort, f.Sort)
	}
	if f.Cluster == "" && f.Namespace == "" {
		return s.listRankedImages(ctx, f, order)
	}
	var a args
	var sql string
	{
		where := []string{"k.deleted_at IS NULL", "k.running_digest <> ''"}
		if f.Cluster != "" {
			p := a.add(f.Cluster)
			where = append(where, fmt.Sprintf("k.cluster_id IN (SELECT id FROM clusters WHERE uid = %s OR name = %s)", p, p))
		}
		if f.Namespace != "" {
			where = append(where, "k.namespace = "+a.add(f.Namespace))
		}
		sql = `WITH scoped AS (SELECT k.* FROM containers k WHERE ` + strings.Join(where, " AND ") + `),
		agg AS (
			SELECT running_digest AS digest,
				(array_agg(severity ORDER BY severity_rank DESC))[1] AS severity,
				max(severity_rank) AS severity_rank,
				(array_agg(integrity ORDER BY verdict_rank DESC))[1] AS verdict,
				coalesce(array_agg(DISTINCT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END)
					FILTER (WHERE image_ref <> '' OR image_name <> ''), '{}') AS refs,
				coalesce(array_agg(DISTINCT expected_digest) FILTER (WHERE expected_digest <> ''), '{}') AS expected_digests,
				count(DISTINCT cluster_id)::int AS clusters,
				count(DISTINCT (cluster_id, namespace))::int AS namespaces,
				count(DISTINCT (cluster_id, workload_uid)) FILTER (WHERE workload_uid <> '')::int AS workloads,
				count(DISTINCT (cluster_id, pod_uid))::int AS pods,
				count(*)::int AS containers
			FROM scoped GROUP BY running_digest),
		rs AS (SELECT running_digest AS digest, array_agg(DISTINCT r ORDER BY r) AS reasons
			FROM scoped, unnest(reasons) r GROUP BY running_digest),
		img AS (SELECT agg.*, coalesce(rs.reasons, '{}') AS reasons, i.first_seen, i.last_seen
			FROM agg JOIN images i USING (digest) LEFT JOIN rs USING (digest))`
	}
	sql += `
		SELECT digest, severity, verdict, reasons, refs, expected_digests, clusters, namespaces, workloads, pods,
			containers, first_seen, last_seen, count(*) OVER () FROM img`
	var where []string
	where = riskConditions(where, &a, f, "")
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + order + " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset)
	return collectPage(ctx, s, sql, a, func(r pgx.Rows, total *int) (ImageSummary, error) {
		var i ImageSummary
		err := r.Scan(&i.Digest, &i.Severity, &i.Verdict, &i.Reasons, &i.Refs, &i.ExpectedDigests, &i.Clusters,
			&i.Namespaces, &i.Workloads, &i.Pods, &i.Containers, &i.FirstSeen, &i.LastSeen, total)
		return i, err
	})
}

// listRankedImages reads the maintained assessment. The page comes from the images_by_risk index with LIMIT,
// and the total from a separate count: a count(*) OVER () would make Postgres read and sort every image first.
func (s *Store) listRankedImages(ctx context.Context, f Filter, order string) (Page[ImageSummary], error) {
	var a args
	where := []string{"containers > 0"}
	where = riskConditions(where, &a, f, "")
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM images WHERE "+cond, a...).Scan(&total); err != nil {
		return Page[ImageSummary]{}, classify(err)
	}
	sql := `SELECT digest, severity, verdict, reasons, refs, expected_digests, clusters, namespaces, workloads, pods,
		containers, first_seen, last_seen FROM images WHERE ` + cond +
		" ORDER BY " + order + " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset)
	page, err := collectPage(ctx, s, sql, a, func(r pgx.Rows, _ *int) (ImageSummary, error) {
		var i ImageSummary
		err := r.Scan(&i.Digest, &i.Severity, &i.Verdict, &i.Reasons, &i.Refs, &i.ExpectedDigests, &i.Clusters,
			&i.Namespaces, &i.Workloads, &i.Pods, &i.Containers, &i.FirstSeen, &i.LastSeen)
		return i, err
	})
	page.Total = total
	return page, err
}

// collectPage runs a list query whose last column is the total row count (count(*) OVER ()).
func collectPage[T any](ctx context.Context, s *Store, sql string, a args, scan func(pgx.Rows, *int) (T, error)) (Page[T], error) {
	rows, err := s.pool.Query(ctx, sql, a...)
	if err != nil {
		return Page[T]{}, classify(err)
	}
	defer rows.Close()
	page := Page[T]{Items: []T{}}
	for rows.Next() {
		item, err := scan(rows, &page.Total)
		if err != nil {
			return Page[T]{}, classify(err)
		}
		page.Items = append(page.Items, item)
	}
	if err := rows.Err(); err != nil {
		return Page[T]{}, classify(err)
	}
	return page, nil
}

// ErrNotFound: no such image, cluster, …
var ErrNotFound = errors.New("not found")

// Placement is one live container that runs an image: where, and what the processors found about it there.
type Placement struct {
	ClusterUID, ClusterName    string
	Namespace                  string
	WorkloadKind, WorkloadName string
	Pod, Container, Node       string
	ImageName, ImageRef        string
	RunningDigest              string
	ExpectedDigest             string
	Verdict, Severity          string
	Reasons                    []string
	RegistryHost               string
	RegistryTrusted            *bool
	LastSeen                   time.Time
}

// ExecAggregate is an executable an image's containers ran.
type ExecAggregate struct {
	Path, SHA256        string
	FirstSeen, LastSeen time.Time
	Count               int64
	Containers          []string
}

// FileAggregate is a file an image's containers opened.
type FileAggregate struct {
	Path                string
	FirstSeen, LastSeen time.Time
	Count               int64
	Containers          []string
}

// ImageDetail is one image with its evidence.
type ImageDetail struct {
	ImageSummary
	Placements      []Placement
	PlacementsTotal int
	Processes       []ExecAggregate
	ProcessesTotal  int
	Files           []FileAggregate
	FilesTotal      int
}

// DetailLimit bounds each evidence list of ImageDetail; the totals say how many there are.
const DetailLimit = 500

// GetImage returns the image with this digest, whether or not it still runs.
func (s *Store) GetImage(ctx context.Context, digest string) (ImageDetail, error) {
	var d ImageDetail
	i := &d.ImageSummary
	err := s.pool.QueryRow(ctx, `SELECT digest, severity, verdict, reasons, refs, expected_digests, clusters,
		namespaces, workloads, pods, containers, first_seen, last_seen FROM images WHERE digest = $1`, digest).Scan(
		&i.Digest, &i.Severity, &i.Verdict, &i.Reasons, &i.Refs, &i.ExpectedDigests, &i.Clusters,
		&i.Namespaces, &i.Workloads, &i.Pods, &i.Containers, &i.FirstSeen, &i.LastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, classify(err)
	}
	placements, err := collectPage(ctx, s, `
		SELECT cl.uid, cl.name, k.namespace, k.workload_kind, k.workload_name, k.pod_name, k.name, k.node_name,
			k.image_name, k.image_ref, k.running_digest, k.expected_digest, k.integrity, k.severity, k.reasons,
			k.registry_host, k.registry_trusted, k.last_seen, count(*) OVER ()
		FROM containers k JOIN clusters cl ON cl.id = k.cluster_id
		WHERE k.running_digest = $1 AND k.deleted_at IS NULL
		ORDER BY k.severity_rank DESC, cl.name, k.namespace, k.pod_name, k.name LIMIT $2`, args{digest, DetailLimit},
		func(r pgx.Rows, total *int) (Placement, error) {
			var p Placement
			err := r.Scan(&p.ClusterUID, &p.ClusterName, &p.Namespace, &p.WorkloadKind, &p.WorkloadName, &p.Pod,
				&p.Container, &p.Node, &p.ImageName, &p.ImageRef, &p.RunningDigest, &p.ExpectedDigest, &p.Verdict,
				&p.Severity, &p.Reasons, &p.RegistryHost, &p.RegistryTrusted, &p.LastSeen, total)
			return p, err
		})
	if err != nil {
		return d, err
	}
	d.Placements, d.PlacementsTotal = placements.Items, placements.Total
	procs, err := collectPage(ctx, s, `
		SELECT a.executable_path, a.executable_sha256, min(a.first_seen), max(a.last_seen), sum(a.count)::bigint,
			ARRAY(SELECT DISTINCT x FROM exec_aggregates b, unnest(b.containers) x
				WHERE b.image_digest = $1 AND b.executable_path = a.executable_path
				  AND b.executable_sha256 = a.executable_sha256 ORDER BY x LIMIT 32),
			count(*) OVER ()
		FROM exec_aggregates a WHERE a.image_digest = $1
		GROUP BY a.executable_path, a.executable_sha256
		ORDER BY a.executable_path, a.executable_sha256 LIMIT $2`, args{digest, DetailLimit},
		func(r pgx.Rows, total *int) (ExecAggregate, error) {
			var e ExecAggregate
			err := r.Scan(&e.Path, &e.SHA256, &e.FirstSeen, &e.LastSeen, &e.Count, &e.Containers, total)
			return e, err
		})
	if err != nil {
		return d, err
	}
	d.Processes, d.ProcessesTotal = procs.Items, procs.Total
	files, err := collectPage(ctx, s, `
		SELECT a.file_path, min(a.first_seen), max(a.last_seen), sum(a.count)::bigint,
			ARRAY(SELECT DISTINCT x FROM file_aggregates b, unnest(b.containers) x
				WHERE b.image_digest = $1 AND b.file_path = a.file_path ORDER BY x LIMIT 32),
			count(*) OVER ()
		FROM file_aggregates a WHERE a.image_digest = $1
		GROUP BY a.file_path
		ORDER BY a.file_path LIMIT $2`, args{digest, DetailLimit},
		func(r pgx.Rows, total *int) (FileAggregate, error) {
			var f FileAggregate
			err := r.Scan(&f.Path, &f.FirstSeen, &f.LastSeen, &f.Count, &f.Containers, total)
			return f, err
		})
	if err != nil {
		return d, err
	}
	d.Files, d.FilesTotal = files.Items, files.Total
	return d, nil
}

// SensorStaleAfter is how old a sensor's last health record may be before the sensor counts as stale.
const SensorStaleAfter = 5 * time.Minute

// ClusterSummary is an enrolled cluster with what its collector and sensors report.
type ClusterSummary struct {
	UID, Name        string
	EnrolledAt       time.Time
	HeartbeatAt      *time.Time
	LastIngestAt     *time.Time
	CollectorVersion string
	Mode             string
	ReportedNodes    int // what the last heartbeat said
	Nodes            int // live node records
	SensorsReporting int
	SensorsStale     int
	EventsDropped    int64
}

// NodeInfo is a node with its sensor's health, if it has a sensor.
type NodeInfo struct {
	UID, Name string
	LastSeen  time.Time
	Sensor    *SensorInfo
}

// SensorInfo is the latest health record of a node's sensor.
type SensorInfo struct {
	EventsSeen, EventsDropped int64
	Kernel, ProgramStatus     string
	LastSeen                  time.Time
	Stale                     bool
}

// ClusterDetail is a cluster with its nodes.
type ClusterDetail struct {
	ClusterSummary
	NodeList []NodeInfo
}

const clusterSummarySQL = `
	SELECT c.uid, c.name, c.enrolled_at, c.heartbeat_at, c.last_ingest_at, c.collector_version, c.mode, c.node_count,
		(SELECT count(*) FROM nodes n WHERE n.cluster_id = c.id AND n.deleted_at IS NULL)::int,
		(SELECT count(*) FROM sensor_health h WHERE h.cluster_id = c.id AND h.last_seen >= $1)::int,
		(SELECT count(*) FROM sensor_health h WHERE h.cluster_id = c.id AND h.last_seen < $1)::int,
		(SELECT coalesce(sum(events_dropped), 0) FROM sensor_health h WHERE h.cluster_id = c.id)::bigint,
		count(*) OVER ()
	FROM clusters c`

func scanClusterSummary(r pgx.Rows, total *int) (ClusterSummary, error) {
	var c ClusterSummary
	err := r.Scan(&c.UID, &c.Name, &c.EnrolledAt, &c.HeartbeatAt, &c.LastIngestAt, &c.CollectorVersion, &c.Mode,
		&c.ReportedNodes, &c.Nodes, &c.SensorsReporting, &c.SensorsStale, &c.EventsDropped, total)
	return c, err
}

// ListClusters lists enrolled clusters by name.
func (s *Store) ListClusters(ctx context.Context, f Filter) (Page[ClusterSummary], error) {
	if f.Sort != "" && f.Sort != SortName {
		return Page[ClusterSummary]{}, fmt.Errorf("%w %q", ErrBadSort, f.Sort)
	}
	a := args{s.now().Add(-SensorStaleAfter)}
	return collectPage(ctx, s, clusterSummarySQL+" ORDER BY c.name, c.uid LIMIT "+a.add(f.Limit)+" OFFSET "+a.add(f.Offset), a, scanClusterSummary)
}

// GetCluster returns the cluster with this uid (or, failing that, name) and its live nodes.
func (s *Store) GetCluster(ctx context.Context, uidOrName string) (ClusterDetail, error) {
	staleBefore := s.now().Add(-SensorStaleAfter)
	page, err := collectPage(ctx, s, clusterSummarySQL+" WHERE c.uid = $2 OR c.name = $2 ORDER BY c.uid = $2 DESC LIMIT 1",
		args{staleBefore, uidOrName}, scanClusterSummary)
	if err != nil {
		return ClusterDetail{}, err
	}
	if len(page.Items) == 0 {
		return ClusterDetail{}, ErrNotFound
	}
	d := ClusterDetail{ClusterSummary: page.Items[0], NodeList: []NodeInfo{}}
	rows, err := s.pool.Query(ctx, `
		SELECT n.uid, n.name, n.last_seen, h.events_seen, h.events_dropped, h.kernel, h.program_status, h.last_seen
		FROM nodes n JOIN clusters c ON c.id = n.cluster_id
		LEFT JOIN sensor_health h ON h.cluster_id = n.cluster_id AND h.node_name = n.name
		WHERE c.uid = $1 AND n.deleted_at IS NULL ORDER BY n.name, n.uid`, d.UID)
	if err != nil {
		return d, classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n NodeInfo
		var seen, dropped *int64
		var kernel, status *string
		var hLast *time.Time
		if err := rows.Scan(&n.UID, &n.Name, &n.LastSeen, &seen, &dropped, &kernel, &status, &hLast); err != nil {
			return d, classify(err)
		}
		if hLast != nil {
			n.Sensor = &SensorInfo{EventsSeen: *seen, EventsDropped: *dropped, Kernel: *kernel, ProgramStatus: *status,
				LastSeen: *hLast, Stale: hLast.Before(staleBefore)}
		}
		d.NodeList = append(d.NodeList, n)
	}
	return d, classify(rows.Err())
}

// WorkloadSummary is a live workload with the images its containers run.
type WorkloadSummary struct {
	ClusterUID, ClusterName string
	UID, Kind, Name         string
	Namespace               string
	Pods, Containers        int
	Images                  []string
	Severity, Verdict       string
	LastSeen                time.Time
}

var workloadOrder = map[string]string{
	"":       "severity_rank DESC, pods DESC, namespace, name, uid",
	SortRisk: "severity_rank DESC, pods DESC, namespace, name, uid",
	SortName: "namespace, name, uid",
}

// ListWorkloads lists live workloads with their images, worst first by default.
func (s *Store) ListWorkloads(ctx context.Context, f Filter) (Page[WorkloadSummary], error) {
	order, ok := workloadOrder[f.Sort]
	if !ok {
		return Page[WorkloadSummary]{}, fmt.Errorf("%w %q", ErrBadSort, f.Sort)
	}
	var a args
	where := []string{"w.deleted_at IS NULL"}
	if f.Cluster != "" {
		p := a.add(f.Cluster)
		where = append(where, fmt.Sprintf("(c.uid = %s OR c.name = %s)", p, p))
	}
	if f.Namespace != "" {
		where = append(where, "w.namespace = "+a.add(f.Namespace))
	}
	sql := `WITH wl AS (
		SELECT c.uid AS cluster_uid, c.name AS cluster_name, w.uid, w.kind, w.name, w.namespace, w.last_seen,
			coalesce(k.pods, 0) AS pods, coalesce(k.containers, 0) AS containers, coalesce(k.images, '{}') AS images,
			coalesce(k.severity, '') AS severity, coalesce(k.severity_rank, 0) AS severity_rank,
			coalesce(k.verdict, '') AS verdict
		FROM workloads w JOIN clusters c ON c.id = w.cluster_id
		LEFT JOIN LATERAL (
			SELECT count(DISTINCT pod_uid)::int AS pods, count(*)::int AS containers,
				coalesce(array_agg(DISTINCT running_digest) FILTER (WHERE running_digest <> ''), '{}') AS images,
				(array_agg(severity ORDER BY severity_rank DESC))[1] AS severity, max(severity_rank) AS severity_rank,
				(array_agg(integrity ORDER BY verdict_rank DESC))[1] AS verdict
			FROM containers WHERE cluster_id = w.cluster_id AND workload_uid = w.uid AND deleted_at IS NULL
		) k ON true
		WHERE ` + strings.Join(where, " AND ") + `)
		SELECT cluster_uid, cluster_name, uid, kind, name, namespace, pods, containers, images, severity, verdict,
			last_seen, count(*) OVER () FROM wl`
	var post []string
	post = riskConditions(post, &a, f, "")
	if len(post) > 0 {
		sql += " WHERE " + strings.Join(post, " AND ")
	}
	sql += " ORDER BY " + order + " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset)
	return collectPage(ctx, s, sql, a, func(r pgx.Rows, total *int) (WorkloadSummary, error) {
		var w WorkloadSummary
		err := r.Scan(&w.ClusterUID, &w.ClusterName, &w.UID, &w.Kind, &w.Name, &w.Namespace, &w.Pods, &w.Containers,
			&w.Images, &w.Severity, &w.Verdict, &w.LastSeen, total)
		return w, err
	})
}

// Artifact is a registry artifact (reference and digest) seen running.
type Artifact struct {
	Ref, Digest, RegistryHost string
	FirstSeen, LastSeen       time.Time
	Severity, Verdict         string
}

var artifactOrder = map[string]string{
	"":           "last_seen DESC, ref, digest",
	SortLastSeen: "last_seen DESC, ref, digest",
	SortRef:      "ref, digest",
}

// ListArtifacts lists registry artifacts, most recently seen first by default.
func (s *Store) ListArtifacts(ctx context.Context, f Filter) (Page[Artifact], error) {
	order, ok := artifactOrder[f.Sort]
	if !ok {
		return Page[Artifact]{}, fmt.Errorf("%w %q", ErrBadSort, f.Sort)
	}
	var a args
	var where []string
	if f.Registry != "" {
		where = append(where, "r.registry_host = "+a.add(f.Registry))
	}
	where = riskConditions(where, &a, f, "i")
	if f.Cluster != "" || f.Namespace != "" {
		scope := []string{"k.running_digest = r.digest", "(k.image_ref = r.ref OR (k.image_ref = '' AND k.image_name = r.ref))", "k.deleted_at IS NULL"}
		if f.Cluster != "" {
			p := a.add(f.Cluster)
			scope = append(scope, fmt.Sprintf("k.cluster_id IN (SELECT id FROM clusters WHERE uid = %s OR name = %s)", p, p))
		}
		if f.Namespace != "" {
			scope = append(scope, "k.namespace = "+a.add(f.Namespace))
		}
		where = append(where, "EXISTS (SELECT 1 FROM containers k WHERE "+strings.Join(scope, " AND ")+")")
	}
	sql := `SELECT r.ref, r.digest, r.registry_host, r.first_seen, r.last_seen, coalesce(i.severity, ''),
		coalesce(i.verdict, ''), count(*) OVER () FROM image_refs r LEFT JOIN images i ON i.digest = r.digest`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + order + " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset)
	return collectPage(ctx, s, sql, a, func(r pgx.Rows, total *int) (Artifact, error) {
		var x Artifact
		err := r.Scan(&x.Ref, &x.Digest, &x.RegistryHost, &x.FirstSeen, &x.LastSeen, &x.Severity, &x.Verdict, total)
		return x, err
	})
}
