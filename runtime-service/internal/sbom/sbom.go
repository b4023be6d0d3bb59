// Package sbom finds the software bill of materials of a running image digest: an SBOM attached to the image in
// the registry (OCI 1.1 referrers, or the sha256-<hex> tag fallback; SPDX, CycloneDX or Syft JSON), else one
// generated from the image's own layers read from the registry (dpkg, apk, Go build info). Every package carries
// the files it installed, as real paths in the image (symlinks resolved), so the service can join them with the
// paths the sensor saw a container execute and open.
//
// An SBOM describes content addressed by digest, so it never changes: callers cache it by digest without expiry.
//
// rpm databases are not read when generating: current distributions keep them in SQLite (rpmdb.sqlite; RHEL 9,
// Fedora), older ones in Berkeley DB or NDB files. Reading them in pure Go needs github.com/knqyf263/go-rpmdb (the
// module proxy here serves only a 2021 snapshot of it) plus modernc.org/sqlite and its large modernc.org/libc
// tree, none of which go.mod has; we leave rpm to attached SBOMs, which Attached reads in all three formats.
package sbom

import (
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/referrers"
)

// Package types (the ecosystem a package's versions are compared in). They follow the purl types.
const (
	TypeDeb      = "deb"    // Debian, Ubuntu: dpkg
	TypeAPK      = "apk"    // Alpine, Wolfi: apk
	TypeRPM      = "rpm"    // Red Hat, Fedora, SUSE: rpm
	TypeGoModule = "golang" // a Go module linked into a binary (Go build info); "stdlib" is the Go toolchain
)

// GoStdlib is the package name the Go standard library of a binary is reported under, as Grype, Trivy and OSV's
// Go ecosystem name it. Its version is the semantic version OSV lists ("1.22.3" for go1.22.3, "1.21.0-rc.2"
// for go1.21rc2), in generated and decoded SBOMs alike; Go modules keep Go's own form ("v1.2.3"), as purls and
// SBOM tools write them.
const GoStdlib = "stdlib"

// Where an SBOM came from.
const (
	SourceReferrer  = referrers.SourceReferrer // attached to the image in the registry (referrers API)
	SourceTag       = referrers.SourceTag      // attached under the sha256-<hex> tag scheme (registries without referrers)
	SourceGenerated = "generated"              // built here from the image's layers
)

// Document formats an attached SBOM is read in.
const (
	FormatSPDXJSON      = "spdx-json"
	FormatCycloneDXJSON = "cyclonedx-json"
	FormatSyftJSON      = "syft-json"
	FormatLayers        = "layers" // generated from the layers
)

// SBOM is the bill of materials of one image digest (one platform's manifest, not an index).
type SBOM struct {
	Digest    string    `json:"digest"` // the image manifest's digest, sha256:<hex>
	Source    string    `json:"source"` // SourceReferrer, SourceTag or SourceGenerated
	Format    string    `json:"format"` // FormatSPDXJSON, FormatCycloneDXJSON, FormatSyftJSON or FormatLayers
	Distro    Distro    `json:"distro"` // from /etc/os-release (generated) or the document; empty when unknown
	Packages  []Package `json:"packages"`
	CreatedAt time.Time `json:"created_at"`
	// Truncated says a bound was reached (files per package, packages, bytes read): the SBOM lists what was
	// found until then, and Notes says which bound.
	Truncated bool     `json:"truncated,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// Distro is the operating system an image is built on, as /etc/os-release names it.
type Distro struct {
	ID        string `json:"id,omitempty"`         // "debian", "alpine", "ubuntu", "rhel", …
	VersionID string `json:"version_id,omitempty"` // "12", "3.19.1", "22.04"
}

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Type    string `json:"type"` // TypeDeb, TypeAPK, TypeRPM, TypeGoModule
	PURL    string `json:"purl,omitempty"`
	// SourceName and SourceVersion: the source package a binary package was built from (dpkg Source, apk
	// origin, rpm source rpm). Debian and Alpine advisories name source packages. Empty when the same as
	// Name/Version.
	SourceName    string `json:"source_name,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	// Files are the regular files the package installed, as absolute real paths in the image (each directory
	// symlink on the way resolved: /bin/bash is /usr/bin/bash on a merged-/usr image). For a Go module, the
	// binaries it is linked into.
	Files []string `json:"files,omitempty"`
	// Locations are where the package was found: the package database, or the binary holding the build info.
	Locations []string `json:"locations,omitempty"`
}

// Key identifies a package within an SBOM: its type, name and version.
func (p Package) Key() string { return p.Type + "/" + p.Name + "@" + p.Version }
