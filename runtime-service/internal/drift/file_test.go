package drift

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseFile(t *testing.T) {
	r, err := ParseFile([]byte("rules:\n  - {image: 'registry.example.com/ci/*'}\n  - path: /tmp/go-build**\nseverity: {added: medium}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.AllowImages, []string{"registry.example.com/ci/*"}) || !slices.Equal(r.AllowPaths, []string{"/tmp/go-build**"}) ||
		r.Severity[Added] != "medium" {
		t.Fatalf("%+v", r)
	}
	if r, err := ParseFile([]byte(`{"rules": []}`)); err != nil || len(r.AllowImages)+len(r.AllowPaths) != 0 {
		t.Fatalf("JSON, no rules: %+v %v", r, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"severity: {added: low}\n", "rules: missing"},
		{"rules:\n  - {image: a, path: b}\n", "rules[0]: want exactly one of image"},
		{"rules:\n  - {}\n", "rules[0]: want exactly one"},
		{"rules:\n  - {path: \"a\\nb\"}\n", `rules[0].path "a\nb": holds a NUL or newline`},
		{"rules:\n  - {repo: x}\n", "field repo not found"},
		{"rules: []\nseverity: {in_image: high}\n", "not modified, added or memory"},
		{"rules: []\nseverity: {added: urgent}\n", `"urgent"`},
		{"rules: [" + strings.Repeat("{path: /x},", MaxRules+1) + "]\n", "at most 1000"},
	} {
		if _, err := ParseFile([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFile(%q) = %v, want an error saying %s", tc.in, err, tc.want)
		}
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "drift.yaml")
	if err := os.WriteFile(p, []byte("rules:\n  - {path: '/opt/plugins/**'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if j := pol.Judge(Added, nil, "/opt/plugins/a/b"); j.AllowedBy != "path /opt/plugins/**" {
		t.Errorf("%+v", j)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "drift file: open") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(p, []byte("rules: [{image: ''}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), "drift file "+p+": rules[0]") {
		t.Errorf("bad file: %v", err)
	}
}

// FuzzParseFile: any input parses into rules that compile, or is an error; nothing panics.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{"rules: []\n", "rules:\n  - {image: 'a/*'}\n  - {path: '/tmp/**'}\nseverity: {added: low}\n",
		`{"rules": [{"path": "/x"}]}`, "rules: [{image: a, path: b}]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseFile(in)
		if err != nil {
			return
		}
		if _, err := Compile(r); err != nil {
			t.Fatalf("ParseFile accepted rules Compile refuses: %v", err)
		}
	})
}
