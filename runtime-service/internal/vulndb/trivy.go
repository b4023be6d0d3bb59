package vulndb

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/types"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// The trivy-db layout (its pkg/db): a root bucket per data source — "debian 12", "alpine 3.19",
// "go::GitHub Security Advisory Go" — holding a bucket per package, which maps an advisory id to a JSON
// types.Advisory; "vulnerability" maps the id to a JSON types.Vulnerability; "data-source" maps a root
// bucket's name to its types.DataSource.
const (
	trivyVulnerabilityBucket = "vulnerability"
	trivyDataSourceBucket    = "data-source"
	// trivySchemaVersion is trivy-db's db.SchemaVersion: the layout above. Its pkg/db is not imported for the
	// constant: it pulls in samber/oops and samber/lo, modules this repository does not otherwise require.
	trivySchemaVersion = 2
	trivyOpenTimeout   = 5 * time.Second
)

// trivyMetaBuckets are the root buckets that hold no advisories.
var trivyMetaBuckets = map[string]bool{
	trivyVulnerabilityBucket: true, trivyDataSourceBucket: true, "trivy": true, "vulnerability-id": true,
	"advisory-detail": true,
}

// trivySource is a trivy.db read in place. The file is opened with bbolt directly, read-only, rather than
// through trivy-db's pkg/db: that package keeps one database in a package variable (db.Init/db.Close), so two
// databases could not be open at once, a reload could not open the new one before closing the old, and tests
// could not run in parallel. Values are decoded with trivy-db's own types.
type trivySource struct {
	path        string
	db          *bolt.DB
	dig         string
	buckets     map[string]bool     // root bucket names
	lang        map[string][]string // language bucket prefix ("go::") → its buckets, sorted
	dataSources map[string]types.DataSource
	st          SourceStats
}

func openTrivy(path string) (*trivySource, error) {
	if err := checkTrivyMetadata(filepath.Join(filepath.Dir(path), trivyMetadataFile)); err != nil {
		return nil, err
	}
	dig, err := fileDigest(path)
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: trivyOpenTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%s is locked by a writer (a trivy download in progress?): %w", path, err)
		}
		return nil, err
	}
	s := &trivySource{path: path, db: db, dig: dig, buckets: map[string]bool{}, lang: map[string][]string{},
		dataSources: map[string]types.DataSource{}}
	if err := db.View(s.load); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// load reads the bucket names and data sources, and checks the file is a trivy-db.
func (s *trivySource) load(tx *bolt.Tx) error {
	err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		n := string(name)
		s.buckets[n] = true
		if p := langPrefix(n); p != "" {
			s.lang[p] = append(s.lang[p], n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !s.buckets[trivyVulnerabilityBucket] {
		return fmt.Errorf("%s: no %q bucket: not a trivy-db database", s.path, trivyVulnerabilityBucket)
	}
	for _, names := range s.lang {
		sort.Strings(names)
	}
	if b := tx.Bucket([]byte(trivyDataSourceBucket)); b != nil {
		err = b.ForEach(func(k, v []byte) error {
			var ds types.DataSource
			if json.Unmarshal(v, &ds) == nil { // a data source that does not decode only loses its severity choice
				s.dataSources[string(k)] = ds
			}
			return nil
		})
	}
	s.st = SourceStats{Kind: KindTrivy, Path: s.path, Files: 1}
	for n := range s.buckets {
		if !trivyMetaBuckets[n] {
			s.st.Advisories++
		}
	}
	return err
}

// langPrefix is "go::" of "go::GitHub Security Advisory Go": the ecosystem part of a language bucket.
func langPrefix(bucket string) string {
	if i := strings.Index(bucket, "::"); i > 0 {
		return bucket[:i+2]
	}
	return ""
}

// checkTrivyMetadata refuses a database of another schema, when metadata.json says so: its layout differs.
func checkTrivyMetadata(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // metadata.json is Trivy's cache bookkeeping; a bare trivy.db is fine
	}
	if err != nil {
		return err
	}
	var meta struct{ Version int }
	if err := json.Unmarshal(data, &meta); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if meta.Version != 0 && meta.Version != trivySchemaVersion {
		return fmt.Errorf("%s: trivy-db schema version %d, this build reads version %d", path, meta.Version, trivySchemaVersion)
	}
	return nil
}

// fileDigest is the sha256 of a file's content.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (s *trivySource) kind() string       { return KindTrivy }
func (s *trivySource) digest() string     { return s.dig }
func (s *trivySource) stats() SourceStats { return s.st }
func (s *trivySource) close() error       { return s.db.Close() }

func (s *trivySource) covers(d sbom.Distro, pkgType string) bool {
	return len(s.bucketsFor(d, pkgType)) > 0
}

// bucketsFor are the root buckets in this database holding advisories for a package of pkgType on distro d.
func (s *trivySource) bucketsFor(d sbom.Distro, pkgType string) []string {
	if p := trivyLangPrefix(pkgType); p != "" {
		return s.lang[p]
	}
	var out []string
	for _, b := range trivyOSBuckets(d, pkgType) {
		if s.buckets[b] {
			out = append(out, b)
		}
	}
	return out
}

// match looks every package up in its buckets, in one read transaction. The file is memory-mapped: should it
// be truncated or rewritten under us (a mirror replaced in place) the read faults, and a corrupt file makes
// bbolt panic; both become an error of this Match instead of the end of the service.
func (s *trivySource) match(r *matchRun) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("vulndb: trivy %s: reading the database failed (corrupt, or changed while open): %v", s.path, rec)
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error {
		m := &trivyMatch{src: s, tx: tx, run: r, vulns: map[string]*types.Vulnerability{}}
		for _, t := range r.targets {
			for _, b := range s.bucketsFor(r.sbom.Distro, t.pkg.Type) {
				m.matchBucket(b, t)
			}
		}
		return nil
	})
}

// trivyMatch is one Match's read of the database, with the vulnerability details read so far.
type trivyMatch struct {
	src   *trivySource
	tx    *bolt.Tx
	run   *matchRun
	vulns map[string]*types.Vulnerability
}

func (m *trivyMatch) matchBucket(bucket string, t *target) {
	root := m.tx.Bucket([]byte(bucket))
	if root == nil {
		return
	}
	pkg := root.Bucket([]byte(t.name))
	if pkg == nil {
		return
	}
	src := "trivy:" + bucket
	k := kindOfType(t.pkg.Type)
	_ = pkg.ForEach(func(id, value []byte) error {
		if value == nil { // a nested bucket: not an advisory
			return nil
		}
		var adv types.Advisory
		if err := json.Unmarshal(value, &adv); err != nil {
			m.run.problems.add(Problem{PackageKey: t.key, Source: src, ID: string(id), Reason: "advisory does not decode: " + err.Error()})
			return nil
		}
		res := evaluateTrivy(adv, t, k)
		for _, p := range res.problems {
			p.PackageKey, p.Source, p.ID = t.key, src, string(id)
			m.run.problems.add(p)
		}
		if res.affected {
			m.run.findings = append(m.run.findings, m.finding(string(id), adv, res.fixed, t, bucket))
		}
		return nil
	})
}

func (m *trivyMatch) finding(id string, adv types.Advisory, fixed string, t *target, bucket string) Finding {
	v := m.vulnerability(id)
	rt := trivyRating(adv, v, m.src.dataSources[bucket])
	return Finding{
		ID:         id,
		PackageKey: t.key,
		Package:    t.pkg.Name,
		Type:       t.pkg.Type,
		Installed:  t.pkg.Version,
		Fixed:      fixed,
		Severity:   rt.level(),
		CVSS:       rt.cvss,
		CVSSVector: rt.vector,
		Summary:    summarize(v.Title, v.Description),
		Source:     "trivy:" + bucket,
	}
}

// vulnerability is the "vulnerability" bucket's entry for id; empty when missing or undecodable (the
// finding stands without a severity).
func (m *trivyMatch) vulnerability(id string) *types.Vulnerability {
	if v, ok := m.vulns[id]; ok {
		return v
	}
	v := &types.Vulnerability{}
	if b := m.tx.Bucket([]byte(trivyVulnerabilityBucket)); b != nil {
		if data := b.Get([]byte(id)); data != nil && json.Unmarshal(data, v) != nil {
			v = &types.Vulnerability{}
		}
	}
	m.vulns[id] = v
	return v
}
