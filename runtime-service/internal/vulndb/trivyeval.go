package vulndb

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aquasecurity/trivy-db/pkg/types"
)

// trivyResult is the outcome of one trivy-db advisory for one installed version.
type trivyResult struct {
	affected bool
	fixed    string
	problems []Problem // PackageKey, Source and ID are the caller's to fill
}

// evaluateTrivy applies an advisory as Trivy does. OS advisories give FixedVersion ("" for a flaw not fixed
// yet, with a Status saying why); language advisories give version constraints: affected when a
// VulnerableVersions constraint matches (or, without any, when no PatchedVersions/UnaffectedVersions one
// does), and not when a patched or unaffected one matches.
func evaluateTrivy(adv types.Advisory, t *target, k kind) trivyResult {
	if adv.Status == types.StatusNotAffected {
		return trivyResult{}
	}
	if len(adv.VulnerableVersions)+len(adv.PatchedVersions)+len(adv.UnaffectedVersions) > 0 {
		return evaluateConstraints(adv, t, k)
	}
	if adv.FixedVersion == "" {
		return trivyResult{affected: true}
	}
	installed, err := t.as(k)
	if err != nil {
		return trivyResult{problems: []Problem{{Version: t.version, Reason: err.Error()}}}
	}
	fixed, err := parseVersion(k, adv.FixedVersion)
	if err != nil {
		return trivyResult{problems: []Problem{{Version: adv.FixedVersion, Reason: err.Error()}}}
	}
	if installed.compare(fixed) < 0 {
		return trivyResult{affected: true, fixed: adv.FixedVersion}
	}
	return trivyResult{}
}

func evaluateConstraints(adv types.Advisory, t *target, k kind) trivyResult {
	// An empty constraint is how trivy-db writes "versions unknown"; Trivy reports those as affected.
	for _, c := range append(append([]string(nil), adv.VulnerableVersions...), adv.PatchedVersions...) {
		if strings.TrimSpace(c) == "" {
			return trivyResult{affected: true}
		}
	}
	installed, err := t.as(k)
	if err != nil {
		return trivyResult{problems: []Problem{{Version: t.version, Reason: err.Error()}}}
	}
	vulnerable, err := parseConstraintList(k, adv.VulnerableVersions)
	if err != nil {
		return trivyResult{problems: []Problem{{Version: strings.Join(adv.VulnerableVersions, " || "), Reason: err.Error()}}}
	}
	secure, err := parseConstraintList(k, append(append([]string(nil), adv.PatchedVersions...), adv.UnaffectedVersions...))
	if err != nil {
		return trivyResult{problems: []Problem{{Version: strings.Join(adv.PatchedVersions, " || "), Reason: err.Error()}}}
	}
	if len(vulnerable) > 0 && !vulnerable.matches(installed) {
		return trivyResult{}
	}
	if len(secure) > 0 && secure.matches(installed) {
		return trivyResult{}
	}
	return trivyResult{affected: true, fixed: lowestPatched(k, adv.PatchedVersions, installed, vulnerable)}
}

// lowestPatched is the lowest version a PatchedVersions constraint names ("1.2.5", "=1.2.5", ">=1.2.5") above
// the installed one and outside the vulnerable constraints; "" when there is none.
func lowestPatched(k kind, patched []string, installed version, vulnerable alternatives) string {
	var cands []version
	for _, p := range patched {
		alts, err := parseConstraints(k, p)
		if err != nil {
			continue
		}
		for _, conj := range alts {
			for _, c := range conj {
				if (c.op == "=" || c.op == ">=" || c.op == ">") && c.v.compare(installed) > 0 {
					cands = append(cands, c.v)
				}
			}
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].compare(cands[j]) < 0 })
	for _, c := range cands {
		if len(vulnerable) == 0 || !vulnerable.matches(c) {
			return c.raw
		}
	}
	return ""
}

// constraint is one comparison: op is =, !=, <, <=, > or >=.
type constraint struct {
	op string
	v  version
}

func (c constraint) matches(v version) bool {
	n := v.compare(c.v)
	switch c.op {
	case "=":
		return n == 0
	case "!=":
		return n != 0
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	case ">=":
		return n >= 0
	}
	return false
}

// conjunction holds when all its constraints do; alternatives when any conjunction does.
type (
	conjunction  []constraint
	alternatives []conjunction
)

func (a alternatives) matches(v version) bool {
	for _, conj := range a {
		all := len(conj) > 0
		for _, c := range conj {
			all = all && c.matches(v)
		}
		if all {
			return true
		}
	}
	return false
}

// parseConstraintList parses a list of constraint strings, any of which may hold.
func parseConstraintList(k kind, list []string) (alternatives, error) {
	var out alternatives
	for _, s := range list {
		alts, err := parseConstraints(k, s)
		if err != nil {
			return nil, err
		}
		out = append(out, alts...)
	}
	return out, nil
}

// maxConstraintLen bounds a constraint string, which the database supplies.
const maxConstraintLen = 4096

// parseConstraints parses trivy-db's constraint syntax: alternatives separated by "||", each a list of
// comparisons separated by commas or spaces (">= 1.0, < 1.2.5", ">=1.0 <1.2.5"); a bare version means "=".
func parseConstraints(k kind, s string) (alternatives, error) {
	if len(s) > maxConstraintLen {
		return nil, fmt.Errorf("constraint longer than %d bytes", maxConstraintLen)
	}
	var out alternatives
	for _, alt := range strings.Split(s, "||") {
		conj, err := parseConjunction(k, alt)
		if err != nil {
			return nil, fmt.Errorf("constraint %q: %w", s, err)
		}
		out = append(out, conj)
	}
	return out, nil
}

var errEmptyConstraint = errors.New("empty constraint")

func parseConjunction(k kind, s string) (conjunction, error) {
	var conj conjunction
	pendingOp := ""
	for _, tok := range strings.Fields(strings.ReplaceAll(s, ",", " ")) {
		op, rest := splitOp(tok)
		if rest == "" { // an operator alone: its version is the next token
			if pendingOp != "" || op == "" {
				return nil, fmt.Errorf("operator %q without a version", tok)
			}
			pendingOp = op
			continue
		}
		if pendingOp != "" {
			if op != "" {
				return nil, fmt.Errorf("two operators before %q", rest)
			}
			op, pendingOp = pendingOp, ""
		}
		if op == "" {
			op = "="
		}
		v, err := parseVersion(k, rest)
		if err != nil {
			return nil, err
		}
		conj = append(conj, constraint{op: op, v: v})
	}
	if pendingOp != "" {
		return nil, fmt.Errorf("operator %q without a version", pendingOp)
	}
	if len(conj) == 0 {
		return nil, errEmptyConstraint
	}
	return conj, nil
}

// splitOp splits a leading comparison operator off a token. "==" is "=".
func splitOp(tok string) (op, rest string) {
	for _, o := range []string{">=", "<=", "!=", "==", ">", "<", "="} {
		if r, ok := strings.CutPrefix(tok, o); ok {
			if o == "==" {
				o = "="
			}
			return o, r
		}
	}
	return "", tok
}

// trivyRating is the severity Trivy would show: the advisory's own (per package, as Debian rates it), else
// the vendor severity of the bucket's data source, else NVD's, else GitHub's, else the legacy field. The CVSS
// v3 score is taken from the same sources in the same order.
func trivyRating(adv types.Advisory, v *types.Vulnerability, ds types.DataSource) rating {
	order := []types.SourceID{ds.ID, ds.BaseID, "nvd", "ghsa"}
	r := rating{severity: trivySeverity(adv.Severity)}
	for _, id := range order {
		if r.level() != SeverityUnknown {
			break
		}
		if s, ok := v.VendorSeverity[id]; ok && id != "" {
			r.severity = trivySeverity(s)
		}
	}
	if r.level() == SeverityUnknown {
		//lint:ignore SA1019 deprecated for VendorSeverity, but still the only severity some entries carry
		r.severity = severityFromWord(v.Severity)
	}
	rest := make([]types.SourceID, 0, len(v.CVSS))
	for id := range v.CVSS {
		rest = append(rest, id)
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
	for _, id := range append(order, rest...) {
		c, ok := v.CVSS[id]
		if !ok || id == "" || (c.V3Score <= 0 && c.V3Vector == "") {
			continue
		}
		r.cvss, r.vector = c.V3Score, c.V3Vector
		if score, _, err := cvssScore(c.V3Vector); r.cvss <= 0 && err == nil {
			r.cvss = score
		}
		break
	}
	if r.level() == SeverityUnknown {
		r.severity = severityFromScore(r.cvss)
	}
	return r
}

// trivySeverity maps trivy-db's numeric severity; out-of-range numbers (types.Severity.String would panic on
// them) are unknown.
func trivySeverity(s types.Severity) string {
	switch s {
	case types.SeverityLow:
		return SeverityLow
	case types.SeverityMedium:
		return SeverityMedium
	case types.SeverityHigh:
		return SeverityHigh
	case types.SeverityCritical:
		return SeverityCritical
	}
	return SeverityUnknown
}
