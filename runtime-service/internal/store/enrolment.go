package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is an enrolled cluster, as one of its collectors' tokens names it.
type Cluster struct {
	ID        int64
	UID, Name string
	// Collector is the collectors row the token belongs to and CollectorID its id within the cluster: a
	// heartbeat updates that row only.
	Collector   int64
	CollectorID string
}

// LegacyCollector is the collector id of the tokens issued before clusters had one token per collector (moved by
// migration 004), and of an enrolment that names no collector: an old exporter enrolling again replaces that one
// token, as it did before.
const LegacyCollector = "legacy"

var (
	// ErrJoinKeyInvalid: the join key is unknown, spent by a cluster since deleted, or bound to another cluster.
	// The error wrapping it says which.
	ErrJoinKeyInvalid = errors.New("join key invalid")
	// ErrTokenUnknown: no collector holds this token (never issued, or replaced by a later enrolment).
	ErrTokenUnknown = errors.New("cluster token unknown")
)

// TokenPrefix starts every cluster token, so a leaked one is recognisable (secret scanners, logs).
const TokenPrefix = "rtc_"

// Hash is how join keys and tokens are stored: both are high-entropy secrets, so a plain SHA-256 makes a leaked
// table useless without the cost of a password hash on every ingest call.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// NewSecret returns prefix followed by 256 random bits, base64url.
func NewSecret(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// SeedJoinKeys makes each key usable, unless it was seen before (bound or not): restarting the service with the
// same configured key neither re-arms nor unbinds it.
func (s *Store) SeedJoinKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if _, err := s.pool.Exec(ctx, "INSERT INTO join_keys (key_hash) VALUES ($1) ON CONFLICT DO NOTHING", Hash(k)); err != nil {
			return classify(fmt.Errorf("store: seed join key: %w", err))
		}
	}
	return nil
}

// Enrolment is what a collector presents to enrol.
type Enrolment struct {
	JoinKey, ClusterUID, ClusterName string
	// CollectorID names the collector within its cluster; empty: LegacyCollector.
	CollectorID string
	// Mode is what the collector says it runs ("integrity", "impact" or ""); its heartbeats update it.
	Mode string
}

// Enrol enrols the cluster's LegacyCollector: what a client that names no collector gets.
func (s *Store) Enrol(ctx context.Context, joinKey, uid, name string) (token string, c Cluster, err error) {
	return s.EnrolCollector(ctx, Enrolment{JoinKey: joinKey, ClusterUID: uid, ClusterName: name})
}

// EnrolCollector returns a new token for one collector of the cluster uid (created if new). The join key binds
// to the first cluster it enrols and then enrols any collector of that cluster and of no other: a leaked key
// admits collectors to one cluster only, as a leaked token does. A collector that enrols again gets a new token
// and its old one stops working; its cluster's other collectors keep theirs. A node's sensor new to its cluster
// beyond the cluster's node entitlement is refused with an *EntitlementError (ErrEntitlementExceeded), and
// nothing is written but the refusal (entitlement.go).
func (s *Store) EnrolCollector(ctx context.Context, e Enrolment) (token string, c Cluster, err error) {
	if e.CollectorID == "" {
		e.CollectorID = LegacyCollector
	}
	token = NewSecret(TokenPrefix)
	now := s.now()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The key's row is locked first, so sensors of a new cluster enrolling at once with a fresh key queue
		// here: the first binds the key, the others find it bound to their cluster.
		var usedAt *time.Time
		var boundUID *string
		err := tx.QueryRow(ctx, `
			SELECT k.used_at, cl.uid FROM join_keys k LEFT JOIN clusters cl ON cl.id = k.used_by
			WHERE k.key_hash = $1 FOR UPDATE OF k`, Hash(e.JoinKey)).Scan(&usedAt, &boundUID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: the join key is unknown (not configured on the service)", ErrJoinKeyInvalid)
		case err != nil:
			return err
		case usedAt != nil && boundUID == nil:
			return fmt.Errorf("%w: the join key was used by a cluster that has since been deleted", ErrJoinKeyInvalid)
		case boundUID != nil && *boundUID != e.ClusterUID:
			// The other cluster's uid is not named: the caller has not proven it may know it.
			return fmt.Errorf("%w: the join key is bound to another cluster (a join key enrols the collectors of the first cluster uid it enrolled, and of no other)", ErrJoinKeyInvalid)
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO clusters (uid, name) VALUES ($1, $2)
			ON CONFLICT (uid) DO UPDATE SET name = excluded.name
			RETURNING id, uid, name`, e.ClusterUID, e.ClusterName).Scan(&c.ID, &c.UID, &c.Name)
		if err != nil {
			return err
		}
		// The upsert above holds the cluster's row until commit: enrolments of one cluster count its sensors one
		// after another, each seeing the ones before (entitlement.go).
		sensor := SensorEnrolment(e)
		if limit := s.opts.Entitlement.For(c.UID, c.Name); sensor && limit > 0 {
			var known bool
			var counted int
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM collectors WHERE cluster_id = $3 AND collector_id = $4),
				(SELECT count(*) FROM collectors k WHERE k.cluster_id = $3 AND `+countedSensorSQL+`)::int`,
				now, int64(s.opts.SensorStaleAfter), c.ID, e.CollectorID).Scan(&known, &counted); err != nil {
				return err
			}
			if !known && counted >= limit {
				return &EntitlementError{ClusterUID: c.UID, ClusterName: c.Name, CollectorID: e.CollectorID,
					Entitled: limit, Enrolled: counted, StaleAfter: s.staleAfter(), clusterID: c.ID}
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE join_keys SET used_at = coalesce(used_at, now()), used_by = $1 WHERE key_hash = $2",
			c.ID, Hash(e.JoinKey)); err != nil {
			return err
		}
		if sensor {
			if _, err := tx.Exec(ctx, "DELETE FROM sensor_refusals WHERE cluster_id = $1 AND collector_id = $2", c.ID, e.CollectorID); err != nil {
				return err
			}
		}
		// Replacing token_hash in place revokes exactly this collector's previous token.
		return tx.QueryRow(ctx, `
			INSERT INTO collectors (cluster_id, collector_id, mode, token_hash, enrolled_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (cluster_id, collector_id) DO UPDATE
				SET token_hash = excluded.token_hash, mode = excluded.mode, enrolled_at = excluded.enrolled_at
			RETURNING id, collector_id`, c.ID, e.CollectorID, e.Mode, Hash(token), now).Scan(&c.Collector, &c.CollectorID)
	})
	if err != nil {
		var ent *EntitlementError
		if errors.As(err, &ent) {
			// The transaction rolled back: the refusal changed nothing. It is noted apart, for the API.
			if rerr := s.recordRefusal(ctx, ent); rerr != nil {
				return "", Cluster{}, fmt.Errorf("%w (the refusal could not be recorded: %v)", ent, rerr)
			}
			return "", Cluster{}, ent
		}
		if errors.Is(err, ErrJoinKeyInvalid) {
			return "", Cluster{}, err
		}
		return "", Cluster{}, classify(fmt.Errorf("store: enrol: %w", err))
	}
	return token, c, nil
}

// ClusterByToken finds the collector a token belongs to, and its cluster: one probe of collectors' unique
// token index and of clusters' primary key.
func (s *Store) ClusterByToken(ctx context.Context, token string) (Cluster, error) {
	var c Cluster
	err := s.pool.QueryRow(ctx, `
		SELECT cl.id, cl.uid, cl.name, k.id, k.collector_id
		FROM collectors k JOIN clusters cl ON cl.id = k.cluster_id WHERE k.token_hash = $1`, Hash(token)).
		Scan(&c.ID, &c.UID, &c.Name, &c.Collector, &c.CollectorID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cluster{}, ErrTokenUnknown
	}
	if err != nil {
		return Cluster{}, classify(err)
	}
	return c, nil
}

// Heartbeat records what one collector of a cluster said about itself. Only its own row is written: a
// cluster's sensors heartbeating do not queue on the cluster row the ingest locks.
func (s *Store) Heartbeat(ctx context.Context, c Cluster, collectorVersion, mode string, nodeCount int) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE collectors SET heartbeat_at = $2, version = $3, mode = $4, node_count = $5 WHERE id = $1`,
		c.Collector, s.opts.Now(), collectorVersion, mode, nodeCount)
	if err != nil {
		return classify(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrTokenUnknown // the cluster was deleted since the token was looked up
	}
	return nil
}

// now is the store's clock, as UTC.
func (s *Store) now() time.Time { return s.opts.Now().UTC() }

// RevokedCollector is what RevokeCollector removed.
type RevokedCollector struct {
	ClusterUID, ClusterName, CollectorID string
	HeartbeatAt                          *time.Time
}

// RevokeCollector deletes one collector of a cluster, given by uid, or by name when no other cluster has it, so
// its token stops working: for the next lookup at once, within the ingest's token cache (10 s) on a running
// service. What the collector sent stays. A collector that still holds the cluster's join key can enrol again;
// revoking is for a node that is gone or a token that leaked.
func (s *Store) RevokeCollector(ctx context.Context, cluster, collectorID string) (RevokedCollector, error) {
	var out RevokedCollector
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, uid, name FROM clusters WHERE uid = $1 OR name = $1 ORDER BY uid = $1 DESC, uid`, cluster)
		if err != nil {
			return err
		}
		type match struct {
			id        int64
			uid, name string
		}
		ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (match, error) {
			var m match
			return m, r.Scan(&m.id, &m.uid, &m.name)
		})
		if err != nil {
			return err
		}
		switch {
		case len(ms) == 0:
			return fmt.Errorf("%w: no cluster has the uid or name %q", ErrNotFound, cluster)
		case len(ms) > 1 && ms[0].uid != cluster:
			uids := make([]string, len(ms))
			for i, m := range ms {
				uids[i] = m.uid
			}
			return fmt.Errorf("%w: clusters %s are all named %q: give the uid", ErrAmbiguousCluster, strings.Join(uids, ", "), cluster)
		}
		c := ms[0]
		out = RevokedCollector{ClusterUID: c.uid, ClusterName: c.name, CollectorID: collectorID}
		err = tx.QueryRow(ctx, `DELETE FROM collectors WHERE cluster_id = $1 AND collector_id = $2 RETURNING heartbeat_at`,
			c.id, collectorID).Scan(&out.HeartbeatAt)
		if errors.Is(err, pgx.ErrNoRows) {
			var ids []string
			if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(collector_id ORDER BY collector_id), '{}') FROM collectors WHERE cluster_id = $1`,
				c.id).Scan(&ids); err != nil {
				return err
			}
			return fmt.Errorf("%w: cluster %s (%s) has no collector %q (it has: %s)", ErrNotFound, c.name, c.uid, collectorID,
				strings.Join(ids, ", "))
		}
		return err
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAmbiguousCluster) {
		return RevokedCollector{}, err
	}
	if err != nil {
		return RevokedCollector{}, classify(err)
	}
	return out, nil
}

// ErrAmbiguousCluster: a cluster was named where several clusters share the name.
var ErrAmbiguousCluster = errors.New("ambiguous cluster name")

// RetireJoinKey removes a join key, so it enrols nothing any more; the tokens it issued keep working (revoke
// those collectors one by one). It returns the uid of the cluster it was bound to, "" when it never enrolled.
// A key still in the service's configuration is seeded again at the next start: remove it there too.
func (s *Store) RetireJoinKey(ctx context.Context, key string) (boundUID string, err error) {
	var uid *string
	err = s.pool.QueryRow(ctx, `
		DELETE FROM join_keys k WHERE k.key_hash = $1
		RETURNING (SELECT c.uid FROM clusters c WHERE c.id = k.used_by)`, Hash(key)).Scan(&uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("%w: no such join key (it was never configured, or is retired already)", ErrNotFound)
	}
	if err != nil {
		return "", classify(err)
	}
	if uid == nil {
		return "", nil
	}
	return *uid, nil
}
