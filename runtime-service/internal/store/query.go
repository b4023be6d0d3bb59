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
	Search     string   // images: a substring of one of the image's references, or a prefix of its digest
	Registry   string   // artifacts: a configured registry's name, or a registry host
	Usage      []string // artifacts: any of these usages (UsageInUse, …)
	// Since: artifacts not running now but seen in runtime after it are "recently_used", before it "unused".
	// Zero: SinceAge before now, or DefaultUnusedAfter.
	Since    time.Time
	SinceAge time.Duration
	Sort     string // one of the list's sort orders; "" is its default
	// Allowed, when not nil, is every cluster (uid or name) the reader may see: a restricted API token or user.
	// Images are then listed from the per-cluster rollups of those clusters only (events-only images, which
	// carry no cluster, are not listed), and counts and verdicts are those clusters'.
	Allowed []string
	// Digest: images, exactly this one (the summary a restricted reader's image page starts from).
	Digest string
	Limit  int
	Offset int
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
	// EventsOnly: no container record has named this digest; exec or file-open events did. The assessment and
	// blast radius are empty until one does.
	EventsOnly bool
	// Vulns counts the image's vulnerability findings (vulnerabilities.go).
	Vulns VulnCounts
	// Drift counts its drift findings with a severity (drift.go), in the reader's clusters.
	Drift DriftCounts
}

// VulnCounts summarises an image's vulnerability findings.
type VulnCounts struct {
	Total, Critical, High, Fixable, Loaded int
	// Rank: 4 a loaded critical, 3 a loaded high, 2 a critical, 1 a high, else 0 (migration 005).
	Rank int
}

// vulnColumns are the images columns VulnCounts is read from, in scanVulns' order.
const vulnColumns = "i.vuln_total, i.vuln_critical, i.vuln_high, i.vuln_fixable, i.vuln_loaded, i.vuln_rank"

func (v *VulnCounts) targets() []any {
	return []any{&v.Total, &v.Critical, &v.High, &v.Fixable, &v.Loaded, &v.Rank}
}

// driftColumns are the images columns DriftCounts is read from (migration 011), in driftScan's order.
const driftColumns = "i.drift_rank, i.drift_findings"

// scopedDrift are the drift columns of a scoped list: the image's findings in the clusters of the scope's rollup
// rows (table s where cond), since the images row counts every cluster's. A namespace scope counts its clusters'
// findings: aggregates carry no namespace.
func scopedDrift(table, cond, digest string) string {
	in := "f.image_digest = " + digest + " AND f.severity_rank > 1 AND f.cluster_id IN (SELECT s.cluster_id FROM " + table +
		" s WHERE " + cond + " AND s.digest = " + digest + ")"
	return "(SELECT coalesce(max(f.severity_rank), 0)::smallint FROM drift_findings f WHERE " + in + "), " +
		"(SELECT count(*)::int FROM drift_findings f WHERE " + in + ")"
}

// driftScan receives the drift columns of a row; driftCountsOf makes them DriftCounts.
type driftScan struct {
	rank     int16
	findings int
}

func (x *driftScan) targets() []any { return []any{&x.rank, &x.findings} }

// Image sort orders.
const (
	SortRisk     = "risk"
	SortLastSeen = "last_seen"
	SortDigest   = "digest"
	SortName     = "name"
	SortRef      = "ref"
)

var imageOrder = map[string]string{
	"":           "risk_rank DESC, vuln_rank DESC, clusters DESC, namespaces DESC, workloads DESC, pods DESC, digest",
	SortRisk:     "risk_rank DESC, vuln_rank DESC, clusters DESC, namespaces DESC, workloads DESC, pods DESC, digest",
	SortLastSeen: "last_seen DESC, digest",
	SortDigest:   "digest",
}

// args collects query parameters and hands out their placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// scopeConditions appends the conditions of a cluster and namespace scope on the cluster_id and namespace
// columns of the table alias. The cluster is a uid or a name. ANY(ARRAY(…)) is evaluated once, before the scan,
// so an index or primary key on cluster_id finds the cluster's rows; "IN (SELECT …)" made PostgreSQL read every
// cluster's rows and join.
//
// allowed, when not nil, is the reader's clusters (Filter.Allowed): the rows of other clusters are out of scope.
func scopeConditions(where []string, a *args, cluster, namespace string, allowed []string, alias string) []string {
	if cluster != "" {
		p := a.add(cluster)
		where = append(where, fmt.Sprintf("%s.cluster_id = ANY(ARRAY(SELECT id FROM clusters WHERE uid = %s OR name = %s))", alias, p, p))
	}
	if namespace != "" {
		where = append(where, alias+".namespace = "+a.add(namespace))
	}
	if allowed != nil {
		where = append(where, allowedSQL(alias+".cluster_id", a.add(allowed)))
	}
	return where
}

// allowedSQL is true when the cluster id column col is one of the clusters the text[] parameter param names
// (uids or names), or when param is NULL: a reader who may see every cluster.
func allowedSQL(col, param string) string {
	return fmt.Sprintf("(%[2]s::text[] IS NULL OR %[1]s = ANY(ARRAY(SELECT id FROM clusters WHERE uid = ANY(%[2]s::text[]) OR name = ANY(%[2]s::text[]))))", col, param)
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
	if f.Search != "" {
		// Matched on the images row whatever the scope: its refs are every reference the image runs under. The
		// pattern's own % and _ are literal.
		like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(f.Search))
		where = append(where, alias+"digest IN (SELECT m.digest FROM images m WHERE m.digest LIKE "+a.add(like+"%")+
			" OR lower(array_to_string(m.refs, ' ')) LIKE "+a.add("%"+like+"%")+")")
	}
	return where
}

// scopedRiskRank is images.risk_rank (migration 005) for a scope's rollup row under alias, with the images row
// as i: the scope's own severity raised by a loaded critical or high vulnerability of the image.
func scopedRiskRank(alias string) string {
	return "greatest(" + alias + ".severity_rank, CASE WHEN i.vuln_rank >= 3 THEN i.vuln_rank ELSE 0 END)"
}

// ErrBadSort: the sort order is not one the list offers.
var ErrBadSort = errors.New("unknown sort order")

// EventImagesListedFor is how long an image seen only through events (no container record has named its
// digest) stays in the list after its last event: an image that executes things is running, but without
// container records nothing says when it stops.
const EventImagesListedFor = time.Hour

// ListImages ranks the images running now: those with live containers, and those seen only through events
// within EventImagesListedFor. Without a cluster or namespace filter it reads the maintained assessment (one
// index scan); with one it combines the per-(image, cluster) or per-(image, cluster, namespace) rollups that
// ingest maintains (migrations/003_image_scopes.sql). Events-only images carry no scope and are not in a scoped
// list.
func (s *Store) ListImages(ctx context.Context, f Filter) (Page[ImageSummary], error) {
	order, ok := imageOrder[f.Sort]
	if !ok {
		return Page[ImageSummary]{}, fmt.Errorf("%w %q", ErrBadSort, f.Sort)
	}
	scoped := f.Allowed != nil || f.Digest != ""
	if f.Cluster == "" && f.Namespace == "" && !scoped {
		return s.listRankedImages(ctx, f, order)
	}
	if f.Cluster != "" && f.Sort != SortLastSeen && !scoped {
		var ids []int64
		rows, err := s.pool.Query(ctx, "SELECT id FROM clusters WHERE uid = $1 OR name = $1", f.Cluster)
		if err == nil {
			ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		}
		if err != nil {
			return Page[ImageSummary]{}, classify(err)
		}
		switch len(ids) {
		case 0:
			return Page[ImageSummary]{Items: []ImageSummary{}}, nil
		case 1: // the usual case: one rollup row per image, no aggregation
			return s.listOneScope(ctx, f, ids[0])
		}
	}
	var a args
	var where []string
	table, namespaces := "image_clusters", "sum(s.namespaces)::int"
	if f.Namespace != "" {
		table, namespaces = "image_namespaces", "count(*)::int"
		where = append(where, "s.namespace = "+a.add(f.Namespace))
	}
	where = scopeConditions(where, &a, f.Cluster, "", f.Allowed, "s") // the namespace is the table's, above
	if f.Digest != "" {
		where = append(where, "s.digest = "+a.add(f.Digest))
	}
	cond := strings.Join(where, " AND ")
	// The reasons, references and expected digests are merged for the page's rows only, after LIMIT.
	merged := func(col string) string {
		return "ARRAY(SELECT DISTINCT x FROM " + table + " s, unnest(s." + col + ") x WHERE " + cond +
			" AND s.digest = img.digest ORDER BY x)"
	}
	sql := `WITH agg AS (
			SELECT s.digest, (array_agg(s.severity ORDER BY s.severity_rank DESC))[1] AS severity,
				max(s.severity_rank) AS severity_rank,
				(array_agg(s.verdict ORDER BY s.verdict_rank DESC))[1] AS verdict,
				count(DISTINCT s.cluster_id)::int AS clusters, ` + namespaces + ` AS namespaces,
				sum(s.workloads)::int AS workloads, sum(s.pods)::int AS pods, sum(s.containers)::int AS containers
			FROM ` + table + ` s WHERE ` + cond + ` GROUP BY s.digest),
		img AS (SELECT agg.*, i.first_seen, i.last_seen, ` + vulnColumns + `, ` + scopedRiskRank("agg") + ` AS risk_rank
			FROM agg JOIN images i USING (digest))
		SELECT digest, severity, verdict, ` + merged("reasons") + `, ` + merged("refs") + `, ` + merged("expected_digests") + `,
			clusters, namespaces, workloads, pods, containers, first_seen, last_seen, false,
			vuln_total, vuln_critical, vuln_high, vuln_fixable, vuln_loaded, vuln_rank, ` + scopedDrift(table, cond, "img.digest") + `, total FROM (
		SELECT *, count(*) OVER () AS total FROM img`
	var post []string
	post = riskConditions(post, &a, f, "")
	if len(post) > 0 {
		sql += " WHERE " + strings.Join(post, " AND ")
	}
	sql += " ORDER BY " + order + " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset) + ") img ORDER BY " + order
	return collectPage(ctx, s, sql, a, func(r pgx.Rows, total *int) (ImageSummary, error) {
		var i ImageSummary
		var dx driftScan
		err := r.Scan(append([]any{&i.Digest, &i.Severity, &i.Verdict, &i.Reasons, &i.Refs, &i.ExpectedDigests, &i.Clusters,
			&i.Namespaces, &i.Workloads, &i.Pods, &i.Containers, &i.FirstSeen, &i.LastSeen, &i.EventsOnly},
			append(append(i.Vulns.targets(), dx.targets()...), total)...)...)
		i.Drift = driftCountsOf(dx.rank, dx.findings)
		return i, err
	})
}

// listOneScope lists the images of one cluster, or of one namespace in one cluster: one rollup row per image,
// so the page comes from the rollup's ranking index with LIMIT (as listRankedImages does from images) and the
// total from a separate count, with no aggregation over the scope. A ranking by last_seen (an images column)
// goes through the general query.
func (s *Store) listOneScope(ctx context.Context, f Filter, cluster int64) (Page[ImageSummary], error) {
	var a args
	where := []string{"s.cluster_id = " + a.add(cluster)}
	table, namespaces := "image_clusters", "s.namespaces"
	risk := scopedRiskRank("s") + " DESC, i.vuln_rank DESC, "
	order := risk + "s.namespaces DESC, s.workloads DESC, s.pods DESC, s.digest"
	if f.Namespace != "" {
		table, namespaces = "image_namespaces", "1"
		where = append(where, "s.namespace = "+a.add(f.Namespace))
		order = risk + "s.workloads DESC, s.pods DESC, s.digest"
	}
	if f.Sort == SortDigest {
		order = "s.digest"
	}
	where = riskConditions(where, &a, f, "s")
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" s WHERE "+cond, a...).Scan(&total); err != nil {
		return Page[ImageSummary]{}, classify(err)
	}
	sql := `SELECT s.digest, s.severity, s.verdict, s.reasons, s.refs, s.expected_digests, 1, ` + namespaces + `,
		s.workloads, s.pods, s.containers, i.first_seen, i.last_seen, ` + vulnColumns + `,
		(SELECT coalesce(max(f.severity_rank), 0)::smallint FROM drift_findings f WHERE f.image_digest = s.digest AND f.cluster_id = s.cluster_id AND f.severity_rank > 1),
		(SELECT count(*)::int FROM drift_findings f WHERE f.image_digest = s.digest AND f.cluster_id = s.cluster_id AND f.severity_rank > 1)
		FROM ` + table + ` s JOIN images i USING (digest) WHERE ` + cond +
		" ORDER BY " + order + " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset)
	page, err := collectPage(ctx, s, sql, a, func(r pgx.Rows, _ *int) (ImageSummary, error) {
		var i ImageSummary
		var dx driftScan
		err := r.Scan(append(append([]any{&i.Digest, &i.Severity, &i.Verdict, &i.Reasons, &i.Refs, &i.ExpectedDigests, &i.Clusters,
			&i.Namespaces, &i.Workloads, &i.Pods, &i.Containers, &i.FirstSeen, &i.LastSeen}, i.Vulns.targets()...), dx.targets()...)...)
		i.Drift = driftCountsOf(dx.rank, dx.findings)
		return i, err
	})
	page.Total = total
	return page, err
}

// listRankedImages reads the maintained assessment. The page comes from the images_by_risk index with LIMIT,
// and the total from a separate count: a count(*) OVER () would make Postgres read and sort every image first.
func (s *Store) listRankedImages(ctx context.Context, f Filter, order string) (Page[ImageSummary], error) {
	var a args
	// The index's predicate is "containers > 0 OR NOT state_seen"; this condition implies it, so the planner
	// uses the index.
	where := []string{"(containers > 0 OR (NOT state_seen AND last_seen >= " + a.add(s.now().Add(-EventImagesListedFor)) + "))"}
	where = riskConditions(where, &a, f, "")
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM images WHERE "+cond, a...).Scan(&total); err != nil {
		return Page[ImageSummary]{}, classify(err)
	}
	sql := `SELECT digest, severity, verdict, reasons, refs, expected_digests, clusters, namespaces, workloads, pods,
		containers, first_seen, last_seen, NOT state_seen, ` + vulnColumns + `, ` + driftColumns + ` FROM images i WHERE ` + cond +
		" ORDER BY " + order + " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset)
	page, err := collectPage(ctx, s, sql, a, func(r pgx.Rows, _ *int) (ImageSummary, error) {
		var i ImageSummary
		var dx driftScan
		err := r.Scan(append(append([]any{&i.Digest, &i.Severity, &i.Verdict, &i.Reasons, &i.Refs, &i.ExpectedDigests, &i.Clusters,
			&i.Namespaces, &i.Workloads, &i.Pods, &i.Containers, &i.FirstSeen, &i.LastSeen, &i.EventsOnly}, i.Vulns.targets()...), dx.targets()...)...)
		i.Drift = driftCountsOf(dx.rank, dx.findings)
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
	PullPolicy                 string
	LastSeen                   time.Time
	// Placement is the container's placement decision (allowed, violation, pending) with its rule, severity
	// and reason; Status "" when no rule selects it (placement.go).
	Placement PlacementDecision
}

// ExecAggregate is an executable an image's containers ran.
type ExecAggregate struct {
	Path, SHA256        string
	FirstSeen, LastSeen time.Time
	Count               int64
	Containers          []string
	// Drift is its drift finding; Verdict "" before it was judged (drift.go).
	Drift ProcessDrift
}

// ProcessDrift is the drift verdict on a process, with the severity the rules give it and the rule that allowed
// it.
type ProcessDrift struct{ Verdict, Severity, AllowedBy string }

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
	// Timeline is the image's verdict changes, newest first, at most TimelineLimit (timeline.go).
	Timeline []VerdictChange
	// Remediation is, per reference it runs under, what a fix needs (timeline.go).
	Remediation []Remediation
}

// DetailLimit bounds each evidence list of ImageDetail; the totals say how many there are.
const DetailLimit = 500

// GetImage returns the image with this digest, whether or not it still runs.
func (s *Store) GetImage(ctx context.Context, digest string) (ImageDetail, error) {
	return s.GetImageIn(ctx, digest, nil)
}

// GetImageIn is GetImage for a reader who may see only the clusters allowed names (nil: every cluster): the
// image is not found unless it runs in one of them, and its summary and evidence are those clusters'.
func (s *Store) GetImageIn(ctx context.Context, digest string, allowed []string) (ImageDetail, error) {
	var d ImageDetail
	if allowed != nil {
		page, err := s.ListImages(ctx, Filter{Allowed: allowed, Digest: digest, Limit: 1})
		if err != nil {
			return d, err
		}
		if len(page.Items) == 0 {
			return d, ErrNotFound
		}
		d.ImageSummary = page.Items[0]
		return d, s.imageEvidence(ctx, &d, digest, allowed)
	}
	i := &d.ImageSummary
	var dx driftScan
	err := s.pool.QueryRow(ctx, `SELECT digest, severity, verdict, reasons, refs, expected_digests, clusters,
		namespaces, workloads, pods, containers, first_seen, last_seen, NOT state_seen, `+vulnColumns+`, `+driftColumns+`
		FROM images i WHERE digest = $1`, digest).Scan(append(append([]any{
		&i.Digest, &i.Severity, &i.Verdict, &i.Reasons, &i.Refs, &i.ExpectedDigests, &i.Clusters,
		&i.Namespaces, &i.Workloads, &i.Pods, &i.Containers, &i.FirstSeen, &i.LastSeen, &i.EventsOnly}, i.Vulns.targets()...), dx.targets()...)...)
	i.Drift = driftCountsOf(dx.rank, dx.findings)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, classify(err)
	}
	return d, s.imageEvidence(ctx, &d, digest, nil)
}

// imageEvidence fills an image's placements, processes, files, timeline and remediation, from the clusters
// allowed names (nil: every cluster).
func (s *Store) imageEvidence(ctx context.Context, d *ImageDetail, digest string, allowed []string) error {
	placements, err := collectPage(ctx, s, `
		SELECT cl.uid, cl.name, k.namespace, k.workload_kind, k.workload_name, k.pod_name, k.name, k.node_name,
			k.image_name, k.image_ref, k.running_digest, k.expected_digest, k.integrity, k.severity, k.reasons,
			k.registry_host, k.registry_trusted, k.pull_policy, k.last_seen, coalesce(pd.status, ''), coalesce(pd.rule, ''),
			coalesce(pd.severity, ''), coalesce(pd.reason, ''), pd.since, count(*) OVER ()
		FROM containers k JOIN clusters cl ON cl.id = k.cluster_id
		LEFT JOIN placement_decisions pd ON pd.cluster_id = k.cluster_id AND pd.pod_uid = k.pod_uid AND pd.container = k.name
		WHERE k.running_digest = $1 AND k.deleted_at IS NULL AND `+allowedSQL("k.cluster_id", "$3")+`
		ORDER BY k.severity_rank DESC, cl.name, k.namespace, k.pod_name, k.name LIMIT $2`, args{digest, DetailLimit, allowed},
		func(r pgx.Rows, total *int) (Placement, error) {
			var p Placement
			var since *time.Time
			pd := &p.Placement
			err := r.Scan(&p.ClusterUID, &p.ClusterName, &p.Namespace, &p.WorkloadKind, &p.WorkloadName, &p.Pod,
				&p.Container, &p.Node, &p.ImageName, &p.ImageRef, &p.RunningDigest, &p.ExpectedDigest, &p.Verdict,
				&p.Severity, &p.Reasons, &p.RegistryHost, &p.RegistryTrusted, &p.PullPolicy, &p.LastSeen,
				&pd.Status, &pd.Rule, &pd.Severity, &pd.Reason, &since, total)
			if since != nil {
				pd.Since = *since
			}
			return p, err
		})
	if err != nil {
		return err
	}
	d.Placements, d.PlacementsTotal = placements.Items, placements.Total
	// Each process's drift verdict is its worst finding in the reader's clusters (the verdict is the same in
	// every cluster unless the rules changed in between; the severity then differs).
	procs, err := collectPage(ctx, s, `
		SELECT p.*, coalesce(d.verdict, ''), coalesce(d.severity, ''), coalesce(d.allowed_by, '') FROM (
		SELECT a.executable_path, a.executable_sha256, min(a.first_seen), max(a.last_seen), sum(a.count)::bigint,
			ARRAY(SELECT DISTINCT x FROM exec_aggregates b, unnest(b.containers) x
				WHERE b.image_digest = $1 AND b.executable_path = a.executable_path
				  AND b.executable_sha256 = a.executable_sha256 AND `+allowedSQL("b.cluster_id", "$3")+` ORDER BY x LIMIT 32),
			count(*) OVER ()
		FROM exec_aggregates a WHERE a.image_digest = $1 AND `+allowedSQL("a.cluster_id", "$3")+`
		GROUP BY a.executable_path, a.executable_sha256
		ORDER BY a.executable_path, a.executable_sha256 LIMIT $2) p (path, sha256, first_seen, last_seen, count, containers, total)
		LEFT JOIN LATERAL (SELECT f.verdict, f.severity, f.allowed_by FROM drift_findings f
			WHERE f.image_digest = $1 AND f.executable_path = p.path AND f.executable_sha256 = p.sha256
			  AND `+allowedSQL("f.cluster_id", "$3")+` ORDER BY f.severity_rank DESC, f.judged_at DESC LIMIT 1) d ON true
		ORDER BY p.path, p.sha256`, args{digest, DetailLimit, allowed},
		func(r pgx.Rows, total *int) (ExecAggregate, error) {
			var e ExecAggregate
			err := r.Scan(&e.Path, &e.SHA256, &e.FirstSeen, &e.LastSeen, &e.Count, &e.Containers, total,
				&e.Drift.Verdict, &e.Drift.Severity, &e.Drift.AllowedBy)
			return e, err
		})
	if err != nil {
		return err
	}
	d.Processes, d.ProcessesTotal = procs.Items, procs.Total
	files, err := collectPage(ctx, s, `
		SELECT a.file_path, min(a.first_seen), max(a.last_seen), sum(a.count)::bigint,
			ARRAY(SELECT DISTINCT x FROM file_aggregates b, unnest(b.containers) x
				WHERE b.image_digest = $1 AND b.file_path = a.file_path AND `+allowedSQL("b.cluster_id", "$3")+` ORDER BY x LIMIT 32),
			count(*) OVER ()
		FROM file_aggregates a WHERE a.image_digest = $1 AND `+allowedSQL("a.cluster_id", "$3")+`
		GROUP BY a.file_path
		ORDER BY a.file_path LIMIT $2`, args{digest, DetailLimit, allowed},
		func(r pgx.Rows, total *int) (FileAggregate, error) {
			var f FileAggregate
			err := r.Scan(&f.Path, &f.FirstSeen, &f.LastSeen, &f.Count, &f.Containers, total)
			return f, err
		})
	if err != nil {
		return err
	}
	d.Files, d.FilesTotal = files.Items, files.Total
	if d.Timeline, err = s.timeline(ctx, digest, TimelineLimit, allowed); err != nil {
		return err
	}
	d.Remediation, err = s.remediations(ctx, digest, allowed)
	return err
}

// SensorStaleAfter is how old a sensor's last health record may be before the sensor counts as stale, when its
// reporting interval is not known yet (one record so far) and no threshold is configured.
const SensorStaleAfter = 5 * time.Minute

// StaleIntervals: a sensor whose reporting interval is known (two records) is stale after this many intervals
// without a record.
const StaleIntervals = 3

// CollectorLiveWindow: the collectors whose last heartbeat is at most this much older than the cluster's newest
// one are its live collectors, from which its mode, node count and collector version derive. Relative to the
// newest heartbeat, not the clock, so a cluster whose collectors all went quiet keeps its last known view
// (heartbeat_at says how old). Five exporter heartbeat intervals at their default of a minute.
const CollectorLiveWindow = 5 * time.Minute

// ClusterSummary is an enrolled cluster with what its collectors and sensors report.
type ClusterSummary struct {
	UID, Name    string
	EnrolledAt   time.Time
	HeartbeatAt  *time.Time // the newest heartbeat of any of its collectors
	LastIngestAt *time.Time
	// CollectorVersion is the version of the live non-sensor collector (the controller) that heartbeat last, or
	// of the live collector that did if none.
	CollectorVersion string
	// Mode is impact when a live collector reports impact (a sensor), else integrity when one reports
	// integrity, else empty.
	Mode             string
	ReportedNodes    int // the most any live collector reported: the controller's; a sensor sees no inventory
	Nodes            int // live node records
	SensorsReporting int
	SensorsStale     int
	EventsDropped    int64
	// EntitledNodes is the cluster's node entitlement (Options.Entitlement); 0 is unlimited. NodesUsed is the
	// sensors that count against it (entitlement.go), which may exceed it: the entitlement was lowered, or a
	// stale sensor came back.
	EntitledNodes, NodesUsed int
	// SensorsRefused is the sensors the entitlement refused within RefusalWindow that have not enrolled since;
	// LastRefusedSensor and LastRefusedAt the newest of them ("" and nil when none).
	SensorsRefused    int
	LastRefusedSensor string
	LastRefusedAt     *time.Time
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
	OpenHook, HooksRefused    string // "" when the sensor does not say
	LastSeen                  time.Time
	// Interval is the time between the last two health records; zero until there are two.
	Interval time.Duration
	// EventsPerSecond and DropsPerSecond are the counters' rates between the last two records; nil until there
	// are two, or when a counter went down (the sensor restarted).
	EventsPerSecond, DropsPerSecond *float64
	Stale                           bool
}

// Programs lists the attachments program_status names ("exec:tp_btf/sched_process_exec,…").
func (s *SensorInfo) Programs() []string {
	out := []string{}
	for _, p := range strings.Split(s.ProgramStatus, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ClusterDetail is a cluster with its nodes and collectors.
type ClusterDetail struct {
	ClusterSummary
	NodeList   []NodeInfo
	Collectors []CollectorInfo
}

// CollectorInfo is one enrolled collector of a cluster and what its last heartbeat said.
type CollectorInfo struct {
	ID, Mode, Version string
	NodeCount         int
	EnrolledAt        time.Time
	HeartbeatAt       *time.Time
	// Live: it heartbeat within CollectorLiveWindow of the cluster's newest heartbeat, so it counts in the
	// cluster's view.
	Live bool
}

// staleSQL is true for a sensor_health row h that is stale: with a configured threshold ($2 > 0), older than it;
// else older than StaleIntervals of its own interval when known, else than SensorStaleAfter. $1 is now.
const staleSQL = `(h.last_seen < $1::timestamptz - CASE
		WHEN $2::bigint > 0 THEN make_interval(secs => $2::bigint / 1e9)
		WHEN h.prev_seen IS NOT NULL AND h.last_seen > h.prev_seen THEN 3 * (h.last_seen - h.prev_seen)
		ELSE make_interval(secs => 300) END)` // 3: StaleIntervals; 300 s: SensorStaleAfter

// clusterSummarySQL derives the cluster's heartbeat view from its live collectors at read time: a heartbeat
// writes its own collector row only.
const clusterSummarySQL = `
	SELECT c.uid, c.name, c.enrolled_at, d.heartbeat_at, c.last_ingest_at, coalesce(d.version, ''), d.mode,
		coalesce(d.node_count, 0),
		(SELECT count(*) FROM nodes n WHERE n.cluster_id = c.id AND n.deleted_at IS NULL)::int,
		(SELECT count(*) FROM sensor_health h WHERE h.cluster_id = c.id AND NOT ` + staleSQL + `)::int,
		(SELECT count(*) FROM sensor_health h WHERE h.cluster_id = c.id AND ` + staleSQL + `)::int,
		(SELECT coalesce(sum(events_dropped), 0) FROM sensor_health h WHERE h.cluster_id = c.id)::bigint,
		(SELECT count(*) FROM collectors k WHERE k.cluster_id = c.id AND ` + countedSensorSQL + `)::int,
		(SELECT count(*) FROM sensor_refusals r WHERE r.cluster_id = c.id AND r.last_at >= $1::timestamptz - interval '24 hours')::int, -- RefusalWindow
		coalesce(lr.collector_id, ''), lr.last_at,
		count(*) OVER ()
	FROM clusters c
	LEFT JOIN LATERAL (
		SELECT r.collector_id, r.last_at FROM sensor_refusals r
		WHERE r.cluster_id = c.id AND r.last_at >= $1::timestamptz - interval '24 hours' -- RefusalWindow
		ORDER BY r.last_at DESC, r.collector_id LIMIT 1
	) lr ON true
	CROSS JOIN LATERAL (
		SELECT max(k.heartbeat_at) AS heartbeat_at,
			CASE WHEN bool_or(k.mode = 'impact') THEN 'impact' WHEN bool_or(k.mode = 'integrity') THEN 'integrity' ELSE '' END AS mode,
			max(k.node_count) AS node_count,
			(array_agg(k.version ORDER BY k.mode = 'impact', k.heartbeat_at DESC))[1] AS version
		FROM (SELECT *, max(heartbeat_at) OVER () AS newest FROM collectors WHERE cluster_id = c.id) k
		WHERE k.heartbeat_at >= k.newest - interval '5 minutes' -- CollectorLiveWindow
	) d`

// scanClusterSummary reads a clusterSummarySQL row; the entitlement is the configuration's, not the database's.
func (s *Store) scanClusterSummary(r pgx.Rows, total *int) (ClusterSummary, error) {
	var c ClusterSummary
	err := r.Scan(&c.UID, &c.Name, &c.EnrolledAt, &c.HeartbeatAt, &c.LastIngestAt, &c.CollectorVersion, &c.Mode,
		&c.ReportedNodes, &c.Nodes, &c.SensorsReporting, &c.SensorsStale, &c.EventsDropped,
		&c.NodesUsed, &c.SensorsRefused, &c.LastRefusedSensor, &c.LastRefusedAt, total)
	c.EntitledNodes = s.opts.Entitlement.For(c.UID, c.Name)
	return c, err
}

// ListClusters lists enrolled clusters by name.
func (s *Store) ListClusters(ctx context.Context, f Filter) (Page[ClusterSummary], error) {
	if f.Sort != "" && f.Sort != SortName {
		return Page[ClusterSummary]{}, fmt.Errorf("%w %q", ErrBadSort, f.Sort)
	}
	a := args{s.now(), int64(s.opts.SensorStaleAfter)}
	where := " WHERE " + allowedSQL("c.id", a.add(f.Allowed))
	return collectPage(ctx, s, clusterSummarySQL+where+" ORDER BY c.name, c.uid LIMIT "+a.add(f.Limit)+" OFFSET "+a.add(f.Offset), a, s.scanClusterSummary)
}

// GetCluster returns the cluster with this uid (or, failing that, name) and its live nodes.
func (s *Store) GetCluster(ctx context.Context, uidOrName string) (ClusterDetail, error) {
	return s.GetClusterIn(ctx, uidOrName, nil)
}

// GetClusterIn is GetCluster for a reader who may see only the clusters allowed names (nil: every cluster):
// another cluster is not found.
func (s *Store) GetClusterIn(ctx context.Context, uidOrName string, allowed []string) (ClusterDetail, error) {
	a := args{s.now(), int64(s.opts.SensorStaleAfter)}
	page, err := collectPage(ctx, s, clusterSummarySQL+" WHERE (c.uid = $3 OR c.name = $3) AND "+allowedSQL("c.id", "$4")+
		" ORDER BY c.uid = $3 DESC LIMIT 1", append(a, uidOrName, allowed), s.scanClusterSummary)
	if err != nil {
		return ClusterDetail{}, err
	}
	if len(page.Items) == 0 {
		return ClusterDetail{}, ErrNotFound
	}
	d := ClusterDetail{ClusterSummary: page.Items[0], NodeList: []NodeInfo{}}
	rows, err := s.pool.Query(ctx, `
		SELECT n.uid, n.name, n.last_seen, h.events_seen, h.events_dropped, h.kernel, h.program_status, h.open_hook,
			h.hooks_refused, h.last_seen,
			h.prev_events_seen, h.prev_events_dropped, h.prev_seen, `+staleSQL+`
		FROM nodes n JOIN clusters c ON c.id = n.cluster_id
		LEFT JOIN sensor_health h ON h.cluster_id = n.cluster_id AND h.node_name = n.name
		WHERE c.uid = $3 AND n.deleted_at IS NULL ORDER BY n.name, n.uid`, append(a, d.UID)...)
	if err != nil {
		return d, classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n NodeInfo
		var seen, dropped, prevSeen, prevDropped *int64
		var kernel, status, openHook, refused *string
		var hLast, hPrev *time.Time
		var stale *bool
		if err := rows.Scan(&n.UID, &n.Name, &n.LastSeen, &seen, &dropped, &kernel, &status, &openHook, &refused, &hLast,
			&prevSeen, &prevDropped, &hPrev, &stale); err != nil {
			return d, classify(err)
		}
		if hLast != nil {
			si := &SensorInfo{EventsSeen: *seen, EventsDropped: *dropped, Kernel: *kernel, ProgramStatus: *status,
				OpenHook: *openHook, HooksRefused: *refused, LastSeen: *hLast, Stale: stale != nil && *stale}
			if hPrev != nil && hLast.After(*hPrev) {
				si.Interval = hLast.Sub(*hPrev)
				secs := si.Interval.Seconds()
				si.EventsPerSecond = rate(*seen, prevSeen, secs)
				si.DropsPerSecond = rate(*dropped, prevDropped, secs)
			}
			n.Sensor = si
		}
		d.NodeList = append(d.NodeList, n)
	}
	if err := rows.Err(); err != nil {
		return d, classify(err)
	}
	rows.Close()
	if d.Collectors, err = s.clusterCollectors(ctx, d.UID); err != nil {
		return d, err
	}
	return d, nil
}

// clusterCollectors lists a cluster's collectors by id.
func (s *Store) clusterCollectors(ctx context.Context, uid string) ([]CollectorInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT k.collector_id, k.mode, k.version, k.node_count, k.enrolled_at, k.heartbeat_at,
			coalesce(k.heartbeat_at >= max(k.heartbeat_at) OVER () - interval '5 minutes', false) -- CollectorLiveWindow
		FROM collectors k JOIN clusters c ON c.id = k.cluster_id WHERE c.uid = $1 ORDER BY k.collector_id`, uid)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CollectorInfo, error) {
		var k CollectorInfo
		err := r.Scan(&k.ID, &k.Mode, &k.Version, &k.NodeCount, &k.EnrolledAt, &k.HeartbeatAt, &k.Live)
		return k, err
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// rate is a counter's increase per second; nil without a previous value or when the counter went down.
func rate(cur int64, prev *int64, secs float64) *float64 {
	if prev == nil || cur < *prev || secs <= 0 {
		return nil
	}
	r := float64(cur-*prev) / secs
	return &r
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
	where := scopeConditions([]string{"w.deleted_at IS NULL"}, &a, f.Cluster, f.Namespace, f.Allowed, "w")
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
