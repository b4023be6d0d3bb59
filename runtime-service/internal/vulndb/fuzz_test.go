package vulndb

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/types"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// fuzzDistros are the distros an OSV entry's packages are matched on: one per ecosystem family indexed.
var fuzzDistros = []sbom.Distro{
	{ID: "debian", VersionID: "12"}, {ID: "ubuntu", VersionID: "22.04"}, {ID: "alpine", VersionID: "3.19.1"},
	{ID: "wolfi"}, {ID: "rhel", VersionID: "9.3"}, {ID: "almalinux", VersionID: "9"}, {ID: "rocky", VersionID: "8"},
}

// FuzzOSVEntry decodes an OSV document, indexes it and matches packages named like its affected ones, at the
// versions it names, on every distro. Nothing may panic, and the findings must keep Match's promises.
func FuzzOSVEntry(f *testing.F) {
	for _, e := range osvFixture {
		f.Add([]byte(e))
	}
	f.Add([]byte(`[` + osvFixture["Go/GO-2024-2887.json"] + `,` + osvFixture["Debian/DEBIAN-CVE-2024-0004.json"] + `]`))
	f.Add([]byte(`{"id":"X","aliases":["X",""],"upstream":["A","B"],"affected":[{"package":{"ecosystem":"Debian:12","name":"a"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"limit":"1"},{"last_affected":"0"},{"fixed":"0"},{"limit":"*"}]}],
		"versions":["0",""," 1 "]}]}`))
	f.Add([]byte(`{"id":"R","affected":[{"package":{"ecosystem":"Red Hat:enterprise_linux:9::appstream","name":"r"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1:0"},{"fixed":"1:2.0-1.el9"}]},{"type":"GIT","events":[{"introduced":"abc"}]}],
		"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N"}]}],
		"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}`))
	f.Add([]byte(`{"id":"P","affected":[{"package":{"purl":"pkg:golang/%zz/@@"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		vulns, err := decodeOSV(data)
		if err != nil {
			return
		}
		s := &osvSource{index: map[osvKey][]*osvAffected{}, ecos: map[string]bool{}}
		var r osvResult
		for _, v := range vulns {
			r.affected = append(r.affected, indexEntry(v, &r.counts)...)
		}
		s.add(r)
		s.finish()
		db := &DB{sources: []source{s}}
		pkgs := fuzzPackages(r.affected)
		for _, d := range fuzzDistros {
			checkMatch(t, db, &sbom.SBOM{Distro: d, Packages: pkgs})
		}
	})
}

// fuzzPackages names a package of every type after each affected entry, at each version the entry writes.
func fuzzPackages(as []*osvAffected) []sbom.Package {
	const maxPackages = 200
	var out []sbom.Package
	for _, a := range as {
		vers := append([]string{"1.0", "0"}, a.raw...)
		for _, r := range a.ranges {
			for _, e := range r.events {
				vers = append(vers, e.v.raw)
			}
		}
		for _, v := range vers {
			for _, typ := range []string{sbom.TypeDeb, sbom.TypeAPK, sbom.TypeRPM, sbom.TypeGoModule} {
				if len(out) < maxPackages {
					out = append(out, sbom.Package{Type: typ, Name: a.name, Version: v, SourceName: a.name})
				}
			}
		}
	}
	return out
}

// checkMatch matches s and checks what Match promises: no error but an IncompleteError, one finding per (ID,
// PackageKey), a known severity word, and sorted output.
func checkMatch(t *testing.T, m Matcher, s *sbom.SBOM) {
	t.Helper()
	fs, err := m.Match(s)
	var ie *IncompleteError
	if err != nil && !errors.As(err, &ie) {
		t.Fatalf("Match: %v", err)
	}
	if ie != nil && (ie.Count < len(ie.Problems) || len(ie.Problems) == 0 || len(ie.Problems) > maxProblems) {
		t.Fatalf("IncompleteError counts %d, lists %d", ie.Count, len(ie.Problems))
	}
	seen := map[[2]string]bool{}
	for _, f := range fs {
		k := [2]string{f.ID, f.PackageKey}
		if seen[k] {
			t.Fatalf("two findings for %v", k)
		}
		seen[k] = true
		switch f.Severity {
		case SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityUnknown:
		default:
			t.Fatalf("severity %q", f.Severity)
		}
	}
	sorted := append([]Finding(nil), fs...)
	sortFindings(sorted)
	for i := range fs {
		if fs[i].ID != sorted[i].ID || fs[i].PackageKey != sorted[i].PackageKey {
			t.Fatalf("findings not sorted at %d", i)
		}
	}
}

// fuzzCompare checks that comparing two versions of one ecosystem never panics and is a consistent order.
func fuzzCompare(t *testing.T, k kind, a, b string) {
	va, errA := parseVersion(k, a)
	vb, errB := parseVersion(k, b)
	if errA != nil || errB != nil {
		return
	}
	ab, ba := va.compare(vb), vb.compare(va)
	if ab < -1 || ab > 1 || ab != -ba {
		t.Fatalf("%s: compare(%q, %q) = %d, compare(%q, %q) = %d", k, a, b, ab, b, a, ba)
	}
	if va.compare(va) != 0 {
		t.Fatalf("%s: %q is not equal to itself", k, a)
	}
}

func FuzzVersionCompareDeb(f *testing.F) {
	for _, s := range [][2]string{{"1.0-1", "1.0-2"}, {"1:0.9", "2.0"}, {"1.0~rc1-1", "1.0-1"}, {"3.0.11-1~deb12u2", "3.0.13-1~deb12u1"},
		{"1.2.13.dfsg-1", "1:1.2.13.dfsg-1"}, {"0", "0-0"}, {"1.0+b1", "1.0"}, {"9999999999999999999999", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) { fuzzCompare(t, kindDeb, a, b) })
}

func FuzzVersionCompareAPK(f *testing.F) {
	for _, s := range [][2]string{{"1.36.1-r15", "1.36.1-r16"}, {"1.2.3_rc1-r0", "1.2.3-r0"}, {"1.2.3_p1-r0", "1.2.3-r0"},
		{"1.0a", "1.0"}, {"1..2", "1.2"}, {"0001", "1"}, {"1.0_git20230101", "1.0_cvs1"}, {"99999999999999999999", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) { fuzzCompare(t, kindAPK, a, b) })
}

func FuzzVersionCompareRPM(f *testing.F) {
	for _, s := range [][2]string{{"1.0-1.el9", "1.0-2.el9"}, {"1:1.0-1", "2.0-1"}, {"1.0~rc1-1", "1.0-1"}, {"0:1.2-3", "1.2-3"},
		{"1.0a-1", "1.0-1"}, {"1.0^git1-1", "1.0-1"}, {"1.0_1", "1.0.1"}, {"123456789:1", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) { fuzzCompare(t, kindRPM, a, b) })
}

func FuzzVersionCompareGo(f *testing.F) {
	for _, s := range [][2]string{{"v1.2.3", "1.2.3"}, {"go1.22rc1", "go1.22.0"}, {"go1.21", "1.21.0"}, {"1.22.0-0", "go1.22rc1"},
		{"v0.0.0-20230101000000-abcdefabcdef", "v0.0.1"}, {"v2.0.0+incompatible", "v2.0.0"}, {"go1.22.3 X:boringcrypto", "1.22.3"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) { fuzzCompare(t, kindSemver, a, b) })
}

// FuzzTrivyAdvisory decodes a trivy-db advisory value and applies it to an installed version in every
// ecosystem: no panic, and a fixed version it reports is above the installed one.
func FuzzTrivyAdvisory(f *testing.F) {
	for _, fx := range trivyTestFixture.advisories {
		for _, advs := range fx {
			for _, adv := range advs {
				data, err := json.Marshal(&adv)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(data, "1.0.0")
			}
		}
	}
	f.Add([]byte(`{"VulnerableVersions":[">= 1.0, < 2.0 || =3.0"],"PatchedVersions":["2.0", ">3.0"]}`), "v1.5.0")
	f.Add([]byte(`{"VulnerableVersions":[""],"Status":3}`), "1.0-1")
	f.Add([]byte(`{"FixedVersion":"1:2.0-1","Severity":7}`), "1:1.0-1")
	f.Add([]byte(`{"UnaffectedVersions":["<1.0"],"PatchedVersions":[">=2.0"]}`), "1.5")
	f.Fuzz(func(t *testing.T, data []byte, installed string) {
		var adv types.Advisory
		if json.Unmarshal(data, &adv) != nil {
			return
		}
		for k := kindDeb; k < kindCount; k++ {
			tg := newTarget(&sbom.Package{Type: sbom.TypeGoModule, Name: "m", Version: installed})
			res := evaluateTrivy(adv, tg, k)
			if res.fixed == "" {
				continue
			}
			fixed, err := parseVersion(k, res.fixed)
			inst, ierr := parseVersion(k, installed)
			if err != nil || ierr != nil || fixed.compare(inst) <= 0 {
				t.Fatalf("%s: fixed %q for installed %q (%v, %v)", k, res.fixed, installed, err, ierr)
			}
		}
		trivyRating(adv, &types.Vulnerability{}, types.DataSource{})
	})
}

// FuzzCVSS scores CVSS vectors as databases write them: no panic, and a score within 0–10.
func FuzzCVSS(f *testing.F) {
	for _, v := range []string{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.0/AV:N/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "CVSS:3.1/AV:N/AV:N", "AV:N/AC:L/Au:N/C:P/I:P/A:P"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		score, version, err := cvssScore(v)
		if err == nil && (score < 0 || score > 10 || (version != 3 && version != 4)) {
			t.Fatalf("cvssScore(%q) = %v, v%d", v, score, version)
		}
	})
}
