package sbom

import (
	"path"
	"slices"
	"strings"
)

// absPath makes a path from a document or an archive absolute and clean: "./usr/bin/x" and "usr/bin/x" are
// "/usr/bin/x". path.Clean clamps ".." at the root.
func absPath(p string) string { return path.Clean("/" + p) }

// finishPackages is the last step for every SBOM, read or generated: it normalizes each package, merges packages
// with the same Key (a Go module linked into several binaries; a document listing one package per location) by
// joining their Files and Locations, and sorts packages, files and locations so equal inputs give equal SBOMs.
func finishPackages(pkgs []Package) []Package {
	byKey := make(map[string]int, len(pkgs))
	out := make([]Package, 0, len(pkgs))
	for _, p := range pkgs {
		p = normalizePackage(p)
		if i, ok := byKey[p.Key()]; ok {
			out[i].Files = append(out[i].Files, p.Files...)
			out[i].Locations = append(out[i].Locations, p.Locations...)
			continue
		}
		byKey[p.Key()] = len(out)
		out = append(out, p)
	}
	for i := range out {
		out[i].Files = sortedUnique(out[i].Files)
		out[i].Locations = sortedUnique(out[i].Locations)
	}
	slices.SortFunc(out, func(a, b Package) int {
		return strings.Compare(a.Key(), b.Key())
	})
	return out
}

// normalizePackage applies the contract's conventions: SourceName and SourceVersion are empty when equal to
// Name and Version, and the Go standard library's version is OSV's ("1.22.3", not "go1.22.3").
func normalizePackage(p Package) Package {
	if p.SourceName == p.Name {
		p.SourceName = ""
	}
	if p.SourceVersion == p.Version {
		p.SourceVersion = ""
	}
	if p.Type == TypeGoModule && p.Name == GoStdlib {
		if v := goSemver(p.Version); v != "" {
			p.Version = v
		}
	}
	return p
}

// goSemver turns a Go toolchain version as binaries and SBOM tools write it ("go1.22.3", "v1.22.3",
// "go1.22.3 X:boringcrypto", "go1.21rc2", "go1.20") into the semantic version OSV's Go ecosystem lists for
// "stdlib" ("1.22.3", "1.21.0-rc.2", "1.20.0"), as golang.org/x/vuln does. It returns "" for versions that name
// no release ("devel go1.24-abcdef").
func goSemver(v string) string {
	v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	v = strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v")
	pre := ""
	for _, tag := range []string{"rc", "beta", "alpha"} {
		if i := strings.Index(v, tag); i > 0 {
			if n := v[i+len(tag):]; allDigits(n) {
				pre = "-" + tag + "." + n
				v = v[:i]
				break
			}
			return ""
		}
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return ""
	}
	for _, part := range parts {
		if !allDigits(part) {
			return ""
		}
	}
	if len(parts) == 2 {
		parts = append(parts, "0")
	}
	return strings.Join(parts, ".") + pre
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}
