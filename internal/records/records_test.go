package records

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestDocsMatchConstants fails when docs/records.md and this package disagree: every constant's value must be
// named in the first column of a table in the doc, and every name there must be a constant's value.
func TestDocsMatchConstants(t *testing.T) {
	consts := constantValues(t)
	documented := documentedNames(t, filepath.Join("..", "..", "docs", "records.md"))

	var undocumented, unknown []string
	for v, name := range consts {
		if !documented[v] {
			undocumented = append(undocumented, name+" = "+strconv.Quote(v))
		}
	}
	for v := range documented {
		if _, ok := consts[v]; !ok {
			unknown = append(unknown, v)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unknown)
	if len(undocumented) > 0 {
		t.Errorf("constants missing from docs/records.md:\n  %s", strings.Join(undocumented, "\n  "))
	}
	if len(unknown) > 0 {
		t.Errorf("names in docs/records.md with no constant in internal/records:\n  %s", strings.Join(unknown, "\n  "))
	}
	if len(consts) < 50 {
		t.Errorf("found only %d constants: the parser of records.go is broken", len(consts))
	}
}

// TestConstantsAreUnique catches a copy-paste: two constants that spell the same name.
func TestConstantsAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, c := range parseConstants(t) {
		// Values of different enumerations may legitimately repeat across kinds, but no two constants do today.
		if prev, ok := seen[c.value]; ok {
			t.Errorf("%s and %s both are %q", prev, c.name, c.value)
		}
		seen[c.value] = c.name
	}
}

type constant struct{ name, value string }

func parseConstants(t *testing.T) []constant {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "records.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []constant
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("constant %s is not a string literal", name.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, constant{name.Name, v})
			}
		}
	}
	return out
}

func constantValues(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, c := range parseConstants(t) {
		out[c.value] = c.name
	}
	return out
}

var firstCell = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|")

func documentedNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := firstCell.FindStringSubmatch(line); m != nil {
			out[m[1]] = true
		}
	}
	return out
}
