package entitlement

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Nodes
	}{
		{"", Nodes{}},
		{" , ,", Nodes{}},
		{"0", Nodes{}},
		{"50", Nodes{Default: 50}},
		{"50,prod-eu=3", Nodes{Default: 50, Clusters: map[string]int{"prod-eu": 3}}},
		{" prod-eu = 3 , 50 , lab=0 ", Nodes{Default: 50, Clusters: map[string]int{"prod-eu": 3, "lab": 0}}},
		{"6a0c1f3e-uid=7", Nodes{Clusters: map[string]int{"6a0c1f3e-uid": 7}}},
		{"prod=1048576", Nodes{Clusters: map[string]int{"prod": MaxNodes}}},
		{"prod=007", Nodes{Clusters: map[string]int{"prod": 7}}},
		{"größe=2", Nodes{Clusters: map[string]int{"größe": 2}}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %+v; want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseErrorsNameTheEntry(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"-1", `node-entitlement entry "-1": "-1" is not a whole number of nodes`},
		{"50,x", `node-entitlement entry "x": "x" is not a whole number of nodes`},
		{"3.5", `entry "3.5": "3.5" is not a whole number`},
		{"50,60", `entry "60": a second default count (the first was 50)`},
		{"prod=", `entry "prod=": the count is missing`},
		{"=3", `entry "=3": the cluster name is missing`},
		{"prod=3,prod=4", `entry "prod=4": cluster "prod" is given twice (first 3)`},
		{"prod=1048577", `entry "prod=1048577": 1048577 nodes is more than 1048576`},
		{"prod=99999999999999999999", `nodes is more than 1048576`},
		{"prod=+3", `"+3" is not a whole number`},
		{"a=b=3", `entry "a=b=3": "b=3" is not a whole number`},
		{"my cluster=3", `entry "my cluster=3": the cluster name "my cluster" contains a space or control character (U+0020)`},
		{"a\tb=3", `contains a space or control character (U+0009)`},
		{"a\x00b=3", `contains a space or control character (U+0000)`},
		{"\xff=3", `the cluster name is not valid UTF-8`},
		{strings.Repeat("n", 254) + "=3", `the cluster name is 254 bytes long; at most 253`},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v; want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestFor(t *testing.T) {
	n := Nodes{Default: 50, Clusters: map[string]int{"prod": 3, "uid-lab": 0, "shared": 9, "uid-a": 4}}
	for _, tc := range []struct {
		uid, name string
		want      int
	}{
		{"uid-x", "other", 50},
		{"uid-p", "prod", 3},
		{"uid-lab", "lab", 0},  // unlimited by its uid's entry, though the default is 50
		{"uid-a", "shared", 4}, // the uid's entry wins over the name's
		{"uid-b", "shared", 9},
	} {
		if got := n.For(tc.uid, tc.name); got != tc.want {
			t.Errorf("For(%q, %q) = %d; want %d", tc.uid, tc.name, got, tc.want)
		}
	}
	if (Nodes{}).For("u", "n") != 0 || (Nodes{}).Limited() {
		t.Error("the zero Nodes is not unlimited")
	}
	if !(Nodes{Clusters: map[string]int{"a": 0, "b": 1}}).Limited() || (Nodes{Clusters: map[string]int{"a": 0}}).Limited() {
		t.Error("Limited")
	}
}

func TestStringRoundTrips(t *testing.T) {
	for _, in := range []string{"", "50", "50,lab=0,prod-eu=3", "a=1,b=2"} {
		n, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.String(); got != in {
			t.Errorf("Parse(%q).String() = %q", in, got)
		}
	}
}

// FuzzParse: any input is either refused with an error naming an entry, or parsed into counts within bounds
// under cluster names that are valid, and the result's String parses back to the same Nodes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "50", "50,prod-eu=3", " a = 1 ,b=0, 7", "a=b=c", "=", ",,,", "prod=3,prod=3",
		"x=1048577", "größe=2", "a\x00=1", "\xff=1", "1,2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := Parse(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "node-entitlement entry ") {
				t.Fatalf("Parse(%q): error %q does not name the entry", in, err)
			}
			return
		}
		if n.Default < 0 || n.Default > MaxNodes {
			t.Fatalf("Parse(%q): default %d", in, n.Default)
		}
		for name, c := range n.Clusters {
			if c < 0 || c > MaxNodes {
				t.Fatalf("Parse(%q): %q = %d", in, name, c)
			}
			if name == "" || len(name) > maxClusterLen || !utf8.ValidString(name) || strings.ContainsAny(name, "=,") ||
				strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
				t.Fatalf("Parse(%q): cluster name %q", in, name)
			}
			if n.For("\x00no-such-uid", name) != c {
				t.Fatalf("Parse(%q): For(%q) = %d; want %d", in, name, n.For("", name), c)
			}
		}
		back, err := Parse(n.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", in, n.String(), err)
		}
		if back.Default != n.Default || len(back.Clusters) != len(n.Clusters) {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v", in, n, n.String(), back)
		}
		for name, c := range n.Clusters {
			if back.Clusters[name] != c {
				t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v", in, n, n.String(), back)
			}
		}
	})
}
