package vulndb

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/types"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// The benchmark database: 100k advisories, 40% Debian, 30% Alpine, 30% Go, ten per package, written once per
// test binary in a temporary directory as OSV files (osv/), as osv.dev's per-ecosystem zips of them
// (osv-zip/), and as a trivy.db of the same advisories (trivy/).
const (
	benchAdvisories  = 100_000
	benchPerPackage  = 10
	benchDebianShare = 40
	benchAlpineShare = 30
)

var bench struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// benchDatabase is the directory holding osv/ and trivy/trivy.db.
func benchDatabase(b *testing.B) string {
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "vulndb-bench-")
		if bench.err == nil {
			bench.err = writeBenchDatabase(b, bench.dir)
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.dir
}

// benchAdvisory is advisory i: its ecosystem, package and fixed version. Fixed versions spread over 1.0…1.19
// so an installed 1.10 is affected by about half.
func benchAdvisory(i int) (eco, dir, name, fixed string) {
	p := i / benchPerPackage
	minor := rand.New(rand.NewPCG(uint64(i), 1)).IntN(20)
	switch n := benchAdvisories / 100; {
	case i < benchDebianShare*n:
		return "Debian:12", "Debian", fmt.Sprintf("deb-src-%05d", p), fmt.Sprintf("1.%d-1", minor)
	case i < (benchDebianShare+benchAlpineShare)*n:
		return "Alpine:v3.19", "Alpine", fmt.Sprintf("apk-%05d", p), fmt.Sprintf("1.%d-r0", minor)
	default:
		return "Go", "Go", fmt.Sprintf("example.com/mod%05d", p), fmt.Sprintf("1.%d.0", minor)
	}
}

func writeBenchDatabase(b *testing.B, dir string) error {
	fx := trivyFixture{advisories: map[string]map[string]map[string]types.Advisory{}, vulnerability: map[string]types.Vulnerability{}}
	trivyBucket := map[string]string{"Debian:12": "debian 12", "Alpine:v3.19": "alpine 3.19", "Go": ghsaGoBucket}
	zipped := map[string]map[string]string{"Debian": {}, "Alpine": {}, "Go": {}}
	for i := range benchAdvisories {
		eco, sub, name, fixed := benchAdvisory(i)
		id := fmt.Sprintf("CVE-2099-%06d", i)
		rangeType := "ECOSYSTEM"
		if eco == "Go" {
			rangeType = "SEMVER"
		}
		doc := fmt.Sprintf(`{"id": "OSV-%06d", "aliases": [%q], "summary": "benchmark advisory %d",
			"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
			"affected": [{"package": {"ecosystem": %q, "name": %q},
				"ranges": [{"type": %q, "events": [{"introduced": "0"}, {"fixed": %q}]}]}]}`,
			i, id, i, eco, name, rangeType, fixed)
		zipped[sub][fmt.Sprintf("OSV-%06d.json", i)] = doc
		p := filepath.Join(dir, "osv", sub, fmt.Sprintf("OSV-%06d.json", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			return err
		}
		bkt := trivyBucket[eco]
		if fx.advisories[bkt] == nil {
			fx.advisories[bkt] = map[string]map[string]types.Advisory{}
		}
		if fx.advisories[bkt][name] == nil {
			fx.advisories[bkt][name] = map[string]types.Advisory{}
		}
		adv := types.Advisory{FixedVersion: fixed}
		if eco == "Go" {
			adv = types.Advisory{VulnerableVersions: []string{"< " + fixed}, PatchedVersions: []string{fixed}}
		}
		fx.advisories[bkt][name][id] = adv
		fx.vulnerability[id] = types.Vulnerability{Title: "benchmark advisory",
			CVSS: types.VendorCVSS{"nvd": {V3Score: 7.5, V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}}}
	}
	for sub, files := range zipped { // osv.dev's layout: <Ecosystem>/all.zip
		writeZip(b, filepath.Join(dir, "osv-zip", sub, "all.zip"), files)
	}
	if err := os.MkdirAll(filepath.Join(dir, "trivy"), 0o755); err != nil {
		return err
	}
	writeTrivyDB(b, filepath.Join(dir, "trivy", trivyDBFile), fx)
	return nil
}

// benchSBOM is ~1,000 packages: 600 OS packages of the distro and 399 Go modules, all with advisories, plus the
// standard library.
func benchSBOM(distro, version string) *sbom.SBOM {
	s := &sbom.SBOM{Distro: sbom.Distro{ID: distro, VersionID: version}}
	for i := range 600 {
		if distro == "debian" {
			s.Packages = append(s.Packages, sbom.Package{Type: sbom.TypeDeb, Name: fmt.Sprintf("lib%05d", i),
				Version: "1.10-1", SourceName: fmt.Sprintf("deb-src-%05d", i)})
		} else {
			s.Packages = append(s.Packages, sbom.Package{Type: sbom.TypeAPK, Name: fmt.Sprintf("apk-%05d", i+4000),
				Version: "1.10-r0"})
		}
	}
	for i := range 399 {
		s.Packages = append(s.Packages, sbom.Package{Type: sbom.TypeGoModule, Name: fmt.Sprintf("example.com/mod%05d", i+7000),
			Version: "v1.10.0"})
	}
	s.Packages = append(s.Packages, sbom.Package{Type: sbom.TypeGoModule, Name: sbom.GoStdlib, Version: "go1.22.3"})
	return s
}

// BenchmarkMatch matches a ~1,000-package SBOM against the 100k-advisory database, OSV (in memory) and
// trivy-db (bbolt), and reports packages matched per second.
func BenchmarkMatch(b *testing.B) {
	dir := benchDatabase(b)
	for _, kind := range []string{KindOSV, KindTrivy} {
		db, err := open([]Config{{Kind: kind, Path: filepath.Join(dir, kind)}})
		if err != nil {
			b.Fatal(err)
		}
		for _, distro := range [][2]string{{"debian", "12"}, {"alpine", "3.19.1"}} {
			s := benchSBOM(distro[0], distro[1])
			b.Run(kind+"/"+distro[0], func(b *testing.B) {
				findings := 0
				for b.Loop() {
					fs, err := db.Match(s)
					if err != nil {
						b.Fatal(err)
					}
					findings = len(fs)
				}
				if findings == 0 {
					b.Fatal("no findings: the benchmark matches nothing")
				}
				b.ReportMetric(float64(len(s.Packages))*float64(b.N)/b.Elapsed().Seconds(), "packages/s")
				b.ReportMetric(float64(findings), "findings/op")
			})
		}
		db.Close()
	}
}

// BenchmarkOpen opens the 100k-advisory database: OSV reads, hashes, decodes and indexes every file (or zip
// entry); trivy-db hashes the file and opens it.
func BenchmarkOpen(b *testing.B) {
	dir := benchDatabase(b)
	for _, layout := range []string{"osv", "osv-zip", "trivy"} {
		kind := KindOSV
		if layout == "trivy" {
			kind = KindTrivy
		}
		b.Run(layout, func(b *testing.B) {
			for b.Loop() {
				db, err := open([]Config{{Kind: kind, Path: filepath.Join(dir, layout)}})
				if err != nil {
					b.Fatal(err)
				}
				if st := db.Stats()[0]; kind == KindOSV && st.Advisories != benchAdvisories {
					b.Fatalf("indexed %d advisories", st.Advisories)
				}
				db.Close()
			}
			b.ReportMetric(benchAdvisories*float64(b.N)/b.Elapsed().Seconds(), "advisories/s")
		})
	}
}
