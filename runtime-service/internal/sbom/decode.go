package sbom

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Decode reads an SBOM document in format: FormatSPDXJSON (SPDX 2.2 or 2.3), FormatCycloneDXJSON or
// FormatSyftJSON; "" tells the format from the document itself. The SBOM it returns has Format, Distro,
// Packages and CreatedAt (the document's own creation time where it has one, else now) set; Digest and Source
// are the caller's to set.
//
// What each format yields:
//   - SPDX: packages with a purl (externalRefs PACKAGE-MANAGER purl); Files from CONTAINS / CONTAINED_BY
//     relationships and hasFiles between a package and files; Locations from Syft's "evident-by" OTHER
//     relationships; the distro from an OPERATING-SYSTEM package, else a purl's distro qualifier.
//   - CycloneDX: components (nested ones too) with a purl; Locations from Syft's syft:location:N:path
//     properties, Trivy's aquasecurity:trivy:FilePath and evidence occurrences; Files from Syft's
//     syft:metadata:files:N:path properties (Syft writes them only when it catalogued files); the distro from
//     the operating-system component, else a purl's distro qualifier.
//   - Syft JSON: artifacts with a purl (or a deb/apk/rpm/go-module type); Files from metadata.files[].path
//     (dpkg, apk, rpm entries); Locations from locations[].path; the distro from distro.id/versionID.
//
// In all formats the source package comes from the purl's upstream qualifier, else the format's own fields
// (Syft metadata.source/sourceVersion/originPackage, Trivy SrcName/SrcVersion). A Go module's Files are its
// Locations (the binaries it was found in), as in generated SBOMs. Files are as the document lists them: no
// filesystem is at hand to resolve symlinks.
func Decode(data []byte, format string) (*SBOM, error) {
	if format == "" {
		var err error
		if format, err = sniffFormat(data); err != nil {
			return nil, fmt.Errorf("sbom: decode: %w", err)
		}
	}
	var sb *SBOM
	var err error
	switch format {
	case FormatSPDXJSON:
		sb, err = decodeSPDX(data)
	case FormatCycloneDXJSON:
		sb, err = decodeCycloneDX(data)
	case FormatSyftJSON:
		sb, err = decodeSyft(data)
	default:
		return nil, fmt.Errorf("sbom: decode: unknown document format %q (want %q, %q or %q)",
			format, FormatSPDXJSON, FormatCycloneDXJSON, FormatSyftJSON)
	}
	if err != nil {
		return nil, fmt.Errorf("sbom: decode %s: %w", format, err)
	}
	sb.Format = format
	for i, p := range sb.Packages {
		if p.Type == TypeGoModule && len(p.Files) == 0 {
			sb.Packages[i].Files = append([]string(nil), p.Locations...)
		}
	}
	sb.Packages = finishPackages(sb.Packages)
	if sb.CreatedAt.IsZero() {
		sb.CreatedAt = time.Now().UTC()
	}
	return sb, nil
}

// sniffFormat tells an SBOM document's format by the field each format starts with.
func sniffFormat(data []byte) (string, error) {
	var doc struct {
		SPDXVersion string          `json:"spdxVersion"`
		BOMFormat   string          `json:"bomFormat"`
		Artifacts   json.RawMessage `json:"artifacts"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("not a JSON document: %w", err)
	}
	switch {
	case doc.SPDXVersion != "":
		return FormatSPDXJSON, nil
	case doc.BOMFormat != "":
		return FormatCycloneDXJSON, nil
	case doc.Artifacts != nil:
		return FormatSyftJSON, nil
	}
	return "", errors.New("not an SPDX, CycloneDX or Syft JSON document (no spdxVersion, bomFormat or artifacts)")
}

// guard runs a third-party decoder over a document from a registry, turning a panic into an error: an odd
// document must not take the service down.
func guard(what string, decode func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s panicked: %v", what, r)
		}
	}()
	return decode()
}

// entries collects a document's packages and counts the entries it leaves out.
type entries struct {
	pkgs    []Package
	distro  Distro
	skipped int // entries without a usable package URL
}

// add keeps pkg, taking the distro from its purl when the document named none.
func (e *entries) add(pkg Package) {
	if isImagePURL(pkg.Type) {
		return // the image (or a layer) itself, not a package in it
	}
	if e.distro == (Distro{}) {
		if p, err := parsePURL(pkg.PURL); err == nil {
			e.distro = distroFromQualifier(p)
		}
	}
	e.pkgs = append(e.pkgs, pkg)
}

func (e *entries) sbom(createdAt time.Time) *SBOM {
	sb := &SBOM{Distro: e.distro, Packages: e.pkgs, CreatedAt: createdAt}
	if e.skipped > 0 {
		sb.Notes = append(sb.Notes, fmt.Sprintf("%d document entries without a package URL were left out", e.skipped))
	}
	return sb
}

// isImagePURL says a purl type names a container image, which SBOM tools list as the document's subject.
func isImagePURL(typ string) bool { return typ == "oci" || typ == "docker" }

// parseTime reads a document timestamp (RFC 3339); a missing or odd one is zero, and Decode puts now.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
