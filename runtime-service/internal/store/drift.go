package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/records"
)

// Exact drift (docs/drift.md): the store keeps one layer index per running digest in drift_indexes and one
// verdict per exec aggregate in drift_findings (migration 011); the drift checker (internal/driftcheck) writes
// them, the API reads them.

// DriftIndexCandidate is a running digest whose containers executed something and that has no index yet, or
// whose last build failed and is due again.
type DriftIndexCandidate struct {
	Digest   string
	Refs     []string
	Attempts int
}

// DriftIndexCandidates returns up to limit digests to index: never tried first, then the oldest failure due.
func (s *Store) DriftIndexCandidates(ctx context.Context, limit int) ([]DriftIndexCandidate, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT i.digest, i.refs, coalesce(x.attempts, 0)
		FROM images i LEFT JOIN drift_indexes x USING (digest)
		WHERE i.containers > 0 AND cardinality(i.refs) > 0
		  AND (x.digest IS NULL OR (x.state = 'failed' AND x.next_try_at <= $1))
		  AND EXISTS (SELECT 1 FROM exec_aggregates a WHERE a.image_digest = i.digest)
		ORDER BY x.next_try_at NULLS FIRST, i.digest LIMIT $2`, s.now(), limit)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DriftIndexCandidate, error) {
		var c DriftIndexCandidate
		return c, r.Scan(&c.Digest, &c.Refs, &c.Attempts)
	})
	return out, classify(err)
}

// DriftIndex is a built index as the checker writes it.
type DriftIndex struct {
	Digest    string
	Manifest  string // the platform manifest read, when Digest is an image index
	Encoded   []byte // drift.Encode
	Files     int
	Truncated bool
	Notes     []string
	Bytes     int64
}

// PutDriftIndex keeps a digest's built index (for good: layers do not change under a digest).
func (s *Store) PutDriftIndex(ctx context.Context, x DriftIndex) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO drift_indexes (digest, state, index, manifest, files, truncated, notes, bytes, error, attempts, built_at, next_try_at)
		VALUES ($1, 'built', $2, $3, $4, $5, $6, $7, '', 0, $8, NULL)
		ON CONFLICT (digest) DO UPDATE SET state = 'built', index = excluded.index, manifest = excluded.manifest,
			files = excluded.files, truncated = excluded.truncated, notes = excluded.notes, bytes = excluded.bytes,
			error = '', attempts = 0, built_at = excluded.built_at, next_try_at = NULL`,
		x.Digest, x.Encoded, x.Manifest, x.Files, x.Truncated, nonNil(x.Notes), x.Bytes, s.now())
	return classify(err)
}

// FailDriftIndex records that a digest's index could not be built and when to try again.
func (s *Store) FailDriftIndex(ctx context.Context, digest, reason string, next time.Time) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO drift_indexes (digest, state, error, attempts, built_at, next_try_at)
		VALUES ($1, 'failed', $2, 1, $3, $4)
		ON CONFLICT (digest) DO UPDATE SET state = 'failed', error = excluded.error,
			attempts = drift_indexes.attempts + 1, built_at = excluded.built_at, next_try_at = excluded.next_try_at`,
		digest, reason, s.now(), next)
	return classify(err)
}

// DriftIndexRecord is a digest's index as the API shows it (without the index itself).
type DriftIndexRecord struct {
	Digest, State, Manifest string
	Files                   int
	Truncated               bool
	Notes                   []string
	Bytes                   int64
	Error                   string
	Attempts                int
	BuiltAt                 time.Time  // when built, or when the last attempt failed
	NextTryAt               *time.Time // failed only
}

// GetDriftIndex returns a digest's index record; ok is false when none was built or tried yet.
func (s *Store) GetDriftIndex(ctx context.Context, digest string) (DriftIndexRecord, bool, error) {
	var x DriftIndexRecord
	err := s.pool.QueryRow(ctx, `SELECT digest, state, manifest, files, truncated, notes, bytes, error, attempts, built_at, next_try_at
		FROM drift_indexes WHERE digest = $1`, digest).Scan(&x.Digest, &x.State, &x.Manifest, &x.Files, &x.Truncated, &x.Notes,
		&x.Bytes, &x.Error, &x.Attempts, &x.BuiltAt, &x.NextTryAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return x, false, nil
	}
	return x, err == nil, classify(err)
}

// LoadDriftIndex returns a built index's stored form and whether a bound cut it.
func (s *Store) LoadDriftIndex(ctx context.Context, digest string) (encoded []byte, truncated bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT index, truncated FROM drift_indexes WHERE digest = $1 AND state = 'built'`, digest).
		Scan(&encoded, &truncated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, ErrNotFound
	}
	return encoded, truncated, classify(err)
}

// DriftAggregate is an exec aggregate due to be judged: its image has a built index, and it was never judged,
// judged under other rules, or seen again since.
type DriftAggregate struct {
	Digest              string
	ClusterID           int64
	Path, SHA256        string
	FirstSeen, LastSeen time.Time
	Refs                []string // the image's references
}

// DriftDue returns up to limit aggregates due under the rules of fingerprint, grouped by image. It reads every
// exec aggregate of an indexed image against its finding (a hash join, no index needed).
func (s *Store) DriftDue(ctx context.Context, fingerprint string, limit int) ([]DriftAggregate, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT a.image_digest, a.cluster_id, a.executable_path, a.executable_sha256, a.first_seen, a.last_seen, coalesce(i.refs, '{}')
		FROM exec_aggregates a JOIN drift_indexes x ON x.digest = a.image_digest AND x.state = 'built'
		LEFT JOIN images i ON i.digest = a.image_digest
		LEFT JOIN drift_findings f USING (image_digest, executable_path, executable_sha256, cluster_id)
		WHERE f.image_digest IS NULL OR f.fingerprint <> $1 OR f.last_seen < a.last_seen
		ORDER BY a.image_digest LIMIT $2`, fingerprint, limit)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DriftAggregate, error) {
		var a DriftAggregate
		return a, r.Scan(&a.Digest, &a.ClusterID, &a.Path, &a.SHA256, &a.FirstSeen, &a.LastSeen, &a.Refs)
	})
	return out, classify(err)
}

// DriftFinding is one judged aggregate as the checker writes it.
type DriftFinding struct {
	DriftAggregate
	Verdict, Severity, AllowedBy string
	Repositories                 []string
	Fingerprint                  string
}

// PutDriftFindings upserts findings and rewrites the drift summary (drift_rank, drift_findings) of their images,
// in one transaction.
func (s *Store) PutDriftFindings(ctx context.Context, fs []DriftFinding) error {
	if len(fs) == 0 {
		return nil
	}
	n := len(fs)
	digests, paths, shas, verdicts, sevs, allowed, fps := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	clusters, ranks := make([]int64, n), make([]int16, n)
	first, last := make([]time.Time, n), make([]time.Time, n)
	// Repositories are text[] per row; unnest cannot take a ragged 2-D array, so they travel joined by a newline,
	// which no image reference holds.
	repos := make([]string, n)
	touched := map[string]bool{}
	for i, f := range fs {
		digests[i], clusters[i], paths[i], shas[i] = f.Digest, f.ClusterID, f.Path, f.SHA256
		verdicts[i], sevs[i], ranks[i], allowed[i], fps[i] = f.Verdict, f.Severity, SeverityRank(f.Severity), f.AllowedBy, f.Fingerprint
		first[i], last[i], repos[i] = f.FirstSeen, f.LastSeen, strings.Join(f.Repositories, "\n")
		touched[f.Digest] = true
	}
	images := make([]string, 0, len(touched))
	for d := range touched {
		images = append(images, d)
	}
	return classify(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO drift_findings (image_digest, cluster_id, executable_path, executable_sha256, verdict, severity,
				severity_rank, allowed_by, repositories, fingerprint, first_seen, last_seen, judged_at)
			SELECT d, c, p, h, v, s, r, a, CASE WHEN rs = '' THEN '{}' ELSE string_to_array(rs, E'\n') END, fp, fs, ls, $13
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::smallint[], $8::text[],
				$9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[]) AS u(d, c, p, h, v, s, r, a, rs, fp, fs, ls)
			WHERE EXISTS (SELECT 1 FROM clusters WHERE id = c)
			ON CONFLICT (image_digest, executable_path, executable_sha256, cluster_id) DO UPDATE SET
				verdict = excluded.verdict, severity = excluded.severity, severity_rank = excluded.severity_rank,
				allowed_by = excluded.allowed_by, repositories = excluded.repositories, fingerprint = excluded.fingerprint,
				first_seen = excluded.first_seen, last_seen = excluded.last_seen, judged_at = excluded.judged_at`,
			digests, clusters, paths, shas, verdicts, sevs, ranks, allowed, repos, fps, first, last, s.now()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			UPDATE images i SET drift_rank = v.rank, drift_findings = v.findings
			FROM (SELECT d.digest, coalesce(max(f.severity_rank) FILTER (WHERE f.severity_rank > 1), 0)::smallint AS rank,
					count(f.image_digest) FILTER (WHERE f.severity_rank > 1)::int AS findings
				FROM unnest($1::text[]) AS d(digest) LEFT JOIN drift_findings f ON f.image_digest = d.digest
				GROUP BY d.digest) v
			WHERE i.digest = v.digest AND (i.drift_rank, i.drift_findings) IS DISTINCT FROM (v.rank, v.findings)`, images)
		return err
	}))
}

// DriftRecord is a stored finding with its cluster.
type DriftRecord struct {
	Digest                       string
	ClusterUID, ClusterName      string
	Path, SHA256                 string
	Verdict, Severity, AllowedBy string
	Repositories                 []string
	FirstSeen, LastSeen          time.Time
	JudgedAt                     time.Time
}

// DriftFilter narrows ListDriftFindings.
type DriftFilter struct {
	Filter            // Cluster, Allowed, Severities, Digest, Limit, Offset
	Verdicts []string // only these drift verdicts
	// WithAllowed lists allowed drift and in_image too; without it only drift with a severity above none is.
	WithAllowed bool
}

// ListDriftFindings lists the drift findings in scope, worst first, then the most recently seen.
func (s *Store) ListDriftFindings(ctx context.Context, f DriftFilter) (Page[DriftRecord], error) {
	var a args
	var where []string
	if !f.WithAllowed {
		where = append(where, "f.severity_rank > 1")
	}
	where = scopeConditions(where, &a, f.Cluster, "", f.Allowed, "f")
	if len(f.Severities) > 0 {
		where = append(where, "f.severity = ANY("+a.add(f.Severities)+")")
	}
	if len(f.Verdicts) > 0 {
		where = append(where, "f.verdict = ANY("+a.add(f.Verdicts)+")")
	}
	if f.Digest != "" {
		where = append(where, "f.image_digest = "+a.add(f.Digest))
	}
	if len(where) == 0 {
		where = append(where, "true")
	}
	sql := `SELECT f.image_digest, cl.uid, cl.name, f.executable_path, f.executable_sha256, f.verdict, f.severity, f.allowed_by,
			f.repositories, f.first_seen, f.last_seen, f.judged_at, count(*) OVER ()
		FROM drift_findings f JOIN clusters cl ON cl.id = f.cluster_id WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY f.severity_rank DESC, f.last_seen DESC, f.image_digest, f.executable_path, f.executable_sha256, cl.uid
		LIMIT ` + a.add(f.Limit) + ` OFFSET ` + a.add(f.Offset)
	return collectPage(ctx, s, sql, a, func(r pgx.Rows, total *int) (DriftRecord, error) {
		var d DriftRecord
		err := r.Scan(&d.Digest, &d.ClusterUID, &d.ClusterName, &d.Path, &d.SHA256, &d.Verdict, &d.Severity, &d.AllowedBy,
			&d.Repositories, &d.FirstSeen, &d.LastSeen, &d.JudgedAt, total)
		return d, err
	})
}

// DriftCounts summarise an image's drift findings (those with a severity above none).
type DriftCounts struct {
	Findings int
	Severity string // the worst; "" without findings
}

func driftCountsOf(rank int16, findings int) DriftCounts {
	d := DriftCounts{Findings: findings}
	if rank > 0 {
		d.Severity = records.Severities[rank-1]
	}
	return d
}
