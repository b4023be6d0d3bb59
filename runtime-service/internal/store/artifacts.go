package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Artifact usages.
const (
	UsageInUse        = "in_use"        // its digest runs now, under its repository
	UsageRecentlyUsed = "recently_used" // not running now, seen in runtime after the cutoff
	UsageUnused       = "unused"        // last seen in runtime before the cutoff
	UsageNeverSeen    = "never_seen"    // listed by a registry, never seen running
)

// DefaultUnusedAfter is how long an artifact may go unseen in runtime before it counts as unused.
const DefaultUnusedAfter = 30 * 24 * time.Hour

// Artifact sort orders (besides SortLastSeen and SortRef).
const (
	SortRegistry = "registry"
	SortOldest   = "oldest"
)

// Artifact is a registry artifact: a tag a configured registry lists, or a reference seen running that no
// configured registry lists (Registry nil), with where its digest runs and when it was last seen running.
type Artifact struct {
	Registry     *string
	RegistryHost string
	Repository   string
	Image        string // the repository as the registry's docker API names it (Artifactory: without the key)
	Tag          string
	Ref          string
	Digest       string
	Manifests    []string
	Usage        string
	FirstListed  *time.Time
	LastListed   *time.Time
	FirstSeen    *time.Time // in runtime
	LastSeen     *time.Time // in runtime
	Severity     string
	Verdict      string
	Clusters     int
	Namespaces   int
	Workloads    int
	Pods         int
	Nodes        int
	Where        []ArtifactPlacement
}

// ArtifactPlacement is one workload (or bare pod's namespace) an artifact runs in.
type ArtifactPlacement struct {
	ClusterUID, ClusterName    string
	Namespace                  string
	WorkloadKind, WorkloadName string
	Pods                       int
}

// WhereLimit bounds the placements listed per artifact; the counts say how far it reaches.
const WhereLimit = 20

var artifactOrder = map[string]string{
	"":           "last_seen DESC NULLS LAST, ref, digest, registry NULLS FIRST",
	SortLastSeen: "last_seen DESC NULLS LAST, ref, digest, registry NULLS FIRST",
	SortRef:      "ref, digest, registry NULLS FIRST",
	SortRegistry: "registry NULLS LAST, repository, tag, ref, digest",
	SortOldest:   "last_seen ASC NULLS FIRST, ref, digest, registry NULLS FIRST",
}

// artifactsSQL builds the artifacts query: every listed tag of a configured registry, plus every reference seen
// running that no listed tag accounts for; each with its live blast radius (within the cluster/namespace scope
// if given), when it was last seen running, and its usage.
func (s *Store) artifactsSQL(f Filter, paged bool) (string, args, error) {
	order, ok := artifactOrder[f.Sort]
	if !ok {
		return "", nil, fmt.Errorf("%w %q", ErrBadSort, f.Sort)
	}
	since := f.Since
	switch {
	case since.IsZero() && f.SinceAge > 0:
		since = s.now().Add(-f.SinceAge)
	case since.IsZero():
		since = s.now().Add(-DefaultUnusedAfter)
	}
	var a args
	pSince := a.add(since)
	scope := scopeConditions([]string{"k.deleted_at IS NULL", "k.running_digest <> ''"}, &a, f.Cluster, f.Namespace, f.Allowed, "k")
	sql := `WITH listed AS (
			SELECT r.name AS registry, r.host AS registry_host, x.repository, x.image, x.tag, x.digest, x.manifests,
				x.first_listed, x.last_listed
			FROM registry_artifacts x JOIN registries r ON r.name = x.registry
			WHERE r.configured AND x.deleted_at IS NULL),
		ld AS (SELECT l.registry, l.repository, l.tag, l.image, d FROM listed l, unnest(l.digest || l.manifests) d),
		live AS (
			SELECT k.running_digest AS d, CASE WHEN k.image_ref <> '' THEN k.image_ref ELSE k.image_name END AS ref,
				runtrust_image_repository(CASE WHEN k.image_ref <> '' THEN k.image_ref ELSE k.image_name END) AS path,
				k.cluster_id, k.namespace, k.workload_uid, k.pod_uid, k.node_name, k.severity, k.severity_rank,
				k.integrity, k.verdict_rank
			FROM containers k WHERE ` + strings.Join(scope, " AND ") + `),
		refs AS (SELECT ref, digest, runtrust_image_repository(ref) AS path, first_seen, last_seen FROM image_refs),
		lrun AS (
			SELECT ld.registry, ld.repository, ld.tag, ` + blastRadius + `
			FROM ld JOIN live ON live.d = ld.d AND runtrust_repository_matches(live.path, ld.image)
			GROUP BY 1, 2, 3),
		lseen AS (
			SELECT ld.registry, ld.repository, ld.tag, min(refs.first_seen) AS first_seen, max(refs.last_seen) AS last_seen
			FROM ld JOIN refs ON refs.digest = ld.d AND runtrust_repository_matches(refs.path, ld.image)
			GROUP BY 1, 2, 3),
		unlisted AS (
			SELECT refs.* FROM refs WHERE NOT EXISTS (
				SELECT 1 FROM ld WHERE ld.d = refs.digest AND runtrust_repository_matches(refs.path, ld.image))),
		urun AS (
			SELECT u.ref, u.digest, ` + blastRadius + `
			FROM unlisted u JOIN live ON live.d = u.digest AND live.ref = u.ref
			GROUP BY 1, 2),
		arts AS (
			SELECT l.registry, l.registry_host, l.repository, l.image, l.tag,
				l.registry_host || '/' || l.repository || ':' || l.tag AS ref, l.digest, l.manifests,
				l.first_listed, l.last_listed, s.first_seen, s.last_seen,
				coalesce(u.severity, '') AS severity, coalesce(u.verdict, '') AS verdict,
				coalesce(u.clusters, 0) AS clusters, coalesce(u.namespaces, 0) AS namespaces,
				coalesce(u.workloads, 0) AS workloads, coalesce(u.pods, 0) AS pods, coalesce(u.nodes, 0) AS nodes
			FROM listed l LEFT JOIN lrun u USING (registry, repository, tag) LEFT JOIN lseen s USING (registry, repository, tag)
			UNION ALL
			SELECT NULL, split_part(x.path, '/', 1), substr(x.path, length(split_part(x.path, '/', 1)) + 2),
				substr(x.path, length(split_part(x.path, '/', 1)) + 2),
				coalesce(substring(split_part(x.ref, '@', 1) from ':([^/:]*)$'), ''), x.ref, x.digest, '{}',
				NULL, NULL, x.first_seen, x.last_seen,
				coalesce(u.severity, ''), coalesce(u.verdict, ''), coalesce(u.clusters, 0), coalesce(u.namespaces, 0),
				coalesce(u.workloads, 0), coalesce(u.pods, 0), coalesce(u.nodes, 0)
			FROM unlisted x LEFT JOIN urun u USING (ref, digest)),
		final AS (
			SELECT arts.*, CASE WHEN clusters > 0 THEN 'in_use' WHEN last_seen IS NULL THEN 'never_seen'
				WHEN last_seen >= ` + pSince + ` THEN 'recently_used' ELSE 'unused' END AS usage
			FROM arts)
		SELECT registry, registry_host, repository, image, tag, ref, digest, manifests, usage, first_listed, last_listed,
			first_seen, last_seen, severity, verdict, clusters, namespaces, workloads, pods, nodes`
	if paged {
		sql += ", count(*) OVER ()"
	}
	sql += " FROM final"
	var where []string
	if f.Cluster != "" || f.Namespace != "" || f.Allowed != nil { // a restricted reader sees what runs in its clusters
		where = append(where, "clusters > 0")
	}
	if f.Registry != "" {
		p := a.add(f.Registry)
		where = append(where, fmt.Sprintf("(registry = %s OR registry_host = %s)", p, p))
	}
	if len(f.Usage) > 0 {
		where = append(where, "usage = ANY("+a.add(f.Usage)+")")
	}
	where = riskConditions(where, &a, f, "")
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + order
	if paged {
		sql += " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset)
	}
	return sql, a, nil
}

// blastRadius aggregates the live containers of an artifact (the live CTE).
const blastRadius = `(array_agg(live.severity ORDER BY live.severity_rank DESC))[1] AS severity,
				(array_agg(live.integrity ORDER BY live.verdict_rank DESC))[1] AS verdict,
				count(DISTINCT live.cluster_id)::int AS clusters,
				count(DISTINCT (live.cluster_id, live.namespace))::int AS namespaces,
				count(DISTINCT (live.cluster_id, live.workload_uid)) FILTER (WHERE live.workload_uid <> '')::int AS workloads,
				count(DISTINCT (live.cluster_id, live.pod_uid))::int AS pods,
				count(DISTINCT (live.cluster_id, live.node_name)) FILTER (WHERE live.node_name <> '')::int AS nodes`

func scanArtifact(r pgx.Rows, x *Artifact, total *int) error {
	dst := []any{&x.Registry, &x.RegistryHost, &x.Repository, &x.Image, &x.Tag, &x.Ref, &x.Digest, &x.Manifests, &x.Usage,
		&x.FirstListed, &x.LastListed, &x.FirstSeen, &x.LastSeen, &x.Severity, &x.Verdict, &x.Clusters, &x.Namespaces,
		&x.Workloads, &x.Pods, &x.Nodes}
	if total != nil {
		dst = append(dst, total)
	}
	return r.Scan(dst...)
}

// withoutJIT runs fn in a read-only transaction with Postgres's JIT compiler off. The artifacts query joins
// several CTEs whose row estimates (unnest, the repository match) come out high, which pushes its cost over
// jit_above_cost: at 10,000 artifacts JIT then spent 4.5 s compiling a query that runs in 0.3 s.
func (s *Store) withoutJIT(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
			return err
		}
		return fn(tx)
	})
}

// ListArtifacts lists registry artifacts with their usage, most recently seen running first by default, each
// with up to WhereLimit placements (cluster, namespace, workload).
func (s *Store) ListArtifacts(ctx context.Context, f Filter) (Page[Artifact], error) {
	page := Page[Artifact]{Items: []Artifact{}}
	err := s.eachArtifact(ctx, f, true, &page.Total, func(x *Artifact) error {
		page.Items = append(page.Items, *x)
		return nil
	})
	if err != nil {
		return Page[Artifact]{}, err
	}
	if len(page.Items) == 0 {
		return page, nil
	}
	if err := s.artifactPlacements(ctx, f, page.Items); err != nil {
		return Page[Artifact]{}, err
	}
	return page, nil
}

// EachArtifact calls fn for every artifact the filter selects (ignoring paging), in order, streaming from one
// query: the CSV export. Placements are not filled in. An error from fn stops the query and is returned as is.
func (s *Store) EachArtifact(ctx context.Context, f Filter, fn func(*Artifact) error) error {
	return s.eachArtifact(ctx, f, false, nil, fn)
}

// eachArtifact runs the artifacts query (one page of it when paged) and calls fn for each row; total, if not
// nil, receives the size of the whole list.
func (s *Store) eachArtifact(ctx context.Context, f Filter, paged bool, total *int, fn func(*Artifact) error) error {
	sql, a, err := s.artifactsSQL(f, paged)
	if err != nil {
		return err
	}
	var fnErr error
	err = s.withoutJIT(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var x Artifact
			if err := scanArtifact(rows, &x, total); err != nil {
				return err
			}
			if fnErr = fn(&x); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	return classify(err)
}

// artifactPlacements fills in where each running artifact of a page runs: its workloads, by cluster and
// namespace, at most WhereLimit each.
func (s *Store) artifactPlacements(ctx context.Context, f Filter, items []Artifact) error {
	var idx []int32
	var digests, paths []string
	var exact []bool
	for i := range items {
		x := &items[i]
		x.Where = []ArtifactPlacement{}
		if x.Clusters == 0 {
			continue
		}
		if x.Registry == nil {
			idx, digests, paths, exact = append(idx, int32(i)), append(digests, x.Digest), append(paths, x.Ref), append(exact, true)
			continue
		}
		for _, d := range append([]string{x.Digest}, x.Manifests...) {
			idx, digests, paths, exact = append(idx, int32(i)), append(digests, d), append(paths, x.Image), append(exact, false)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	a := args{idx, digests, paths, exact}
	scope := scopeConditions([]string{"k.deleted_at IS NULL"}, &a, f.Cluster, f.Namespace, f.Allowed, "k")
	rows, err := s.pool.Query(ctx, `
		WITH p AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::bool[]) AS p(i, d, path, exact)),
		w AS (
			SELECT p.i, c.uid, c.name, k.namespace, k.workload_kind, k.workload_name, count(DISTINCT k.pod_uid)::int AS pods
			FROM p JOIN containers k ON k.running_digest = p.d
			JOIN clusters c ON c.id = k.cluster_id
			WHERE `+strings.Join(scope, " AND ")+` AND CASE WHEN p.exact
				THEN (CASE WHEN k.image_ref <> '' THEN k.image_ref ELSE k.image_name END) = p.path
				ELSE runtrust_repository_matches(runtrust_image_repository(CASE WHEN k.image_ref <> '' THEN k.image_ref ELSE k.image_name END), p.path) END
			GROUP BY 1, 2, 3, 4, 5, 6),
		ranked AS (SELECT w.*, row_number() OVER (PARTITION BY i ORDER BY name, uid, namespace, workload_kind, workload_name) AS n FROM w)
		SELECT i, uid, name, namespace, workload_kind, workload_name, pods FROM ranked WHERE n <= `+fmt.Sprint(WhereLimit)+`
		ORDER BY i, n`, a...)
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int32
		var p ArtifactPlacement
		if err := rows.Scan(&i, &p.ClusterUID, &p.ClusterName, &p.Namespace, &p.WorkloadKind, &p.WorkloadName, &p.Pods); err != nil {
			return classify(err)
		}
		items[i].Where = append(items[i].Where, p)
	}
	return classify(rows.Err())
}
