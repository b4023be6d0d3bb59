package correlate

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(`{"access_token": "tok123", "token_type": "Bearer"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"ART_TOKEN": "envtok", "REG_PW": "pw-from-env"})
	cases := []struct {
		name, yaml string
		check      func(t *testing.T, rs []Registry)
		err        string
	}{
		{"minimal oci", "registries:\n- {name: corp, kind: oci, url: registry.corp.example}", func(t *testing.T, rs []Registry) {
			r := rs[0]
			if r.BaseURL.String() != "https://registry.corp.example" || r.Host != "registry.corp.example" || r.Refresh != DefaultRefreshInterval ||
				r.Feedback || r.PageSize != DefaultPageSize || r.Limits.MaxConcurrent != DefaultConcurrency || r.Auth != (Credentials{}) {
				t.Fatalf("%+v", r)
			}
		}, ""},
		{"artifactory full", `registries:
  - name: jfrog
    kind: artifactory
    url: https://acme.jfrog.io/artifactory/
    pull_host: acme.jfrog.io
    repo_keys: [docker-local, docker-prod]
    auth: {token_file: ` + tokenFile + `}
    repositories: {include: ["team/*"], exclude: ["team/tmp-*"]}
    refresh_interval: 1h
    timeout: 5s
    page_size: 200
    max_concurrent: 2
    rate_limit: 5
    burst: 3
    feedback: true
`, func(t *testing.T, rs []Registry) {
			r := rs[0]
			if r.BaseURL.String() != "https://acme.jfrog.io/artifactory" || r.Auth.Token != "tok123" || !r.Feedback || len(r.RepoKeys) != 2 ||
				r.Refresh != time.Hour || r.Timeout != 5*time.Second || r.PageSize != 200 || r.Limits.MaxConcurrent != 2 ||
				r.Limits.RateLimit != 5 || r.Limits.Burst != 3 || r.Include[0] != "team/*" {
				t.Fatalf("%+v", r)
			}
		}, ""},
		{"token env with user", "registries:\n- {name: a, kind: artifactory, url: 'https://x.example/artifactory', repo_keys: [k], auth: {username: ci, token_env: ART_TOKEN}}",
			func(t *testing.T, rs []Registry) {
				if rs[0].Auth != (Credentials{Username: "ci", Password: "envtok"}) {
					t.Fatalf("%+v", rs[0].Auth)
				}
			}, ""},
		{"password file and env", "registries:\n- {name: a, kind: oci, url: a.example, auth: {username: u, password_file: " + pwFile + "}}\n- {name: b, kind: oci, url: 'http://127.0.0.1:5000', tls: {insecure: true}, auth: {username: u, password_env: REG_PW}}",
			func(t *testing.T, rs []Registry) {
				if rs[0].Auth.Password != "s3cret" || rs[1].Auth.Password != "pw-from-env" || rs[1].BaseURL.Scheme != "http" || rs[1].Host != "127.0.0.1:5000" {
					t.Fatalf("%+v %+v", rs[0].Auth, rs[1])
				}
			}, ""},
		{"empty list", "registries: []", func(t *testing.T, rs []Registry) {
			if len(rs) != 0 {
				t.Fatal(rs)
			}
		}, ""},
		{"empty file", "", nil, "empty"},
		{"no registries key", "foo: 1", nil, "field foo not found"},
		{"not yaml", "registries: [", nil, "not a registries file"},
		{"unknown field", "registries:\n- {name: a, kind: oci, url: a.example, colour: red}", nil, "field colour not found"},
		{"missing kind", "registries:\n- {name: a, url: a.example}", nil, "registries[0].kind: missing"},
		{"bad kind", "registries:\n- {name: a, kind: quay, url: a.example}", nil, `registries[0].kind: "quay" is not oci or artifactory`},
		{"bad name", "registries:\n- {name: Corp_1, kind: oci, url: a.example}", nil, "registries[0].name"},
		{"duplicate name", "registries:\n- {name: a, kind: oci, url: a.example}\n- {name: a, kind: oci, url: b.example}", nil, "registries[1].name: \"a\" is also registries[0]'s name"},
		{"missing url", "registries:\n- {name: a, kind: oci}", nil, "registries[0].url: missing"},
		{"oci url path", "registries:\n- {name: a, kind: oci, url: 'https://a.example/v2'}", nil, "has a path"},
		{"url creds", "registries:\n- {name: a, kind: oci, url: 'https://u:p@a.example'}", nil, "carries credentials"},
		{"ftp", "registries:\n- {name: a, kind: artifactory, repo_keys: [k], url: 'ftp://a.example'}", nil, "scheme must be https or http"},
		{"plain http", "registries:\n- {name: a, kind: oci, url: 'http://a.example'}", nil, "set tls.insecure"},
		{"artifactory without keys", "registries:\n- {name: a, kind: artifactory, url: 'https://a.example'}", nil, "registries[0].repo_keys: kind artifactory needs"},
		{"bad key", "registries:\n- {name: a, kind: artifactory, url: 'https://a.example', repo_keys: ['a/b']}", nil, "repo_keys[0]"},
		{"keys on oci", "registries:\n- {name: a, kind: oci, url: a.example, repo_keys: [k]}", nil, "only kind artifactory has repository keys"},
		{"feedback on oci", "registries:\n- {name: a, kind: oci, url: a.example, feedback: true}", nil, "registries[0].feedback: only kind artifactory"},
		{"two secrets", "registries:\n- {name: a, kind: oci, url: a.example, auth: {username: u, password: p, token_env: ART_TOKEN}}", nil, "registries[0].auth.password: set one of"},
		{"unset env", "registries:\n- {name: a, kind: oci, url: a.example, auth: {username: u, password_env: NOPE}}", nil, "auth.password_env: NOPE is empty or not set"},
		{"bad env name", "registries:\n- {name: a, kind: oci, url: a.example, auth: {token_env: 'A-B'}}", nil, "auth.token_env"},
		{"missing token file", "registries:\n- {name: a, kind: oci, url: a.example, auth: {token_file: /nonexistent/t}}", nil, "auth.token_file"},
		{"user without password", "registries:\n- {name: a, kind: oci, url: a.example, auth: {username: u}}", nil, "username is set, but no password"},
		{"password without user", "registries:\n- {name: a, kind: oci, url: a.example, auth: {password: p}}", nil, "auth.username: a password needs a username"},
		{"bad glob", "registries:\n- {name: a, kind: oci, url: a.example, repositories: {exclude: ['[']}}", nil, "repositories.exclude[0]"},
		{"bad interval", "registries:\n- {name: a, kind: oci, url: a.example, refresh_interval: soon}", nil, "refresh_interval: \"soon\""},
		{"short interval", "registries:\n- {name: a, kind: oci, url: a.example, refresh_interval: 1s}", nil, "outside 10s"},
		{"bad timeout", "registries:\n- {name: a, kind: oci, url: a.example, timeout: 1h}", nil, "timeout: 1h0m0s is outside"},
		{"bad page size", "registries:\n- {name: a, kind: oci, url: a.example, page_size: -1}", nil, "page_size: -1"},
		{"negative limit", "registries:\n- {name: a, kind: oci, url: a.example, max_concurrent: -1}", nil, "registries[0].max_concurrent"},
		{"missing ca", "registries:\n- {name: a, kind: oci, url: a.example, tls: {ca_file: /nonexistent/ca.pem}}", nil, "tls.ca_file"},
		{"bad pull host", "registries:\n- {name: a, kind: oci, url: a.example, pull_host: 'a.example/x'}", nil, "pull_host"},
		{"several errors", "registries:\n- {name: a, kind: oci}\n- {name: b, kind: x, url: b.example}", nil, "registries[1].kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, err := Parse([]byte(c.yaml), getenv)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v; want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, rs)
		})
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte("registries:\n- {name: a, kind: oci, url: a.example}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rs, err := LoadFile(p, env(nil)); err != nil || len(rs) != 1 {
		t.Fatal(rs, err)
	}
	if _, err := LoadFile(p+".missing", env(nil)); err == nil || !strings.Contains(err.Error(), "registries file") {
		t.Fatal(err)
	}
}

// FuzzParse: any file either parses into registries that hold the invariants, or is refused with an error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "registries: []", "registries:\n- {name: a, kind: oci, url: a.example}",
		"registries:\n- {name: a, kind: artifactory, url: 'https://a.example/artifactory', repo_keys: [k], feedback: true, auth: {token_env: T}}",
		"registries:\n- {name: a, kind: oci, url: 'http://[::1]:5000', tls: {insecure: true}, refresh_interval: 1m}",
		"registries:\n- name: a\n  kind: oci\n  url: a.example\n  repositories: {include: ['*/x']}", "registries: {a: 1}", "- a", "registries:\n- null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := Parse([]byte(s), env(map[string]string{"T": "tok"}))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		names := map[string]bool{}
		for _, r := range rs {
			if !nameRE.MatchString(r.Name) || names[r.Name] {
				t.Fatalf("name %q", r.Name)
			}
			names[r.Name] = true
			if r.Kind != KindOCI && r.Kind != KindArtifactory {
				t.Fatalf("kind %q", r.Kind)
			}
			if r.BaseURL == nil || (r.BaseURL.Scheme != "https" && r.BaseURL.Scheme != "http") || r.Host == "" {
				t.Fatalf("url %v host %q", r.BaseURL, r.Host)
			}
			if r.Feedback && r.Kind != KindArtifactory {
				t.Fatal("feedback on a plain OCI registry")
			}
			if r.Refresh < MinRefreshInterval || r.PageSize < 1 || r.Limits.MaxConcurrent < 1 || r.Timeout <= 0 {
				t.Fatalf("limits %+v", r)
			}
		}
	})
}

func TestNextLink(t *testing.T) {
	req, _ := url.Parse("https://reg.example/v2/_catalog?n=2")
	cases := []struct{ header, want, err string }{
		{"", "", ""},
		{`</v2/_catalog?last=b&n=2>; rel="next"`, "https://reg.example/v2/_catalog?last=b&n=2", ""},
		{`<https://reg.example/v2/_catalog?last=b&n=2>; rel=next`, "https://reg.example/v2/_catalog?last=b&n=2", ""},
		{`<?last=c>;rel="next"`, "https://reg.example/v2/_catalog?last=c", ""},
		{`</v2/x?a=1>; rel="prev", </v2/x?a=2>; rel="next"`, "https://reg.example/v2/x?a=2", ""},
		{`</v2/x?a=1>; title="a, b; c"; rel="last next"`, "https://reg.example/v2/x?a=1", ""},
		{`</v2/x?a=1>; rel="prev"`, "", ""},
		{`</v2/x?a=1>; REL="Next"`, "https://reg.example/v2/x?a=1", ""},
		{`</v2/x#frag>; rel="next"`, "https://reg.example/v2/x", ""},
		{`</v2/x>; rel; rel="next"`, "https://reg.example/v2/x", ""},
		{`<https://evil.example/v2/_catalog>; rel="next"`, "", "leaves https://reg.example"},
		{`<http://reg.example/v2/_catalog>; rel="next"`, "", "leaves"},
		{`<https://u:p@reg.example/v2/_catalog>; rel="next"`, "", "carries credentials"},
		{`/v2/_catalog; rel="next"`, "", "starts with '<'"},
		{`</v2/_catalog; rel="next"`, "", "no '>'"},
		{`</v2/_catalog> rel="next"`, "", "want ';' or ','"},
		{`</v2/_catalog>; rel="next`, "", "not closed"},
		{`<%zz>; rel="next"`, "", "next URL"},
		{"<" + strings.Repeat("a", maxLinkHeader) + ">", "", "more than"},
	}
	for _, c := range cases {
		got, err := NextLink(c.header, req)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v; want %q", c.header, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.header, err)
			continue
		}
		if s := ""; got != nil {
			s = got.String()
			if s != c.want {
				t.Errorf("%q: %s; want %s", c.header, s, c.want)
			}
		} else if c.want != "" {
			t.Errorf("%q: no next; want %s", c.header, c.want)
		}
	}
}

// FuzzNextLink: whatever the header, a next link never leaves the registry's scheme and host.
func FuzzNextLink(f *testing.F) {
	for _, s := range []string{`</v2/_catalog?last=b&n=2>; rel="next"`, `<//evil.example/x>; rel=next`, `<a>;rel="\"next"`,
		`<https://reg.example:443/x>; rel=next`, `<>;rel=next`, `<x>, <y>; rel=next`, `<\x00>; rel=next`} {
		f.Add(s)
	}
	req, _ := url.Parse("https://reg.example/v2/repo/tags/list?n=100")
	f.Fuzz(func(t *testing.T, h string) {
		next, err := NextLink(h, req)
		if err != nil || next == nil {
			return
		}
		if next.Scheme != "https" || !strings.EqualFold(next.Host, "reg.example") || next.User != nil {
			t.Fatalf("%q → %s", h, next)
		}
	})
}

func TestParseNameList(t *testing.T) {
	cases := []struct {
		body, field string
		want        int
		err         string
	}{
		{`{"repositories": ["a", "b/c"]}`, "repositories", 2, ""},
		{`{"name": "a", "tags": ["1", "latest"]}`, "tags", 2, ""},
		{`{"name": "a", "tags": null}`, "tags", 0, ""},
		{`{"name": "a"}`, "tags", 0, `no "tags" list`},
		{`{"tags": "1"}`, "tags", 0, "not a list of strings"},
		{`{"tags": [1]}`, "tags", 0, "not a list of strings"},
		{`{"tags": [""]}`, "tags", 0, `tags[0] "" is not a name`},
		{`{"tags": ["a\nb"]}`, "tags", 0, "is not a name"},
		{`[]`, "tags", 0, "not a JSON object"},
		{`<html>`, "tags", 0, "not a JSON object"},
	}
	for _, c := range cases {
		got, err := ParseNameList(strings.NewReader(c.body), c.field)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v; want %q", c.body, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != c.want {
			t.Errorf("%s: %v %v", c.body, got, err)
		}
	}
}

func FuzzParseNameList(f *testing.F) {
	for _, s := range []string{`{"repositories": ["a"]}`, `{"tags": null}`, `{"tags": ["a", "b"]}`, `{}`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		names, err := ParseNameList(strings.NewReader(body), "tags")
		if err != nil {
			return
		}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, "\x00\n\r") {
				t.Fatalf("name %q", n)
			}
		}
	})
}

func TestPropertiesParam(t *testing.T) {
	got := PropertiesParam([][2]string{{PropLastSeen, "2026-03-10T12:00:00Z"}, {PropNodes, "3"}},
		map[string][]string{PropClusters: {"prod", "a,b;c=d|e\\f"}})
	want := "runtrust.last_seen=2026-03-10T12%3A00%3A00Z;runtrust.nodes=3;runtrust.clusters=prod,a%5C%2Cb%5C%3Bc%5C%3Dd%5C%7Ce%5C%5Cf"
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}
