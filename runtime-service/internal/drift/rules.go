package drift

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/risk"
)

// Rules say how severe each kind of drift is and which drift is expected: images built to change themselves
// (build and CI images) and paths programs are known to run from. Allowed drift is still recorded, with the
// rule that allowed it and severity none, so build pods do not flood the findings.
type Rules struct {
	// Severity per drifting verdict (Modified, Added, Memory); a missing one takes DefaultSeverity's.
	Severity map[Verdict]string
	// AllowImages are globs over image repositories ("registry.example.com/ci/*"); AllowPaths over executable
	// paths ("/tmp/go-build**"). Glob syntax: Compile.
	AllowImages, AllowPaths []string
}

// DefaultSeverity: a program of the image changed on the node is the strongest sign of tampering; a program
// the image never had is one dropped and run; a program run from memory, the classic fileless payload, too.
var DefaultSeverity = map[Verdict]string{Modified: records.SeverityCritical, Added: records.SeverityHigh, Memory: records.SeverityHigh}

// BuiltinAllowPaths are allowed whatever the configuration: runc re-executes itself from a memfd when it
// starts or enters a container ("/memfd:runc_cloned:/proc/self/exe"), in every container.
var BuiltinAllowPaths = []string{"/memfd:runc_cloned:**"}

// Policy is Rules compiled.
type Policy struct {
	severity map[Verdict]string
	images   []glob
	paths    []glob
}

type glob struct {
	text string
	re   *regexp.Regexp
}

// Compile checks rules and compiles them; the error names the rule at fault.
func Compile(r Rules) (*Policy, error) {
	p := &Policy{severity: map[Verdict]string{}}
	for v, s := range DefaultSeverity {
		p.severity[v] = s
	}
	for v, s := range r.Severity {
		if _, ok := DefaultSeverity[v]; !ok {
			return nil, fmt.Errorf("drift severity: %q is not modified, added or memory", v)
		}
		if !risk.Valid(s) {
			return nil, fmt.Errorf("drift severity of %s: %q is not none, low, medium, high or critical", v, s)
		}
		p.severity[v] = s
	}
	var err error
	if p.images, err = compileGlobs("drift allowed image", r.AllowImages); err != nil {
		return nil, err
	}
	if p.paths, err = compileGlobs("drift allowed path", append(append([]string(nil), BuiltinAllowPaths...), r.AllowPaths...)); err != nil {
		return nil, err
	}
	return p, nil
}

func compileGlobs(what string, globs []string) ([]glob, error) {
	out := make([]glob, 0, len(globs))
	for _, g := range globs {
		re, err := CompileGlob(g)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", what, g, err)
		}
		out = append(out, glob{text: g, re: re})
	}
	return out, nil
}

// CompileGlob compiles a glob: "*" matches any run of characters but "/", "**" any run at all, "?" one
// character but "/"; everything else matches itself. A glob must be whole (it matches all of the string) and
// not empty. It compiles to a regular expression, so matching takes time linear in the string, whatever the
// glob.
func CompileGlob(g string) (*regexp.Regexp, error) {
	if g == "" {
		return nil, errors.New("empty")
	}
	if strings.ContainsAny(g, "\x00\n") {
		return nil, errors.New("holds a NUL or newline")
	}
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case c == '*' && i+1 < len(g) && g[i+1] == '*':
			b.WriteString(`.*`)
			i++
		case c == '*':
			b.WriteString(`[^/]*`)
		case c == '?':
			b.WriteString(`[^/]`)
		default:
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		}
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}

// Judgement is a verdict with what the rules make of it.
type Judgement struct {
	Verdict   Verdict
	Severity  string // none for in_image, unknown and allowed drift
	AllowedBy string // "image <glob>" or "path <glob>" when a rule allowed it
}

// Judge applies the rules to a verdict on path in an image known under repositories.
func (p *Policy) Judge(v Verdict, repositories []string, path string) Judgement {
	j := Judgement{Verdict: v, Severity: records.SeverityNone}
	sev, drifted := p.severity[v]
	if !drifted {
		return j
	}
	for _, g := range p.paths {
		if g.re.MatchString(path) {
			j.AllowedBy = "path " + g.text
			return j
		}
	}
	for _, g := range p.images {
		for _, r := range repositories {
			if g.re.MatchString(r) {
				j.AllowedBy = "image " + g.text
				return j
			}
		}
	}
	j.Severity = sev
	return j
}

// Fingerprint names the rules' content: findings judged under other rules are judged again.
func (p *Policy) Fingerprint() string {
	var b strings.Builder
	for _, v := range []Verdict{Modified, Added, Memory} {
		fmt.Fprintf(&b, "%s=%s;", v, p.severity[v])
	}
	for _, g := range p.images {
		fmt.Fprintf(&b, "i:%q;", g.text)
	}
	for _, g := range p.paths {
		fmt.Fprintf(&b, "p:%q;", g.text)
	}
	return b.String()
}
