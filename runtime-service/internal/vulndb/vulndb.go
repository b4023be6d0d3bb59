// Package vulndb matches the packages of an SBOM against vulnerability databases the user mirrors offline:
// OSV data (a directory of OSV JSON files, osv.dev's per-ecosystem all.zip, or a directory of those zips) and
// Trivy's trivy.db. Nothing is fetched at run time.
//
// Open loads or opens the databases once: OSV advisories are indexed in memory by (ecosystem, package), a
// trivy.db is read in place (bbolt, read-only). Match is then map or B+tree lookups and version comparisons,
// safe for concurrent use. Version names the database content, so a stored result can be re-matched when it
// changes; Fingerprint is the cheap check for a changed mirror (file names, sizes and mtimes) to poll with.
package vulndb

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// Finding is one flaw in one installed package.
type Finding struct {
	ID         string   // the advisory id as the source names it: CVE-2024-1234, GHSA-…, GO-2024-1234, DEBIAN-CVE-…
	Aliases    []string // other ids of the same flaw (a GHSA's CVE), sorted
	PackageKey string   // sbom.Package.Key() of the affected package
	Package    string   // the package name as in the SBOM
	Type       string   // the package type
	Installed  string   // the version installed
	Fixed      string   // the lowest version that fixes it for this installed version; "" when no fix exists
	Severity   string   // SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow or SeverityUnknown
	CVSS       float64  // CVSS v3 base score, 0 when unknown
	CVSSVector string
	Summary    string
	Source     string // which database and data source said so: "osv:Debian:12", "trivy:debian 12"; merged: ", "-joined
}

// Matcher matches SBOMs against the databases it was opened on.
type Matcher interface {
	// Match returns the findings sorted by severity (highest first), CVSS (highest first), ID, then package;
	// one finding per (ID, PackageKey). When some packages could not be fully checked (a version that does not
	// parse, a distro no database covers) the error is an *IncompleteError and the findings are complete for
	// everything else; any other error comes with no findings.
	Match(s *sbom.SBOM) ([]Finding, error)
	// Version changes whenever the database content changes (a digest of it).
	Version() string
}

// Database kinds.
const (
	KindOSV   = "osv"
	KindTrivy = "trivy"
)

// Config names one database.
type Config struct {
	Kind string // KindOSV or KindTrivy
	// Path: osv, a directory of OSV JSON files and/or zips of them (searched recursively), or one zip such as
	// osv.dev's <Ecosystem>/all.zip; trivy, trivy.db or the directory holding it (Trivy's cache "db" directory).
	Path string
}

// matcherRevision is part of every Version: a change to how this package matches changes Version too, so
// results matched by an older build are matched again.
const matcherRevision = "vulndb/1"

// source is one opened database.
type source interface {
	kind() string
	digest() string
	// covers says whether the database holds any advisory for packages of pkgType on distro d.
	covers(d sbom.Distro, pkgType string) bool
	match(r *matchRun) error
	stats() SourceStats
	close() error
}

// SourceStats says what a database held when it was opened, for the caller to log.
type SourceStats struct {
	Kind       string
	Path       string
	Files      int // OSV: JSON files and zips read; trivy: 1
	Advisories int // OSV: entries indexed; trivy: OS and language buckets found
	Withdrawn  int // OSV: entries skipped as withdrawn
	// Unsupported counts OSV affected packages in ecosystems no SBOM package type maps to (npm, PyPI, …).
	Unsupported int
	// Invalid counts OSV documents that did not decode, with the first error.
	Invalid      int
	FirstInvalid string
}

// DB is the Matcher Open returns. It also has Close (a trivy.db stays open and mapped until then) and Stats.
type DB struct {
	sources []source
	version string
}

// Open opens the databases cfgs name. Several combine: a flaw found in a package by two of them (by id or
// alias) is one finding. Close the DB when it is replaced.
func Open(cfgs ...Config) (Matcher, error) {
	return open(cfgs)
}

func open(cfgs []Config) (*DB, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("vulndb: no database configured")
	}
	resolved := make([]string, len(cfgs))
	for i, c := range cfgs {
		p, err := c.validate()
		if err != nil {
			return nil, fmt.Errorf("vulndb: config %d: %w", i, err)
		}
		resolved[i] = p
	}
	db := &DB{}
	h := sha256.New()
	h.Write([]byte(matcherRevision + "\n"))
	for i, c := range cfgs {
		var s source
		var err error
		if c.Kind == KindOSV {
			s, err = openOSV(resolved[i])
		} else {
			s, err = openTrivy(resolved[i])
		}
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("vulndb: config %d (%s %s): %w", i, c.Kind, c.Path, err)
		}
		db.sources = append(db.sources, s)
		fmt.Fprintf(h, "%s %s\n", s.kind(), s.digest())
	}
	db.version = hex.EncodeToString(h.Sum(nil))
	return db, nil
}

// Version is a digest of the content of every database, in the order they were configured.
func (db *DB) Version() string { return db.version }

// Stats says what each database held when opened.
func (db *DB) Stats() []SourceStats {
	out := make([]SourceStats, len(db.sources))
	for i, s := range db.sources {
		out[i] = s.stats()
	}
	return out
}

// Close releases the databases (the trivy.db file and its mapping). Match must not be called after.
func (db *DB) Close() error {
	var errs []error
	for _, s := range db.sources {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

// Match matches every package of s against every database; see Matcher.
func (db *DB) Match(s *sbom.SBOM) ([]Finding, error) {
	if s == nil {
		return nil, errors.New("vulndb: nil SBOM")
	}
	r := &matchRun{sbom: s, problems: newProblems()}
	for i := range s.Packages {
		r.targets = append(r.targets, newTarget(&s.Packages[i]))
	}
	db.checkCoverage(r)
	for _, src := range db.sources {
		if err := src.match(r); err != nil {
			return nil, err
		}
	}
	out := mergeFindings(r.findings)
	sortFindings(out)
	if r.problems.count > 0 {
		return out, r.problems.err()
	}
	return out, nil
}

// checkCoverage reports, once per package type, packages no database could say anything about: an empty
// result must not read as "no vulnerabilities" when nothing was looked at.
func (db *DB) checkCoverage(r *matchRun) {
	seen := map[string]bool{}
	for _, t := range r.targets {
		typ := t.pkg.Type
		if seen[typ] {
			continue
		}
		seen[typ] = true
		covered := false
		for _, src := range db.sources {
			covered = covered || src.covers(r.sbom.Distro, typ)
		}
		if !covered {
			r.problems.add(Problem{Reason: fmt.Sprintf("no database holds advisories for %q packages on distro %q %q",
				typ, r.sbom.Distro.ID, r.sbom.Distro.VersionID)})
		}
	}
}

// matchRun is one Match: the packages, and what the databases found and could not check.
type matchRun struct {
	sbom     *sbom.SBOM
	targets  []*target
	findings []Finding
	problems *problems
}

// Problem is one thing Match could not check.
type Problem struct {
	PackageKey string // the package; "" for a whole package type
	Source     string // the database and data source, as Finding.Source; "" for the package's own version
	ID         string // the advisory whose version did not parse; "" for the package's own version
	Version    string // the version that did not parse
	Reason     string
}

// IncompleteError is Match's error when some packages could not be fully checked. The findings returned with
// it are complete for everything else: log it and keep them.
type IncompleteError struct {
	Problems []Problem // the first maxProblems, in the order met
	Count    int       // all of them
}

func (e *IncompleteError) Error() string {
	p := e.Problems[0]
	var b strings.Builder
	fmt.Fprintf(&b, "vulndb: %d problem(s) matching; first: ", e.Count)
	if p.PackageKey != "" {
		fmt.Fprintf(&b, "%s: ", p.PackageKey)
	}
	if p.ID != "" {
		fmt.Fprintf(&b, "%s %s: ", p.Source, p.ID)
	}
	b.WriteString(p.Reason)
	return b.String()
}

// maxProblems bounds the problems an IncompleteError lists: a broken mirror could otherwise produce one per
// advisory per package.
const maxProblems = 100

type problems struct {
	list  []Problem
	seen  map[Problem]bool
	count int
}

func newProblems() *problems { return &problems{seen: map[Problem]bool{}} }

func (p *problems) add(pr Problem) {
	if p.seen[pr] {
		return
	}
	p.seen[pr] = true
	p.count++
	if len(p.list) < maxProblems {
		p.list = append(p.list, pr)
	}
}

func (p *problems) err() *IncompleteError {
	return &IncompleteError{Problems: p.list, Count: p.count}
}
