package vulndb

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/types"
	bolt "go.etcd.io/bbolt"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// writeFiles writes name → content under dir, making directories as needed.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeZip writes a zip of name → content at path, entries in name order.
func writeZip(t testing.TB, path string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
}

// trivyFixture is the content of a test trivy.db.
type trivyFixture struct {
	// advisories: root bucket → package → advisory id → advisory.
	advisories    map[string]map[string]map[string]types.Advisory
	vulnerability map[string]types.Vulnerability
	dataSources   map[string]types.DataSource
}

// writeTrivyDB writes a trivy.db in trivy-db's layout with bbolt itself, the way trivy-db's pkg/db does (a
// root bucket per data source, a nested bucket per package, advisories marshalled through
// types.Advisory.MarshalJSON; "vulnerability" and "data-source" buckets). trivy-db's own helpers
// (db.Config.PutAdvisoryDetail/SaveAdvisoryDetails) are not used: pkg/db pulls in modules this repository
// does not otherwise need, and its package-global handle would serialize the tests.
func writeTrivyDB(t testing.TB, path string, fx trivyFixture) {
	t.Helper()
	db, err := bolt.Open(path, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for root, pkgs := range fx.advisories {
			rb, err := tx.CreateBucketIfNotExists([]byte(root))
			if err != nil {
				return err
			}
			for pkg, advs := range pkgs {
				pb, err := rb.CreateBucketIfNotExists([]byte(pkg))
				if err != nil {
					return err
				}
				for id, adv := range advs {
					if err := putJSON(pb, id, &adv); err != nil {
						return err
					}
				}
			}
		}
		vb, err := tx.CreateBucketIfNotExists([]byte(trivyVulnerabilityBucket))
		if err != nil {
			return err
		}
		for id, v := range fx.vulnerability {
			if err := putJSON(vb, id, v); err != nil {
				return err
			}
		}
		db, err := tx.CreateBucketIfNotExists([]byte(trivyDataSourceBucket))
		if err != nil {
			return err
		}
		for root, ds := range fx.dataSources {
			if err := putJSON(db, root, ds); err != nil {
				return err
			}
		}
		return nil
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// mustOpen opens cfgs as a *DB and closes it when the test ends.
func mustOpen(t testing.TB, cfgs ...Config) *DB {
	t.Helper()
	db, err := open(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mustMatch matches s and fails the test on any error, an IncompleteError included.
func mustMatch(t testing.TB, m Matcher, s *sbom.SBOM) []Finding {
	t.Helper()
	fs, err := m.Match(s)
	if err != nil {
		t.Fatalf("Match: %v", err)
	}
	return fs
}

// findingIDs lists "ID PackageKey fixed=Fixed" of each finding, in order.
func findingIDs(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID + " " + f.PackageKey + " fixed=" + f.Fixed
	}
	return out
}

func pkg(typ, name, ver string) sbom.Package {
	return sbom.Package{Type: typ, Name: name, Version: ver}
}

func srcPkg(typ, name, ver, srcName, srcVer string) sbom.Package {
	return sbom.Package{Type: typ, Name: name, Version: ver, SourceName: srcName, SourceVersion: srcVer}
}

func sbomOf(distroID, ver string, pkgs ...sbom.Package) *sbom.SBOM {
	return &sbom.SBOM{Distro: sbom.Distro{ID: distroID, VersionID: ver}, Packages: pkgs}
}

// matchCoverage matches s; when uncovered, it wants exactly the one problem of packages no database covers,
// else no error at all.
func matchCoverage(t testing.TB, m Matcher, s *sbom.SBOM, uncovered bool) []Finding {
	t.Helper()
	if !uncovered {
		return mustMatch(t, m, s)
	}
	fs, err := m.Match(s)
	var ie *IncompleteError
	if !errors.As(err, &ie) || ie.Count != 1 || !strings.Contains(ie.Problems[0].Reason, "no database holds advisories") {
		t.Fatalf("want the packages reported as not covered, got %v", err)
	}
	return fs
}
