package auth

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Sign-in paths. The provider sends the browser back to CallbackPath.
const (
	LoginPath    = "/auth/login"
	CallbackPath = "/auth/callback"
	LogoutPath   = "/auth/logout"
)

// loginCookie binds a login in progress to the browser that started it, so a callback URL made by someone else
// (login CSRF: signing the victim in as the attacker) finds no matching cookie.
const loginCookie = "__Host-runtrust_login"

// Timeouts of sign-in.
const (
	loginTTL        = 10 * time.Minute // from /auth/login to the callback
	providerTimeout = 15 * time.Second // each call to the provider
)

// SignIn serves OpenID Connect sign-in (authorization code with PKCE and a nonce) for the UI: /auth/login sends
// the browser to the provider, /auth/callback turns its answer into a session (the store's sessions table, a
// Secure HttpOnly SameSite=Lax cookie), /auth/logout ends it. The provider is discovered on first use and again
// after a failure, so a provider that is down at start does not stop the service.
type SignIn struct {
	cfg   OIDCConfig
	store *store.Store
	log   *slog.Logger
	http  *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

// NewSignIn returns sign-in for cfg.
func NewSignIn(cfg OIDCConfig, st *store.Store, log *slog.Logger) *SignIn {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	return &SignIn{cfg: cfg, store: st, log: log, http: &http.Client{Transport: tr, Timeout: providerTimeout}}
}

// Register adds the sign-in routes to mux.
func (s *SignIn) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LoginPath, s.login)
	mux.HandleFunc("GET "+CallbackPath, s.callback)
	mux.HandleFunc("POST "+LogoutPath, s.logout)
}

// SignInNotConfigured answers the sign-in paths of a service without an OIDC file.
func SignInNotConfigured(w http.ResponseWriter, _ *http.Request) {
	page(w, http.StatusNotFound, "Sign-in is not configured on this service: start it with -oidc-file (docs/security.md, \"Signing in\"), "+
		"or call the API with a token (runtime-service token create).")
}

func (s *SignIn) discover(ctx context.Context) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, s.http), providerTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, s.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("the OIDC provider %s cannot be reached or is misconfigured: %w", s.cfg.Issuer, err)
	}
	s.provider = p
	return p, nil
}

func (s *SignIn) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, RedirectURL: s.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: s.cfg.Scopes}
}

// hostCookie is a sign-in cookie: what the __Host- prefix demands (Secure, Path=/, no Domain), out of scripts'
// reach, and sent on the provider's top-level redirect back (Lax).
func hostCookie(name, value string) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// expiredCookie tells the browser to drop a sign-in cookie.
func expiredCookie(name string) *http.Cookie {
	c := hostCookie(name, "")
	c.MaxAge = -1
	return c
}

// page answers a browser with a short plain-text page: sign-in errors are read by people, not scripts.
func page(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

func (s *SignIn) login(w http.ResponseWriter, r *http.Request) {
	p, err := s.discover(r.Context())
	if err != nil {
		s.log.Warn("sign-in: provider discovery failed", "issuer", s.cfg.Issuer, "error", err)
		w.Header().Set("Retry-After", "10")
		page(w, http.StatusServiceUnavailable, "Sign-in is unavailable: "+err.Error())
		return
	}
	state, verifier, nonce := store.NewSecret(""), oauth2.GenerateVerifier(), store.NewSecret("")
	err = s.store.SaveLogin(r.Context(), state, store.OIDCLogin{Verifier: verifier, Nonce: nonce,
		ReturnTo: SafeReturn(r.URL.Query().Get("return_to")), ExpiresAt: time.Now().Add(loginTTL)})
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	c := hostCookie(loginCookie, state)
	c.MaxAge = int(loginTTL / time.Second)
	http.SetCookie(w, c)
	http.Redirect(w, r, s.oauth2(p).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), http.StatusFound)
}

func (s *SignIn) storeFailed(w http.ResponseWriter, err error) {
	s.log.Error("sign-in: store", "error", err)
	w.Header().Set("Retry-After", "5")
	page(w, http.StatusServiceUnavailable, "Sign-in is unavailable: the service's database did not answer; try again shortly.")
}

// SafeReturn keeps a return_to that is a path on this service, so a login link cannot send the user on to
// another site; anything else is "/".
func SafeReturn(v string) string {
	if len(v) > 2048 || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "\\\r\n\t") {
		return "/"
	}
	return v
}

func (s *SignIn) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		page(w, http.StatusUnauthorized, fmt.Sprintf("The provider refused the sign-in: %s %s\nStart again at %s.",
			printable(e, 100), printable(q.Get("error_description"), 300), LoginPath))
		return
	}
	state, code := q.Get("state"), q.Get("code")
	if state == "" || code == "" {
		page(w, http.StatusBadRequest, "This is the provider's way back to the service, and it came without state or code. Start at "+LoginPath+".")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		page(w, http.StatusBadRequest, "This sign-in was not started in this browser (or its cookie expired). Start again at "+LoginPath+".")
		return
	}
	http.SetCookie(w, expiredCookie(loginCookie))
	l, err := s.store.TakeLogin(r.Context(), state)
	if errors.Is(err, store.ErrNotFound) {
		page(w, http.StatusBadRequest, "This sign-in expired or was finished already. Start again at "+LoginPath+".")
		return
	}
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	id, err := s.identify(r.Context(), code, l)
	if err != nil {
		s.log.Warn("sign-in: the provider's answer was refused", "error", err)
		page(w, http.StatusUnauthorized, "Sign-in failed: "+err.Error()+"\nStart again at "+LoginPath+".")
		return
	}
	b, ok := s.cfg.Bind(id)
	if !ok {
		s.log.Warn("sign-in: no binding gives this identity a role", "subject", id.Subject, "email", id.Email)
		page(w, http.StatusForbidden, fmt.Sprintf("You signed in as %s, but no binding in the service's OIDC file gives you a role. Ask an admin to add one.", id.display()))
		return
	}
	s.startSession(w, r, id, b, l.ReturnTo)
}

func (s *SignIn) startSession(w http.ResponseWriter, r *http.Request, id Identity, b Binding, returnTo string) {
	expires := time.Now().Add(s.cfg.SessionTTL)
	sid, err := s.store.CreateSession(r.Context(), store.Session{Subject: id.Subject, Email: id.Email, Name: id.Name,
		Role: b.Role, Clusters: b.Clusters, CSRFToken: store.NewSecret(""), ExpiresAt: expires})
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	if err := s.store.Audit(r.Context(), store.AuditEntry{Actor: KindUser + ":" + id.display(), ActorKind: KindUser, Action: "session.start",
		Detail: map[string]any{"subject": id.Subject, "role": b.Role, "clusters": b.Clusters}, Remote: r.RemoteAddr}); err != nil {
		s.log.Warn("sign-in: audit row not written", "error", err)
	}
	c := hostCookie(SessionCookie, sid)
	c.Expires = expires
	http.SetCookie(w, c)
	s.log.Info("signed in", "user", id.display(), "role", b.Role, "clusters", b.Clusters)
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// identify redeems the code (with the PKCE verifier), verifies the ID token (signature, issuer, audience,
// expiry, nonce) and reads who it is, asking the userinfo endpoint for what the token leaves out (many
// providers keep email and groups there).
func (s *SignIn) identify(ctx context.Context, code string, l store.OIDCLogin) (Identity, error) {
	p, err := s.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, s.http), providerTimeout)
	defer cancel()
	tok, err := s.oauth2(p).Exchange(ctx, code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("redeeming the code at the provider: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, errors.New("the provider's token answer has no id_token (is the openid scope allowed for this client?)")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: s.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("the ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.Nonce)) != 1 {
		return Identity{}, errors.New("the ID token's nonce is not this sign-in's (a replayed token?)")
	}
	id := Identity{Subject: idt.Subject}
	if err := s.readClaims(idt.Claims, &id); err != nil {
		return Identity{}, fmt.Errorf("the ID token's claims: %w", err)
	}
	if id.Email == "" || id.Groups == nil {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("the provider's userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return Identity{}, fmt.Errorf("userinfo is about subject %q, the ID token about %q", ui.Subject, idt.Subject)
		}
		if err := s.readClaims(ui.Claims, &id); err != nil {
			return Identity{}, fmt.Errorf("the userinfo claims: %w", err)
		}
	}
	return id, nil
}

// readClaims fills what id lacks from a claims set: email, email_verified, name and the groups claim.
func (s *SignIn) readClaims(decode func(any) error, id *Identity) error {
	var c map[string]any
	if err := decode(&c); err != nil {
		return err
	}
	if v, ok := c["email"].(string); ok && id.Email == "" {
		id.Email = v
		id.EmailVerified = c["email_verified"] == true
	}
	if v, ok := c["name"].(string); ok && id.Name == "" {
		id.Name = v
	}
	if id.Groups == nil {
		id.Groups = groupsOf(c[s.cfg.GroupsClaim])
	}
	return nil
}

// groupsOf reads a groups claim: a list of strings (or one string). Absent: nil.
func groupsOf(v any) []string {
	switch g := v.(type) {
	case string:
		return []string{g}
	case []any:
		out := []string{}
		for _, x := range g {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func (id Identity) display() string {
	if id.Email != "" {
		return id.Email
	}
	return id.Subject
}

func (s *SignIn) logout(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		w.WriteHeader(http.StatusNoContent) // signed out already
		return
	}
	x, err := s.store.SessionByID(r.Context(), c.Value)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		s.storeFailed(w, err)
		return
	case subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(x.CSRFToken)) != 1:
		page(w, http.StatusForbidden, "signing out needs the session's "+CSRFHeader+" header (GET /api/v1/me)")
		return
	default:
		if err := s.store.DeleteSession(r.Context(), c.Value); err != nil {
			s.storeFailed(w, err)
			return
		}
	}
	http.SetCookie(w, expiredCookie(SessionCookie))
	w.WriteHeader(http.StatusNoContent)
}

// printable shortens and quotes a provider's text for a page.
func printable(v string, n int) string {
	if len(v) > n {
		v = v[:n] + "…"
	}
	return fmt.Sprintf("%q", strings.ToValidUTF8(v, "\uFFFD"))
}
