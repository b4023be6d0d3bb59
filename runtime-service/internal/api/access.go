package api

// Access endpoints: who the caller is (/api/v1/me) and the admin actions (API tokens, revoking collectors and
// join keys, the audit log). Every admin action is written to the audit log before it answers.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// parseListFor is ParseList limited to the clusters the caller may see.
func parseListFor(r *http.Request, endpoint string) (store.Filter, error) {
	f, err := ParseList(endpoint, r.URL.Query())
	f.Allowed = principal(r).Clusters
	return f, err
}

// parseVulnListFor is ParseVulnList limited to the clusters the caller may see.
func parseVulnListFor(r *http.Request, endpoint string) (store.VulnFilter, error) {
	f, err := ParseVulnList(endpoint, r.URL.Query())
	f.Allowed = principal(r).Clusters
	return f, err
}

// Me is /api/v1/me: who the call acts as, and the CSRF token its state-changing calls send (sessions only).
type Me struct {
	auth.Principal
	CSRFToken *string `json:"csrf_token"`
	AuthMode  string  `json:"auth_mode"`
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	out := Me{Principal: p, AuthMode: string(h.authn.Mode())}
	if p.CSRF != "" {
		out.CSRFToken = &p.CSRF
	}
	writeJSON(w, http.StatusOK, out)
}

// APIToken is an API token as listed; Token is its secret, only in the answer that created it.
type APIToken struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Clusters  []string   `json:"clusters"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	LastUsed  *time.Time `json:"last_used_at"`
	Token     string     `json:"token,omitempty"`
}

func apiTokenOf(t store.APIToken) APIToken {
	return APIToken{Name: t.Name, Role: t.Role, Clusters: t.Clusters, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsed: t.LastUsed}
}

// unrestrictedAdmin refuses an admin restricted to some clusters: tokens and the audit log span every cluster.
func unrestrictedAdmin(w http.ResponseWriter, r *http.Request) bool {
	if p := principal(r); !p.Unrestricted() {
		writeError(w, http.StatusForbidden, "managing API tokens, join keys and the audit log needs an admin of every cluster; "+p.Actor()+" is restricted to "+strings.Join(p.Clusters, ", "))
		return false
	}
	return true
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request) {
	if !unrestrictedAdmin(w, r) {
		return
	}
	ts, err := h.store.ListAPITokens(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := []APIToken{}
	for _, t := range ts {
		out = append(out, apiTokenOf(t))
	}
	writeJSON(w, http.StatusOK, out)
}

// TokenRequest is POST /api/v1/tokens's body.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Clusters restricts the token to these clusters (uids or names); absent or null: every cluster.
	Clusters []string `json:"clusters"`
	// ExpiresIn is an age ("90d", "12h"); empty: it never expires.
	ExpiresIn string `json:"expires_in"`
}

// maxBody bounds an admin call's JSON body.
const maxBody = 64 << 10

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseTokenRequest reads and checks a token request; every error names the field.
func ParseTokenRequest(body io.Reader, now time.Time) (store.APIToken, error) {
	var req TokenRequest
	if err := decodeBody(body, &req); err != nil {
		return store.APIToken{}, err
	}
	t := store.APIToken{Name: req.Name, Role: req.Role, Clusters: req.Clusters}
	if !tokenNameRE.MatchString(req.Name) {
		return t, paramErr("name %q is not 1 to 64 letters, digits, '.', '_' or '-'", clip(req.Name))
	}
	if req.Role != store.RoleViewer && req.Role != store.RoleAdmin {
		return t, paramErr("role %q is not viewer or admin", clip(req.Role))
	}
	for i, c := range req.Clusters {
		if err := checkClusterRef(fmt.Sprintf("clusters[%d]", i), c); err != nil {
			return t, err
		}
	}
	if req.ExpiresIn != "" {
		d, err := config.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 || d > MaxSince {
			return t, paramErr("expires_in %q is not an age from 1s to 3650d (\"90d\", \"12h\")", clip(req.ExpiresIn))
		}
		at := now.Add(d)
		t.ExpiresAt = &at
	}
	return t, nil
}

// decodeBody reads one JSON object into v: unknown fields, trailing data and bodies over maxBody are errors.
func decodeBody(body io.Reader, v any) error {
	lr := &io.LimitedReader{R: body, N: maxBody + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if lr.N <= 0 {
			return paramErr("the body is larger than %d KiB", maxBody>>10)
		}
		return paramErr("the body is not the JSON object this call takes: %s", clip(err.Error()))
	}
	if dec.More() {
		return paramErr("the body holds more than one JSON value")
	}
	return nil
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) {
	if !unrestrictedAdmin(w, r) {
		return
	}
	t, err := ParseTokenRequest(r.Body, time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	t.CreatedBy = principal(r).Actor()
	secret, err := h.store.CreateAPIToken(r.Context(), t)
	if errors.Is(err, store.ErrExists) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.audit(w, r, "token.create", t.Name, map[string]any{"role": t.Role, "clusters": t.Clusters, "expires_at": t.ExpiresAt}) {
		return
	}
	out := apiTokenOf(t)
	out.Token, out.CreatedAt = secret, time.Now().UTC()
	writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) {
	if !unrestrictedAdmin(w, r) {
		return
	}
	name := r.PathValue("name")
	if err := h.store.RevokeAPIToken(r.Context(), name); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.audit(w, r, "token.revoke", name, nil) {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *Handler) revokeCollector(w http.ResponseWriter, r *http.Request) {
	cluster, collector := r.PathValue("cluster"), r.PathValue("collector")
	if err := checkClusterRef("cluster", cluster); err != nil {
		h.fail(w, r, err)
		return
	}
	p := principal(r)
	if !p.Unrestricted() { // a restricted admin revokes only in its clusters; another cluster is not found
		if _, err := h.store.GetClusterIn(r.Context(), cluster, p.Clusters); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	rc, err := h.store.RevokeCollector(r.Context(), cluster, collector)
	if errors.Is(err, store.ErrAmbiguousCluster) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if h.audit(w, r, "collector.revoke", rc.ClusterUID+"/"+rc.CollectorID, map[string]any{"cluster_name": rc.ClusterName}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// JoinKeyRequest is POST /api/v1/join-keys/retire's body: the key in the body, never in a URL that logs keep.
type JoinKeyRequest struct {
	Key string `json:"key"`
}

func (h *Handler) retireJoinKey(w http.ResponseWriter, r *http.Request) {
	if !unrestrictedAdmin(w, r) {
		return
	}
	var req JoinKeyRequest
	if err := decodeBody(r.Body, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Key == "" {
		h.fail(w, r, paramErr("key is empty"))
		return
	}
	bound, err := h.store.RetireJoinKey(r.Context(), req.Key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// The audit log names the key by its hash's start, never the key.
	if h.audit(w, r, "join_key.retire", fmt.Sprintf("sha256:%x…", store.Hash(req.Key)[:6]), map[string]any{"bound_cluster": bound}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// audit records an admin action; when it cannot, the call answers 503 (the action is done, but an admin action
// nobody can account for must not look like a success).
func (h *Handler) audit(w http.ResponseWriter, r *http.Request, action, target string, detail map[string]any) bool {
	p := principal(r)
	err := h.store.Audit(r.Context(), store.AuditEntry{Actor: p.Actor(), ActorKind: p.Kind, Action: action, Target: target,
		Detail: detail, Remote: r.RemoteAddr})
	if err != nil {
		h.log.Error("audit log write failed", "action", action, "target", target, "actor", p.Actor(), "error", err)
		writeError(w, http.StatusServiceUnavailable, action+" was done, but the audit log could not record it: "+err.Error())
		return false
	}
	h.log.Info("admin action", "action", action, "target", target, "actor", p.Actor())
	return true
}

// AuditEntry is one row of /api/v1/audit.
type AuditEntry struct {
	At        time.Time      `json:"at"`
	Actor     string         `json:"actor"`
	ActorKind string         `json:"actor_kind"`
	Action    string         `json:"action"`
	Target    string         `json:"target"`
	Detail    map[string]any `json:"detail"`
	Remote    string         `json:"remote"`
}

func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) {
	if !unrestrictedAdmin(w, r) {
		return
	}
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains([]string{"limit", "offset"}, k) {
			h.fail(w, r, paramErr("unknown query parameter %q; the audit log takes limit, offset", clip(k)))
			return
		}
	}
	f := store.Filter{Limit: DefaultLimit}
	if err := applyParams(q, &f, listRules(nil)[:2]); err != nil { // limit and offset
		h.fail(w, r, err)
		return
	}
	page, err := h.store.ListAudit(r.Context(), f.Limit, f.Offset)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(page, f, func(e store.AuditEntry) AuditEntry {
		return AuditEntry{At: e.At, Actor: e.Actor, ActorKind: e.ActorKind, Action: e.Action, Target: e.Target, Detail: e.Detail, Remote: e.Remote}
	}))
}
