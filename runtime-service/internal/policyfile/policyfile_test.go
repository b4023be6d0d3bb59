package policyfile

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

type testFile struct {
	Rules *[]struct {
		Name string `yaml:"name"`
	} `yaml:"rules"`
}

func TestDecodeAndRules(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"rules: [{name: a}]", ""},
		{"rules: []", ""},
		{`{"rules": [{"name": "a"}]}`, ""},
		{"", "empty"},
		{"rules: [{name: a, colour: red}]", "not a test policy"},
		{"rulez: []", "not a test policy"},
		{"other: 1\n", "not a test policy"},
		{"rules: [{name: a}, {name: b}, {name: c}]", "rules: 3 rules, at most 2"},
		{"# only a comment\n", "empty"},
		{strings.Repeat(" ", 200), "larger than 100 bytes"},
	} {
		var f testFile
		err := Decode([]byte(tc.in), 100, "test policy", &f)
		if err == nil {
			err = Rules(f.Rules, 2)
		}
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
	var f testFile
	if err := Decode([]byte("{}"), 100, "test policy", &f); err != nil {
		t.Fatal(err)
	}
	if err := Rules(f.Rules, 2); err == nil || !strings.Contains(err.Error(), "rules: missing") {
		t.Errorf("no rules key: %v, want rules: missing", err)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	exact, over := dir+"/exact.yaml", dir+"/over.yaml"
	if err := os.WriteFile(exact, []byte(strings.Repeat("a", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(over, []byte(strings.Repeat("a", 101)), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(exact, 100); err != nil || len(b) != 100 {
		t.Errorf("a file of exactly the bound: %d bytes, %v", len(b), err)
	}
	if _, err := Read(over, 100); err == nil || !strings.Contains(err.Error(), over+": larger than 100 bytes") {
		t.Errorf("a file over the bound: %v, want it named and the bound said", err)
	}
	if _, err := Read(dir+"/missing.yaml", 100); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}
