package store

// Access: who may read and change what over the HTTP API. API tokens for scripts, sessions of signed-in users,
// OIDC logins in progress, and the audit log of admin actions (migrations/006_access.sql, docs/security.md).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Roles: a viewer reads everything its clusters hold; an admin also revokes collectors and join keys, manages
// API tokens and reads the audit log.
const (
	RoleViewer = "viewer"
	RoleAdmin  = "admin"
)

// APITokenPrefix starts every API token, so a leaked one is recognisable and never mistaken for a cluster
// token (TokenPrefix).
const APITokenPrefix = "rtu_"

// ErrExists: a thing with that name exists already.
var ErrExists = errors.New("already exists")

// APIToken is an API token as listed (never its secret).
type APIToken struct {
	Name      string
	Role      string
	Clusters  []string // nil: every cluster
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt *time.Time
	LastUsed  *time.Time
}

// CreateAPIToken issues a token named t.Name and returns its secret, shown once: only its hash is kept.
func (s *Store) CreateAPIToken(ctx context.Context, t APIToken) (string, error) {
	secret := NewSecret(APITokenPrefix)
	_, err := s.pool.Exec(ctx, `INSERT INTO api_tokens (name, token_hash, role, clusters, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.Name, Hash(secret), t.Role, t.Clusters, t.CreatedBy, s.now(), t.ExpiresAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return "", fmt.Errorf("%w: an API token is named %q; revoke it first or choose another name", ErrExists, t.Name)
	}
	return secret, classify(err)
}

// lastUsedEvery bounds how often a token's last use is written: once a minute is enough to tell a live token
// from a forgotten one, and keeps reads from writing on every call.
const lastUsedEvery = time.Minute

// APITokenBySecret returns the live token whose secret this is, or ErrTokenUnknown (never issued, revoked or
// expired).
func (s *Store) APITokenBySecret(ctx context.Context, secret string) (APIToken, error) {
	now := s.now()
	var t APIToken
	err := s.pool.QueryRow(ctx, `UPDATE api_tokens SET last_used_at = CASE
			WHEN last_used_at IS NULL OR last_used_at < $2 THEN $3 ELSE last_used_at END
		WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $3)
		RETURNING name, role, clusters, created_by, created_at, expires_at, last_used_at`,
		Hash(secret), now.Add(-lastUsedEvery), now).
		Scan(&t.Name, &t.Role, &t.Clusters, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &t.LastUsed)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIToken{}, ErrTokenUnknown
	}
	return t, classify(err)
}

// ListAPITokens lists every token, by name.
func (s *Store) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, role, clusters, created_by, created_at, expires_at, last_used_at
		FROM api_tokens ORDER BY name`)
	if err != nil {
		return nil, classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIToken, error) {
		var t APIToken
		return t, r.Scan(&t.Name, &t.Role, &t.Clusters, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &t.LastUsed)
	})
	return out, classify(err)
}

// RevokeAPIToken deletes the token named name: its next use is refused.
func (s *Store) RevokeAPIToken(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM api_tokens WHERE name = $1`, name)
	if err != nil {
		return classify(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: no API token is named %q", ErrNotFound, name)
	}
	return nil
}

// Session is a signed-in user's session.
type Session struct {
	Subject, Email, Name string
	Role                 string
	Clusters             []string // nil: every cluster
	CSRFToken            string
	ExpiresAt            time.Time
}

// CreateSession starts a session and returns its id (the cookie's value; only its hash is kept).
func (s *Store) CreateSession(ctx context.Context, x Session) (string, error) {
	id := NewSecret("")
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id_hash, subject, email, name, role, clusters, csrf_token, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		Hash(id), x.Subject, x.Email, x.Name, x.Role, x.Clusters, x.CSRFToken, s.now(), x.ExpiresAt)
	return id, classify(err)
}

// SessionByID returns the live session with this id, or ErrNotFound (never started, signed out or expired).
func (s *Store) SessionByID(ctx context.Context, id string) (Session, error) {
	var x Session
	err := s.pool.QueryRow(ctx, `SELECT subject, email, name, role, clusters, csrf_token, expires_at
		FROM sessions WHERE id_hash = $1 AND expires_at > $2`, Hash(id), s.now()).
		Scan(&x.Subject, &x.Email, &x.Name, &x.Role, &x.Clusters, &x.CSRFToken, &x.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, fmt.Errorf("%w: no such session", ErrNotFound)
	}
	return x, classify(err)
}

// DeleteSession ends a session (signing out); ending one that is gone is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, Hash(id))
	return classify(err)
}

// OIDCLogin is a login in progress.
type OIDCLogin struct {
	Verifier, Nonce, ReturnTo string
	ExpiresAt                 time.Time
}

// SaveLogin keeps a login in progress under its OAuth2 state.
func (s *Store) SaveLogin(ctx context.Context, state string, l OIDCLogin) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO oidc_logins (state_hash, verifier, nonce, return_to, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, Hash(state), l.Verifier, l.Nonce, l.ReturnTo, l.ExpiresAt)
	return classify(err)
}

// TakeLogin returns and forgets the login started under state, or ErrNotFound (unknown, used or expired): a
// state works once.
func (s *Store) TakeLogin(ctx context.Context, state string) (OIDCLogin, error) {
	var l OIDCLogin
	err := s.pool.QueryRow(ctx, `DELETE FROM oidc_logins WHERE state_hash = $1
		RETURNING verifier, nonce, return_to, expires_at`, Hash(state)).Scan(&l.Verifier, &l.Nonce, &l.ReturnTo, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !l.ExpiresAt.After(s.now())) {
		return OIDCLogin{}, fmt.Errorf("%w: no login in progress with this state (it expired, or was used already)", ErrNotFound)
	}
	return l, classify(err)
}

// AuditEntry is one admin action.
type AuditEntry struct {
	At               time.Time
	Actor, ActorKind string // ActorKind: user, token, cli or dev
	Action, Target   string
	Detail           map[string]any
	Remote           string
}

// Audit records an admin action.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	detail, err := json.Marshal(e.Detail)
	if err != nil {
		return fmt.Errorf("store: audit detail: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO audit_log (at, actor, actor_kind, action, target, detail, remote)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.now(), e.Actor, e.ActorKind, e.Action, e.Target, detail, e.Remote)
	return classify(err)
}

// ListAudit returns the audit log, newest first.
func (s *Store) ListAudit(ctx context.Context, limit, offset int) (Page[AuditEntry], error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&total); err != nil {
		return Page[AuditEntry]{}, classify(err)
	}
	rows, err := s.pool.Query(ctx, `SELECT at, actor, actor_kind, action, target, detail, remote FROM audit_log
		ORDER BY at DESC, id DESC LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return Page[AuditEntry]{}, classify(err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		return e, r.Scan(&e.At, &e.Actor, &e.ActorKind, &e.Action, &e.Target, &e.Detail, &e.Remote)
	})
	return Page[AuditEntry]{Items: items, Total: total}, classify(err)
}

// expireAccess forgets expired sessions and logins in progress (Retain runs it).
func (s *Store) expireAccess(ctx context.Context) (int64, error) {
	now := s.now()
	a, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, classify(err)
	}
	b, err := s.pool.Exec(ctx, `DELETE FROM oidc_logins WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, classify(err)
	}
	return a.RowsAffected() + b.RowsAffected(), nil
}
