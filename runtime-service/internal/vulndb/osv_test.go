package vulndb

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// osvFixture is a small OSV database: one entry per case the matcher must get right.
var osvFixture = map[string]string{
	// A Debian advisory names the source package (openssl), not the binary one (libssl3).
	"Debian/DEBIAN-CVE-2024-0001.json": `{
		"id": "DEBIAN-CVE-2024-0001", "upstream": ["CVE-2024-0001"],
		"details": "Buffer overflow in openssl.\nMore text.",
		"affected": [{
			"package": {"ecosystem": "Debian:12", "name": "openssl", "purl": "pkg:deb/debian/openssl?arch=source"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}],
			"ecosystem_specific": {"urgency": "medium"}
		}]}`,
	// No fix: introduced only.
	"Debian/DEBIAN-CVE-2024-0003.json": `{
		"id": "DEBIAN-CVE-2024-0003", "summary": "zlib flaw without a fix",
		"affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}`,
	// Explicit versions only.
	"Debian/DEBIAN-CVE-2024-0004.json": `{
		"id": "DEBIAN-CVE-2024-0004",
		"affected": [{"package": {"ecosystem": "Debian:12", "name": "bash"}, "versions": ["5.2.15-2", "5.2.15-2+b2"]}]}`,
	// Withdrawn: never a finding.
	"Debian/DEBIAN-CVE-2024-0005.json": `{
		"id": "DEBIAN-CVE-2024-0005", "withdrawn": "2024-03-01T00:00:00Z",
		"affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}`,
	"Alpine/ALPINE-CVE-2024-0002.json": `{
		"id": "ALPINE-CVE-2024-0002", "upstream": ["CVE-2024-0002"], "summary": "busybox awk",
		"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
		"affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "busybox"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r16"}]}]}]}`,
	// A GitHub advisory for a Go module, and the Go database's entry for the same flaw.
	"Go/GHSA-aaaa-bbbb-cccc.json": `{
		"id": "GHSA-aaaa-bbbb-cccc", "aliases": ["CVE-2024-1000"], "summary": "HTTP/2 rapid reset",
		"database_specific": {"severity": "MODERATE"},
		"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
		"affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/net"},
			"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.17.0"}]}]}]}`,
	"Go/GO-2024-0001.json": `{
		"id": "GO-2024-0001", "aliases": ["CVE-2024-1000", "GHSA-aaaa-bbbb-cccc"],
		"affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/net"},
			"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.17.0"}]}]}]}`,
	// The standard library, with a fix per release branch.
	"Go/GO-2024-2887.json": `{
		"id": "GO-2024-2887", "aliases": ["CVE-2024-24790"], "summary": "net/netip IPv4-mapped addresses",
		"affected": [{"package": {"ecosystem": "Go", "name": "stdlib"},
			"ranges": [{"type": "SEMVER", "events": [
				{"introduced": "0"}, {"fixed": "1.21.11"}, {"introduced": "1.22.0-0"}, {"fixed": "1.22.4"}]}]}]}`,
	// last_affected: 1.0.0 up to and including 1.4.2; the package named by purl only.
	"Go/GHSA-last-affe-cted.json": `{
		"id": "GHSA-last-affe-cted", "database_specific": {"severity": "LOW"},
		"affected": [{"package": {"purl": "pkg:golang/github.com/foo/bar"},
			"ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"last_affected": "1.4.2"}]}]}]}`,
	// An ecosystem no SBOM type maps to, beside a Go one in the same entry.
	"npm/GHSA-npm0-0000-0000.json": `{
		"id": "GHSA-npm0-0000-0000",
		"affected": [
			{"package": {"ecosystem": "npm", "name": "golang.org/x/net"},
			 "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]},
			{"package": {"ecosystem": "Go", "name": "github.com/only/go"},
			 "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}]}]}`,
	// Not OSV at all: counted invalid, not fatal.
	"broken.json": `{"id": `,
}

func osvDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, osvFixture)
	return dir
}

func TestOSVMatch(t *testing.T) {
	db := mustOpen(t, Config{Kind: KindOSV, Path: osvDir(t)})
	// No advisories for these distro releases in the database: reported as a problem.
	uncovered := map[string]bool{"another debian release": true, "alpine other branch": true}
	for _, tc := range []struct {
		name string
		sbom *sbom.SBOM
		want []string
	}{
		{"debian source package, older", sbomOf("debian", "12",
			srcPkg(sbom.TypeDeb, "libssl3", "3.0.11-1~deb12u2", "openssl", "")),
			[]string{"DEBIAN-CVE-2024-0001 deb/libssl3@3.0.11-1~deb12u2 fixed=3.0.13-1~deb12u1"}},
		{"debian source package, fixed", sbomOf("debian", "12",
			srcPkg(sbom.TypeDeb, "libssl3", "3.0.13-1~deb12u1", "openssl", "")), nil},
		{"debian binary package named as its source", sbomOf("debian", "12.5",
			pkg(sbom.TypeDeb, "openssl", "3.0.11-1~deb12u2")),
			[]string{"DEBIAN-CVE-2024-0001 deb/openssl@3.0.11-1~deb12u2 fixed=3.0.13-1~deb12u1"}},
		{"source version compared, not the binNMU one", sbomOf("debian", "12",
			srcPkg(sbom.TypeDeb, "libssl3", "3.0.13-1~deb12u1+b1", "openssl", "3.0.11-1~deb12u2")),
			[]string{"DEBIAN-CVE-2024-0001 deb/libssl3@3.0.13-1~deb12u1+b1 fixed=3.0.13-1~deb12u1"}},
		{"another debian release", sbomOf("debian", "11",
			srcPkg(sbom.TypeDeb, "libssl3", "3.0.11-1~deb12u2", "openssl", "")), nil},
		{"no fix", sbomOf("debian", "12", srcPkg(sbom.TypeDeb, "zlib1g", "1:1.2.13.dfsg-1", "zlib", "")),
			[]string{"DEBIAN-CVE-2024-0003 deb/zlib1g@1:1.2.13.dfsg-1 fixed="}},
		{"listed version", sbomOf("debian", "12", pkg(sbom.TypeDeb, "bash", "5.2.15-2+b2")),
			[]string{"DEBIAN-CVE-2024-0004 deb/bash@5.2.15-2+b2 fixed="}},
		{"unlisted version", sbomOf("debian", "12", pkg(sbom.TypeDeb, "bash", "5.2.15-3")), nil},
		{"alpine origin", sbomOf("alpine", "3.19.1", srcPkg(sbom.TypeAPK, "busybox-binsh", "1.36.1-r15", "busybox", "")),
			[]string{"ALPINE-CVE-2024-0002 apk/busybox-binsh@1.36.1-r15 fixed=1.36.1-r16"}},
		{"alpine fixed", sbomOf("alpine", "3.19.1", srcPkg(sbom.TypeAPK, "busybox-binsh", "1.36.1-r16", "busybox", "")), nil},
		{"alpine other branch", sbomOf("alpine", "3.18.4", srcPkg(sbom.TypeAPK, "busybox", "1.36.1-r15", "", "")), nil},
		{"go module, GHSA and GO merged", sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.15.0")),
			[]string{"GHSA-aaaa-bbbb-cccc golang/golang.org/x/net@v0.15.0 fixed=0.17.0"}},
		{"go module fixed", sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.17.0")), nil},
		{"go module pseudo-version", sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.0.0-20230101000000-abcdefabcdef")),
			[]string{"GHSA-aaaa-bbbb-cccc golang/golang.org/x/net@v0.0.0-20230101000000-abcdefabcdef fixed=0.17.0"}},
		{"stdlib 1.22 branch", sbomOf("", "", pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.22.3")),
			[]string{"GO-2024-2887 golang/stdlib@go1.22.3 fixed=1.22.4"}},
		{"stdlib 1.21 branch", sbomOf("", "", pkg(sbom.TypeGoModule, sbom.GoStdlib, "1.21.5")),
			[]string{"GO-2024-2887 golang/stdlib@1.21.5 fixed=1.21.11"}},
		{"stdlib 1.22 release candidate", sbomOf("", "", pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.22rc1")),
			[]string{"GO-2024-2887 golang/stdlib@go1.22rc1 fixed=1.22.4"}},
		{"stdlib fixed", sbomOf("", "", pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.22.4")), nil},
		{"last_affected itself", sbomOf("", "", pkg(sbom.TypeGoModule, "github.com/foo/bar", "v1.4.2")),
			[]string{"GHSA-last-affe-cted golang/github.com/foo/bar@v1.4.2 fixed="}},
		{"after last_affected", sbomOf("", "", pkg(sbom.TypeGoModule, "github.com/foo/bar", "v1.4.3")), nil},
		{"before introduced", sbomOf("", "", pkg(sbom.TypeGoModule, "github.com/foo/bar", "v0.9.0")), nil},
		{"go entry beside an npm one", sbomOf("", "", pkg(sbom.TypeGoModule, "github.com/only/go", "v1.0.0")),
			[]string{"GHSA-npm0-0000-0000 golang/github.com/only/go@v1.0.0 fixed=2.0.0"}},
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

func TestOSVFindingFields(t *testing.T) {
	db := mustOpen(t, Config{Kind: KindOSV, Path: osvDir(t)})
	fs := mustMatch(t, db, sbomOf("", "", pkg(sbom.TypeGoModule, "golang.org/x/net", "v0.15.0")))
	want := Finding{
		ID: "GHSA-aaaa-bbbb-cccc", Aliases: []string{"CVE-2024-1000", "GO-2024-0001"},
		PackageKey: "golang/golang.org/x/net@v0.15.0", Package: "golang.org/x/net", Type: sbom.TypeGoModule,
		Installed: "v0.15.0", Fixed: "0.17.0", Severity: SeverityMedium, CVSS: 7.5,
		CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Summary: "HTTP/2 rapid reset", Source: "osv:Go",
	}
	if len(fs) != 1 || !reflect.DeepEqual(fs[0], want) {
		t.Fatalf("got %+v\nwant %+v", fs, want)
	}

	fs = mustMatch(t, db, sbomOf("debian", "12", srcPkg(sbom.TypeDeb, "libssl3", "3.0.11-1~deb12u2", "openssl", "")))
	if len(fs) != 1 {
		t.Fatalf("got %+v", fs)
	}
	f := fs[0]
	if f.Severity != SeverityMedium || f.Summary != "Buffer overflow in openssl." || f.Source != "osv:Debian:12" ||
		!reflect.DeepEqual(f.Aliases, []string{"CVE-2024-0001"}) || f.Package != "libssl3" {
		t.Errorf("debian finding %+v", f)
	}
}

func TestOSVStats(t *testing.T) {
	db := mustOpen(t, Config{Kind: KindOSV, Path: osvDir(t)})
	st := db.Stats()[0]
	if st.Files != len(osvFixture) || st.Advisories != 9 || st.Withdrawn != 1 || st.Unsupported != 1 ||
		st.Invalid != 1 || !strings.Contains(st.FirstInvalid, "broken.json") {
		t.Errorf("stats %+v", st)
	}
}

// The same entries read from zips — one lone all.zip, and a directory of per-ecosystem zips — match the same.
func TestOSVZip(t *testing.T) {
	dir := t.TempDir()
	byEco := map[string]map[string]string{}
	all := map[string]string{}
	for name, content := range osvFixture {
		eco, file := filepath.Split(name)
		if byEco[eco] == nil {
			byEco[eco] = map[string]string{}
		}
		byEco[eco][file] = content
		all[file] = content
	}
	for eco, files := range byEco {
		writeZip(t, filepath.Join(dir, "zips", eco, "all.zip"), files)
	}
	writeZip(t, filepath.Join(dir, "all.zip"), all)
	s := sbomOf("debian", "12", srcPkg(sbom.TypeDeb, "libssl3", "3.0.11-1~deb12u2", "openssl", ""),
		pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.21.0"))
	want := findingIDs(mustMatch(t, mustOpen(t, Config{Kind: KindOSV, Path: osvDir(t)}), s))
	for _, p := range []string{filepath.Join(dir, "all.zip"), filepath.Join(dir, "zips")} {
		db := mustOpen(t, Config{Kind: KindOSV, Path: p})
		if got := findingIDs(mustMatch(t, db, s)); !reflect.DeepEqual(got, want) || len(got) != 2 {
			t.Errorf("%s: got %q, want %q", p, got, want)
		}
	}
}

func TestOSVVersionAndFingerprint(t *testing.T) {
	dir := osvDir(t)
	cfg := Config{Kind: KindOSV, Path: dir}
	v1 := mustOpen(t, cfg).Version()
	fp1, err := Fingerprint(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v := mustOpen(t, cfg).Version(); v != v1 {
		t.Errorf("Version of the same content changed: %s, %s", v1, v)
	}
	if fp, _ := Fingerprint(cfg); fp != fp1 {
		t.Errorf("Fingerprint of unchanged files changed")
	}

	// Same size, new content and mtime: both change.
	p := filepath.Join(dir, "Go", "GO-2024-0001.json")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), "0.17.0", "0.18.0", 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if v := mustOpen(t, cfg).Version(); v == v1 {
		t.Error("Version did not change with the content")
	}
	fp2, _ := Fingerprint(cfg)
	if fp2 == fp1 {
		t.Error("Fingerprint did not change with the mtime")
	}
	writeFiles(t, dir, map[string]string{"Go/new.json": osvFixture["Go/GO-2024-2887.json"]})
	if fp3, _ := Fingerprint(cfg); fp3 == fp2 {
		t.Error("Fingerprint did not change with a new file")
	}
}

func TestOSVProblems(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"bad.json": `{"id": "DEBIAN-CVE-2024-9999",
		"affected": [{"package": {"ecosystem": "Debian:12", "name": "curl"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]}]},
			{"package": {"ecosystem": "Debian:12", "name": "wget"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.21-1"}]}]}]}`})
	db := mustOpen(t, Config{Kind: KindOSV, Path: dir})

	fs, err := db.Match(sbomOf("debian", "12", pkg(sbom.TypeDeb, "curl", "7.88.1-10"),
		pkg(sbom.TypeDeb, "wget", "garbage version"), pkg(sbom.TypeDeb, "wget2", "also garbage")))
	var ie *IncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("want an IncompleteError, got %v", err)
	}
	if len(fs) != 0 {
		t.Errorf("unparsable versions matched: %+v", fs)
	}
	want := []Problem{
		{PackageKey: "deb/curl@7.88.1-10", Source: "osv:Debian:12", ID: "DEBIAN-CVE-2024-9999", Version: "not a version!"},
		{PackageKey: "deb/wget@garbage version", Version: "garbage version"},
	}
	if ie.Count != len(want) || len(ie.Problems) != len(want) {
		t.Fatalf("problems %+v", ie.Problems)
	}
	for i, w := range want {
		p := ie.Problems[i]
		p.Reason = ""
		if p != w || ie.Problems[i].Reason == "" {
			t.Errorf("problem %d: got %+v, want %+v with a reason", i, ie.Problems[i], w)
		}
	}
	if !strings.Contains(err.Error(), "2 problem(s)") {
		t.Errorf("error text %q", err)
	}
}

// An SBOM whose OS packages no database covers is reported, not answered "no vulnerabilities".
func TestCoverageProblem(t *testing.T) {
	db := mustOpen(t, Config{Kind: KindOSV, Path: osvDir(t)})
	for _, s := range []*sbom.SBOM{
		sbomOf("", "", pkg(sbom.TypeDeb, "openssl", "3.0.11-1")),           // distro unknown
		sbomOf("ubuntu", "22.04", pkg(sbom.TypeDeb, "openssl", "3.0.2-0")), // no Ubuntu data in the mirror
		sbomOf("rhel", "9.3", pkg(sbom.TypeRPM, "openssl", "1:3.0.7-25.el9")),
	} {
		_, err := db.Match(s)
		var ie *IncompleteError
		if !errors.As(err, &ie) || ie.Count != 1 || ie.Problems[0].PackageKey != "" ||
			!strings.Contains(ie.Problems[0].Reason, "no database holds advisories") {
			t.Errorf("%+v: got %v", s.Distro, err)
		}
	}
	if _, err := db.Match(sbomOf("", "", pkg(sbom.TypeGoModule, "example.com/m", "v1.0.0"))); err != nil {
		t.Errorf("go modules are covered by the Go data: %v", err)
	}
}

func TestOSVEmptyDirIsAnError(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"README.txt": "x", "x.json": "not json"})
	_, err := Open(Config{Kind: KindOSV, Path: dir})
	if err == nil || !strings.Contains(err.Error(), "no OSV entries") || !strings.Contains(err.Error(), "1 invalid") {
		t.Fatalf("got %v", err)
	}
}

func TestOSVCorruptZipIsAnError(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.json": osvFixture["Go/GO-2024-2887.json"], "b/all.zip": "PK\x03\x04 truncated"})
	if _, err := Open(Config{Kind: KindOSV, Path: dir}); err == nil || !strings.Contains(err.Error(), "all.zip") {
		t.Fatalf("got %v", err)
	}
}

func TestOSVArrayDocument(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"bundle.json": "[" + osvFixture["Go/GO-2024-2887.json"] + "," +
		osvFixture["Go/GHSA-last-affe-cted.json"] + "]"})
	db := mustOpen(t, Config{Kind: KindOSV, Path: dir})
	got := findingIDs(mustMatch(t, db, sbomOf("", "", pkg(sbom.TypeGoModule, sbom.GoStdlib, "go1.20"),
		pkg(sbom.TypeGoModule, "github.com/foo/bar", "v1.0.0"))))
	if len(got) != 2 {
		t.Errorf("got %q", got)
	}
}

func TestRangeAffects(t *testing.T) {
	type ev struct{ intro, fixed, last, limit string }
	for _, tc := range []struct {
		name      string
		events    []ev
		version   string
		wantMatch bool
	}{
		{"introduced 0", []ev{{intro: "0"}}, "0.0.1", true},
		{"below fix", []ev{{intro: "0"}, {fixed: "1.2.0"}}, "1.1.9", true},
		{"at fix", []ev{{intro: "0"}, {fixed: "1.2.0"}}, "1.2.0", false},
		{"unsorted events", []ev{{fixed: "1.2.0"}, {intro: "1.0.0"}}, "1.1.0", true},
		{"between branches", []ev{{intro: "0"}, {fixed: "1.2.0"}, {intro: "2.0.0"}, {fixed: "2.1.0"}}, "1.5.0", false},
		{"second branch", []ev{{intro: "0"}, {fixed: "1.2.0"}, {intro: "2.0.0"}, {fixed: "2.1.0"}}, "2.0.5", true},
		{"at introduced", []ev{{intro: "2.0.0"}, {fixed: "2.1.0"}}, "2.0.0", true},
		{"at last_affected", []ev{{intro: "0"}, {last: "1.4.2"}}, "1.4.2", true},
		{"past last_affected", []ev{{intro: "0"}, {last: "1.4.2"}}, "1.4.3", false},
		{"below limit", []ev{{intro: "0"}, {limit: "3.0.0"}}, "2.9.9", true},
		{"at limit", []ev{{intro: "0"}, {limit: "3.0.0"}}, "3.0.0", false},
		{"pre-release after introduced 0", []ev{{intro: "0"}, {fixed: "1.0.0"}}, "0.0.0-20200101000000-abcdefabcdef", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var events []string
			for _, e := range tc.events {
				switch {
				case e.intro != "":
					events = append(events, `{"introduced":"`+e.intro+`"}`)
				case e.fixed != "":
					events = append(events, `{"fixed":"`+e.fixed+`"}`)
				case e.last != "":
					events = append(events, `{"last_affected":"`+e.last+`"}`)
				default:
					events = append(events, `{"limit":"`+e.limit+`"}`)
				}
			}
			vulns, err := decodeOSV([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"Go","name":"m"},
				"ranges":[{"type":"SEMVER","events":[` + strings.Join(events, ",") + `]}]}]}`))
			if err != nil {
				t.Fatal(err)
			}
			as := indexEntry(vulns[0], &osvCounts{})
			c := as[0].check(newTarget(&sbom.Package{Type: sbom.TypeGoModule, Name: "m", Version: tc.version}))
			if c.affected != tc.wantMatch || len(c.problems) != 0 {
				t.Errorf("affected %v (problems %v), want %v", c.affected, c.problems, tc.wantMatch)
			}
		})
	}
}

func TestPurlPackage(t *testing.T) {
	for _, tc := range []struct{ purl, typ, name string }{
		{"pkg:golang/github.com/foo/bar@v1.2.3", "golang", "github.com/foo/bar"},
		{"pkg:golang/golang.org/x/net", "golang", "golang.org/x/net"},
		{"pkg:deb/debian/openssl?arch=source", "deb", "openssl"},
		{"pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64#sub", "apk", "busybox"},
		{"pkg:npm/%40scope/name@1.0.0", "npm", "name"},
		{"pkg:golang/github.com/a%20b/c", "golang", "github.com/a b/c"},
		{"pkg:golang", "golang", ""},
		{"not a purl", "", ""},
	} {
		if typ, name := purlPackage(tc.purl); typ != tc.typ || name != tc.name {
			t.Errorf("purlPackage(%q) = %q, %q; want %q, %q", tc.purl, typ, name, tc.typ, tc.name)
		}
	}
}

func TestEcosystemMapping(t *testing.T) {
	for _, tc := range []struct {
		id, ver, typ string
		osv, trivy   []string
	}{
		{"debian", "12", sbom.TypeDeb, []string{"Debian:12"}, []string{"debian 12"}},
		{"Debian", "12.5", sbom.TypeDeb, []string{"Debian:12"}, []string{"debian 12"}},
		{"debian", "", sbom.TypeDeb, nil, nil}, // sid/trixie without VERSION_ID
		{"ubuntu", "22.04", sbom.TypeDeb, []string{"Ubuntu:22.04:LTS", "Ubuntu:22.04"}, []string{"ubuntu 22.04"}},
		{"alpine", "3.19.1", sbom.TypeAPK, []string{"Alpine:v3.19"}, []string{"alpine 3.19"}},
		{"alpine", "3", sbom.TypeAPK, nil, nil},
		{"wolfi", "20230201", sbom.TypeAPK, []string{"Wolfi"}, []string{"wolfi"}},
		{"rhel", "9.3", sbom.TypeRPM, []string{"Red Hat:enterprise_linux:9"}, nil},
		{"almalinux", "9.3", sbom.TypeRPM, []string{"AlmaLinux:9"}, []string{"alma 9"}},
		{"rocky", "8.9", sbom.TypeRPM, []string{"Rocky Linux:8"}, []string{"rocky 8"}},
		{"debian", "12", sbom.TypeAPK, nil, nil}, // apk on debian: no data
		{"debian", "12", sbom.TypeGoModule, []string{"Go"}, nil},
		{"", "", "npm", nil, nil},
	} {
		d := sbom.Distro{ID: tc.id, VersionID: tc.ver}
		if got := osvEcosystems(d, tc.typ); !reflect.DeepEqual(got, tc.osv) {
			t.Errorf("osvEcosystems(%v, %s) = %q, want %q", d, tc.typ, got, tc.osv)
		}
		if got := trivyOSBuckets(d, tc.typ); !reflect.DeepEqual(got, tc.trivy) {
			t.Errorf("trivyOSBuckets(%v, %s) = %q, want %q", d, tc.typ, got, tc.trivy)
		}
	}
	for in, want := range map[string]string{
		"Red Hat:enterprise_linux:9::appstream": "Red Hat:enterprise_linux:9",
		"Red Hat:enterprise_linux:9":            "Red Hat:enterprise_linux:9",
		"Debian:12":                             "Debian:12",
	} {
		if got := osvIndexEcosystem(in); got != want {
			t.Errorf("osvIndexEcosystem(%q) = %q, want %q", in, got, want)
		}
	}
}

// Red Hat advisories split by repository match an rpm on the release.
func TestOSVRedHat(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"RHSA-2024:0001.json": `{"id": "RHSA-2024:0001", "aliases": ["CVE-2024-5555"],
		"affected": [{"package": {"ecosystem": "Red Hat:enterprise_linux:9::baseos", "name": "openssl"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}]}],
			"database_specific": {"severity": "Important"}}]}`})
	db := mustOpen(t, Config{Kind: KindOSV, Path: dir})
	fs := mustMatch(t, db, sbomOf("rhel", "9.3", pkg(sbom.TypeRPM, "openssl", "1:3.0.7-25.el9"),
		pkg(sbom.TypeRPM, "openssl-libs", "1:3.0.7-25.el9")))
	if got := findingIDs(fs); !reflect.DeepEqual(got, []string{"RHSA-2024:0001 rpm/openssl@1:3.0.7-25.el9 fixed=1:3.0.7-27.el9"}) {
		t.Errorf("got %q", got)
	}
	if fs[0].Severity != SeverityHigh || fs[0].Source != "osv:Red Hat:enterprise_linux:9::baseos" {
		t.Errorf("finding %+v", fs[0])
	}
	if fs := mustMatch(t, db, sbomOf("rhel", "9.3", pkg(sbom.TypeRPM, "openssl", "1:3.0.7-27.el9"))); len(fs) != 0 {
		t.Errorf("fixed rpm matched: %+v", fs)
	}
}
