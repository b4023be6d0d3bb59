package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// TimelineLimit bounds the verdict changes ImageDetail carries.
const TimelineLimit = 100

// VerdictChange is one change of an image's verdict or severity in one cluster, under one reference.
type VerdictChange struct {
	Time                    time.Time
	ClusterUID, ClusterName string
	Ref                     string
	OldVerdict, OldSeverity *string // nil: the first assessment
	NewVerdict, NewSeverity string
	Reasons                 []string
}

// Timeline returns an image's verdict changes, newest first, at most limit.
func (s *Store) Timeline(ctx context.Context, digest string, limit int) ([]VerdictChange, error) {
	return s.timeline(ctx, digest, limit, nil)
}

// timeline is Timeline in the clusters allowed names (nil: every cluster).
func (s *Store) timeline(ctx context.Context, digest string, limit int, allowed []string) ([]VerdictChange, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT v.time, c.uid, c.name, v.ref, v.old_verdict, v.old_severity, v.new_verdict, v.new_severity, v.reasons
		FROM verdict_changes v JOIN clusters c ON c.id = v.cluster_id
		WHERE v.digest = $1 AND `+allowedSQL("v.cluster_id", "$3")+` ORDER BY v.time DESC, v.id DESC LIMIT $2`, digest, limit, allowed)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (VerdictChange, error) {
		var v VerdictChange
		err := r.Scan(&v.Time, &v.ClusterUID, &v.ClusterName, &v.Ref, &v.OldVerdict, &v.OldSeverity, &v.NewVerdict,
			&v.NewSeverity, &v.Reasons)
		return v, err
	})
	return out, classify(err)
}

// Remediation is what fixing one reference of an image takes: how its workloads pull it, what its tag points at
// now, and the digest-pinned references to use instead of the moving tag.
type Remediation struct {
	Ref          string
	Repository   string   // "host/path"
	Tag          string   // "" when the reference names no tag
	PullPolicies []string // the workloads' imagePullPolicy values
	// ExpectedDigests are what the integrity processor found the tag to hold (runtrust.image.expected_digest).
	ExpectedDigests []string
	// Registry, RegistryDigest and ListedAt: the configured registry that lists this tag and the digest it
	// pointed at when last listed; empty when no configured registry lists it.
	Registry       string
	RegistryDigest string
	ListedAt       *time.Time
	// PinnedRef pins the reference to what the tag points at now (the registry's listing, else the processor's
	// expected digest); RunningPinnedRef to what runs.
	PinnedRef        string
	RunningPinnedRef string
}

// remediations lists, per reference an image runs under in the clusters allowed names (nil: every cluster), the
// facts a fix needs.
func (s *Store) remediations(ctx context.Context, digest string, allowed []string) ([]Remediation, error) {
	rows, err := s.pool.Query(ctx, `
		WITH r AS (
			SELECT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END AS ref,
				array_agg(DISTINCT pull_policy ORDER BY pull_policy) FILTER (WHERE pull_policy <> '') AS policies,
				array_agg(DISTINCT expected_digest ORDER BY expected_digest) FILTER (WHERE expected_digest <> '') AS expected
			FROM containers WHERE running_digest = $1 AND deleted_at IS NULL AND (image_ref <> '' OR image_name <> '')
				AND `+allowedSQL("cluster_id", "$3")+`
			GROUP BY 1),
		rr AS (SELECT r.*, runtrust_image_repository(ref) AS repo,
			coalesce(substring(split_part(ref, '@', 1) from ':([^/:]*)$'), '') AS tag FROM r)
		SELECT rr.ref, rr.repo, rr.tag, coalesce(rr.policies, '{}'), coalesce(rr.expected, '{}'),
			coalesce(l.registry, ''), coalesce(l.digest, ''), l.last_listed
		FROM rr LEFT JOIN LATERAL (
			SELECT a.registry, a.digest, a.last_listed FROM registry_artifacts a JOIN registries g ON g.name = a.registry
			WHERE g.configured AND a.deleted_at IS NULL AND rr.tag <> '' AND a.tag = rr.tag
			  AND runtrust_repository_matches(rr.repo, a.image)
			ORDER BY a.last_listed DESC, a.registry LIMIT 1) l ON true
		ORDER BY rr.ref LIMIT $2`, digest, DetailLimit, allowed)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Remediation, error) {
		var x Remediation
		err := r.Scan(&x.Ref, &x.Repository, &x.Tag, &x.PullPolicies, &x.ExpectedDigests, &x.Registry,
			&x.RegistryDigest, &x.ListedAt)
		if err != nil {
			return x, err
		}
		target := x.RegistryDigest
		if target == "" && len(x.ExpectedDigests) == 1 {
			target = x.ExpectedDigests[0]
		}
		if target != "" {
			x.PinnedRef = x.Repository + "@" + target
		}
		x.RunningPinnedRef = x.Repository + "@" + digest
		return x, nil
	})
	if out == nil {
		out = []Remediation{}
	}
	return out, classify(err)
}
