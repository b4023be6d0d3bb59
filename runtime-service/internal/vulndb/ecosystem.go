package vulndb

import (
	"strings"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// OSV ecosystem names (osv-schema's ecosystem list; the distro ones take ":<release>").
const (
	ecoDebian     = "Debian"
	ecoUbuntu     = "Ubuntu"
	ecoAlpine     = "Alpine"
	ecoWolfi      = "Wolfi"
	ecoChainguard = "Chainguard"
	ecoRedHat     = "Red Hat"
	ecoAlma       = "AlmaLinux"
	ecoRocky      = "Rocky Linux"
	ecoGo         = "Go"
)

// osvEcosystemKind is the ordering of an OSV ecosystem's versions, from the name before the first ':'.
// kindNone means the ecosystem is one no SBOM package type maps to: its advisories are not indexed.
func osvEcosystemKind(eco string) kind {
	base, _, _ := strings.Cut(eco, ":")
	switch base {
	case ecoDebian, ecoUbuntu:
		return kindDeb
	case ecoAlpine, ecoWolfi, ecoChainguard:
		return kindAPK
	case ecoRedHat, ecoAlma, ecoRocky:
		return kindRPM
	case ecoGo:
		return kindSemver
	}
	return kindNone
}

// osvIndexEcosystem is the ecosystem an advisory is indexed under. Red Hat splits each release by repository
// ("Red Hat:enterprise_linux:9::appstream", "…::baseos"), which an image's rpm database does not record, so
// those are indexed under the release alone. Everything else is indexed as written.
func osvIndexEcosystem(eco string) string {
	if strings.HasPrefix(eco, ecoRedHat+":") {
		if i := strings.Index(eco, "::"); i >= 0 {
			return eco[:i]
		}
	}
	return eco
}

// osvEcosystems are the OSV ecosystems whose advisories apply to a package of type pkgType on distro d, most
// specific first. Empty when the distro is unknown or not one OSV covers for that type.
func osvEcosystems(d sbom.Distro, pkgType string) []string {
	if pkgType == sbom.TypeGoModule {
		return []string{ecoGo}
	}
	id, ver := strings.ToLower(strings.TrimSpace(d.ID)), strings.TrimSpace(d.VersionID)
	switch {
	case pkgType == sbom.TypeDeb && id == "debian" && major(ver) != "":
		return []string{ecoDebian + ":" + major(ver)}
	case pkgType == sbom.TypeDeb && id == "ubuntu" && majorMinor(ver) != "":
		// Ubuntu's own feed names LTS releases "Ubuntu:22.04:LTS" and the others "Ubuntu:23.10".
		mm := majorMinor(ver)
		return []string{ecoUbuntu + ":" + mm + ":LTS", ecoUbuntu + ":" + mm}
	case pkgType == sbom.TypeAPK && id == "alpine" && majorMinor(ver) != "":
		return []string{ecoAlpine + ":v" + majorMinor(ver)}
	case pkgType == sbom.TypeAPK && id == "wolfi":
		return []string{ecoWolfi}
	case pkgType == sbom.TypeAPK && id == "chainguard":
		return []string{ecoChainguard}
	case pkgType == sbom.TypeRPM && id == "rhel" && major(ver) != "":
		return []string{ecoRedHat + ":enterprise_linux:" + major(ver)}
	case pkgType == sbom.TypeRPM && id == "almalinux" && major(ver) != "":
		return []string{ecoAlma + ":" + major(ver)}
	case pkgType == sbom.TypeRPM && id == "rocky" && major(ver) != "":
		return []string{ecoRocky + ":" + major(ver)}
	}
	return nil
}

// trivyOSBuckets are the trivy-db buckets holding advisories for an OS package of type pkgType on distro d.
// Language packages are looked up by bucket prefix instead (trivyLangPrefix). Red Hat is missing on purpose:
// trivy-db keys its advisories by CPE and content set, which an SBOM does not carry.
func trivyOSBuckets(d sbom.Distro, pkgType string) []string {
	id, ver := strings.ToLower(strings.TrimSpace(d.ID)), strings.TrimSpace(d.VersionID)
	switch {
	case pkgType == sbom.TypeDeb && id == "debian" && major(ver) != "":
		return []string{"debian " + major(ver)}
	case pkgType == sbom.TypeDeb && id == "ubuntu" && majorMinor(ver) != "":
		return []string{"ubuntu " + majorMinor(ver)}
	case pkgType == sbom.TypeAPK && id == "alpine" && majorMinor(ver) != "":
		return []string{"alpine " + majorMinor(ver)}
	case pkgType == sbom.TypeAPK && id == "wolfi":
		return []string{"wolfi"}
	case pkgType == sbom.TypeAPK && id == "chainguard":
		return []string{"chainguard"}
	case pkgType == sbom.TypeRPM && id == "almalinux" && major(ver) != "":
		return []string{"alma " + major(ver)}
	case pkgType == sbom.TypeRPM && id == "rocky" && major(ver) != "":
		return []string{"rocky " + major(ver)}
	}
	return nil
}

// trivyLangPrefix is the prefix of the trivy-db buckets of a language package type: one bucket per data source
// ("go::GitHub Security Advisory Go", "go::The Go Vulnerability Database"), all of which apply.
func trivyLangPrefix(pkgType string) string {
	if pkgType == sbom.TypeGoModule {
		return "go::"
	}
	return ""
}

// major is "12" of "12", "12.5" or "12.5.1"; "" when it does not start with a number.
func major(v string) string {
	m, _, _ := strings.Cut(v, ".")
	if m == "" || strings.Trim(m, "0123456789") != "" {
		return ""
	}
	return m
}

// majorMinor is "3.19" of "3.19.1" and "22.04" of "22.04"; "" without both numbers.
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 || major(parts[0]) == "" || major(parts[1]) == "" {
		return ""
	}
	return parts[0] + "." + parts[1]
}

// target is one SBOM package as advisories name it: Debian, Ubuntu and Alpine advisories name the source
// package (dpkg Source, apk origin), so a binary package is looked up, and compared, as its source.
type target struct {
	pkg     *sbom.Package
	key     string // pkg.Key()
	name    string // the name advisories use
	version string // the version compared against advisories
	parsed  [kindCount]*version
	errs    [kindCount]error
}

func newTarget(p *sbom.Package) *target {
	t := &target{pkg: p, key: p.Key(), name: p.Name, version: p.Version}
	if (p.Type == sbom.TypeDeb || p.Type == sbom.TypeAPK) && p.SourceName != "" {
		t.name = p.SourceName
		if p.SourceVersion != "" {
			t.version = p.SourceVersion
		}
	}
	return t
}

// as is the compared version parsed in kind k, parsed once per package whatever the number of advisories.
func (t *target) as(k kind) (version, error) {
	if k >= kindCount {
		return version{}, errNoKind
	}
	if t.parsed[k] == nil && t.errs[k] == nil {
		v, err := parseVersion(k, t.version)
		if err != nil {
			t.errs[k] = err
		} else {
			t.parsed[k] = &v
		}
	}
	if t.errs[k] != nil {
		return version{}, t.errs[k]
	}
	return *t.parsed[k], nil
}
