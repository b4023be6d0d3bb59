package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Runtime reachability of a vulnerability finding (docs/vulnerabilities.md).
const (
	ReachLoaded    = "loaded"     // a file of the package was executed or opened in a container of the image
	ReachNotLoaded = "not_loaded" // sensors watched a container of the image for the window and saw none
	ReachUnknown   = "unknown"    // no sensor watched the image's containers (Integrity mode), or not long enough
)

// Reachabilities lists the reachability values, for validation and docs.
var Reachabilities = []string{ReachLoaded, ReachNotLoaded, ReachUnknown}

// SBOM job states.
const (
	SBOMPending = "pending"
	SBOMBuilt   = "built"
	SBOMFailed  = "failed"
)

// SBOMCandidate is a running image whose SBOM is due: never tried, or failed and due for another try.
type SBOMCandidate struct {
	Digest   string
	Refs     []string // the references the image runs under: where to fetch it from
	Attempts int
}

// SBOMCandidates enqueues every running image without an SBOM job and returns up to limit jobs that are due,
// oldest due first.
func (s *Store) SBOMCandidates(ctx context.Context, limit int) ([]SBOMCandidate, error) {
	now := s.now()
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO sbom_jobs (digest, state, next_attempt_at, updated_at)
		SELECT i.digest, 'pending', $1, $1 FROM images i
		WHERE i.containers > 0 AND cardinality(i.refs) > 0
		  AND NOT EXISTS (SELECT 1 FROM sbom_jobs j WHERE j.digest = i.digest)
		ON CONFLICT DO NOTHING`, now); err != nil {
		return nil, classify(err)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT j.digest, i.refs, j.attempts FROM sbom_jobs j JOIN images i USING (digest)
		WHERE j.state <> 'built' AND j.next_attempt_at <= $1 AND i.containers > 0
		ORDER BY j.next_attempt_at, j.digest LIMIT $2`, now, limit)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SBOMCandidate, error) {
		var c SBOMCandidate
		err := r.Scan(&c.Digest, &c.Refs, &c.Attempts)
		return c, err
	})
	return out, classify(err)
}

// StoredSBOM is an SBOM as the store keeps it: a few columns to list and count by, and the document itself.
type StoredSBOM struct {
	Digest, Source, Format, Distro string
	Packages, Files                int
	Truncated                      bool
	Notes                          []string
	Document                       []byte // gzip-compressed JSON (vulnscan encodes and decodes it)
	CreatedAt                      time.Time
}

// PutSBOM keeps a digest's SBOM and marks its job built. An SBOM already kept is not replaced: the content of a
// digest never changes.
func (s *Store) PutSBOM(ctx context.Context, b StoredSBOM) error {
	now := s.now()
	return classify(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO sboms (digest, source, format, distro, packages, files, truncated, notes, document, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (digest) DO NOTHING`,
			b.Digest, b.Source, b.Format, b.Distro, b.Packages, b.Files, b.Truncated, nonNil(b.Notes), b.Document, b.CreatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO sbom_jobs (digest, state, attempts, next_attempt_at, updated_at) VALUES ($1, 'built', 1, $2, $2)
			ON CONFLICT (digest) DO UPDATE SET state = 'built', attempts = sbom_jobs.attempts + 1, last_error = '',
				updated_at = $2`, b.Digest, now)
		return err
	}))
}

// FailSBOM records a failed attempt at a digest's SBOM and when to try again.
func (s *Store) FailSBOM(ctx context.Context, digest, reason string, retryAt time.Time) error {
	now := s.now()
	_, err := s.pool.Exec(ctx, `
		INSERT INTO sbom_jobs (digest, state, attempts, last_error, next_attempt_at, updated_at)
		VALUES ($1, 'failed', 1, $2, $3, $4)
		ON CONFLICT (digest) DO UPDATE SET state = 'failed', attempts = sbom_jobs.attempts + 1,
			last_error = excluded.last_error, next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at`,
		digest, clipText(reason, 1000), retryAt, now)
	return classify(err)
}

// SBOMDocument returns a digest's kept SBOM document, or ErrNotFound.
func (s *Store) SBOMDocument(ctx context.Context, digest string) ([]byte, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, "SELECT document FROM sboms WHERE digest = $1", digest).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return doc, classify(err)
}

// SBOMCounts counts the SBOM jobs by state, for the progress metrics.
func (s *Store) SBOMCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, "SELECT state, count(*)::int FROM sbom_jobs GROUP BY state")
	if err != nil {
		return nil, classify(err)
	}
	counts := map[string]int{SBOMPending: 0, SBOMBuilt: 0, SBOMFailed: 0}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return nil, classify(err)
		}
		counts[st] = n
	}
	return counts, classify(rows.Err())
}

// DigestsToMatch returns up to limit digests whose SBOM is built but whose findings were not matched against
// the database version given (a new SBOM, or a database update).
func (s *Store) DigestsToMatch(ctx context.Context, version string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT digest FROM sbom_jobs WHERE state = 'built' AND matched_version <> $1
		ORDER BY updated_at, digest LIMIT $2`, version, limit)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, classify(err)
}

// Evidence is the first runtime event that made a finding loaded.
type Evidence struct {
	Kind        string    `json:"kind"`    // "exec" (the file was executed) or "open" (opened, e.g. a library)
	Path        string    `json:"path"`    // the file, as the sensor saw it
	Process     string    `json:"process"` // the executable that ran (exec) or opened it (open); "" if unknown
	ContainerID string    `json:"container_id"`
	At          time.Time `json:"at"`    // the first such event
	Count       int64     `json:"count"` // events on that file in the image so far
}

// VulnFinding is one vulnerability of one package in one image.
type VulnFinding struct {
	Digest       string
	ID           string
	PackageKey   string
	Package      string
	PackageType  string
	Installed    string
	Fixed        string
	Severity     string
	CVSS         float64
	CVSSVector   string
	Summary      string
	Aliases      []string
	Source       string
	Reachability string
	Evidence     *Evidence
	MatchedAt    time.Time
	Refs         []string // lists only: the image's references
}

// vulnSeverityRank orders finding severities as risk severities rank; "unknown" ranks lowest.
func vulnSeverityRank(sev string) int {
	switch sev {
	case "critical":
		return 4
	case "high":
		return 3
	case "medium":
		return 2
	case "low":
		return 1
	}
	return 0
}

// ReplaceFindings replaces a digest's findings with those of a match against database version. Reachability
// already decided for a finding that is matched again is kept (the events did not change with the database).
func (s *Store) ReplaceFindings(ctx context.Context, digest, version string, fs []VulnFinding) error {
	now := s.now()
	return classify(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS stage_vulnerability_findings
			(LIKE vulnerability_findings) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_vulnerability_findings"},
			[]string{"digest", "vuln_id", "package_key", "package", "package_type", "installed", "fixed", "severity",
				"severity_rank", "cvss", "cvss_vector", "summary", "aliases", "source", "reachability", "matched_at"},
			pgx.CopyFromSlice(len(fs), func(i int) ([]any, error) {
				f := fs[i]
				return []any{digest, f.ID, f.PackageKey, f.Package, f.PackageType, f.Installed, f.Fixed, f.Severity,
					int16(vulnSeverityRank(f.Severity)), float32(f.CVSS), f.CVSSVector, clipText(f.Summary, 2000),
					nonNil(f.Aliases), f.Source, ReachUnknown, now}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy findings: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM vulnerability_findings v WHERE v.digest = $1 AND NOT EXISTS (
			SELECT 1 FROM stage_vulnerability_findings n WHERE n.vuln_id = v.vuln_id AND n.package_key = v.package_key)`, digest); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO vulnerability_findings AS v SELECT * FROM stage_vulnerability_findings ORDER BY vuln_id, package_key
			ON CONFLICT (digest, vuln_id, package_key) DO UPDATE SET package = excluded.package,
				package_type = excluded.package_type, installed = excluded.installed, fixed = excluded.fixed,
				severity = excluded.severity, severity_rank = excluded.severity_rank, cvss = excluded.cvss,
				cvss_vector = excluded.cvss_vector, summary = excluded.summary, aliases = excluded.aliases,
				source = excluded.source, matched_at = excluded.matched_at`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sbom_jobs SET matched_version = $2, reach_evaluated_at = NULL WHERE digest = $1`,
			digest, version); err != nil {
			return err
		}
		return updateVulnSummary(ctx, tx, digest)
	}))
}

// updateVulnSummary rewrites an image's vulnerability counts and vuln_rank from its findings (migration 005
// says how risk_rank follows).
func updateVulnSummary(ctx context.Context, tx pgx.Tx, digest string) error {
	_, err := tx.Exec(ctx, `
		UPDATE images i SET vuln_total = v.total, vuln_critical = v.critical, vuln_high = v.high,
			vuln_fixable = v.fixable, vuln_loaded = v.loaded, vuln_rank = v.rank
		FROM (SELECT count(*)::int AS total,
				count(*) FILTER (WHERE severity_rank = 4)::int AS critical,
				count(*) FILTER (WHERE severity_rank = 3)::int AS high,
				count(*) FILTER (WHERE fixed <> '')::int AS fixable,
				count(*) FILTER (WHERE reachability = 'loaded')::int AS loaded,
				coalesce(max(CASE WHEN severity_rank = 4 AND reachability = 'loaded' THEN 4
					WHEN severity_rank = 3 AND reachability = 'loaded' THEN 3
					WHEN severity_rank = 4 THEN 2 WHEN severity_rank = 3 THEN 1 ELSE 0 END), 0)::smallint AS rank
			FROM vulnerability_findings WHERE digest = $1) v
		WHERE i.digest = $1`, digest)
	return err
}

// DigestsToEvaluate returns up to limit digests with findings whose reachability is due to be decided again:
// never decided, or decided before notAfter. Digests whose findings are all loaded are done for good.
func (s *Store) DigestsToEvaluate(ctx context.Context, notAfter time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT j.digest FROM sbom_jobs j
		WHERE j.state = 'built' AND j.matched_version <> ''
		  AND (j.reach_evaluated_at IS NULL OR j.reach_evaluated_at < $1)
		  AND EXISTS (SELECT 1 FROM vulnerability_findings v WHERE v.digest = j.digest AND v.reachability <> 'loaded')
		ORDER BY j.reach_evaluated_at NULLS FIRST, j.digest LIMIT $2`, notAfter, limit)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, classify(err)
}

// ObservedPath is one file the sensors saw a container of an image execute or open, with its first event.
type ObservedPath struct {
	Kind        string // "exec" or "open"
	Path        string
	Process     string
	ContainerID string
	First       time.Time
	Count       int64
}

// MaxObservedPaths bounds the paths read per image for the reachability join.
const MaxObservedPaths = 500_000

// ObservedPaths returns what the sensors saw the containers of an image execute and open, per path, summed over
// clusters: the aggregates ingest keeps, so nothing scans the raw events.
func (s *Store) ObservedPaths(ctx context.Context, digest string) ([]ObservedPath, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT 'exec', executable_path, executable_path, (array_agg(containers[1] ORDER BY first_seen))[1],
			min(first_seen), sum(count)::bigint
		FROM exec_aggregates WHERE image_digest = $1 GROUP BY executable_path
		UNION ALL
		SELECT 'open', file_path, (array_agg(first_process ORDER BY first_seen))[1],
			(array_agg(containers[1] ORDER BY first_seen))[1], min(first_seen), sum(count)::bigint
		FROM file_aggregates WHERE image_digest = $1 GROUP BY file_path
		LIMIT $2`, digest, MaxObservedPaths)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ObservedPath, error) {
		var o ObservedPath
		var container *string
		err := r.Scan(&o.Kind, &o.Path, &o.Process, &container, &o.First, &o.Count)
		if container != nil {
			o.ContainerID = *container
		}
		return o, err
	})
	return out, classify(err)
}

// Watch says how long sensors have watched the containers of an image.
type Watch struct {
	// Sensed: some container of the image ran on a node with a sensor (Impact mode).
	Sensed bool
	// Longest is the longest time one such container was watched: from the later of its first record and its
	// node's sensor's first report, to the earlier of its deletion (or now) and the sensor's last report.
	Longest time.Duration
}

// WatchOf returns how long sensors have watched the containers of an image, live ones and deleted ones alike.
func (s *Store) WatchOf(ctx context.Context, digest string) (Watch, error) {
	var w Watch
	var secs *float64
	err := s.pool.QueryRow(ctx, `
		SELECT count(h.node_name) > 0,
			max(extract(epoch FROM least(coalesce(k.deleted_at, $2), h.last_seen) - greatest(k.first_seen, coalesce(h.first_seen, h.last_seen))))::float8
		FROM containers k JOIN sensor_health h ON h.cluster_id = k.cluster_id AND h.node_name = k.node_name
		WHERE k.running_digest = $1`, digest, s.now()).Scan(&w.Sensed, &secs)
	if err != nil {
		return w, classify(err)
	}
	if secs != nil && *secs > 0 {
		w.Longest = time.Duration(*secs * float64(time.Second))
	}
	return w, nil
}

// Reach is a finding's reachability as the join decided it.
type Reach struct {
	ID, PackageKey string
	Reachability   string
	Evidence       *Evidence
}

// SetReachability records the reachability of a digest's findings and rewrites the image's summary. Findings
// the list does not name keep theirs; a loaded finding stays loaded with its first evidence.
func (s *Store) SetReachability(ctx context.Context, digest string, rs []Reach) error {
	now := s.now()
	return classify(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ids, keys, reach, evidence := make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs)), make([]*string, len(rs))
		for i, r := range rs {
			ids[i], keys[i], reach[i] = r.ID, r.PackageKey, r.Reachability
			if r.Evidence != nil {
				b, err := json.Marshal(r.Evidence)
				if err != nil {
					return err
				}
				e := string(b)
				evidence[i] = &e
			}
		}
		if _, err := tx.Exec(ctx, `
			UPDATE vulnerability_findings v SET reachability = u.r, evidence = u.e::jsonb
			FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, k, r, e)
			WHERE v.digest = $1 AND v.vuln_id = u.id AND v.package_key = u.k AND v.reachability <> 'loaded'`,
			digest, ids, keys, reach, evidence); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sbom_jobs SET reach_evaluated_at = $2 WHERE digest = $1`, digest, now); err != nil {
			return err
		}
		return updateVulnSummary(ctx, tx, digest)
	}))
}

// FindingKeys returns the (advisory, package key) pairs of a digest's findings that are not loaded yet.
func (s *Store) FindingKeys(ctx context.Context, digest string) ([]Reach, error) {
	rows, err := s.pool.Query(ctx, `SELECT vuln_id, package_key, reachability FROM vulnerability_findings
		WHERE digest = $1 AND reachability <> 'loaded'`, digest)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Reach, error) {
		var x Reach
		err := r.Scan(&x.ID, &x.PackageKey, &x.Reachability)
		return x, err
	})
	return out, classify(err)
}

// clipText cuts s to at most n bytes, dropping a UTF-8 sequence the cut split.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// VulnFilter narrows the vulnerability list. Empty fields do not filter; the API validates every field.
type VulnFilter struct {
	Severities     []string // any of these finding severities (critical, high, medium, low, unknown)
	Reachabilities []string // any of Reachabilities
	Fixable        *bool    // with (true) or without (false) a fixed version
	Cluster        string   // images running in this cluster (uid or name)
	Namespace      string   // images running in this namespace
	Digest         string   // one image
	Allowed        []string // when not nil, the reader's clusters: only images running in them (Filter.Allowed)
	Search         string   // a substring of the advisory id, an alias or the package name
	Limit, Offset  int
}

// Funnel counts the findings in a list's scope (its cluster, namespace and image) at each step of the
// prioritisation: all, then critical and high, then of those with a fix, then of those loaded at runtime.
type Funnel struct {
	All, CriticalHigh, Fixable, Loaded int
}

// vulnScope is the condition on findings v that puts them in the filter's scope: the images running now
// (or in the cluster or namespace asked), or one image whatever it runs.
func vulnScope(a *args, f VulnFilter) []string {
	var where []string
	if f.Digest != "" {
		where = append(where, "v.digest = "+a.add(f.Digest))
	}
	if f.Cluster == "" && f.Namespace == "" && f.Allowed == nil {
		if f.Digest == "" {
			where = append(where, "v.digest IN (SELECT digest FROM images WHERE containers > 0)")
		}
		return where
	}
	live := scopeConditions([]string{"k.deleted_at IS NULL"}, a, f.Cluster, f.Namespace, f.Allowed, "k")
	return append(where, "v.digest IN (SELECT k.running_digest FROM containers k WHERE "+strings.Join(live, " AND ")+")")
}

// vulnOrder ranks findings: loaded first, then by severity, then those not yet known to be unloaded, then by
// CVSS score.
const vulnOrder = "(v.reachability = 'loaded') DESC, v.severity_rank DESC, (v.reachability = 'unknown') DESC, v.cvss DESC, v.vuln_id, v.digest, v.package_key"

// ListVulnerabilities lists the findings of the images in the filter's scope, ranked (vulnOrder), with the
// funnel of the scope.
func (s *Store) ListVulnerabilities(ctx context.Context, f VulnFilter) (Page[VulnFinding], Funnel, error) {
	var a args
	scope := vulnScope(&a, f)
	var fun Funnel
	scopeCond := "true"
	if len(scope) > 0 {
		scopeCond = strings.Join(scope, " AND ")
	}
	err := s.pool.QueryRow(ctx, `SELECT count(*)::int,
			count(*) FILTER (WHERE v.severity_rank >= 3)::int,
			count(*) FILTER (WHERE v.severity_rank >= 3 AND v.fixed <> '')::int,
			count(*) FILTER (WHERE v.severity_rank >= 3 AND v.fixed <> '' AND v.reachability = 'loaded')::int
		FROM vulnerability_findings v WHERE `+scopeCond, a...).Scan(&fun.All, &fun.CriticalHigh, &fun.Fixable, &fun.Loaded)
	if err != nil {
		return Page[VulnFinding]{}, fun, classify(err)
	}
	where := scope
	if len(f.Severities) > 0 {
		where = append(where, "v.severity = ANY("+a.add(f.Severities)+")")
	}
	if len(f.Reachabilities) > 0 {
		where = append(where, "v.reachability = ANY("+a.add(f.Reachabilities)+")")
	}
	if f.Fixable != nil {
		where = append(where, map[bool]string{true: "v.fixed <> ''", false: "v.fixed = ''"}[*f.Fixable])
	}
	if f.Search != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(f.Search)) + "%"
		p := a.add(like)
		where = append(where, "(lower(v.vuln_id) LIKE "+p+" OR lower(v.package) LIKE "+p+" OR lower(array_to_string(v.aliases, ' ')) LIKE "+p+")")
	}
	cond := "true"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	sql := `SELECT ` + findingColumns + `, i.refs, count(*) OVER ()
		FROM vulnerability_findings v LEFT JOIN images i ON i.digest = v.digest WHERE ` + cond +
		" ORDER BY " + vulnOrder + " LIMIT " + a.add(f.Limit) + " OFFSET " + a.add(f.Offset)
	page, err := collectPage(ctx, s, sql, a, func(r pgx.Rows, total *int) (VulnFinding, error) {
		var v VulnFinding
		var refs []string
		err := r.Scan(append(v.targets(), &refs, total)...)
		v.Refs = nonNil(refs)
		return v, err
	})
	return page, fun, err
}

// findingColumns are the vulnerability_findings columns VulnFinding.targets scans, in its order.
const findingColumns = `v.digest, v.vuln_id, v.package_key, v.package, v.package_type, v.installed, v.fixed, v.severity,
	v.cvss, v.cvss_vector, v.summary, v.aliases, v.source, v.reachability, v.evidence, v.matched_at`

func (v *VulnFinding) targets() []any {
	return []any{&v.Digest, &v.ID, &v.PackageKey, &v.Package, &v.PackageType, &v.Installed, &v.Fixed, &v.Severity,
		(*float32Scan)(&v.CVSS), &v.CVSSVector, &v.Summary, &v.Aliases, &v.Source, &v.Reachability, &v.Evidence, &v.MatchedAt}
}

// float32Scan scans a real column into a float64 rounded to what the column holds (a CVSS score has one
// decimal; float32's 7.5 → 7.5 exactly, 9.8 → 9.800000190734863 without the rounding).
type float32Scan float64

func (f *float32Scan) Scan(src any) error {
	switch v := src.(type) {
	case float32:
		*f = float32Scan(float64(int64(float64(v)*10+0.5)) / 10)
	case float64:
		*f = float32Scan(v)
	case nil:
		*f = 0
	default:
		return fmt.Errorf("cvss: unexpected %T", src)
	}
	return nil
}

// SBOMStatus is where an image's SBOM stands.
type SBOMStatus struct {
	State           string // SBOMPending, SBOMBuilt, SBOMFailed, or "" when no job exists (not running, no reference)
	Source, Format  string
	Distro          string
	Packages, Files int
	Truncated       bool
	Notes           []string
	LastError       string
	Attempts        int
	MatchedVersion  string
	UpdatedAt       *time.Time
}

// GetSBOMStatus returns where a digest's SBOM stands (a zero State when there is no job for it).
func (s *Store) GetSBOMStatus(ctx context.Context, digest string) (SBOMStatus, error) {
	var st SBOMStatus
	var source, format, distro *string
	var packages, files *int
	var truncated *bool
	var notes []string
	var updated time.Time
	err := s.pool.QueryRow(ctx, `SELECT j.state, j.last_error, j.attempts, j.matched_version, j.updated_at,
			b.source, b.format, b.distro, b.packages, b.files, b.truncated, b.notes
		FROM sbom_jobs j LEFT JOIN sboms b USING (digest) WHERE j.digest = $1`, digest).Scan(
		&st.State, &st.LastError, &st.Attempts, &st.MatchedVersion, &updated, &source, &format, &distro, &packages, &files, &truncated, &notes)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, classify(err)
	}
	st.UpdatedAt = &updated
	if source != nil {
		st.Source, st.Format, st.Distro, st.Packages, st.Files, st.Truncated, st.Notes = *source, *format, *distro, *packages, *files, *truncated, notes
	}
	return st, nil
}
