// Package auth decides who is calling the runtime service's HTTP API and what they may do (docs/security.md):
// API tokens for scripts (Authorization: Bearer rtu_…, hashed at rest), signed-in users' sessions (a cookie),
// or, only on a loopback address, a no-auth development mode. Roles are viewer and admin; a token or user may
// be restricted to named clusters. State-changing calls need a CSRF header.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Principal is who a request acts as.
type Principal struct {
	// Kind is KindToken, KindUser or KindDev.
	Kind string `json:"kind"`
	// Name is the token's name, or the user's email (else subject).
	Name string `json:"name"`
	Role string `json:"role"`
	// Clusters, when not nil, are the only clusters (uids or names) it may see.
	Clusters []string `json:"clusters"`
	// CSRF is a session's CSRF token, which its state-changing calls must send in CSRFHeader.
	CSRF string `json:"-"`
}

// Principal kinds.
const (
	KindToken = "token"
	KindUser  = "user"
	KindDev   = "dev"
)

// Admin says whether p has the admin role.
func (p Principal) Admin() bool { return p.Role == store.RoleAdmin }

// Unrestricted says whether p may see every cluster.
func (p Principal) Unrestricted() bool { return p.Clusters == nil }

// Actor is how the audit log names p.
func (p Principal) Actor() string { return p.Kind + ":" + p.Name }

type ctxKey struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal a request's context carries.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// SessionCookie holds a signed-in user's session id. The __Host- prefix makes browsers accept it only with
// Secure, Path=/ and no Domain, so no other host or path can plant or read it.
const SessionCookie = "__Host-runtrust_session"

// CSRFHeader carries the CSRF token on state-changing calls. A cross-site form or link cannot set a header, so
// its presence alone stops cross-site requests in dev mode; a session's calls must send the session's token.
const CSRFHeader = "X-CSRF-Token"

// Errors Authenticate returns; the API answers 401 for each.
var (
	ErrNoCredentials  = errors.New("no credentials")
	ErrBadCredentials = errors.New("bad credentials")
)

// Mode is how the service authenticates HTTP calls.
type Mode string

// Modes.
const (
	// ModeNone: no authentication, every caller is an admin of every cluster. Only on a loopback address.
	ModeNone Mode = "none"
	// ModeTokens: API tokens (and, when configured, OIDC sessions).
	ModeTokens Mode = "tokens"
)

// Authenticator authenticates HTTP requests against the store.
type Authenticator struct {
	store *store.Store
	mode  Mode
}

// New returns an authenticator in mode.
func New(st *store.Store, mode Mode) *Authenticator { return &Authenticator{store: st, mode: mode} }

// Mode is the authenticator's mode.
func (a *Authenticator) Mode() Mode { return a.mode }

// Authenticate says who r acts as: its bearer API token, else its session cookie, else (dev mode only) the
// local developer. A request that brings credentials is judged by them, even in dev mode.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return a.token(r.Context(), h)
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		s, err := a.store.SessionByID(r.Context(), c.Value)
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, fmt.Errorf("%w: the session expired or was signed out; sign in again", ErrBadCredentials)
		}
		if err != nil {
			return Principal{}, err
		}
		name := s.Email
		if name == "" {
			name = s.Subject
		}
		return Principal{Kind: KindUser, Name: name, Role: s.Role, Clusters: s.Clusters, CSRF: s.CSRFToken}, nil
	}
	if a.mode == ModeNone {
		return Principal{Kind: KindDev, Name: "local", Role: store.RoleAdmin}, nil
	}
	return Principal{}, fmt.Errorf("%w: send an API token (Authorization: Bearer %s…) or sign in at /auth/login", ErrNoCredentials, store.APITokenPrefix)
}

func (a *Authenticator) token(ctx context.Context, header string) (Principal, error) {
	scheme, secret, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return Principal{}, fmt.Errorf("%w: the Authorization header is not \"Bearer <API token>\"", ErrBadCredentials)
	}
	if strings.HasPrefix(secret, store.TokenPrefix) {
		return Principal{}, fmt.Errorf("%w: that is a cluster token (%s…), which only collectors use; the API takes API tokens (%s…, runtime-service token create)",
			ErrBadCredentials, store.TokenPrefix, store.APITokenPrefix)
	}
	if !strings.HasPrefix(secret, store.APITokenPrefix) {
		return Principal{}, fmt.Errorf("%w: not an API token (they start %s)", ErrBadCredentials, store.APITokenPrefix)
	}
	t, err := a.store.APITokenBySecret(ctx, secret)
	if errors.Is(err, store.ErrTokenUnknown) {
		return Principal{}, fmt.Errorf("%w: unknown API token (never issued, revoked or expired)", ErrBadCredentials)
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{Kind: KindToken, Name: t.Name, Role: t.Role, Clusters: t.Clusters}, nil
}

// CheckCSRF refuses a state-changing request that does not carry the CSRF header (every principal), or, for a
// session, carries another token than the session's. Bearer tokens are no ambient credential a cross-site
// request could borrow, but the header costs a script nothing and keeps one rule.
func CheckCSRF(p Principal, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		return fmt.Errorf("a %s needs the %s header (a session's token from GET /api/v1/me; any value with an API token)", r.Method, CSRFHeader)
	}
	if p.Kind == KindUser && subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) != 1 {
		return fmt.Errorf("the %s header is not this session's CSRF token (GET /api/v1/me)", CSRFHeader)
	}
	return nil
}

// ModeFor decides the mode for a service listening for HTTP on listen: asked is the -auth setting ("" when not
// given). No authentication is allowed only on a loopback address; anything else needs tokens.
func ModeFor(asked, listen string) (Mode, error) {
	loopback := isLoopback(listen)
	switch Mode(asked) {
	case "":
		if loopback {
			return ModeNone, nil
		}
		return "", fmt.Errorf("http-listen %s is not a loopback address: set -auth tokens (API tokens from `runtime-service token create`, docs/security.md); without authentication the API would show every cluster's inventory to anyone who reaches it", listen)
	case ModeNone:
		if !loopback {
			return "", fmt.Errorf("-auth none is only allowed on a loopback address, and http-listen is %s: use -auth tokens", listen)
		}
		return ModeNone, nil
	case ModeTokens:
		return ModeTokens, nil
	}
	return "", fmt.Errorf("-auth %q is not none or tokens", asked)
}

// isLoopback says whether a listen address (host:port) binds to loopback only: localhost or a loopback IP. An
// empty host binds every interface.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
