package vulndb

import (
	"sort"
)

// affects evaluates a range for version v by OSV's algorithm: walk the events in version order up to v; an
// introduced makes v affected, a fixed at or below v unaffected, a last_affected below v unaffected. A limit
// at or below v puts v out of the range.
func (r *osvRange) affects(v version) bool {
	for _, l := range r.limits {
		if v.compare(l) >= 0 {
			return false
		}
	}
	affected := false
	for _, e := range r.events {
		if !e.zero && e.v.compare(v) > 0 {
			break
		}
		switch e.typ {
		case evIntroduced:
			affected = true
		case evFixed:
			affected = false
		case evLastAffected:
			affected = affected && v.compare(e.v) <= 0
		}
	}
	return affected
}

// osvCheck is the outcome of evaluating one affected package for one installed version.
type osvCheck struct {
	affected bool
	problems []Problem // versions that could not be parsed on the way
}

// check says whether the installed version of t is affected: by a range, or by being listed in versions[].
// A range whose versions (or the installed version, in that range's kind) do not parse says nothing either
// way: it is a problem, not a match.
func (a *osvAffected) check(t *target) osvCheck {
	var c osvCheck
	src := "osv:" + a.ecosystem
	for i := range a.ranges {
		r := &a.ranges[i]
		if r.bad != "" {
			c.problems = append(c.problems, Problem{PackageKey: t.key, Source: src, ID: a.adv.id, Version: r.bad, Reason: r.badErr})
			continue
		}
		v, err := t.as(r.kind)
		if err != nil {
			c.problems = append(c.problems, Problem{PackageKey: t.key, Version: t.version, Reason: err.Error()})
			continue
		}
		if r.affects(v) {
			c.affected = true
			return c
		}
	}
	c.affected = a.listed(t)
	return c
}

// listed says whether the installed version is one of versions[]: as written, or equal once parsed.
func (a *osvAffected) listed(t *target) bool {
	if len(a.raw) == 0 {
		return false
	}
	if i := sort.SearchStrings(a.raw, t.version); i < len(a.raw) && a.raw[i] == t.version {
		return true
	}
	v, err := t.as(a.kind)
	if err != nil {
		return false
	}
	i := sort.Search(len(a.versions), func(i int) bool { return a.versions[i].compare(v) >= 0 })
	return i < len(a.versions) && a.versions[i].compare(v) == 0
}

// fixFor is the lowest fixed version above the installed one that none of an advisory's affected entries for
// the package still affects; "" when there is none (no fix, or only last_affected known).
func fixFor(entries []*osvAffected, t *target) string {
	type candidate struct {
		raw string
		v   version
	}
	var cands []candidate
	for _, a := range entries {
		for _, r := range a.ranges {
			installed, err := t.as(r.kind)
			if r.bad != "" || err != nil {
				continue
			}
			for _, e := range r.events {
				if e.typ == evFixed && e.v.compare(installed) > 0 {
					cands = append(cands, candidate{e.v.raw, e.v})
				}
			}
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].v.compare(cands[j].v) < 0 })
	for _, c := range cands {
		probe := newTarget(t.pkg)
		probe.version = c.raw
		stillAffected := false
		for _, a := range entries {
			stillAffected = stillAffected || a.check(probe).affected
		}
		if !stillAffected {
			return c.raw
		}
	}
	return ""
}

// match looks every package up by (ecosystem, name) and evaluates the advisories found.
func (s *osvSource) match(r *matchRun) error {
	for _, t := range r.targets {
		var order []*osvAdvisory
		byAdv := map[*osvAdvisory][]*osvAffected{}
		for _, eco := range osvEcosystems(r.sbom.Distro, t.pkg.Type) {
			for _, a := range s.index[osvKey{eco, t.name}] {
				if byAdv[a.adv] == nil {
					order = append(order, a.adv)
				}
				byAdv[a.adv] = append(byAdv[a.adv], a)
			}
		}
		for _, adv := range order {
			if f, ok := s.evaluate(adv, byAdv[adv], t, r.problems); ok {
				r.findings = append(r.findings, f)
			}
		}
	}
	return nil
}

// evaluate is the finding of one advisory in one package, if any of its affected entries affects it.
func (s *osvSource) evaluate(adv *osvAdvisory, entries []*osvAffected, t *target, p *problems) (Finding, bool) {
	var hit *osvAffected
	best := rating{}
	for _, a := range entries {
		c := a.check(t)
		for _, pr := range c.problems {
			p.add(pr)
		}
		if !c.affected {
			continue
		}
		if hit == nil {
			hit = a
		}
		best = mergeRating(best, a.rating)
	}
	if hit == nil {
		return Finding{}, false
	}
	return Finding{
		ID:         adv.id,
		Aliases:    append([]string(nil), adv.aliases...),
		PackageKey: t.key,
		Package:    t.pkg.Name,
		Type:       t.pkg.Type,
		Installed:  t.pkg.Version,
		Fixed:      fixFor(entries, t),
		Severity:   best.level(),
		CVSS:       best.cvss,
		CVSSVector: best.vector,
		Summary:    adv.summary,
		Source:     "osv:" + hit.ecosystem,
	}, true
}

// mergeRating keeps the higher level, and a score from whichever has one.
func mergeRating(a, b rating) rating {
	out := a
	if severityRank(b.level()) > severityRank(a.level()) {
		out.severity = b.severity
	}
	if out.vector == "" || b.cvss > out.cvss {
		out.cvss, out.vector = b.cvss, b.vector
	}
	return out
}
