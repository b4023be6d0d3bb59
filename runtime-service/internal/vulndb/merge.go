package vulndb

import (
	"sort"
	"strings"
)

// mergeFindings makes one finding of each flaw in each package. Two findings of a package are the same flaw
// when their ids or aliases meet: a GHSA and the GO- entry aliasing it in one OSV mirror, DEBIAN-CVE-2024-1
// (upstream CVE-2024-1) and trivy-db's CVE-2024-1. Findings merge transitively (union-find), which is right
// for aliases: they name the same flaw by definition.
func mergeFindings(fs []Finding) []Finding {
	byPkg := map[string][]int{}
	var pkgs []string
	for i, f := range fs {
		if byPkg[f.PackageKey] == nil {
			pkgs = append(pkgs, f.PackageKey)
		}
		byPkg[f.PackageKey] = append(byPkg[f.PackageKey], i)
	}
	out := make([]Finding, 0, len(fs))
	for _, pk := range pkgs {
		for _, group := range groupByAlias(fs, byPkg[pk]) {
			out = append(out, combine(group))
		}
	}
	return out
}

// groupByAlias partitions the findings at idx (one package's) into groups sharing an id or alias, each group
// in the order its findings were met.
func groupByAlias(fs []Finding, idx []int) [][]Finding {
	parent := make([]int, len(idx))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i, fi := range idx {
		for _, id := range append([]string{fs[fi].ID}, fs[fi].Aliases...) {
			if o, ok := owner[id]; ok {
				a, b := find(o), find(i)
				parent[max(a, b)] = min(a, b) // the earlier finding roots the group, for a stable order
			} else {
				owner[id] = i
			}
		}
	}
	var roots []int
	groups := map[int][]Finding{}
	for i, fi := range idx {
		r := find(i)
		if groups[r] == nil {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], fs[fi])
	}
	out := make([][]Finding, 0, len(roots))
	for _, r := range roots {
		out = append(out, groups[r])
	}
	return out
}

// combine makes one finding of findings of the same flaw in the same package. The id is a CVE when one of them
// is named by one (the id every database and dashboard shares), else the smallest; the others become
// aliases. It keeps the higher severity, the highest CVSS score with its vector, and the higher fixed version
// (when two databases disagree, the higher is the one both agree fixes it).
func combine(group []Finding) Finding {
	if len(group) == 1 {
		return group[0]
	}
	out := group[0]
	for _, f := range group[1:] {
		if isCVE(f.ID) && !isCVE(out.ID) || isCVE(f.ID) == isCVE(out.ID) && f.ID < out.ID {
			out.ID = f.ID
		}
	}
	ids := map[string]bool{}
	var sources []string
	for _, f := range group {
		ids[f.ID] = true
		for _, a := range f.Aliases {
			ids[a] = true
		}
		if severityRank(f.Severity) > severityRank(out.Severity) {
			out.Severity = f.Severity
		}
		if f.CVSS > out.CVSS || out.CVSSVector == "" && f.CVSSVector != "" && f.CVSS >= out.CVSS {
			out.CVSS, out.CVSSVector = f.CVSS, f.CVSSVector
		}
		if out.Summary == "" {
			out.Summary = f.Summary
		}
		out.Fixed = higherFix(out.Type, out.Fixed, f.Fixed)
		if !containsString(sources, f.Source) {
			sources = append(sources, f.Source)
		}
	}
	delete(ids, out.ID)
	out.Aliases = make([]string, 0, len(ids))
	for id := range ids {
		out.Aliases = append(out.Aliases, id)
	}
	sort.Strings(out.Aliases)
	out.Source = strings.Join(sources, ", ")
	return out
}

func isCVE(id string) bool { return strings.HasPrefix(id, "CVE-") }

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// higherFix is the higher of two fixed versions, ignoring "" (one database not knowing a fix does not undo
// another's). Versions that do not compare keep the first.
func higherFix(pkgType, a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	if c, err := CompareVersions(pkgType, a, b); err == nil && c < 0 {
		return b
	}
	return a
}

// sortFindings orders findings by severity and CVSS, highest first, then by id, package and package key.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if ra, rb := severityRank(a.Severity), severityRank(b.Severity); ra != rb {
			return ra > rb
		}
		if a.CVSS != b.CVSS {
			return a.CVSS > b.CVSS
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		return a.PackageKey < b.PackageKey
	})
}
