package sbom

import (
	"cmp"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Syft JSON has no small library (syft's own module graph fights the collector's pins), so these structs hold
// the few fields we read; encoding/json ignores the rest.
type syftDocument struct {
	Artifacts *[]syftArtifact `json:"artifacts"`
	Distro    struct {
		ID        string `json:"id"`
		VersionID string `json:"versionID"`
		Name      string `json:"name"`    // schema 1.x: the ID
		Version   string `json:"version"` // schema 1.x: the version ID
	} `json:"distro"`
}

type syftArtifact struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Type      string `json:"type"` // syft's package type: deb, apk, rpm, go-module, …
	PURL      string `json:"purl"`
	Locations []struct {
		Path string `json:"path"`
	} `json:"locations"`
	// Metadata's shape depends on the package type, so it is read apart: a field of another shape in one
	// type must not fail the whole document.
	Metadata json.RawMessage `json:"metadata"`
}

// syftMetadata is what we read of an artifact's metadata: dpkg-db-entry, apk-db-entry and rpm-db-entry list
// the package's files; dpkg names its source package, apk its origin.
type syftMetadata struct {
	Files []struct {
		Path string `json:"path"`
	} `json:"files"`
	Source        string `json:"source"`
	SourceVersion string `json:"sourceVersion"`
	OriginPackage string `json:"originPackage"`
}

// syftTypes maps syft package types to ours, for artifacts without a purl.
var syftTypes = map[string]string{"deb": TypeDeb, "apk": TypeAPK, "rpm": TypeRPM, "go-module": TypeGoModule}

func decodeSyft(data []byte) (*SBOM, error) {
	var doc syftDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Artifacts == nil {
		return nil, errors.New("not a Syft JSON document: no artifacts")
	}
	var e entries
	e.distro = Distro{ID: cmp.Or(doc.Distro.ID, doc.Distro.Name), VersionID: cmp.Or(doc.Distro.VersionID, doc.Distro.Version)}
	for _, a := range *doc.Artifacts {
		pkg, err := packageFromPURL(a.PURL, a.Version)
		if err != nil {
			typ, ok := syftTypes[a.Type]
			if !ok || a.Name == "" {
				e.skipped++
				continue
			}
			pkg = Package{Name: a.Name, Version: a.Version, Type: typ}
		}
		for _, l := range a.Locations {
			if l.Path != "" {
				pkg.Locations = append(pkg.Locations, absPath(l.Path))
			}
		}
		syftApplyMetadata(&pkg, a.Metadata)
		e.add(pkg)
	}
	return e.sbom(time.Time{}), nil // Syft JSON carries no creation time
}

// syftApplyMetadata reads the files and source package from an artifact's metadata. Fields of another shape
// (json.UnmarshalTypeError) are skipped: encoding/json still fills the others.
func syftApplyMetadata(pkg *Package, raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	var m syftMetadata
	if err := json.Unmarshal(raw, &m); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return
		}
	}
	for _, f := range m.Files {
		if f.Path != "" {
			pkg.Files = append(pkg.Files, absPath(f.Path))
		}
	}
	if pkg.SourceName == "" {
		pkg.SourceName = strings.TrimSpace(cmp.Or(m.Source, m.OriginPackage))
	}
	if pkg.SourceVersion == "" {
		pkg.SourceVersion = m.SourceVersion
	}
}
