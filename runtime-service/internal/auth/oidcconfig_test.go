package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodOIDC = `
issuer: https://idp.example.com/realms/ops
client_id: runtrust
client_secret_env: RT_SECRET
redirect_url: https://runtrust.example.com/auth/callback
bindings:
  - {email: Alice@Example.com, role: admin}
  - {group: sre, role: viewer, clusters: [prod-eu]}
  - {email_domain: example.com, role: viewer}
`

func env(name string) string {
	if name == "RT_SECRET" {
		return "s3cret"
	}
	return ""
}

func TestParseOIDC(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	with := func(old, new string) string { return strings.Replace(goodOIDC, old, new, 1) }
	for _, c := range []struct{ name, yaml, want string }{
		{"good", goodOIDC, ""},
		{"empty", "", "empty"},
		{"not yaml", "{", "not an OIDC file"},
		{"unknown key", goodOIDC + "colour: blue\n", "field colour not found"},
		{"no issuer", with("issuer: https://idp.example.com/realms/ops", ""), "issuer: missing"},
		{"http issuer", with("https://idp.example.com/realms/ops", "http://idp.example.com/"), "must be https"},
		{"http loopback issuer", with("https://idp.example.com/realms/ops", "http://127.0.0.1:5556/"), ""},
		{"relative issuer", with("https://idp.example.com/realms/ops", "/realms"), "not an absolute URL"},
		{"no client id", with("client_id: runtrust", ""), "client_id: missing"},
		{"no secret", with("client_secret_env: RT_SECRET", ""), "client secret: missing"},
		{"unset secret env", with("RT_SECRET", "NOPE"), "$NOPE is empty or unset"},
		{"secret file", with("client_secret_env: RT_SECRET", "client_secret_file: "+secretFile), ""},
		{"missing secret file", with("client_secret_env: RT_SECRET", "client_secret_file: /nonexistent/secret"), "no such file"},
		{"both secrets", with("client_secret_env: RT_SECRET", "client_secret_env: RT_SECRET\nclient_secret_file: "+secretFile), "not both"},
		{"redirect path", with("/auth/callback", "/callback"), "the path must be /auth/callback"},
		{"scopes without openid", goodOIDC + "scopes: [email]\n", `must include "openid"`},
		{"bad scope", goodOIDC + "scopes: [openid, \"a b\"]\n", "is not a scope"},
		{"session ttl", goodOIDC + "session_ttl: 8h\n", ""},
		{"session ttl too long", goodOIDC + "session_ttl: 9000h\n", "session_ttl: 9000h is not from 1m"},
		{"session ttl not a duration", goodOIDC + "session_ttl: soon\n", "session_ttl"},
		{"ca file missing", goodOIDC + "ca_file: /nonexistent/ca.pem\n", "ca_file"},
		{"no bindings", strings.Split(goodOIDC, "bindings:")[0], "bindings: missing"},
		{"two matchers", with("{email: Alice@Example.com, role: admin}", "{email: a@b.c, group: g, role: admin}"), "bindings[0]: give exactly one"},
		{"no matcher", with("{email: Alice@Example.com, role: admin}", "{role: admin}"), "bindings[0]: give exactly one"},
		{"bad role", with("role: admin", "role: root"), `bindings[0]: role "root" is not viewer or admin`},
		{"empty clusters", with("clusters: [prod-eu]", "clusters: []"), "bindings[1]: clusters: an empty list"},
		{"blank cluster", with("clusters: [prod-eu]", `clusters: [" "]`), "bindings[1]: clusters[0] is empty"},
		{"email without @", with("Alice@Example.com", "alice"), "has no @"},
		{"domain with @", with("email_domain: example.com", "email_domain: \"@example.com\""), "without @"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseOIDC([]byte(c.yaml), env)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one saying %q", err, c.want)
			case c.want == "" && (cfg.ClientSecret == "" || cfg.SessionTTL < time.Minute || cfg.Scopes[0] != "openid" || cfg.GroupsClaim != "groups"):
				t.Fatalf("defaults not set: %+v", cfg)
			}
		})
	}
}

func TestBind(t *testing.T) {
	cfg, err := ParseOIDC([]byte(goodOIDC), env)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		id       Identity
		role     string
		clusters int
	}{
		{"email, any case", Identity{Subject: "1", Email: "alice@EXAMPLE.com", EmailVerified: true}, "admin", 0},
		{"email unverified falls to nothing", Identity{Subject: "1", Email: "alice@example.com"}, "", 0},
		{"group before domain", Identity{Subject: "2", Email: "bob@example.com", EmailVerified: true, Groups: []string{"dev", "sre"}}, "viewer", 1},
		{"domain", Identity{Subject: "3", Email: "carol@example.com", EmailVerified: true}, "viewer", 0},
		{"a lookalike domain", Identity{Subject: "4", Email: "eve@evilexample.com", EmailVerified: true}, "", 0},
		{"subdomain is not the domain", Identity{Subject: "5", Email: "eve@x.example.com", EmailVerified: true}, "", 0},
		{"nothing", Identity{Subject: "6"}, "", 0},
	} {
		b, ok := cfg.Bind(c.id)
		if ok != (c.role != "") || b.Role != c.role || len(b.Clusters) != c.clusters {
			t.Errorf("%s: bound %v to %+v, want role %q with %d clusters", c.name, ok, b, c.role, c.clusters)
		}
	}
}

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "/",
		"/":                             "/",
		"/images?verdict=stale_tag":     "/images?verdict=stale_tag",
		"//evil.example/":               "/",
		"/\\evil.example/":              "/",
		"https://evil.example/":         "/",
		"images":                        "/",
		"/a\r\nSet-Cookie: x":           "/",
		"/" + strings.Repeat("a", 3000): "/",
	} {
		if got := SafeReturn(in); got != want {
			t.Errorf("SafeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseOIDC(f *testing.F) {
	f.Add([]byte(goodOIDC))
	f.Add([]byte("bindings: [{email: x}]"))
	f.Add([]byte("issuer: http://[::1]:1/\nredirect_url: http://localhost/auth/callback"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseOIDC(data, env)
		if err != nil {
			return
		}
		// What parses is usable: a secret, a role for every binding, the callback path.
		if cfg.ClientSecret == "" || len(cfg.Bindings) == 0 || !strings.HasSuffix(cfg.RedirectURL, CallbackPath) {
			t.Fatalf("accepted an unusable config: %+v", cfg)
		}
		for _, b := range cfg.Bindings {
			if b.Role != "viewer" && b.Role != "admin" {
				t.Fatalf("accepted role %q", b.Role)
			}
		}
	})
}

func FuzzSafeReturn(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "https://x", "/ok?a=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := SafeReturn(v)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("SafeReturn(%q) = %q leaves the service", v, got)
		}
	})
}
