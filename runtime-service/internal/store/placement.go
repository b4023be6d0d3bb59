package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
)

// Placement policy (docs/placement.md): the store keeps each live container's placement decision in
// placement_decisions (migration 009). The decisions of a (cluster, digest) are rewritten in the ingest
// transaction that changed its containers (applyParts), under the images rows' locks recomputeImages takes, and
// those of every digest by EvaluatePlacement (at start, when the policy is loaded, and for a digest whose labels
// arrived), which takes the same locks in the same order: one writer per digest at a time, each reading the
// containers committed before it.

// Placement is the placement policy in force (nil: none).
func (s *Store) Placement() *placement.Policy { return s.placement.Load() }

// SetPlacement puts p in force (nil: none) for the decisions made from now on; the caller then calls
// EvaluatePlacement(ctx, nil) to decide every live container again. Decisions stay consistent meanwhile: a
// transaction reads the policy only once it holds its digests' images rows, and EvaluatePlacement takes
// each digest's rows after the swap, so it rewrites whatever an ingest decided under the old policy.
func (s *Store) SetPlacement(p *placement.Policy) { s.placement.Store(p) }

// placementChunk is how many digests one EvaluatePlacement transaction takes.
const placementChunk = 200

// EvaluatePlacement decides again the placement of every live container of digests (nil: of every digest),
// with the loaded policy; without one (or with no rules) it removes every decision.
func (s *Store) EvaluatePlacement(ctx context.Context, digests []string) error {
	if s.Placement().Empty() {
		if digests == nil {
			_, err := s.pool.Exec(ctx, "DELETE FROM placement_decisions")
			return classify(err)
		}
		_, err := s.pool.Exec(ctx, "DELETE FROM placement_decisions WHERE digest = ANY($1)", digests)
		return classify(err)
	}
	if digests == nil {
		rows, err := s.pool.Query(ctx, `SELECT running_digest FROM containers WHERE deleted_at IS NULL AND running_digest <> ''
			UNION SELECT digest FROM placement_decisions ORDER BY 1`)
		if err != nil {
			return classify(err)
		}
		if digests, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return classify(err)
		}
	}
	digests = slices.Clone(digests)
	sort.Strings(digests)
	digests = slices.Compact(digests)
	for len(digests) > 0 {
		n := min(len(digests), placementChunk)
		chunk := digests[:n]
		digests = digests[n:]
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT 1 FROM images WHERE digest = ANY($1) ORDER BY digest FOR UPDATE", chunk); err != nil {
				return fmt.Errorf("lock images: %w", err)
			}
			return s.decidePlacement(ctx, tx, nil, chunk)
		})
		if err != nil {
			return classify(fmt.Errorf("store: evaluate placement: %w", err))
		}
	}
	return nil
}

// decidePlacement rewrites the decisions of the live containers of digests, of one cluster (nil: every
// cluster), in tx. The caller holds the digests' images rows.
func (s *Store) decidePlacement(ctx context.Context, tx pgx.Tx, cluster *int64, digests []string) error {
	pol := s.Placement()
	if pol.Empty() || len(digests) == 0 {
		return nil
	}
	arts, err := artifactLabels(ctx, tx, digests)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `
		SELECT k.cluster_id, c.name, c.uid, k.pod_uid, k.name, k.running_digest, k.namespace, k.pod_name,
			k.workload_kind, k.workload_name, CASE WHEN k.image_ref <> '' THEN k.image_ref ELSE k.image_name END, k.registry_host
		FROM containers k JOIN clusters c ON c.id = k.cluster_id
		WHERE k.running_digest = ANY($1) AND ($2::bigint IS NULL OR k.cluster_id = $2) AND k.deleted_at IS NULL AND k.pod_uid <> ''`,
		digests, cluster)
	if err != nil {
		return fmt.Errorf("placement: live containers: %w", err)
	}
	var (
		ids                                                                []int64
		pods, names, ds, nss, podNames, kinds, wls, refs, sts, rules, sevs []string
		reasons                                                            []string
		ranks                                                              []int16
	)
	var (
		id                                                             int64
		cname, cuid, pod, name, d, ns, podName, kind, wl, ref, regHost string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &cname, &cuid, &pod, &name, &d, &ns, &podName, &kind, &wl, &ref, &regHost}, func() error {
		a := arts[d]
		if reg, repo, ok := placement.SplitRef(ref); ok {
			a.Registry, a.Repository = reg, repo
		} else {
			a.Registry = regHost
		}
		dec := pol.Decide(a, placement.Where{ClusterName: cname, ClusterUID: cuid, Namespace: ns})
		if dec.Status == placement.NoRule {
			return nil
		}
		sev := dec.Severity
		if dec.Status != placement.Violation {
			sev = records.SeverityNone
		}
		ids, pods, names, ds, nss, podNames = append(ids, id), append(pods, pod), append(names, name), append(ds, d), append(nss, ns), append(podNames, podName)
		kinds, wls, refs, sts, rules = append(kinds, kind), append(wls, wl), append(refs, ref), append(sts, dec.Status), append(rules, dec.Rule)
		sevs, ranks, reasons = append(sevs, sev), append(ranks, int16(records.SeverityRank(sev))), append(reasons, dec.Reason)
		return nil
	})
	if err != nil {
		return fmt.Errorf("placement: live containers: %w", err)
	}
	_, err = tx.Exec(ctx, `
		WITH n AS (
			SELECT * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
				$10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::smallint[], $16::text[])
				AS u(cluster_id, pod_uid, container, digest, namespace, pod_name, workload_kind, workload_name, image_ref,
					status, rule, severity, severity_rank, reason)),
		gone AS (
			DELETE FROM placement_decisions p
			WHERE p.digest = ANY($1) AND ($2::bigint IS NULL OR p.cluster_id = $2)
			  AND NOT EXISTS (SELECT 1 FROM n WHERE n.cluster_id = p.cluster_id AND n.pod_uid = p.pod_uid AND n.container = p.container))
		INSERT INTO placement_decisions AS p (cluster_id, pod_uid, container, digest, namespace, pod_name, workload_kind,
			workload_name, image_ref, status, rule, severity, severity_rank, reason, since)
		SELECT n.*, $17 FROM n ORDER BY cluster_id, pod_uid, container
		ON CONFLICT (cluster_id, pod_uid, container) DO UPDATE SET digest = excluded.digest, namespace = excluded.namespace,
			pod_name = excluded.pod_name, workload_kind = excluded.workload_kind, workload_name = excluded.workload_name,
			image_ref = excluded.image_ref, status = excluded.status, rule = excluded.rule, severity = excluded.severity,
			severity_rank = excluded.severity_rank, reason = excluded.reason,
			since = CASE WHEN p.status = excluded.status AND p.rule = excluded.rule THEN p.since ELSE excluded.since END`,
		digests, cluster, ids, pods, names, ds, nss, podNames, kinds, wls, refs, sts, rules, sevs, ranks, reasons, s.now())
	if err != nil {
		return fmt.Errorf("placement: write decisions: %w", err)
	}
	return nil
}

// artifactLabels returns, per digest, what the rules know of its labels: those read from its registry
// (artifact_labels) and, on top, the Artifactory properties of the listed tags that hold it (multi-valued
// properties joined with ','; several tags' values of one key united).
func artifactLabels(ctx context.Context, tx pgx.Tx, digests []string) (map[string]placement.Artifact, error) {
	rows, err := tx.Query(ctx, `
		SELECT d, l.state, l.labels, l.error, p.props
		FROM unnest($1::text[]) d
		LEFT JOIN artifact_labels l ON l.digest = d
		LEFT JOIN LATERAL (
			SELECT jsonb_agg(pr.properties ORDER BY pr.registry, pr.repository, pr.tag) AS props
			FROM registry_artifacts a JOIN artifact_properties pr USING (registry, repository, tag)
			WHERE a.deleted_at IS NULL AND (a.digest = d OR d = ANY(a.manifests))) p ON true`, digests)
	if err != nil {
		return nil, fmt.Errorf("placement: labels: %w", err)
	}
	out := map[string]placement.Artifact{}
	var (
		d            string
		state, lerr  *string
		labels, prop []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&d, &state, &labels, &lerr, &prop}, func() error {
		a := placement.Artifact{Labels: map[string]string{}}
		if state != nil && *state == "read" {
			a.LabelsKnown = true
			if err := json.Unmarshal(labels, &a.Labels); err != nil {
				return fmt.Errorf("labels of %s: %w", d, err)
			}
		} else if lerr != nil {
			a.LabelsError = *lerr
		}
		if prop != nil {
			var sets []map[string][]string
			if err := json.Unmarshal(prop, &sets); err != nil {
				return fmt.Errorf("properties of %s: %w", d, err)
			}
			a.LabelsKnown, a.LabelsError = true, ""
			for k, v := range mergeProperties(sets) {
				a.Labels[k] = v
			}
		}
		out[d] = a
		return nil
	})
	return out, err
}

// mergeProperties unites several items' properties: each key's values, in order of first appearance, joined
// with ','.
func mergeProperties(sets []map[string][]string) map[string]string {
	vals := map[string][]string{}
	for _, set := range sets {
		for k, vs := range set {
			for _, v := range vs {
				if !slices.Contains(vals[k], v) {
					vals[k] = append(vals[k], v)
				}
			}
		}
	}
	out := make(map[string]string, len(vals))
	for k, vs := range vals {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

// LabelCandidate is a running digest whose labels are due: never read, or failed and due again.
type LabelCandidate struct {
	Digest   string
	Refs     []string
	Attempts int
}

// LabelCandidates returns up to limit running digests (with references) whose labels are due, oldest failure
// last.
func (s *Store) LabelCandidates(ctx context.Context, limit int) ([]LabelCandidate, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT i.digest, i.refs, coalesce(l.attempts, 0) FROM images i LEFT JOIN artifact_labels l USING (digest)
		WHERE i.containers > 0 AND cardinality(i.refs) > 0
		  AND (l.digest IS NULL OR (l.state = 'failed' AND l.next_attempt_at <= $1))
		ORDER BY l.next_attempt_at NULLS FIRST, i.digest LIMIT $2`, s.now(), limit)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LabelCandidate, error) {
		var c LabelCandidate
		return c, r.Scan(&c.Digest, &c.Refs, &c.Attempts)
	})
	return out, classify(err)
}

// PutLabels keeps the labels read for digest (source says from where) and decides its placements again.
func (s *Store) PutLabels(ctx context.Context, digest string, labels map[string]string, source string) error {
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO artifact_labels (digest, state, labels, source, attempts, read_at) VALUES ($1, 'read', $2, $3, 1, $4)
		ON CONFLICT (digest) DO UPDATE SET state = 'read', labels = excluded.labels, source = excluded.source, error = '',
			attempts = artifact_labels.attempts + 1, read_at = excluded.read_at, next_attempt_at = NULL`,
		digest, b, source, s.now()); err != nil {
		return classify(err)
	}
	return s.EvaluatePlacement(ctx, []string{digest})
}

// FailLabels records that digest's labels could not be read, and when to try again; the decisions that wait
// for them say why.
func (s *Store) FailLabels(ctx context.Context, digest, reason string, next time.Time) error {
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO artifact_labels (digest, state, error, attempts, read_at, next_attempt_at) VALUES ($1, 'failed', $2, 1, $3, $4)
		ON CONFLICT (digest) DO UPDATE SET state = 'failed', error = excluded.error, attempts = artifact_labels.attempts + 1,
			read_at = excluded.read_at, next_attempt_at = excluded.next_attempt_at
		WHERE artifact_labels.state = 'failed'`, digest, reason, s.now(), next); err != nil {
		return classify(err)
	}
	return s.EvaluatePlacement(ctx, []string{digest})
}

// PutProperties replaces the Artifactory properties read for registry's tags and decides the placements of
// their digests again.
func (s *Store) PutProperties(ctx context.Context, registry string, items []ItemProperties) error {
	if len(items) == 0 {
		return nil
	}
	repos, tags, props := make([]string, len(items)), make([]string, len(items)), make([]string, len(items))
	for i, it := range items {
		b, err := json.Marshal(it.Properties)
		if err != nil {
			return err
		}
		repos[i], tags[i], props[i] = it.Repository, it.Tag, string(b)
	}
	rows, err := s.pool.Query(ctx, `
		WITH w AS (
			INSERT INTO artifact_properties AS p (registry, repository, tag, properties, read_at)
			SELECT $1, r, t, j::jsonb, $5 FROM unnest($2::text[], $3::text[], $4::text[]) AS u(r, t, j) ORDER BY r, t
			ON CONFLICT (registry, repository, tag) DO UPDATE SET properties = excluded.properties, read_at = excluded.read_at
			RETURNING repository, tag)
		SELECT DISTINCT d FROM w JOIN registry_artifacts a ON a.registry = $1 AND a.repository = w.repository AND a.tag = w.tag,
			unnest(a.digest || a.manifests) d`, registry, repos, tags, props, s.now())
	if err != nil {
		return classify(err)
	}
	digests, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return classify(err)
	}
	return s.EvaluatePlacement(ctx, digests)
}

// ItemProperties are one Artifactory item's properties (<repo key>/<image>, tag).
type ItemProperties struct {
	Repository, Tag string
	Properties      map[string][]string
}

// PlacementDecision is one live container's placement under the policy.
type PlacementDecision struct {
	ClusterUID, ClusterName    string
	Namespace, Pod, Container  string
	WorkloadKind, WorkloadName string
	Digest, ImageRef           string
	Status, Rule               string
	Severity, Reason           string
	Since                      time.Time
}

const decisionColumns = `cl.uid, cl.name, p.namespace, p.pod_name, p.container, p.workload_kind, p.workload_name,
	p.digest, p.image_ref, p.status, p.rule, p.severity, p.reason, p.since`

func scanDecision(r pgx.Rows, total *int) (PlacementDecision, error) {
	var d PlacementDecision
	dst := []any{&d.ClusterUID, &d.ClusterName, &d.Namespace, &d.Pod, &d.Container, &d.WorkloadKind, &d.WorkloadName,
		&d.Digest, &d.ImageRef, &d.Status, &d.Rule, &d.Severity, &d.Reason, &d.Since}
	if total != nil {
		dst = append(dst, total)
	}
	return d, r.Scan(dst...)
}

// PlacementFilter narrows ListPlacementFindings.
type PlacementFilter struct {
	Filter        // Cluster, Namespace, Severities, Digest, Allowed, Limit, Offset
	Rule   string // only this rule's findings
}

// ListPlacementFindings lists the placement violations of live containers, worst first, then newest.
func (s *Store) ListPlacementFindings(ctx context.Context, f PlacementFilter) (Page[PlacementDecision], error) {
	var a args
	where := scopeConditions([]string{"p.status = 'violation'"}, &a, f.Cluster, f.Namespace, f.Allowed, "p")
	if len(f.Severities) > 0 {
		where = append(where, "p.severity = ANY("+a.add(f.Severities)+")")
	}
	if f.Digest != "" {
		where = append(where, "p.digest = "+a.add(f.Digest))
	}
	if f.Rule != "" {
		where = append(where, "p.rule = "+a.add(f.Rule))
	}
	sql := `SELECT ` + decisionColumns + `, count(*) OVER () FROM placement_decisions p JOIN clusters cl ON cl.id = p.cluster_id
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY p.severity_rank DESC, p.since DESC, cl.name, p.namespace, p.pod_name, p.container
		LIMIT ` + a.add(f.Limit) + ` OFFSET ` + a.add(f.Offset)
	return collectPage(ctx, s, sql, a, scanDecision)
}
