package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RegistryConfig is what the store keeps of a configured registry.
type RegistryConfig struct {
	Name, Kind, URL string
	Host            string // host[:port] that image references name it by
	Feedback        bool
}

// Registry statuses.
const (
	RegistryPending = "pending" // not listed yet
	RegistryOK      = "ok"      // the last listing succeeded
	RegistryPartial = "partial" // the last listing missed some repositories; the rest is current
	RegistryError   = "error"   // the last listing failed; the listing before it is kept
)

// RegistryStatus is a configured registry with the outcome of its last listing.
type RegistryStatus struct {
	RegistryConfig
	Status        string
	Error         string
	LastRefreshAt *time.Time
	LastSuccessAt *time.Time
	LastDuration  time.Duration
	Repositories  int
	Tags          int
	Artifacts     int // tags listed now (not deleted)
	InUse         int // of those, the ones whose digest runs now
}

// ConfigureRegistries records the configured registries: new ones are added, changed ones updated, and the
// ones no longer configured are kept but hidden (configured = false), with their listing.
func (s *Store) ConfigureRegistries(ctx context.Context, regs []RegistryConfig) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		names := make([]string, 0, len(regs))
		for _, r := range regs {
			names = append(names, r.Name)
			if _, err := tx.Exec(ctx, `
				INSERT INTO registries (name, kind, url, host, feedback) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, host = excluded.host,
					feedback = excluded.feedback, configured = true`, r.Name, r.Kind, r.URL, r.Host, r.Feedback); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "UPDATE registries SET configured = false WHERE NOT (name = ANY($1))", names)
		return err
	})
	return classify(err)
}

// ListedTag is one tag a registry listed, with the digest it resolved to.
type ListedTag struct {
	Repository, Tag string
	Image           string // the repository as its docker API names it; "" means Repository
	Digest          string
	MediaType       string
	Manifests       []string // an index's platform manifests
}

// Listing is the outcome of one registry listing.
type Listing struct {
	Tags []ListedTag
	// Repositories counts the repositories listed.
	Repositories int
	// CatalogComplete: the catalog was read to its end, so a repository missing from it is gone.
	CatalogComplete bool
	// Failed are the repositories whose tags could not be listed (or resolved) completely: their stored tags
	// are neither refreshed nor marked deleted.
	Failed map[string]bool
	// Err is set when the listing failed as a whole (registry down, refused): nothing is changed but the
	// status.
	Err      error
	Started  time.Time
	Duration time.Duration
}

// RecordListing stores a registry's listing: tags listed are upserted (first/last listed), tags of a repository
// listed completely that are no longer there are marked deleted, and the registry's status is updated. A listing
// with Err changes only the status, so the last good listing stays.
func (s *Store) RecordListing(ctx context.Context, registry string, l Listing) error {
	at := l.Started.UTC()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		status, msg := RegistryOK, ""
		switch {
		case l.Err != nil:
			status, msg = RegistryError, l.Err.Error()
		case len(l.Failed) > 0:
			status, msg = RegistryPartial, fmt.Sprintf("%d repositories could not be listed", len(l.Failed))
		}
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		if l.Err != nil {
			_, err := tx.Exec(ctx, `UPDATE registries SET status = $2, error = $3, last_refresh_at = $4,
				last_duration = $5 WHERE name = $1`, registry, status, msg, at, l.Duration.Seconds())
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE stage_listing (repository text, image text, tag text, digest text,
			media_type text, manifests text[]) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_listing"}, []string{"repository", "image", "tag", "digest", "media_type", "manifests"},
			pgx.CopyFromSlice(len(l.Tags), func(i int) ([]any, error) {
				t := &l.Tags[i]
				image := t.Image
				if image == "" {
					image = t.Repository
				}
				return []any{t.Repository, image, t.Tag, t.Digest, t.MediaType, nonNil(t.Manifests)}, nil
			})); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO registry_artifacts AS a (registry, repository, image, tag, digest, media_type, manifests, first_listed, last_listed)
			SELECT DISTINCT ON (repository, tag) $1, repository, image, tag, digest, media_type, manifests, $2, $2
			FROM stage_listing ORDER BY repository, tag
			ON CONFLICT (registry, repository, tag) DO UPDATE SET digest = excluded.digest, image = excluded.image,
				media_type = excluded.media_type, manifests = excluded.manifests, last_listed = excluded.last_listed,
				deleted_at = NULL,
				first_listed = CASE WHEN a.deleted_at IS NOT NULL THEN excluded.first_listed ELSE a.first_listed END`,
			registry, at); err != nil {
			return err
		}
		failed := make([]string, 0, len(l.Failed))
		for r := range l.Failed {
			failed = append(failed, r)
		}
		// A tag is gone when its repository was listed and the tag was not in it, or when the catalog was read
		// completely and its repository was not in it at all.
		if _, err := tx.Exec(ctx, `
			UPDATE registry_artifacts a SET deleted_at = $2
			WHERE a.registry = $1 AND a.deleted_at IS NULL AND a.last_listed < $2 AND NOT (a.repository = ANY($3))
			  AND ($4 OR a.repository IN (SELECT repository FROM stage_listing))`,
			registry, at, failed, l.CatalogComplete); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE registries SET status = $2, error = $3, last_refresh_at = $4, last_success_at = $4,
			last_duration = $5, repositories = $6, tags = $7 WHERE name = $1`,
			registry, status, msg, at, l.Duration.Seconds(), l.Repositories, len(l.Tags))
		return err
	})
	if err != nil {
		return classify(fmt.Errorf("store: record listing of %s: %w", registry, err))
	}
	return nil
}

// ListRegistries returns the configured registries by name, with the outcome of their last listing.
func (s *Store) ListRegistries(ctx context.Context) ([]RegistryStatus, error) {
	var out []RegistryStatus
	err := s.withoutJIT(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = s.listRegistries(ctx, tx)
		return err
	})
	if out == nil {
		out = []RegistryStatus{}
	}
	return out, classify(err)
}

func (s *Store) listRegistries(ctx context.Context, tx pgx.Tx) ([]RegistryStatus, error) {
	rows, err := tx.Query(ctx, `
		WITH live AS (
			SELECT DISTINCT running_digest AS digest,
				runtrust_image_repository(CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END) AS path
			FROM containers WHERE deleted_at IS NULL AND running_digest <> ''),
		listed AS (
			SELECT a.registry, a.repository, a.tag, a.image, d FROM registry_artifacts a, unnest(a.digest || a.manifests) d
			WHERE a.deleted_at IS NULL),
		used AS (
			SELECT registry, count(DISTINCT (repository, tag))::int AS n FROM listed
			JOIN live ON live.digest = listed.d AND runtrust_repository_matches(live.path, listed.image)
			GROUP BY registry)
		SELECT r.name, r.kind, r.url, r.host, r.feedback, r.status, r.error, r.last_refresh_at, r.last_success_at, r.last_duration,
			r.repositories, r.tags,
			(SELECT count(*) FROM registry_artifacts a WHERE a.registry = r.name AND a.deleted_at IS NULL)::int,
			coalesce((SELECT n FROM used WHERE used.registry = r.name), 0)
		FROM registries r WHERE r.configured ORDER BY r.name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RegistryStatus, error) {
		var x RegistryStatus
		var secs float64
		err := r.Scan(&x.Name, &x.Kind, &x.URL, &x.Host, &x.Feedback, &x.Status, &x.Error, &x.LastRefreshAt, &x.LastSuccessAt,
			&secs, &x.Repositories, &x.Tags, &x.Artifacts, &x.InUse)
		x.LastDuration = time.Duration(secs * float64(time.Second))
		return x, err
	})
}

// InUseArtifact is a listed tag whose digest runs now, with where: what feedback writes back to the registry.
type InUseArtifact struct {
	Repository, Tag, Digest string
	LastSeen                time.Time
	Clusters                []string // names
	Nodes                   int
}

// InUseArtifacts lists the tags of registry whose digest (or one of whose platform manifests) runs now in a
// repository that matches, by repository and tag.
func (s *Store) InUseArtifacts(ctx context.Context, registry string) ([]InUseArtifact, error) {
	rows, err := s.pool.Query(ctx, `
		WITH a AS (
			SELECT a.repository, a.image, a.tag, a.digest, d FROM registry_artifacts a, unnest(a.digest || a.manifests) d
			WHERE a.registry = $1 AND a.deleted_at IS NULL)
		SELECT a.repository, a.tag, a.digest, max(k.last_seen), array_agg(DISTINCT c.name ORDER BY c.name),
			count(DISTINCT (k.cluster_id, k.node_name))::int
		FROM a JOIN containers k ON k.running_digest = a.d AND k.deleted_at IS NULL
			AND runtrust_repository_matches(runtrust_image_repository(CASE WHEN k.image_ref <> '' THEN k.image_ref ELSE k.image_name END), a.image)
		JOIN clusters c ON c.id = k.cluster_id
		GROUP BY a.repository, a.tag, a.digest ORDER BY a.repository, a.tag`, registry)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InUseArtifact, error) {
		var x InUseArtifact
		err := r.Scan(&x.Repository, &x.Tag, &x.Digest, &x.LastSeen, &x.Clusters, &x.Nodes)
		return x, err
	})
	return out, classify(err)
}
