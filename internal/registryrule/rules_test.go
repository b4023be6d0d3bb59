package registryrule

import (
	"strings"
	"testing"
)

func TestParseRegistryRule(t *testing.T) {
	tests := []struct {
		in       string
		wildcard bool // allowWildcard
		want     Rule
		wantErr  string
	}{
		{in: "registry.corp", want: Rule{Host: "registry.corp"}},
		{in: "Registry.Corp", want: Rule{Host: "registry.corp"}},
		{in: "registry.corp:5000", want: Rule{Host: "registry.corp", Port: "5000"}},
		{in: "localhost:5000", want: Rule{Host: "localhost", Port: "5000"}},
		{in: "ghcr.io/acme", want: Rule{Host: "ghcr.io", PathPrefix: "acme"}},
		{in: "ghcr.io/acme/team-a/sub_1.x", want: Rule{Host: "ghcr.io", PathPrefix: "acme/team-a/sub_1.x"}},
		{in: "*.corp.example", wildcard: true, want: Rule{Host: "corp.example", Wildcard: true}},
		{in: "*.corp.example:8443/team", wildcard: true, want: Rule{Host: "corp.example", Wildcard: true, Port: "8443", PathPrefix: "team"}},
		{in: "index.docker.io", want: Rule{Host: "docker.io"}},
		{in: "registry-1.docker.io/library", want: Rule{Host: "docker.io", PathPrefix: "library"}},
		{in: "[::1]:5000", want: Rule{Host: "::1", Port: "5000"}},
		{in: "[2001:db8::1]", want: Rule{Host: "2001:db8::1"}},
		{in: "10.0.0.1:5000/x", want: Rule{Host: "10.0.0.1", Port: "5000", PathPrefix: "x"}},

		{in: "", wantErr: "empty entry"},
		{in: " registry.corp", wantErr: "leading or trailing space"},
		{in: "https://registry.corp", wantErr: "URL scheme"},
		{in: "registry.corp/app@sha256:abc", wantErr: "has a digest"},
		{in: "registry.corp/", wantErr: "ends with '/'"},
		{in: "*.corp.example", wantErr: "wildcard is not allowed here"},
		{in: "registry.*.example", wildcard: true, wantErr: "first label"},
		{in: "*corp.example", wildcard: true, wantErr: "first label"},
		{in: "*.example", wildcard: true, wantErr: "at least two labels"},
		{in: "registry.corp:0", wantErr: "port \"0\""},
		{in: "registry.corp:65536", wantErr: "port \"65536\""},
		{in: "registry.corp:05000", wantErr: "port \"05000\""},
		{in: "registry.corp:http", wantErr: "port \"http\""},
		{in: "registry..corp", wantErr: "empty label"},
		{in: "-registry.corp", wantErr: "starts or ends with '-'"},
		{in: "registry_corp.example", wantErr: "invalid character '_'"},
		{in: "ghcr.io/Acme", wantErr: "must be lowercase"},
		{in: "ghcr.io/acme//x", wantErr: "empty component"},
		{in: "ghcr.io/ac me", wantErr: "invalid character ' '"},
		{in: "[::1", wantErr: "without closing"},
		{in: "[]:5000", wantErr: "empty IPv6"},
		{in: "[::g]", wantErr: "invalid character 'g' in IPv6"},
		{in: "[::1]x", wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in, tt.wildcard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tt.want.Text = tt.in
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRuleMatches(t *testing.T) {
	tests := []struct {
		rule       string
		registry   string
		repository string
		want       bool
	}{
		{"registry.corp", "registry.corp", "app", true},
		{"registry.corp", "registry.corp:5000", "app", false},
		{"registry.corp", "evil-registry.corp", "app", false},
		{"registry.corp", "registry.corp.evil", "app", false},
		{"registry.corp:5000", "registry.corp:5000", "a/b", true},
		{"registry.corp:5000", "registry.corp", "a/b", false},
		{"registry.corp:5000", "registry.corp:5001", "a/b", false},
		{"ghcr.io/acme", "ghcr.io", "acme", true},
		{"ghcr.io/acme", "ghcr.io", "acme/app", true},
		{"ghcr.io/acme", "ghcr.io", "acme-evil/app", false},
		{"ghcr.io/acme", "ghcr.io", "other/acme", false},
		{"ghcr.io/acme/team", "ghcr.io", "acme/app", false},
		{"*.corp.example", "a.corp.example", "x", true},
		{"*.corp.example", "a.b.corp.example", "x", true},
		{"*.corp.example", "corp.example", "x", false},
		{"*.corp.example", "evilcorp.example", "x", false},
		{"*.corp.example", "a.corp.example:5000", "x", false},
		{"*.corp.example:5000/team", "a.corp.example:5000", "team/x", true},
		{"*.corp.example:5000/team", "a.corp.example:5000", "other/x", false},
		{"index.docker.io", "docker.io", "library/nginx", true},
		{"docker.io/library", "docker.io", "library/nginx", true},
		{"docker.io/library", "docker.io", "bitnami/nginx", false},
		{"[::1]:5000", "[::1]:5000", "app", true},
		{"[::1]:5000", "[::1]", "app", false},
	}
	for _, tt := range tests {
		t.Run(tt.rule+"~"+tt.registry+"/"+tt.repository, func(t *testing.T) {
			r, err := Parse(tt.rule, true)
			if err != nil {
				t.Fatal(err)
			}
			host, port, err := SplitHostPort(tt.registry)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Matches(host, port, tt.repository); got != tt.want {
				t.Fatalf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseRegistryRule checks that any accepted rule is stable: writing it back as a registry and path and
// parsing that again gives the same rule, and that a rule always matches its own registry and prefix.
func FuzzParseRegistryRule(f *testing.F) {
	for _, s := range []string{"registry.corp", "registry.corp:5000/a/b", "*.corp.example", "[::1]:5000", "ghcr.io/acme", "index.docker.io", "", "a:b:c", "[x]", "*.*.a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s, true)
		if err != nil {
			if len(err.Error()) > 3*len(s)+200 {
				t.Fatalf("error longer than needed: %d bytes for %d input bytes", len(err.Error()), len(s))
			}
			return
		}
		again := r.Registry()
		if r.Wildcard {
			again = "*." + again
		}
		if r.PathPrefix != "" {
			again += "/" + r.PathPrefix
		}
		r2, err := Parse(again, true)
		if err != nil {
			t.Fatalf("%q accepted, but its canonical form %q is not: %v", s, again, err)
		}
		r2.Text = r.Text
		if r2 != r {
			t.Fatalf("%q → %+v, canonical %q → %+v", s, r, again, r2)
		}
		if !r.Wildcard {
			host, port, err := SplitHostPort(r.Registry())
			if err != nil || !r.Matches(host, port, r.PathPrefix+"/x") {
				t.Fatalf("rule %q does not match its own registry %q", s, r.Registry())
			}
		}
	})
}
