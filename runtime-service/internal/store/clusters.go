package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is an enrolled cluster.
type Cluster struct {
	ID        int64
	UID, Name string
}

var (
	// ErrJoinKeyInvalid: the join key is unknown or already spent.
	ErrJoinKeyInvalid = errors.New("join key unknown or already used")
	// ErrTokenUnknown: no cluster holds this token (never issued, or replaced by a later enrolment).
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

// SeedJoinKeys makes each key usable for one enrolment, unless it was seen before (spent or not): restarting the
// service with the same configured key does not re-arm it.
func (s *Store) SeedJoinKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if _, err := s.pool.Exec(ctx, "INSERT INTO join_keys (key_hash) VALUES ($1) ON CONFLICT DO NOTHING", Hash(k)); err != nil {
			return classify(fmt.Errorf("store: seed join key: %w", err))
		}
	}
	return nil
}

// Enrol spends joinKey and returns a new token for the cluster uid (created if new). A cluster that enrols again
// gets a new token and its old one stops working.
func (s *Store) Enrol(ctx context.Context, joinKey, uid, name string) (token string, c Cluster, err error) {
	token = NewSecret(TokenPrefix)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE join_keys SET used_at = now() WHERE key_hash = $1 AND used_at IS NULL", Hash(joinKey))
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return ErrJoinKeyInvalid
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO clusters (uid, name, token_hash) VALUES ($1, $2, $3)
			ON CONFLICT (uid) DO UPDATE SET name = excluded.name, token_hash = excluded.token_hash
			RETURNING id, uid, name`, uid, name, Hash(token)).Scan(&c.ID, &c.UID, &c.Name)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE join_keys SET used_by = $1 WHERE key_hash = $2", c.ID, Hash(joinKey))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrJoinKeyInvalid) {
			return "", Cluster{}, err
		}
		return "", Cluster{}, classify(fmt.Errorf("store: enrol: %w", err))
	}
	return token, c, nil
}

// ClusterByToken finds the cluster a token belongs to.
func (s *Store) ClusterByToken(ctx context.Context, token string) (Cluster, error) {
	var c Cluster
	err := s.pool.QueryRow(ctx, "SELECT id, uid, name FROM clusters WHERE token_hash = $1", Hash(token)).Scan(&c.ID, &c.UID, &c.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cluster{}, ErrTokenUnknown
	}
	if err != nil {
		return Cluster{}, classify(err)
	}
	return c, nil
}

// Heartbeat records what the cluster's collector said about itself.
func (s *Store) Heartbeat(ctx context.Context, clusterID int64, collectorVersion, mode string, nodeCount int) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE clusters SET heartbeat_at = $2, collector_version = $3, mode = $4, node_count = $5 WHERE id = $1`,
		clusterID, s.opts.Now(), collectorVersion, mode, nodeCount)
	return classify(err)
}

// now is the store's clock, as UTC.
func (s *Store) now() time.Time { return s.opts.Now().UTC() }
