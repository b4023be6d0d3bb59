package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/runtrust/runtrust/internal/oidctest"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// signInStack is the API and sign-in on a loopback HTTP server, signing in at a real OIDC provider.
type signInStack struct {
	url   string // the service's base URL
	store *store.Store
}

func startSignIn(t *testing.T, users []oidctest.User, bindings []auth.Binding) signInStack {
	t.Helper()
	s := seeded(t).store
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	op := oidctest.Start(t, oidctest.Options{ClientID: "runtrust", ClientSecret: "s3cret",
		RedirectURIs: []string{base + auth.CallbackPath}, Users: users})
	cfg, err := auth.ParseOIDC([]byte(`
issuer: `+op.Issuer+`
client_id: runtrust
client_secret_env: SECRET
redirect_url: `+base+auth.CallbackPath+`
bindings: [{subject: placeholder, role: viewer}]
`), func(string) string { return "s3cret" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bindings = bindings
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.Handle("/api/", New(s, log, auth.New(s, auth.ModeTokens)))
	auth.NewSignIn(cfg, s, log).Register(mux)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return signInStack{url: base, store: s}
}

// browser is a client with a cookie jar that follows redirects, as a browser does.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// signIn goes through the whole flow: the service's /auth/login, the provider's login form, its callback to the
// service; it returns the last answer (the return_to page) and its body.
func signIn(t *testing.T, c *http.Client, base, returnTo, username, password string) (*http.Response, string) {
	t.Helper()
	resp, body := do(t, c, "GET", base+auth.LoginPath+"?return_to="+url.QueryEscape(returnTo), nil, nil)
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != 200 || id == "" || !strings.Contains(body, `name="password"`) {
		t.Fatalf("the login did not reach the provider's form: %d %s %s", resp.StatusCode, resp.Request.URL, body)
	}
	form := url.Values{"id": {id}, "username": {username}, "password": {password}}
	login := resp.Request.URL.Scheme + "://" + resp.Request.URL.Host + "/login/username"
	return do(t, c, "POST", login, strings.NewReader(form.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

func do(t *testing.T, c *http.Client, method, u string, body io.Reader, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSignInWithOIDC: users sign in at a real OIDC provider (authorization code + PKCE); the bindings give the
// admin every cluster and the viewer one; a viewer cannot revoke; someone without a binding gets no session; a
// callback works once and only in the browser that started it; signing out needs the session's CSRF token.
func TestSignInWithOIDC(t *testing.T) {
	users := []oidctest.User{
		{ID: "u-alice", Username: "alice", Password: "pw-alice", Email: "alice@example.com", EmailVerified: true},
		{ID: "u-bob", Username: "bob", Password: "pw-bob", Email: "bob@example.com", EmailVerified: true},
		{ID: "u-carol", Username: "carol", Password: "pw-carol", Email: "carol@elsewhere.org", EmailVerified: true},
		{ID: "u-mallory", Username: "mallory", Password: "pw-mallory", Email: "alice@example.com", EmailVerified: false},
	}
	st := startSignIn(t, users, []auth.Binding{
		{Email: "alice@example.com", Role: store.RoleAdmin},
		{EmailDomain: "example.com", Role: store.RoleViewer, Clusters: []string{"prod"}},
	})

	alice := browser(t)
	resp, body := signIn(t, alice, st.url, "/api/v1/me", "alice", "pw-alice")
	var me Me
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &me) != nil {
		t.Fatalf("alice's sign-in ended %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	if me.Kind != auth.KindUser || me.Name != "alice@example.com" || me.Role != store.RoleAdmin || me.Clusters != nil || me.CSRFToken == nil {
		t.Fatalf("alice is %+v", me)
	}
	if r, b := do(t, alice, "GET", st.url+"/api/v1/tokens", nil, nil); r.StatusCode != 200 {
		t.Errorf("alice (admin) lists tokens: %d %s", r.StatusCode, b)
	}

	bob := browser(t)
	if r, b := signIn(t, bob, st.url, "/api/v1/images", "bob", "pw-bob"); r.StatusCode != 200 {
		t.Fatalf("bob's sign-in: %d %s", r.StatusCode, b)
	} else {
		var imgs List[Image]
		if err := json.Unmarshal([]byte(b), &imgs); err != nil || imgs.Total == 0 || imgs.Items[0].BlastRadius.Clusters != 1 {
			t.Errorf("bob (viewer of prod) sees %s", b)
		}
	}
	_, b := do(t, bob, "GET", st.url+"/api/v1/me", nil, nil)
	var bobMe Me
	_ = json.Unmarshal([]byte(b), &bobMe)
	if bobMe.Role != store.RoleViewer || len(bobMe.Clusters) != 1 || bobMe.CSRFToken == nil {
		t.Fatalf("bob is %s", b)
	}
	r, b := do(t, bob, "DELETE", st.url+"/api/v1/clusters/uid-prod/collectors/c1", nil, http.Header{auth.CSRFHeader: {*bobMe.CSRFToken}})
	if r.StatusCode != 403 || !strings.Contains(b, "needs the admin role") {
		t.Errorf("bob revokes a collector: %d %s, want 403", r.StatusCode, b)
	}

	for _, c := range []struct{ user, want string }{
		{"carol", "no binding in the service's OIDC file gives you a role"},
		{"mallory", "no binding"}, // alice's email, unverified: neither binding matches
	} {
		cl := browser(t)
		r, b := signIn(t, cl, st.url, "/api/v1/me", c.user, "pw-"+c.user)
		if r.StatusCode != 403 || !strings.Contains(b, c.want) {
			t.Errorf("%s: %d %s, want 403 saying %q", c.user, r.StatusCode, b, c.want)
		}
		if r, _ := do(t, cl, "GET", st.url+"/api/v1/me", nil, nil); r.StatusCode != 401 {
			t.Errorf("%s has a session after a refused sign-in: %d", c.user, r.StatusCode)
		}
	}

	// The provider's redirect to the callback, caught: replayed in another browser, then twice in this one.
	eve := browser(t)
	eve.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == auth.CallbackPath {
			return http.ErrUseLastResponse
		}
		return nil
	}
	r, _ = signIn(t, eve, st.url, "/", "bob", "pw-bob")
	callback := r.Header.Get("Location")
	if !strings.Contains(callback, auth.CallbackPath+"?") {
		t.Fatalf("no redirect to the callback: %d %v", r.StatusCode, r.Header)
	}
	if r, b := do(t, browser(t), "GET", callback, nil, nil); r.StatusCode != 400 || !strings.Contains(b, "not started in this browser") {
		t.Errorf("a callback in another browser: %d %s", r.StatusCode, b)
	}
	eve.CheckRedirect = nil
	if r, b := do(t, eve, "GET", callback, nil, nil); r.StatusCode != 404 && r.StatusCode != 200 {
		t.Errorf("the callback in its own browser: %d %s", r.StatusCode, b) // it goes on to "/", which this mux lacks
	}
	if r, b := do(t, eve, "GET", st.url+"/api/v1/me", nil, nil); r.StatusCode != 200 {
		t.Errorf("eve's own sign-in has no session: %d %s", r.StatusCode, b)
	}

	if r, b := do(t, alice, "POST", st.url+auth.LogoutPath, nil, nil); r.StatusCode != 403 {
		t.Errorf("sign-out without the CSRF token: %d %s", r.StatusCode, b)
	}
	if r, b := do(t, alice, "POST", st.url+auth.LogoutPath, nil, http.Header{auth.CSRFHeader: {*me.CSRFToken}}); r.StatusCode != 204 {
		t.Errorf("sign-out: %d %s", r.StatusCode, b)
	}
	if r, _ := do(t, alice, "GET", st.url+"/api/v1/me", nil, nil); r.StatusCode != 401 {
		t.Errorf("alice is still signed in after signing out: %d", r.StatusCode)
	}
}

// TestSignInProviderDown: a provider that cannot be reached makes /auth/login a clear 503, not a redirect.
func TestSignInProviderDown(t *testing.T) {
	s := seeded(t).store
	cfg, err := auth.ParseOIDC([]byte(`
issuer: http://127.0.0.1:1/
client_id: runtrust
client_secret_env: SECRET
redirect_url: http://127.0.0.1:8080/auth/callback
bindings: [{group: sre, role: viewer}]
`), func(string) string { return "x" })
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	auth.NewSignIn(cfg, s, slog.New(slog.NewTextHandler(io.Discard, nil))).Register(mux)
	code, body := call(t, mux, "GET", auth.LoginPath, "", false, nil)
	if code != 503 || !strings.Contains(body, "cannot be reached") {
		t.Errorf("%d %s", code, body)
	}
}
