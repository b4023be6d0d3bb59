package vulndb

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/types"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// The same CVE from OSV (as DEBIAN-CVE-…, upstream CVE-…) and from trivy-db (as CVE-…) is one finding.
func TestMergeOSVAndTrivy(t *testing.T) {
	db := mustOpen(t, Config{Kind: KindOSV, Path: osvDir(t)}, Config{Kind: KindTrivy, Path: trivyDir(t)})
	fs := mustMatch(t, db, sbomOf("debian", "12", srcPkg(sbom.TypeDeb, "libssl3", "3.0.11-1~deb12u2", "openssl", "")))
	want := []Finding{{
		ID: "CVE-2024-0001", Aliases: []string{"DEBIAN-CVE-2024-0001"},
		PackageKey: "deb/libssl3@3.0.11-1~deb12u2", Package: "libssl3", Type: sbom.TypeDeb, Installed: "3.0.11-1~deb12u2",
		Fixed: "3.0.13-1~deb12u1", Severity: SeverityHigh, // OSV says medium (Debian's urgency), trivy-db high
		CVSS: 9.8, CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		Summary: "Buffer overflow in openssl.", Source: "osv:Debian:12, trivy:debian 12",
	}, {
		ID: "CVE-2024-0010", PackageKey: "deb/libssl3@3.0.11-1~deb12u2", Package: "libssl3", Type: sbom.TypeDeb,
		Installed: "3.0.11-1~deb12u2", Severity: SeverityLow, Source: "trivy:debian 12",
	}}
	if !reflect.DeepEqual(fs, want) {
		t.Errorf("got  %+v\nwant %+v", fs, want)
	}

	// A Go module: GHSA + GO- in OSV and CVE in trivy-db, all one.
	fs = mustMatch(t, db, sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.15.0")))
	if len(fs) != 1 || fs[0].ID != "CVE-2024-1000" ||
		!reflect.DeepEqual(fs[0].Aliases, []string{"GHSA-aaaa-bbbb-cccc", "GO-2024-0001"}) ||
		fs[0].Source != "osv:Go, trivy:"+ghsaGoBucket || fs[0].Severity != SeverityMedium || fs[0].CVSS != 7.5 {
		t.Errorf("go module: %+v", fs)
	}
	if len(db.Stats()) != 2 || db.Stats()[1].Kind != KindTrivy {
		t.Errorf("stats %+v", db.Stats())
	}
}

func TestMergeFindings(t *testing.T) {
	fs := []Finding{
		{ID: "GO-1", Aliases: []string{"GHSA-1"}, PackageKey: "p", Type: sbom.TypeGoModule, Fixed: "1.2.0", Severity: SeverityUnknown, Source: "osv:Go"},
		{ID: "GHSA-1", Aliases: []string{"CVE-1"}, PackageKey: "p", Type: sbom.TypeGoModule, Fixed: "1.10.0", Severity: SeverityLow, CVSS: 3.1, CVSSVector: "v31", Source: "osv:Go"},
		{ID: "CVE-1", PackageKey: "p", Type: sbom.TypeGoModule, Severity: SeverityHigh, CVSS: 2.0, CVSSVector: "v2", Summary: "s", Source: "trivy:go"},
		{ID: "CVE-1", PackageKey: "q", Type: sbom.TypeGoModule, Source: "trivy:go"}, // another package: its own
		{ID: "GO-2", PackageKey: "p", Type: sbom.TypeGoModule, Source: "osv:Go"},    // another flaw
	}
	got := mergeFindings(fs)
	want := []Finding{
		{ID: "CVE-1", Aliases: []string{"GHSA-1", "GO-1"}, PackageKey: "p", Type: sbom.TypeGoModule,
			Fixed: "1.10.0", Severity: SeverityHigh, CVSS: 3.1, CVSSVector: "v31", Summary: "s", Source: "osv:Go, trivy:go"},
		{ID: "GO-2", PackageKey: "p", Type: sbom.TypeGoModule, Source: "osv:Go"},
		{ID: "CVE-1", PackageKey: "q", Type: sbom.TypeGoModule, Source: "trivy:go"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestSortFindings(t *testing.T) {
	fs := []Finding{
		{ID: "B", Package: "a", Severity: SeverityUnknown},
		{ID: "A", Package: "b", Severity: SeverityHigh, CVSS: 7.5},
		{ID: "A", Package: "a", Severity: SeverityHigh, CVSS: 7.5},
		{ID: "Z", Package: "a", Severity: SeverityHigh, CVSS: 8.1},
		{ID: "C", Package: "a", Severity: SeverityCritical},
		{ID: "D", Package: "a", Severity: SeverityLow, CVSS: 9.9},
		{ID: "E", Package: "a", Severity: SeverityMedium},
	}
	sortFindings(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID+f.Package)
	}
	if want := []string{"Ca", "Za", "Aa", "Ab", "Ea", "Da", "Ba"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"plain.txt": "hello", "osv/a.json": osvFixture["Go/GO-2024-2887.json"]})
	writeZip(t, filepath.Join(dir, "all.zip"), map[string]string{"a.json": osvFixture["Go/GO-2024-2887.json"]})
	trivy := trivyDir(t)
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // "" for valid
	}{
		{"unknown kind", Config{Kind: "grype", Path: dir}, `kind "grype" is unknown: want "osv" or "trivy"`},
		{"empty kind", Config{Path: dir}, `kind "" is unknown`},
		{"kind is case-sensitive", Config{Kind: "OSV", Path: dir}, `kind "OSV" is unknown`},
		{"missing path", Config{Kind: KindOSV}, "osv: path is empty"},
		{"blank path", Config{Kind: KindTrivy, Path: "  "}, "trivy: path is empty"},
		{"path not there", Config{Kind: KindOSV, Path: filepath.Join(dir, "nope")}, "osv: path: stat"},
		{"osv file not a zip", Config{Kind: KindOSV, Path: filepath.Join(dir, "plain.txt")}, "not a directory or a zip file"},
		{"trivy dir without trivy.db", Config{Kind: KindTrivy, Path: filepath.Join(dir, "empty")}, "a directory without trivy.db"},
		{"trivy file not bbolt", Config{Kind: KindTrivy, Path: filepath.Join(dir, "plain.txt")}, "not a bbolt database"},
		{"trivy zip not bbolt", Config{Kind: KindTrivy, Path: filepath.Join(dir, "all.zip")}, "not a bbolt database"},
		{"osv dir", Config{Kind: KindOSV, Path: filepath.Join(dir, "osv")}, ""},
		{"osv zip", Config{Kind: KindOSV, Path: filepath.Join(dir, "all.zip")}, ""},
		{"trivy dir", Config{Kind: KindTrivy, Path: trivy}, ""},
		{"trivy file", Config{Kind: KindTrivy, Path: filepath.Join(trivy, trivyDBFile)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(Config{Kind: KindOSV, Path: filepath.Join(dir, "osv")}, tc.cfg)
			_, fpErr := Fingerprint(tc.cfg)
			if tc.wantErr == "" {
				if err != nil || fpErr != nil {
					t.Fatalf("Open: %v; Fingerprint: %v", err, fpErr)
				}
				db.(*DB).Close()
				return
			}
			for _, e := range []error{err, fpErr} {
				if e == nil || !strings.Contains(e.Error(), tc.wantErr) {
					t.Errorf("got %v, want an error containing %q", e, tc.wantErr)
				}
			}
			if err != nil && !strings.HasPrefix(err.Error(), "vulndb: config 1: ") {
				t.Errorf("the error does not name the config: %v", err)
			}
		})
	}
	if _, err := Open(); err == nil {
		t.Error("Open of nothing succeeded")
	}
	if _, err := Fingerprint(); err == nil {
		t.Error("Fingerprint of nothing succeeded")
	}
}

// Version changes with the databases and with their order; it is the same for the same content.
func TestVersion(t *testing.T) {
	osv, trivy := Config{Kind: KindOSV, Path: osvDir(t)}, Config{Kind: KindTrivy, Path: trivyDir(t)}
	a := mustOpen(t, osv, trivy).Version()
	if b := mustOpen(t, osv, trivy).Version(); a != b {
		t.Errorf("same content: %s, %s", a, b)
	}
	seen := map[string]bool{a: true}
	for _, cfgs := range [][]Config{{osv}, {trivy}, {trivy, osv}} {
		v := mustOpen(t, cfgs...).Version()
		if seen[v] {
			t.Errorf("%v: Version %s not distinct", cfgs, v)
		}
		seen[v] = true
	}
}

func TestMatchNilSBOM(t *testing.T) {
	db := mustOpen(t, Config{Kind: KindOSV, Path: osvDir(t)})
	if _, err := db.Match(nil); err == nil {
		t.Error("nil SBOM matched")
	}
	if fs, err := db.Match(&sbom.SBOM{}); err != nil || len(fs) != 0 {
		t.Errorf("empty SBOM: %v, %v", fs, err)
	}
}

// Match is read-only after Open: concurrent calls see the same results (run with -race).
func TestConcurrentMatch(t *testing.T) {
	db := mustOpen(t, Config{Kind: KindOSV, Path: osvDir(t)}, Config{Kind: KindTrivy, Path: trivyDir(t)})
	s := sbomOf("debian", "12", srcPkg(sbom.TypeDeb, "libssl3", "3.0.11-1~deb12u2", "openssl", ""),
		pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.15.0"), pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.22.1"))
	want := findingIDs(mustMatch(t, db, s))
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			got, err := db.Match(s)
			if err != nil {
				errs <- err.Error()
				return
			}
			if ids := findingIDs(got); !reflect.DeepEqual(ids, want) {
				errs <- strings.Join(ids, ";")
				return
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

func TestTrivyStatusIgnoredWithConstraints(t *testing.T) {
	// An advisory with constraints is judged by them, whatever Status says (only not_affected stops it).
	adv := types.Advisory{VulnerableVersions: []string{"<1.0.0"}, Status: types.StatusWillNotFix}
	tg := newTarget(&sbom.Package{Type: sbom.TypeGoModule, Name: "m", Version: "v1.0.0"})
	if r := evaluateTrivy(adv, tg, kindSemver); r.affected {
		t.Errorf("v1.0.0 affected by <1.0.0: %+v", r)
	}
	tg = newTarget(&sbom.Package{Type: sbom.TypeGoModule, Name: "m", Version: "v0.9.0"})
	if r := evaluateTrivy(adv, tg, kindSemver); !r.affected || r.fixed != "" {
		t.Errorf("v0.9.0: %+v", r)
	}
}
