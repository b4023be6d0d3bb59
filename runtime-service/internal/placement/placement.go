// Package placement is the placement policy (issue #18, item 3): rules that say where an artifact may run. Each
// rule selects artifacts by registry host, repository or a label read from the registry (an OCI annotation or
// config label, an Artifactory property) and names the clusters and namespaces they are allowed in, or takes them
// from a label's value. Rules are tried in order and the first that selects an artifact decides; an artifact no
// rule selects is not judged. A container running an artifact outside its rule's places is a finding
// (docs/placement.md).
//
// The package is pure: it parses the policy file (Parse, LoadFile) and decides one placement (Policy.Decide).
// The store keeps the decisions, the metadata package reads the labels.
package placement

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtrust/runtrust/internal/configerr"
	"github.com/runtrust/runtrust/runtime-service/internal/policyfile"
)

// Limits on the policy file and on a label's value.
const (
	MaxFileBytes       = 1 << 20
	MaxRules           = 1000
	MaxPlaces          = 256
	MaxLabelValueBytes = 4096
	maxPattern         = 253
)

// Decision statuses.
const (
	// Allowed: the deciding rule allows the container's cluster and namespace.
	Allowed = "allowed"
	// Violation: the deciding rule does not: a finding.
	Violation = "violation"
	// Pending: a rule that needs the artifact's labels could decide, and they have not been read (yet, or the
	// registry could not be asked): nothing is guessed.
	Pending = "pending"
	// NoRule: no rule selects the artifact; it is not judged.
	NoRule = ""
)

// Policy is a parsed placement policy. The zero value (and nil) has no rules: nothing is judged.
type Policy struct {
	Rules []Rule
}

// Rule is one rule in its compiled form.
type Rule struct {
	Name string
	// Selectors; every one that is set must hold. None set: the rule selects every artifact.
	Registry   string // path.Match glob on the registry host ("registry.corp.example", "*.corp.example")
	Repository string // path.Match glob on the repository path without the host ("shop/*"; '*' stays in a segment)
	Label      string // the artifact carries this label (any value)
	// Allowed places: Allow, plus those the value of AllowFromLabel lists.
	Allow          []Place
	AllowFromLabel string
	Severity       string
}

// Place is a cluster and a namespace (path.Match globs). The cluster matches the cluster's name or uid; an empty
// Namespace is every namespace.
type Place struct {
	Cluster, Namespace string
}

func (p Place) String() string {
	if p.Namespace == "" {
		return p.Cluster
	}
	return p.Cluster + "/" + p.Namespace
}

// NeedsLabels says whether the rule reads the artifact's labels.
func (r Rule) NeedsLabels() bool { return r.Label != "" || r.AllowFromLabel != "" }

// NeedsLabels says whether any rule reads labels: only then are they fetched from the registries.
func (p *Policy) NeedsLabels() bool {
	if p == nil {
		return false
	}
	for _, r := range p.Rules {
		if r.NeedsLabels() {
			return true
		}
	}
	return false
}

// Empty says the policy has no rules.
func (p *Policy) Empty() bool { return p == nil || len(p.Rules) == 0 }

// Artifact is what a decision knows of the artifact a container runs.
type Artifact struct {
	Registry   string // registry host ("registry.corp.example:5000", "docker.io")
	Repository string // path in the registry ("shop/web")
	// Labels are the artifact's metadata; LabelsKnown says they were read (an artifact may have none).
	Labels      map[string]string
	LabelsKnown bool
	// LabelsError is why they could not be read, when they could not.
	LabelsError string
}

// Where is the container's place.
type Where struct {
	ClusterName, ClusterUID, Namespace string
}

// Decision is the outcome for one container.
type Decision struct {
	Status   string // Allowed, Violation, Pending or NoRule
	Rule     string // the deciding rule's name
	Severity string // the rule's severity (Violation only)
	Reason   string
}

// Decide applies the policy to an artifact running at w: the first rule that selects the artifact decides.
func (p *Policy) Decide(a Artifact, w Where) Decision {
	if p == nil {
		return Decision{Status: NoRule}
	}
	for _, r := range p.Rules {
		if r.Registry != "" && !match(r.Registry, a.Registry) {
			continue
		}
		if r.Repository != "" && !match(r.Repository, a.Repository) {
			continue
		}
		if r.NeedsLabels() && !a.LabelsKnown {
			reason := "the artifact's labels have not been read from its registry yet"
			if a.LabelsError != "" {
				reason = "the artifact's labels could not be read from its registry: " + a.LabelsError
			}
			return Decision{Status: Pending, Rule: r.Name, Reason: reason}
		}
		if r.Label != "" {
			if _, ok := a.Labels[r.Label]; !ok {
				continue
			}
		}
		return r.decide(a, w)
	}
	return Decision{Status: NoRule}
}

func (r Rule) decide(a Artifact, w Where) Decision {
	places := r.Allow
	from := ""
	if r.AllowFromLabel != "" {
		v, ok := a.Labels[r.AllowFromLabel]
		switch {
		case !ok:
			from = fmt.Sprintf("; the artifact has no %s label", r.AllowFromLabel)
		default:
			ps, err := ParsePlaces(v)
			if err != nil {
				return Decision{Status: Violation, Rule: r.Name, Severity: r.Severity,
					Reason: fmt.Sprintf("rule %q: the artifact's %s label is not a list of places: %v", r.Name, r.AllowFromLabel, err)}
			}
			places = append(places[:len(places):len(places)], ps...)
			from = fmt.Sprintf(" (%s label: %q)", r.AllowFromLabel, v)
		}
	}
	for _, pl := range places {
		if (match(pl.Cluster, w.ClusterName) || match(pl.Cluster, w.ClusterUID)) &&
			(pl.Namespace == "" || match(pl.Namespace, w.Namespace)) {
			return Decision{Status: Allowed, Rule: r.Name, Reason: fmt.Sprintf("rule %q allows %s", r.Name, pl)}
		}
	}
	allowed := "nowhere"
	if len(places) > 0 {
		names := make([]string, len(places))
		for i, pl := range places {
			names[i] = pl.String()
		}
		allowed = strings.Join(names, ", ")
	}
	return Decision{Status: Violation, Rule: r.Name, Severity: r.Severity,
		Reason: fmt.Sprintf("rule %q: namespace %s of cluster %s is not an allowed place; allowed: %s%s", r.Name,
			w.Namespace, w.ClusterName, allowed, from)}
}

// match is path.Match with a pattern Parse checked (so no error).
func match(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

// ParsePlaces reads a label's list of places: comma-separated cluster[/namespace] entries, each a glob
// ("prod/shop, staging/*, dev"); spaces around entries are ignored. An empty value allows nowhere.
func ParsePlaces(v string) ([]Place, error) {
	if len(v) > MaxLabelValueBytes {
		return nil, fmt.Errorf("%d bytes; at most %d", len(v), MaxLabelValueBytes)
	}
	if !utf8.ValidString(v) {
		return nil, errors.New("not valid UTF-8")
	}
	var out []Place
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		pl, err := parsePlace(e)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", e, err)
		}
		if len(out) == MaxPlaces {
			return nil, fmt.Errorf("more than %d places", MaxPlaces)
		}
		out = append(out, pl)
	}
	return out, nil
}

func parsePlace(e string) (Place, error) {
	c, ns, hasNS := strings.Cut(e, "/")
	if strings.Contains(ns, "/") {
		return Place{}, errors.New("want cluster or cluster/namespace, not more than one '/'")
	}
	if err := checkPattern("cluster", c); err != nil {
		return Place{}, err
	}
	if hasNS {
		if err := checkPattern("namespace", ns); err != nil {
			return Place{}, err
		}
		if ns == "*" {
			ns = ""
		}
	}
	return Place{Cluster: c, Namespace: ns}, nil
}

// checkPattern refuses an empty, overlong, malformed or whitespace-holding glob.
func checkPattern(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("the %s is empty", what)
	case len(p) > maxPattern:
		return fmt.Errorf("the %s pattern is %d bytes long; at most %d", what, len(p), maxPattern)
	case !utf8.ValidString(p):
		return fmt.Errorf("the %s pattern is not valid UTF-8", what)
	case strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf("the %s pattern %q contains a space or control character", what, p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("the %s pattern %q is not a valid glob: %w", what, p, err)
	}
	return nil
}

// fileRule is a rule as the file spells it.
type fileRule struct {
	Name  string `yaml:"name"`
	Match struct {
		Registry   string `yaml:"registry"`
		Repository string `yaml:"repository"`
		Label      string `yaml:"label"`
	} `yaml:"match"`
	Allow          *[]string `yaml:"allow"`
	AllowFromLabel string    `yaml:"allow_from_label"`
	Severity       string    `yaml:"severity"`
}

type file struct {
	Rules *[]fileRule `yaml:"rules"`
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
	labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,252}$`)
)

// LoadFile reads and checks a placement policy file.
func LoadFile(name string) (*Policy, error) {
	data, err := policyfile.Read(name, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("placement file: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("placement file %s: %w", name, err)
	}
	return p, nil
}

// Parse reads a policy file: YAML (or JSON, which is YAML) with a "rules" list. Unknown keys are errors, and
// every error names the rule and its field (rules[1] (lab-tools).allow[0]: …); all of them are reported.
func Parse(data []byte) (*Policy, error) {
	var f file
	if err := policyfile.Decode(data, MaxFileBytes, "placement policy", &f); err != nil {
		return nil, err
	}
	if err := policyfile.Rules(f.Rules, MaxRules); err != nil {
		return nil, err
	}
	p := &Policy{Rules: []Rule{}}
	var errs []error
	seen := map[string]int{}
	for i, fr := range *f.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		if nameRE.MatchString(fr.Name) {
			field += " (" + fr.Name + ")"
		}
		r, err := fr.compile()
		if err == nil {
			if j, dup := seen[r.Name]; dup {
				err = fmt.Errorf("name: %q is also rules[%d]'s name", r.Name, j)
			}
		}
		if err != nil {
			errs = append(errs, configerr.Prefix(field, err))
			continue
		}
		seen[r.Name] = i
		p.Rules = append(p.Rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func (fr fileRule) compile() (Rule, error) {
	var errs []error
	r := Rule{Name: fr.Name, Registry: fr.Match.Registry, Repository: fr.Match.Repository, Label: fr.Match.Label,
		AllowFromLabel: fr.AllowFromLabel, Severity: fr.Severity}
	if !nameRE.MatchString(fr.Name) {
		errs = append(errs, fmt.Errorf("name: %q is not 1–63 letters, digits, '.', '_' or '-' (starting and ending with a letter or digit)", policyfile.Clip(fr.Name)))
	}
	if r.Registry != "" {
		if err := checkPattern("registry", r.Registry); err != nil {
			errs = append(errs, fmt.Errorf("match.registry: %w", err))
		}
	}
	if r.Repository != "" {
		if err := checkPattern("repository", r.Repository); err != nil {
			errs = append(errs, fmt.Errorf("match.repository: %w", err))
		} else if strings.HasPrefix(r.Repository, "/") {
			errs = append(errs, fmt.Errorf("match.repository: %q starts with '/': give the path without the host (\"shop/web\")", r.Repository))
		}
	}
	for _, l := range []struct{ field, v string }{{"match.label", r.Label}, {"allow_from_label", r.AllowFromLabel}} {
		if l.v != "" && !labelRE.MatchString(l.v) {
			errs = append(errs, fmt.Errorf("%s: %q is not a label key (letters, digits, '.', '_', '/', '-'; at most 253)", l.field, policyfile.Clip(l.v)))
		}
	}
	switch {
	case fr.Allow == nil && fr.AllowFromLabel == "":
		errs = append(errs, errors.New("allow: missing; give allow (a list of cluster[/namespace], [] for nowhere) or allow_from_label"))
	case fr.Allow != nil && len(*fr.Allow) > MaxPlaces:
		errs = append(errs, fmt.Errorf("allow: %d places, at most %d", len(*fr.Allow), MaxPlaces))
	case fr.Allow != nil:
		r.Allow = []Place{}
		for j, e := range *fr.Allow {
			pl, err := parsePlace(strings.TrimSpace(e))
			if err != nil {
				errs = append(errs, fmt.Errorf("allow[%d]: %q: %w", j, policyfile.Clip(e), err))
				continue
			}
			r.Allow = append(r.Allow, pl)
		}
	}
	var err error
	if r.Severity, err = policyfile.Severity(r.Severity); err != nil {
		errs = append(errs, err)
	}
	return r, errors.Join(errs...)
}

// SplitRef returns the registry host and repository path of an image reference ("host/path:tag@digest"), as
// the rules match them: Docker Hub is "docker.io" and its official images "library/<name>". ok is false when
// ref is not a reference.
func SplitRef(ref string) (registry, repository string, ok bool) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return "", "", false
	}
	registry = r.Context().RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return registry, r.Context().RepositoryStr(), true
}
