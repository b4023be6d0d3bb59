package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runtrust/runtrust/internal/browsertest"
	"github.com/runtrust/runtrust/internal/loopback"
	"github.com/runtrust/runtrust/internal/oidctest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// freePort returns a loopback port nothing listens on now (internal/loopback): the provider must know the
// service's callback URL before the service starts.
func freePort(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(loopback.TestPort(t))
}

// signInAs goes from the page's sign-in prompt through the provider's login form and back to the images view.
func signInAs(t *testing.T, ctx context.Context, base, username, password string) {
	t.Helper()
	open(t, ctx, base+"/#/images", "signin")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`main a[data-signin]`)),
		chromedp.WaitVisible(chromedp.CSS(`#password`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), username),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitReady(chromedp.CSS(`main[data-ready="images"]`))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 1000)`))
		t.Fatalf("signing in as %s: %v\npage:\n%s", username, err, body)
	}
}

// TestBrowserSignIn: with -auth tokens and an OIDC file the page asks to sign in; an admin signs in at a real
// OIDC provider and sees every cluster; after signing out, a viewer bound to one cluster sees only it and the
// service refuses them a revocation; an API token restricted to one cluster sees only it too.
func TestBrowserSignIn(t *testing.T) {
	addr := freePort(t)
	base := "http://" + addr
	op := oidctest.Start(t, oidctest.Options{ClientID: "runtrust", ClientSecret: "ui-test-secret",
		RedirectURIs: []string{base + "/auth/callback"}, Users: []oidctest.User{
			{ID: "u-alice", Username: "alice", Password: "alice-pw", Email: "alice@example.com", EmailVerified: true},
			{ID: "u-bob", Username: "bob", Password: "bob-pw", Email: "bob@example.com", EmailVerified: true},
		}})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("ui-test-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	oidcFile := filepath.Join(dir, "oidc.yaml")
	if err := os.WriteFile(oidcFile, []byte(fmt.Sprintf(`issuer: %s
client_id: runtrust
client_secret_file: %s
redirect_url: %s/auth/callback
bindings:
  - {email: alice@example.com, role: admin}
  - {email: bob@example.com, role: viewer, clusters: [edge]}
`, op.Issuer, filepath.Join(dir, "secret"), base)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startService(t, 2, "-http-listen", addr, "-auth", "tokens", "-oidc-file", oidcFile)
	seedEstate(t, s)

	// Refused API calls (401 before signing in, 403 for the viewer) show as network errors in the console.
	ctx := browsertest.Start(t, 3*time.Minute, func(m chromedp.ConsoleMessage) bool {
		// The provider's login page has no favicon: Chromium's request for one is a 404.
		return m.Source == "network" && (strings.Contains(m.Text, "401") || strings.Contains(m.Text, "403") || strings.HasSuffix(m.URL, "/favicon.ico"))
	})

	signInAs(t, ctx, base, "alice", "alice-pw")
	if who := eval[string](t, ctx, `document.getElementById('who').innerText`); !strings.Contains(who, "alice@example.com · admin · every cluster") {
		t.Errorf("the header says %q for alice", who)
	}
	all := eval[int](t, ctx, `document.querySelectorAll('table.images tbody tr').length`)
	if all != 6 {
		t.Errorf("alice sees %d images, want the 6 seeded", all)
	}
	screenshot(t, ctx, "signed-in-admin")

	redraw(t, ctx, "signin", chromedp.Click(chromedp.CSS(`#who button`)))
	signInAs(t, ctx, base, "bob", "bob-pw")
	if who := eval[string](t, ctx, `document.getElementById('who').innerText`); !strings.Contains(who, "bob@example.com · viewer · clusters edge") {
		t.Errorf("the header says %q for bob", who)
	}
	open(t, ctx, base+"/#/clusters", "clusters")
	if text := eval[string](t, ctx, `document.querySelector('main').innerText`); strings.Contains(text, "prod") || !strings.Contains(text, "edge") {
		t.Errorf("bob (edge only) sees in the clusters view:\n%s", text)
	}
	// The page offers a viewer no revocation; the service refuses one made by hand with the session's token.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(async () => {
		const me = await (await fetch('/api/v1/me')).json();
		const r = await fetch('/api/v1/clusters/uid-edge/collectors/controller', {method: 'DELETE', headers: {'X-CSRF-Token': me.csrf_token}});
		return r.status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusForbidden {
		t.Errorf("bob's revocation answered %d, want 403", status)
	}

	// An API token restricted to edge (made as the CLI does) sees edge alone.
	st, err := store.Open(context.Background(), s.dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret, err := st.CreateAPIToken(context.Background(), store.APIToken{Name: "edge-dash", Role: store.RoleViewer, Clusters: []string{"edge"}, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/clusters with the edge-only token: %d %v", resp.StatusCode, err)
	}
	var names []string
	for _, c := range page.Items {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"edge"}) {
		t.Errorf("the edge-only token sees clusters %v", names)
	}
}
