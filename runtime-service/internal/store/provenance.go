package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/records"
)

// Signatures and build provenance (docs/provenance.md): the store keeps one check per running digest in
// provenance_checks (migration 010); the provenance checker (internal/provenance) writes them, the API reads them.

// ProvenanceCandidate is a running digest whose check is due: never checked, checked under another policy, or
// due again.
type ProvenanceCandidate struct {
	Digest   string
	Refs     []string
	Attempts int
}

// ProvenanceCandidates returns up to limit running digests (with references) whose check is due under the policy
// of fingerprint: never checked first, then the oldest due.
func (s *Store) ProvenanceCandidates(ctx context.Context, fingerprint string, limit int) ([]ProvenanceCandidate, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT i.digest, i.refs, CASE WHEN p.fingerprint = $2 THEN p.attempts ELSE 0 END
		FROM images i LEFT JOIN provenance_checks p USING (digest)
		WHERE i.containers > 0 AND cardinality(i.refs) > 0
		  AND (p.digest IS NULL OR p.fingerprint <> $2 OR p.next_check_at <= $1)
		ORDER BY p.next_check_at NULLS FIRST, i.digest LIMIT $3`, s.now(), fingerprint, limit)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProvenanceCandidate, error) {
		var c ProvenanceCandidate
		return c, r.Scan(&c.Digest, &c.Refs, &c.Attempts)
	})
	return out, classify(err)
}

// ProvenanceCheck is one digest's check as the checker writes it.
type ProvenanceCheck struct {
	Digest, Fingerprint string
	Status, Rule        string
	Findings            []string
	Severity            string // the rule's, when there are findings
	Result              []byte // the checker's result, JSON
	Next                time.Time
}

// PutProvenance keeps a digest's check.
func (s *Store) PutProvenance(ctx context.Context, c ProvenanceCheck) error {
	sev := ""
	if len(c.Findings) > 0 {
		sev = c.Severity
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO provenance_checks (digest, state, fingerprint, status, rule, findings, severity, severity_rank, result,
			error, attempts, checked_at, next_check_at)
		VALUES ($1, 'checked', $2, $3, $4, $5, $6, $7, $8, '', 0, $9, $10)
		ON CONFLICT (digest) DO UPDATE SET state = 'checked', fingerprint = excluded.fingerprint, status = excluded.status,
			rule = excluded.rule, findings = excluded.findings, severity = excluded.severity, severity_rank = excluded.severity_rank,
			result = excluded.result, error = '', attempts = 0, checked_at = excluded.checked_at, next_check_at = excluded.next_check_at`,
		c.Digest, c.Fingerprint, c.Status, c.Rule, nonNil(c.Findings), sev, records.SeverityRank(sev), c.Result, s.now(), c.Next)
	return classify(err)
}

// FailProvenance records that a digest could not be checked (its registry could not be read) and when to try
// again. A result from before is kept, and said to be stale by the error.
func (s *Store) FailProvenance(ctx context.Context, digest, fingerprint, reason string, next time.Time) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO provenance_checks (digest, state, fingerprint, error, attempts, checked_at, next_check_at)
		VALUES ($1, 'failed', $2, $3, 1, $4, $5)
		ON CONFLICT (digest) DO UPDATE SET state = 'failed', fingerprint = excluded.fingerprint, error = excluded.error,
			attempts = provenance_checks.attempts + 1, next_check_at = excluded.next_check_at`,
		digest, fingerprint, reason, s.now(), next)
	return classify(err)
}

// ProvenanceRecord is a digest's stored check, with the Artifactory build its registry's properties name.
type ProvenanceRecord struct {
	Digest, State, Status, Rule string
	Findings                    []string
	Severity, Error             string
	Attempts                    int
	Result                      []byte // nil before a first successful check
	CheckedAt, NextCheckAt      time.Time
	// BuildName and BuildNumber are the Artifactory build.name and build.number properties of the tags that hold
	// the digest (several values joined with ','), when the correlator read them.
	BuildName, BuildNumber string
	// Refs are the references the image runs under.
	Refs []string
}

const provenanceColumns = `p.digest, p.state, p.status, p.rule, p.findings, p.severity, p.error, p.attempts, p.result,
	p.checked_at, p.next_check_at, coalesce(b.name, ''), coalesce(b.number, ''), coalesce(i.refs, '{}')`

// provenanceFrom joins a check with its image and its Artifactory build properties.
const provenanceFrom = ` FROM provenance_checks p LEFT JOIN images i ON i.digest = p.digest
	LEFT JOIN LATERAL (
		SELECT string_agg(DISTINCT n, ',') AS name, string_agg(DISTINCT num, ',') AS number
		FROM registry_artifacts a JOIN artifact_properties pr USING (registry, repository, tag),
			jsonb_array_elements_text(coalesce(pr.properties -> 'build.name', '[]')) n,
			jsonb_array_elements_text(coalesce(pr.properties -> 'build.number', '[]')) num
		WHERE a.deleted_at IS NULL AND (a.digest = p.digest OR p.digest = ANY(a.manifests))) b ON true`

func scanProvenance(r interface{ Scan(...any) error }, total *int) (ProvenanceRecord, error) {
	var p ProvenanceRecord
	dst := []any{&p.Digest, &p.State, &p.Status, &p.Rule, &p.Findings, &p.Severity, &p.Error, &p.Attempts, &p.Result,
		&p.CheckedAt, &p.NextCheckAt, &p.BuildName, &p.BuildNumber, &p.Refs}
	if total != nil {
		dst = append(dst, total)
	}
	return p, r.Scan(dst...)
}

// GetProvenance returns a digest's check; ok is false when it has none (not checked yet, or no policy).
func (s *Store) GetProvenance(ctx context.Context, digest string) (ProvenanceRecord, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+provenanceColumns+provenanceFrom+` WHERE p.digest = $1`, digest)
	if err != nil {
		return ProvenanceRecord{}, false, classify(err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (ProvenanceRecord, error) { return scanProvenance(r, nil) })
	if errors.Is(err, pgx.ErrNoRows) {
		return ProvenanceRecord{}, false, nil
	}
	return p, err == nil, classify(err)
}

// ProvenanceFilter narrows ListProvenanceFindings.
type ProvenanceFilter struct {
	Filter        // Cluster, Namespace, Allowed, Severities, Limit, Offset
	Code   string // only digests with this finding
	Rule   string
}

// ListProvenanceFindings lists the running images in scope whose check has findings, worst first, then newest.
func (s *Store) ListProvenanceFindings(ctx context.Context, f ProvenanceFilter) (Page[ProvenanceRecord], error) {
	var a args
	where := []string{"p.status = 'finding'"}
	if f.Cluster == "" && f.Namespace == "" && f.Allowed == nil {
		where = append(where, "i.containers > 0")
	} else {
		live := scopeConditions([]string{"k.deleted_at IS NULL"}, &a, f.Cluster, f.Namespace, f.Allowed, "k")
		where = append(where, "p.digest IN (SELECT k.running_digest FROM containers k WHERE "+strings.Join(live, " AND ")+")")
	}
	if len(f.Severities) > 0 {
		where = append(where, "p.severity = ANY("+a.add(f.Severities)+")")
	}
	if f.Code != "" {
		where = append(where, a.add(f.Code)+" = ANY(p.findings)")
	}
	if f.Rule != "" {
		where = append(where, "p.rule = "+a.add(f.Rule))
	}
	sql := `SELECT ` + provenanceColumns + `, count(*) OVER ()` + provenanceFrom + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY p.severity_rank DESC, p.checked_at DESC, p.digest LIMIT ` + a.add(f.Limit) + ` OFFSET ` + a.add(f.Offset)
	return collectPage(ctx, s, sql, a, func(r pgx.Rows, total *int) (ProvenanceRecord, error) { return scanProvenance(r, total) })
}
