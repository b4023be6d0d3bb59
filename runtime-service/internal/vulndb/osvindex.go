package vulndb

import (
	"net/url"
	"sort"
	"strings"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/types/known/structpb"
)

// osvAdvisory is what a finding takes from an OSV entry as a whole.
type osvAdvisory struct {
	id      string
	summary string
	aliases []string
}

// osvAffected is one affected package of one OSV entry, its versions parsed for the package's ecosystem.
type osvAffected struct {
	adv       *osvAdvisory
	ecosystem string // as the entry writes it: Finding.Source is "osv:" + it
	name      string
	kind      kind // the ecosystem's version ordering, for ECOSYSTEM ranges and versions[]
	rating    rating
	ranges    []osvRange
	versions  []version // versions[] entries that parse, sorted
	raw       []string  // all versions[] entries as written, sorted: an exact match needs no parse
}

type eventType uint8

// The order matters: events at the same version sort introduced, last_affected, fixed.
const (
	evIntroduced eventType = iota
	evLastAffected
	evFixed
)

type osvEvent struct {
	typ  eventType
	zero bool // introduced "0": before every version, pre-releases included
	v    version
}

// osvRange is one ECOSYSTEM or SEMVER range with its events sorted by version, as the OSV evaluation
// algorithm wants them.
type osvRange struct {
	kind   kind
	events []osvEvent
	limits []version
	bad    string // an event version that did not parse: the range cannot be evaluated
	badErr string
}

// osvCounts is what indexing some entries skipped, for SourceStats.
type osvCounts struct {
	indexed, withdrawn, unsupported, invalid int
	firstInvalid                             string
}

// indexEntry turns an OSV entry into its affected packages in the ecosystems SBOMs can hold. Withdrawn entries
// and packages of other ecosystems are counted and left out.
func indexEntry(v *osvschema.Vulnerability, c *osvCounts) []*osvAffected {
	if v.GetId() == "" {
		c.invalid++
		if c.firstInvalid == "" {
			c.firstInvalid = errNoID.Error()
		}
		return nil
	}
	if v.GetWithdrawn() != nil {
		c.withdrawn++
		return nil
	}
	adv := &osvAdvisory{id: v.GetId(), summary: summarize(v.GetSummary(), v.GetDetails()), aliases: osvAliases(v)}
	var out []*osvAffected
	for _, a := range v.GetAffected() {
		eco, name := affectedPackage(a.GetPackage())
		k := osvEcosystemKind(eco)
		if k == kindNone || name == "" {
			c.unsupported++
			continue
		}
		out = append(out, newAffected(adv, v, a, eco, name, k))
	}
	if len(out) > 0 {
		c.indexed++
	}
	return out
}

func newAffected(adv *osvAdvisory, v *osvschema.Vulnerability, a *osvschema.Affected, eco, name string, k kind) *osvAffected {
	af := &osvAffected{adv: adv, ecosystem: eco, name: name, kind: k, rating: osvRating(v, a)}
	for _, r := range a.GetRanges() {
		switch r.GetType() {
		case osvschema.Range_SEMVER:
			af.ranges = append(af.ranges, newRange(kindSemver, r.GetEvents()))
		case osvschema.Range_ECOSYSTEM:
			af.ranges = append(af.ranges, newRange(k, r.GetEvents()))
		}
		// GIT ranges name commits, which an installed package does not carry.
	}
	for _, s := range a.GetVersions() {
		af.raw = append(af.raw, s)
		if pv, err := parseVersion(k, s); err == nil {
			af.versions = append(af.versions, pv)
		}
	}
	sort.Strings(af.raw)
	sort.Slice(af.versions, func(i, j int) bool { return af.versions[i].compare(af.versions[j]) < 0 })
	return af
}

func newRange(k kind, events []*osvschema.Event) osvRange {
	r := osvRange{kind: k}
	add := func(typ eventType, s string) {
		if typ == evIntroduced && s == "0" {
			r.events = append(r.events, osvEvent{typ: typ, zero: true})
			return
		}
		pv, err := parseVersion(k, s)
		if err != nil {
			if r.bad == "" {
				r.bad, r.badErr = s, err.Error()
			}
			return
		}
		r.events = append(r.events, osvEvent{typ: typ, v: pv})
	}
	for _, e := range events {
		switch {
		case e.GetIntroduced() != "":
			add(evIntroduced, e.GetIntroduced())
		case e.GetFixed() != "":
			add(evFixed, e.GetFixed())
		case e.GetLastAffected() != "":
			add(evLastAffected, e.GetLastAffected())
		case e.GetLimit() != "" && e.GetLimit() != "*": // "*" is no limit
			if pv, err := parseVersion(k, e.GetLimit()); err == nil {
				r.limits = append(r.limits, pv)
			} else if r.bad == "" {
				r.bad, r.badErr = e.GetLimit(), err.Error()
			}
		}
	}
	sort.SliceStable(r.events, func(i, j int) bool { return eventLess(r.events[i], r.events[j]) })
	return r
}

func eventLess(a, b osvEvent) bool {
	if a.zero || b.zero {
		return a.zero && !b.zero
	}
	if c := a.v.compare(b.v); c != 0 {
		return c < 0
	}
	return a.typ < b.typ
}

// affectedPackage is the ecosystem and name an affected entry names, taken from its purl when the entry
// leaves them out (the purl is the only identifier some feeds give).
func affectedPackage(p *osvschema.Package) (eco, name string) {
	eco, name = p.GetEcosystem(), p.GetName()
	if (eco != "" && name != "") || p.GetPurl() == "" {
		return eco, name
	}
	typ, pname := purlPackage(p.GetPurl())
	if eco == "" && typ == "golang" {
		eco = ecoGo
	}
	if name == "" {
		name = pname
	}
	return eco, name
}

// purlPackage is the type and the name of a purl, pkg:type/namespace/name@version?qualifiers#subpath. A Go
// module's name is its whole path (namespace/name); other types' names are the last segment.
func purlPackage(purl string) (typ, name string) {
	rest, ok := strings.CutPrefix(purl, "pkg:")
	if !ok {
		return "", ""
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, _, _ = strings.Cut(rest, "?")
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[:i]
	}
	typ, path, ok := strings.Cut(strings.Trim(rest, "/"), "/")
	if !ok || path == "" {
		return strings.ToLower(typ), ""
	}
	typ = strings.ToLower(typ)
	if typ != "golang" {
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			path = path[i+1:]
		}
	}
	if unescaped, err := url.PathUnescape(path); err == nil {
		path = unescaped
	}
	return typ, path
}

// osvAliases are the ids of the same flaw: aliases, and the one upstream id of a record that restates a
// single upstream flaw (DEBIAN-CVE-2024-1 of CVE-2024-1). An upstream list of several (a DSA fixing many
// CVEs) names related flaws, not this one, and would merge them all into one finding.
func osvAliases(v *osvschema.Vulnerability) []string {
	ids := append([]string(nil), v.GetAliases()...)
	if up := v.GetUpstream(); len(up) == 1 {
		ids = append(ids, up[0])
	}
	out := ids[:0]
	for _, id := range ids {
		if id != "" && id != v.GetId() {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return compactStrings(out)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// maxSummary bounds a summary taken from an entry's details, which can run to pages.
const maxSummary = 300

// summarize is the summary, else the first line of the details.
func summarize(summary, details string) string {
	s := strings.TrimSpace(summary)
	if s == "" {
		s, _, _ = strings.Cut(strings.TrimSpace(details), "\n")
		s = strings.TrimSpace(s)
	}
	if len(s) > maxSummary {
		cut := maxSummary
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// osvRating is the severity of one affected package: the distro's own word first (Debian's urgency,
// Ubuntu's priority) as it rates the flaw in that package, then the database's (GitHub's severity), then the
// CVSS rating. CVSS scores of the affected package come before those of the entry.
func osvRating(v *osvschema.Vulnerability, a *osvschema.Affected) rating {
	var r rating
	var v4, ubuntu string
	for _, s := range append(append([]*osvschema.Severity(nil), a.GetSeverity()...), v.GetSeverity()...) {
		switch s.GetType() {
		case osvschema.Severity_CVSS_V3:
			if score, _, err := cvssScore(s.GetScore()); err == nil && r.vector == "" {
				r.cvss, r.vector = score, strings.TrimSpace(s.GetScore())
			}
		case osvschema.Severity_CVSS_V4:
			if score, _, err := cvssScore(s.GetScore()); err == nil && v4 == "" {
				v4 = severityFromScore(score)
			}
		case osvschema.Severity_Ubuntu:
			if ubuntu == "" {
				ubuntu = severityFromWord(s.GetScore())
			}
		}
	}
	for _, level := range []string{
		severityFromUrgency(structString(a.GetEcosystemSpecific(), "urgency")),
		severityFromUrgency(structString(a.GetDatabaseSpecific(), "urgency")),
		severityFromUrgency(structString(v.GetDatabaseSpecific(), "urgency")),
		severityFromWord(structString(a.GetEcosystemSpecific(), "severity")),
		ubuntu,
		severityFromWord(structString(a.GetDatabaseSpecific(), "severity")),
		severityFromWord(structString(v.GetDatabaseSpecific(), "severity")),
		severityFromScore(r.cvss),
		v4,
	} {
		if level != "" && level != SeverityUnknown {
			r.severity = level
			break
		}
	}
	return r
}

// structString is a string field of a database_specific or ecosystem_specific object; "" when absent or not
// a string.
func structString(s *structpb.Struct, field string) string {
	return s.GetFields()[field].GetStringValue()
}
