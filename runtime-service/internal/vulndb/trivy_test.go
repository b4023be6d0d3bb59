package vulndb

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/types"
	bolt "go.etcd.io/bbolt"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

const (
	ghsaGoBucket  = "go::GitHub Security Advisory Go"
	goVulnDBucket = "go::The Go Vulnerability Database"
)

var trivyTestFixture = trivyFixture{
	advisories: map[string]map[string]map[string]types.Advisory{
		"debian 12": {
			"openssl": {
				"CVE-2024-0001": {FixedVersion: "3.0.13-1~deb12u1"},
				// Unfixed, and the tracker rates it for this package.
				"CVE-2024-0010": {Status: types.StatusAffected, Severity: types.SeverityLow},
				// Not affected: never a finding.
				"CVE-2024-0011": {Status: types.StatusNotAffected},
			},
		},
		"alpine 3.19": {"busybox": {"CVE-2024-0002": {FixedVersion: "1.36.1-r16"}}},
		ghsaGoBucket: {
			"golang.org/x/net": {
				"CVE-2024-1000": {VulnerableVersions: []string{"< 0.17.0"}, PatchedVersions: []string{"0.17.0"}},
				"GHSA-two0-bran-ches": {
					VulnerableVersions: []string{">=1.0.0, <1.2.5", ">= 2.0.0 < 2.0.3"},
					PatchedVersions:    []string{"1.2.5", "2.0.3"},
				},
			},
		},
		goVulnDBucket: {
			"stdlib": {"CVE-2024-24790": {VulnerableVersions: []string{"<1.21.11", ">=1.22.0-0, <1.22.4"},
				PatchedVersions: []string{"1.21.11", "1.22.4"}}},
		},
	},
	vulnerability: map[string]types.Vulnerability{
		"CVE-2024-0001": {
			Title:          "openssl: buffer overflow",
			VendorSeverity: types.VendorSeverity{"debian": types.SeverityHigh, "nvd": types.SeverityCritical},
			CVSS:           types.VendorCVSS{"nvd": {V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", V3Score: 9.8}},
		},
		"CVE-2024-0010": {VendorSeverity: types.VendorSeverity{"debian": types.SeverityHigh}},
		"CVE-2024-0002": {Description: "busybox awk\nlong text",
			// A vector without its score: the score is computed.
			CVSS: types.VendorCVSS{"nvd": {V3Vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}}},
		"CVE-2024-1000": {VendorSeverity: types.VendorSeverity{"ghsa": types.SeverityMedium, "nvd": types.SeverityHigh}},
		// Severity out of trivy-db's range: unknown, not a panic.
		"CVE-2024-24790": {VendorSeverity: types.VendorSeverity{"go-vulndb": types.Severity(9)}},
	},
	dataSources: map[string]types.DataSource{
		"debian 12":   {ID: "debian", Name: "Debian Security Tracker"},
		"alpine 3.19": {ID: "alpine", Name: "Alpine Secdb"},
		ghsaGoBucket:  {ID: "ghsa", Name: "GitHub Security Advisory Go"},
		goVulnDBucket: {ID: "go-vulndb", Name: "The Go Vulnerability Database"},
	},
}

func trivyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeTrivyDB(t, filepath.Join(dir, trivyDBFile), trivyTestFixture)
	writeFiles(t, dir, map[string]string{trivyMetadataFile: `{"Version": 2, "UpdatedAt": "2026-01-01T00:00:00Z"}`})
	return dir
}

func TestTrivyMatch(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, Config{Kind: KindTrivy, Path: trivyDir(t)})
	// No advisories for these distro releases in the database: reported as a problem.
	uncovered := map[string]bool{"debian other release": true}
	for _, tc := range []struct {
		name string
		sbom *sbom.SBOM
		want []string
	}{
		{"debian source package, older", sbomOf("debian", "12", srcPkg(sbom.TypeDeb, "libssl3", "3.0.11-1~deb12u2", "openssl", "")),
			[]string{"CVE-2024-0001 deb/libssl3@3.0.11-1~deb12u2 fixed=3.0.13-1~deb12u1",
				"CVE-2024-0010 deb/libssl3@3.0.11-1~deb12u2 fixed="}},
		{"debian fixed, unfixed one stays", sbomOf("debian", "12", srcPkg(sbom.TypeDeb, "libssl3", "3.0.14-1", "openssl", "")),
			[]string{"CVE-2024-0010 deb/libssl3@3.0.14-1 fixed="}},
		{"debian other release", sbomOf("debian", "11", pkg(sbom.TypeDeb, "openssl", "1.1.1n-0")), nil},
		{"alpine", sbomOf("alpine", "3.19.0", srcPkg(sbom.TypeAPK, "busybox-binsh", "1.36.1-r15", "busybox", "")),
			[]string{"CVE-2024-0002 apk/busybox-binsh@1.36.1-r15 fixed=1.36.1-r16"}},
		{"alpine fixed", sbomOf("alpine", "3.19.0", pkg(sbom.TypeAPK, "busybox", "1.36.1-r16")), nil},
		{"go module", sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.15.0")),
			[]string{"CVE-2024-1000 golang/golang.org/x/net@v0.15.0 fixed=0.17.0"}},
		{"go module fixed", sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.17.0")), nil},
		{"second branch", sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v2.0.1")),
			[]string{"GHSA-two0-bran-ches golang/golang.org/x/net@v2.0.1 fixed=2.0.3"}},
		{"between branches", sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v1.5.0")), nil},
		{"first branch", sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v1.2.4")),
			[]string{"GHSA-two0-bran-ches golang/golang.org/x/net@v1.2.4 fixed=1.2.5"}},
		{"stdlib", sbomOf("", "", pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.22.3")),
			[]string{"CVE-2024-24790 golang/stdlib@go1.22.3 fixed=1.22.4"}},
		{"stdlib fixed", sbomOf("", "", pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.21.11")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := findingIDs(matchCoverage(t, db, tc.sbom, uncovered[tc.name]))
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("findings\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestTrivySeverity(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, Config{Kind: KindTrivy, Path: trivyDir(t)})
	// An apk package on Debian has no bucket: it is reported, and the rest still matched.
	fs, err := db.Match(sbomOf("debian", "12", pkg(sbom.TypeDeb, "openssl", "3.0.11-1"),
		pkg(sbom.TypeAPK, "busybox", "1.36.1-r15"), pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.15.0"),
		pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.22.3")))
	var ie *IncompleteError
	if !errors.As(err, &ie) || ie.Count != 1 || !strings.Contains(ie.Problems[0].Reason, `"apk"`) {
		t.Errorf("want the apk packages reported, got %v", err)
	}
	got := map[string]Finding{}
	for _, f := range fs {
		got[f.ID] = f
	}
	for id, want := range map[string]struct {
		severity string
		cvss     float64
		summary  string
		source   string
	}{
		// The data source's own (Debian's), not NVD's critical; the score from NVD.
		"CVE-2024-0001": {SeverityHigh, 9.8, "openssl: buffer overflow", "trivy:debian 12"},
		// The advisory's per-package severity beats the vulnerability's.
		"CVE-2024-0010":  {SeverityLow, 0, "", "trivy:debian 12"},
		"CVE-2024-1000":  {SeverityMedium, 0, "", "trivy:" + ghsaGoBucket},
		"CVE-2024-24790": {SeverityUnknown, 0, "", "trivy:" + goVulnDBucket},
	} {
		f := got[id]
		if f.Severity != want.severity || f.CVSS != want.cvss || f.Summary != want.summary || f.Source != want.source {
			t.Errorf("%s: got %+v, want %+v", id, f, want)
		}
	}
	if len(fs) != 4 {
		t.Errorf("findings %q", findingIDs(fs))
	}

	fs = mustMatch(t, db, sbomOf("alpine", "3.19", pkg(sbom.TypeAPK, "busybox", "1.36.1-r15")))
	if len(fs) != 1 || fs[0].CVSS != 7.8 || fs[0].Severity != SeverityHigh || fs[0].Summary != "busybox awk" {
		t.Errorf("alpine %+v", fs)
	}
}

// Two databases open at once, each its own bbolt handle (trivy-db's pkg/db would share one).
func TestTrivyTwoDatabases(t *testing.T) {
	t.Parallel()
	dir2 := t.TempDir()
	writeTrivyDB(t, filepath.Join(dir2, trivyDBFile), trivyFixture{advisories: map[string]map[string]map[string]types.Advisory{
		"debian 12": {"openssl": {"CVE-2099-0001": {}}}}})
	a := mustOpen(t, Config{Kind: KindTrivy, Path: trivyDir(t)})
	b := mustOpen(t, Config{Kind: KindTrivy, Path: filepath.Join(dir2, trivyDBFile)})
	if a.Version() == b.Version() {
		t.Error("different databases, same Version")
	}
	s := sbomOf("debian", "12", pkg(sbom.TypeDeb, "openssl", "3.0.14-1"))
	ga, gb := findingIDs(mustMatch(t, a, s)), findingIDs(mustMatch(t, b, s))
	if !reflect.DeepEqual(ga, []string{"CVE-2024-0010 deb/openssl@3.0.14-1 fixed="}) ||
		!reflect.DeepEqual(gb, []string{"CVE-2099-0001 deb/openssl@3.0.14-1 fixed="}) {
		t.Errorf("got %q and %q", ga, gb)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := findingIDs(mustMatch(t, b, s)); !reflect.DeepEqual(got, gb) {
		t.Errorf("closing one database changed the other: %q", got)
	}
}

func TestTrivyRejects(t *testing.T) {
	t.Parallel()
	dir := trivyDir(t)
	writeFiles(t, dir, map[string]string{trivyMetadataFile: `{"Version": 1}`})
	if _, err := Open(Config{Kind: KindTrivy, Path: dir}); err == nil || !strings.Contains(err.Error(), "schema version 1") {
		t.Errorf("old schema: %v", err)
	}

	// A bbolt file without trivy-db's buckets.
	dir = t.TempDir()
	other, err := bolt.Open(filepath.Join(dir, "other.db"), 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = other.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("something else"))
		return err
	})
	if err := errors.Join(err, other.Close()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Kind: KindTrivy, Path: filepath.Join(dir, "other.db")}); err == nil ||
		!strings.Contains(err.Error(), "not a trivy-db") {
		t.Errorf("not trivy-db: %v", err)
	}
}

func TestTrivyProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTrivyDB(t, filepath.Join(dir, trivyDBFile), trivyFixture{advisories: map[string]map[string]map[string]types.Advisory{
		"debian 12":  {"curl": {"CVE-2024-0100": {FixedVersion: "x.y"}}},
		ghsaGoBucket: {"example.com/m": {"GHSA-bad0-cons-trnt": {VulnerableVersions: []string{"~> 1.0"}}}},
	}})
	db := mustOpen(t, Config{Kind: KindTrivy, Path: dir})
	fs, err := db.Match(sbomOf("debian", "12", pkg(sbom.TypeDeb, "curl", "7.88.1-10"),
		pkg(sbom.TypeGoModule, "example.com/m", "v1.0.0")))
	var ie *IncompleteError
	if !errors.As(err, &ie) || ie.Count != 2 || len(fs) != 0 {
		t.Fatalf("findings %+v, err %v", fs, err)
	}
	if p := ie.Problems[0]; p.ID != "CVE-2024-0100" || p.Source != "trivy:debian 12" || p.Version != "x.y" || p.PackageKey != "deb/curl@7.88.1-10" {
		t.Errorf("problem %+v", p)
	}
	if p := ie.Problems[1]; p.ID != "GHSA-bad0-cons-trnt" || p.Version != "~> 1.0" {
		t.Errorf("problem %+v", p)
	}
}

func TestTrivyFingerprint(t *testing.T) {
	t.Parallel()
	dir := trivyDir(t)
	cfg := Config{Kind: KindTrivy, Path: dir}
	fp1, err := Fingerprint(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{trivyMetadataFile: `{"Version": 2, "UpdatedAt": "2026-01-02T00:00:00Z"}`})
	if fp2, _ := Fingerprint(cfg); fp2 == fp1 {
		t.Error("Fingerprint did not change with metadata.json")
	}
	if err := os.Remove(filepath.Join(dir, trivyMetadataFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Fingerprint(cfg); err != nil {
		t.Errorf("without metadata.json: %v", err)
	}
}

func TestConstraints(t *testing.T) {
	for _, tc := range []struct {
		constraint, version string
		want                bool
	}{
		{"< 0.17.0", "0.16.9", true},
		{"< 0.17.0", "v0.17.0", false},
		{">=1.0.0, <1.2.5", "1.2.4", true},
		{">= 1.0.0 < 1.2.5", "1.2.5", false},
		{"1.2.3", "1.2.3", true},
		{"=1.2.3", "1.2.4", false},
		{"==1.2.3", "1.2.3", true},
		{"!=1.2.3", "1.2.4", true},
		{"<=1.0.0 || >2.0.0", "2.0.1", true},
		{"<=1.0.0 || >2.0.0", "1.5.0", false},
	} {
		alts, err := parseConstraints(kindSemver, tc.constraint)
		if err != nil {
			t.Errorf("%q: %v", tc.constraint, err)
			continue
		}
		v, err := parseVersion(kindSemver, tc.version)
		if err != nil {
			t.Fatal(err)
		}
		if got := alts.matches(v); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.constraint, tc.version, got, tc.want)
		}
	}
	for _, bad := range []string{"", ">=", ">= < 1.0", "~> 1.0", "^1.2", "1.0 ||", ">= >= 1.0"} {
		if _, err := parseConstraints(kindSemver, bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
