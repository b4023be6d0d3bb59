package placement

import (
	"reflect"
	"strings"
	"testing"
)

const example = `
rules:
  - name: shop-by-label
    match: {label: runtrust.allowed_clusters}
    allow_from_label: runtrust.allowed_clusters
  - name: lab-tools
    match: {registry: "registry.corp.example", repository: "lab/*"}
    allow: ["prod/lab", "staging", "dev/*"]
    severity: medium
  - name: nothing-from-hub
    match: {registry: docker.io}
    allow: []
`

func TestParse(t *testing.T) {
	p, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Name: "shop-by-label", Label: "runtrust.allowed_clusters", AllowFromLabel: "runtrust.allowed_clusters", Severity: "high"},
		{Name: "lab-tools", Registry: "registry.corp.example", Repository: "lab/*", Severity: "medium",
			Allow: []Place{{"prod", "lab"}, {"staging", ""}, {"dev", ""}}},
		{Name: "nothing-from-hub", Registry: "docker.io", Allow: []Place{}, Severity: "high"},
	}
	if !reflect.DeepEqual(p.Rules, want) {
		t.Fatalf("rules:\n%+v\nwant\n%+v", p.Rules, want)
	}
	if !p.NeedsLabels() {
		t.Error("NeedsLabels: false with a label rule")
	}
	// JSON is YAML.
	j, err := Parse([]byte(`{"rules": [{"name": "a", "match": {"repository": "shop/*"}, "allow": ["prod/shop"]}]}`))
	if err != nil || len(j.Rules) != 1 || j.Rules[0].Allow[0] != (Place{"prod", "shop"}) || j.NeedsLabels() {
		t.Fatalf("JSON: %+v %v", j, err)
	}
	if e, err := Parse([]byte("rules: []")); err != nil || !e.Empty() {
		t.Fatalf("empty list: %+v %v", e, err)
	}
}

func TestParseErrorsNameTheRuleAndField(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `empty: want a "rules" list`},
		{"other: 1", `field other not found`},
		{"rules: 3", `not a placement policy`},
		{"{}", `rules: missing`},
		{"rules: [{name: a}]", `rules[0] (a).allow: missing; give allow`},
		{"rules: [{allow: []}]", `rules[0].name: "" is not 1–63 letters`},
		{"rules: [{name: 'a b', allow: []}]", `rules[0].name: "a b" is not`},
		{"rules: [{name: a, allow: [x]}, {name: a, allow: []}]", `rules[1] (a).name: "a" is also rules[0]'s name`},
		{"rules: [{name: a, allow: ['prod/shop/x']}]", `rules[0] (a).allow[0]: "prod/shop/x": want cluster or cluster/namespace`},
		{"rules: [{name: a, allow: ['/shop']}]", `rules[0] (a).allow[0]: "/shop": the cluster is empty`},
		{"rules: [{name: a, allow: ['prod/']}]", `allow[0]: "prod/": the namespace is empty`},
		{"rules: [{name: a, allow: ['pr[od']}]", `the cluster pattern "pr[od" is not a valid glob`},
		{"rules: [{name: a, allow: ['prod', 'pr od']}]", `allow[1]: "pr od": the cluster pattern "pr od" contains a space`},
		{"rules: [{name: lab, match: {repository: 'lab/[x'}, allow: []}]", `rules[0] (lab).match.repository: the repository pattern "lab/[x" is not a valid glob`},
		{"rules: [{name: a, match: {repository: '/lab'}, allow: []}]", `match.repository: "/lab" starts with '/'`},
		{"rules: [{name: a, match: {registry: 'a b'}, allow: []}]", `match.registry: the registry pattern "a b" contains a space`},
		{"rules: [{name: a, match: {label: 'x y'}, allow: []}]", `match.label: "x y" is not a label key`},
		{"rules: [{name: a, allow_from_label: '-x'}]", `allow_from_label: "-x" is not a label key`},
		{"rules: [{name: a, allow: [], severity: none}]", `severity: "none" is not critical, high, medium or low`},
		{"rules: [{name: a, allow: [], severity: urgent}]", `severity: "urgent"`},
		{"rules: [{name: a, allow: [], colour: red}]", `field colour not found`},
		{"rules: [{name: a, allow: [], match: {tag: x}}]", `field tag not found`},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v; want an error with %q", tc.in, err, tc.want)
		}
	}
	// Every problem is reported, each with its rule and field.
	_, err := Parse([]byte("rules: [{name: a, allow: ['x/y/z'], severity: bad}, {name: b}]"))
	if err == nil || strings.Count(err.Error(), "\n") != 2 || !strings.Contains(err.Error(), "rules[1] (b).allow: missing") {
		t.Errorf("all errors: %v", err)
	}
}

func TestParsePlaces(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Place
	}{
		{"", nil},
		{" , ", nil},
		{"prod/shop", []Place{{"prod", "shop"}}},
		{" prod/shop , staging/* ,dev", []Place{{"prod", "shop"}, {"staging", ""}, {"dev", ""}}},
		{"eu-*/shop-?", []Place{{"eu-*", "shop-?"}}},
	} {
		got, err := ParsePlaces(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePlaces(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"prod/shop,a/b/c", `entry "a/b/c": want cluster or cluster/namespace`},
		{"prod/[", `entry "prod/[": the namespace pattern "[" is not a valid glob`},
		{"/x", `entry "/x": the cluster is empty`},
		{"a\x00b", `contains a space or control character`},
		{"\xff", `not valid UTF-8`},
		{strings.Repeat("a,", 2049), `bytes; at most 4096`},
		{strings.Repeat("a,", 257), `more than 256 places`},
	} {
		_, err := ParsePlaces(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePlaces(%q): %v; want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestDecideFirstMatchDecides(t *testing.T) {
	p, err := Parse([]byte(example + `
  - name: everything-else
    allow: ["prod"]
`))
	if err != nil {
		t.Fatal(err)
	}
	labelled := Artifact{Registry: "registry.corp.example", Repository: "shop/web", LabelsKnown: true,
		Labels: map[string]string{"runtrust.allowed_clusters": "prod/shop"}}
	prodShop := Where{ClusterName: "prod", ClusterUID: "uid-1", Namespace: "shop"}
	prodLab := Where{ClusterName: "prod", ClusterUID: "uid-1", Namespace: "lab"}
	for _, tc := range []struct {
		name             string
		a                Artifact
		w                Where
		status, rule     string
		severity, reason string
	}{
		{"label allows its place", labelled, prodShop, Allowed, "shop-by-label", "", `rule "shop-by-label" allows prod/shop`},
		{"label refuses another namespace", labelled, prodLab, Violation, "shop-by-label", "high",
			`rule "shop-by-label": namespace lab of cluster prod is not an allowed place; allowed: prod/shop (runtrust.allowed_clusters label: "prod/shop")`},
		{"cluster by uid", labelled, Where{ClusterName: "x", ClusterUID: "prod", Namespace: "shop"}, Allowed, "shop-by-label", "", ""},
		{"labels not read yet: pending, no guess", Artifact{Registry: "registry.corp.example", Repository: "shop/web"}, prodLab,
			Pending, "shop-by-label", "", "have not been read"},
		{"labels unreadable: pending with the reason", Artifact{Registry: "r", Repository: "x", LabelsError: "401 Unauthorized"}, prodLab,
			Pending, "shop-by-label", "", "could not be read from its registry: 401 Unauthorized"},
		{"no label: next rule (repository glob)", Artifact{Registry: "registry.corp.example", Repository: "lab/tool", LabelsKnown: true}, prodLab,
			Allowed, "lab-tools", "", ""},
		{"repository glob refuses", Artifact{Registry: "registry.corp.example", Repository: "lab/tool", LabelsKnown: true}, prodShop,
			Violation, "lab-tools", "medium", "allowed: prod/lab, staging, dev"},
		{"namespace wildcard", Artifact{Registry: "registry.corp.example", Repository: "lab/tool", LabelsKnown: true},
			Where{ClusterName: "dev", Namespace: "anything"}, Allowed, "lab-tools", "", "allows dev"},
		{"glob stays in a segment", Artifact{Registry: "registry.corp.example", Repository: "lab/a/b", LabelsKnown: true}, prodShop,
			Allowed, "everything-else", "", ""},
		{"allow: [] is nowhere", Artifact{Registry: "docker.io", Repository: "library/nginx", LabelsKnown: true}, prodShop,
			Violation, "nothing-from-hub", "high", "allowed: nowhere"},
		{"bad label value refuses", Artifact{Registry: "r", Repository: "x", LabelsKnown: true,
			Labels: map[string]string{"runtrust.allowed_clusters": "prod/shop/x"}}, prodShop, Violation, "shop-by-label", "high",
			`label is not a list of places: entry "prod/shop/x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(tc.a, tc.w)
			if d.Status != tc.status || d.Rule != tc.rule || d.Severity != tc.severity || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Decide = %+v; want %s by %q (severity %q) with %q", d, tc.status, tc.rule, tc.severity, tc.reason)
			}
		})
	}
	// No rule selects: not judged, and a policy without label rules never waits for labels.
	q, err := Parse([]byte("rules: [{name: shop, match: {repository: 'shop/*'}, allow: ['prod/shop'], severity: critical}]"))
	if err != nil {
		t.Fatal(err)
	}
	if d := q.Decide(Artifact{Registry: "r", Repository: "other/x"}, prodLab); d != (Decision{}) {
		t.Errorf("no rule: %+v", d)
	}
	if d := q.Decide(Artifact{Registry: "r", Repository: "shop/web"}, prodLab); d.Status != Violation || d.Severity != "critical" {
		t.Errorf("repository rule without labels: %+v", d)
	}
	// allow_from_label without a label selector: an artifact without the label gets only allow.
	r, err := Parse([]byte("rules: [{name: r, allow: ['prod/kube-system'], allow_from_label: places}]"))
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Decide(Artifact{LabelsKnown: true}, prodShop); d.Status != Violation || !strings.Contains(d.Reason, "the artifact has no places label") {
		t.Errorf("missing allow_from_label: %+v", d)
	}
	var nilPolicy *Policy
	if d := nilPolicy.Decide(labelled, prodShop); d.Status != NoRule || !nilPolicy.Empty() || nilPolicy.NeedsLabels() {
		t.Errorf("nil policy: %+v", d)
	}
}

func TestSplitRef(t *testing.T) {
	for _, tc := range []struct{ ref, registry, repo string }{
		{"nginx:1.25", "docker.io", "library/nginx"},
		{"docker.io/library/nginx:1.25", "docker.io", "library/nginx"},
		{"127.0.0.1:5000/shop/web:1", "127.0.0.1:5000", "shop/web"},
		{"ghcr.io/acme/web@sha256:" + strings.Repeat("a", 64), "ghcr.io", "acme/web"},
	} {
		reg, repo, ok := SplitRef(tc.ref)
		if !ok || reg != tc.registry || repo != tc.repo {
			t.Errorf("SplitRef(%q) = %q, %q, %v", tc.ref, reg, repo, ok)
		}
	}
	if _, _, ok := SplitRef("UPPER/Case:x"); ok {
		t.Error("SplitRef accepted an invalid reference")
	}
}

// FuzzParse: any input either parses into rules whose every pattern is valid, or fails with an error; a parsed
// policy decides any placement without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte(`{"rules": [{"name": "a", "allow": ["p/[x"]}]}`))
	f.Add([]byte("rules: [{name: a, allow_from_label: l}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("a policy with an error")
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range p.Rules {
			if seen[r.Name] || !nameRE.MatchString(r.Name) || r.Severity == "" {
				t.Fatalf("rule %+v", r)
			}
			seen[r.Name] = true
			for _, pl := range r.Allow {
				if checkPattern("c", pl.Cluster) != nil || (pl.Namespace != "" && checkPattern("n", pl.Namespace) != nil) {
					t.Fatalf("bad place kept: %+v", pl)
				}
			}
		}
		p.Decide(Artifact{Registry: "r", Repository: "a/b", LabelsKnown: true, Labels: map[string]string{"l": string(data)}},
			Where{ClusterName: "c", Namespace: "n"})
	})
}

// FuzzParsePlaces: a label value either parses into valid places that round-trip through their String form, or
// fails; it never panics.
func FuzzParsePlaces(f *testing.F) {
	for _, s := range []string{"prod/shop", " a/b , c", "a/b/c", "[", "a/*", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ps, err := ParsePlaces(v)
		if err != nil {
			return
		}
		for _, pl := range ps {
			again, err := ParsePlaces(pl.String())
			if err != nil || len(again) != 1 || again[0] != pl {
				t.Fatalf("%+v does not round-trip: %v %v", pl, again, err)
			}
		}
	})
}
