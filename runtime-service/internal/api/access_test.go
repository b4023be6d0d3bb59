package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// call makes one request against h as the bearer token (none when ""), with the CSRF header when csrf.
func call(t *testing.T, h http.Handler, method, path, token string, csrf bool, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if csrf {
		req.Header.Set(auth.CSRFHeader, "1")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func mustToken(t *testing.T, s *store.Store, name, role string, clusters []string) string {
	t.Helper()
	secret, err := s.CreateAPIToken(context.Background(), store.APIToken{Name: name, Role: role, Clusters: clusters, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestTokensRolesAndClusters: with -auth tokens, no call is answered without a live API token; a viewer reads but
// cannot act; a token restricted to one cluster sees only it; admin actions need the CSRF header and are audited.
func TestTokensRolesAndClusters(t *testing.T) {
	s := seeded(t).store
	h := New(s, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(s, auth.ModeTokens))
	viewerAll := mustToken(t, s, "dashboards", store.RoleViewer, nil)
	viewerProd := mustToken(t, s, "prod-only", store.RoleViewer, []string{"prod"})
	admin := mustToken(t, s, "ops", store.RoleAdmin, nil)
	adminStage := mustToken(t, s, "stage-ops", store.RoleAdmin, []string{"uid-stage"})

	for _, c := range []struct{ name, token, want string }{
		{"no credentials", "", "send an API token"},
		{"a cluster token", store.TokenPrefix + "abc", "cluster token"},
		{"not a token", "hunter2", "not an API token"},
		{"unknown token", store.APITokenPrefix + "nope", "unknown API token"},
	} {
		if code, body := call(t, h, "GET", "/api/v1/images", c.token, false, nil); code != 401 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 401 saying %q", c.name, code, body, c.want)
		}
	}

	var all, prod List[Image]
	getJSON(t, h, "/api/v1/images", viewerAll, &all)
	getJSON(t, h, "/api/v1/images", viewerProd, &prod)
	if all.Total != 2 || prod.Total != 2 || all.Items[0].BlastRadius.Clusters != 2 || prod.Items[0].BlastRadius.Clusters != 1 {
		t.Fatalf("images: every cluster %+v; prod only %+v", all, prod)
	}
	var d ImageDetail
	getJSON(t, h, "/api/v1/images/"+critical, viewerProd, &d)
	for _, p := range d.Placements {
		if p.Cluster.Name != "prod" {
			t.Errorf("a prod-only token sees a placement in %s", p.Cluster.Name)
		}
	}
	if len(d.Placements) != 1 || d.ProcessesTotal != 1 {
		t.Errorf("prod-only image detail: %d placements, %d processes; want prod's 1 and 1", len(d.Placements), d.ProcessesTotal)
	}
	var clusters List[Cluster]
	getJSON(t, h, "/api/v1/clusters", viewerProd, &clusters)
	if clusters.Total != 1 || clusters.Items[0].Name != "prod" {
		t.Errorf("prod-only token lists clusters %+v", clusters.Items)
	}
	if code, _ := call(t, h, "GET", "/api/v1/clusters/stage", viewerProd, false, nil); code != 404 {
		t.Errorf("prod-only token reading cluster stage: %d, want 404", code)
	}
	var wl List[Workload]
	getJSON(t, h, "/api/v1/workloads", viewerProd, &wl)
	if wl.Total != 1 || wl.Items[0].Cluster.Name != "prod" {
		t.Errorf("prod-only token lists workloads %+v", wl.Items)
	}

	// A viewer reads but does not act.
	if code, body := call(t, h, "DELETE", "/api/v1/clusters/stage/collectors/legacy", viewerAll, true, nil); code != 403 || !strings.Contains(body, "needs the admin role") {
		t.Errorf("viewer revoking a collector: %d %s", code, body)
	}
	if code, _ := call(t, h, "GET", "/api/v1/tokens", viewerAll, false, nil); code != 403 {
		t.Errorf("viewer listing tokens: %d", code)
	}
	// An admin restricted to stage neither revokes in prod nor manages tokens.
	if code, _ := call(t, h, "DELETE", "/api/v1/clusters/prod/collectors/legacy", adminStage, true, nil); code != 404 {
		t.Errorf("stage admin revoking in prod: %d, want 404", code)
	}
	if code, _ := call(t, h, "GET", "/api/v1/tokens", adminStage, false, nil); code != 403 {
		t.Errorf("stage admin listing tokens: %d, want 403", code)
	}

	// Admin actions: CSRF header required; create, use, revoke; all audited.
	req := TokenRequest{Name: "ci", Role: store.RoleViewer, Clusters: []string{"stage"}, ExpiresIn: "30d"}
	if code, body := call(t, h, "POST", "/api/v1/tokens", admin, false, req); code != 403 || !strings.Contains(body, auth.CSRFHeader) {
		t.Fatalf("POST without the CSRF header: %d %s", code, body)
	}
	code, body := call(t, h, "POST", "/api/v1/tokens", admin, true, req)
	var created APIToken
	if err := json.Unmarshal([]byte(body), &created); code != 201 || err != nil || !strings.HasPrefix(created.Token, store.APITokenPrefix) || created.ExpiresAt == nil {
		t.Fatalf("create token: %d %s", code, body)
	}
	if code, _ := call(t, h, "POST", "/api/v1/tokens", admin, true, req); code != 409 {
		t.Errorf("a second token named ci: %d, want 409", code)
	}
	var ci List[Cluster]
	getJSON(t, h, "/api/v1/clusters", created.Token, &ci)
	if ci.Total != 1 || ci.Items[0].Name != "stage" {
		t.Errorf("the new stage-only token lists %+v", ci.Items)
	}
	if code, _ := call(t, h, "DELETE", "/api/v1/tokens/ci", admin, true, nil); code != 204 {
		t.Errorf("revoke token: %d", code)
	}
	if code, _ := call(t, h, "GET", "/api/v1/clusters", created.Token, false, nil); code != 401 {
		t.Errorf("a revoked token: %d, want 401", code)
	}
	if code, body := call(t, h, "DELETE", "/api/v1/clusters/stage/collectors/legacy", admin, true, nil); code != 204 {
		t.Errorf("admin revoking stage's collector: %d %s", code, body)
	}
	var log List[AuditEntry]
	getJSON(t, h, "/api/v1/audit", admin, &log)
	var actions []string
	for _, e := range log.Items {
		if e.Actor != "token:ops" {
			t.Errorf("audit actor %q, want token:ops", e.Actor)
		}
		actions = append(actions, e.Action+" "+e.Target)
	}
	if want := "collector.revoke uid-stage/legacy,token.revoke ci,token.create ci"; strings.Join(actions, ",") != want {
		t.Errorf("audit log %v, want %s", actions, want)
	}
}

// TestDevModeIsAnAdminButStillNeedsTheCSRFHeader: without -auth on loopback every call is the local admin, and
// a state-changing call still needs the header a cross-site form cannot send.
func TestDevModeIsAnAdminButStillNeedsTheCSRFHeader(t *testing.T) {
	h := seeded(t)
	var me Me
	getJSON(t, h, "/api/v1/me", "", &me)
	if me.Kind != auth.KindDev || me.Role != store.RoleAdmin || me.Clusters != nil || me.AuthMode != "none" {
		t.Fatalf("dev mode /me: %+v", me)
	}
	if code, _ := call(t, h, "DELETE", "/api/v1/tokens/x", "", false, nil); code != 403 {
		t.Errorf("dev mode DELETE without the CSRF header: %d, want 403", code)
	}
	if code, _ := call(t, h, "DELETE", "/api/v1/tokens/x", "", true, nil); code != 404 {
		t.Errorf("dev mode DELETE of an unknown token: %d, want 404", code)
	}
}

func getJSON(t *testing.T, h http.Handler, path, token string, into any) {
	t.Helper()
	code, body := call(t, h, "GET", path, token, false, nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), into); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func TestParseTokenRequest(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ body, want string }{
		{`{"name":"ci","role":"viewer"}`, ""},
		{`{"name":"ci","role":"admin","clusters":["prod","uid-1"],"expires_in":"90d"}`, ""},
		{`{"name":"ci","role":"root"}`, `role "root" is not viewer or admin`},
		{`{"name":"` + strings.Repeat("a", 70<<10) + `"}`, "the body is larger than 64 KiB"},
		{`{"name":"ci","ro`, "not the JSON object"},
		{`{"name":"","role":"viewer"}`, `name "" is not`},
		{`{"name":"a b","role":"viewer"}`, `name "a b" is not`},
		{`{"name":"ci","role":"viewer","clusters":[""]}`, "clusters[0] must be a cluster uid or name"},
		{`{"name":"ci","role":"viewer","expires_in":"0d"}`, `expires_in "0d" is not an age`},
		{`{"name":"ci","role":"viewer","expires_in":"soon"}`, `expires_in "soon"`},
		{`{"name":"ci","role":"viewer","admin":true}`, `unknown field "admin"`},
		{`{"name":"ci","role":"viewer"} {}`, "more than one JSON value"},
		{`[1]`, "not the JSON object"},
		{``, "not the JSON object"},
	} {
		tok, err := ParseTokenRequest(strings.NewReader(c.body), now)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.body, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.body, err, c.want)
		case c.want == "" && strings.Contains(c.body, "90d") && !tok.ExpiresAt.Equal(now.Add(90*24*time.Hour)):
			t.Errorf("%s: expires %v", c.body, tok.ExpiresAt)
		}
	}
}

func FuzzParseTokenRequest(f *testing.F) {
	f.Add(`{"name":"ci","role":"viewer","clusters":["prod"],"expires_in":"90d"}`)
	f.Add(`{"name":"x","role":"admin","clusters":null}`)
	f.Add(`{"name":"\u0000","role":"viewer"}`)
	f.Fuzz(func(t *testing.T, body string) {
		tok, err := ParseTokenRequest(strings.NewReader(body), time.Now())
		if err != nil {
			return
		}
		if !tokenNameRE.MatchString(tok.Name) || (tok.Role != store.RoleViewer && tok.Role != store.RoleAdmin) {
			t.Fatalf("accepted %q as %+v", body, tok)
		}
	})
}
