package sbom

import (
	"bytes"
	"errors"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// decodeSPDX reads an SPDX 2.2 or 2.3 JSON document (tools-golang converts 2.2 to the 2.3 model).
func decodeSPDX(data []byte) (*SBOM, error) {
	var doc *spdx.Document
	err := guard("SPDX reader", func() (err error) {
		doc, err = spdxjson.Read(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errors.New("empty SPDX document")
	}
	rel := spdxRelations(doc)
	var e entries
	for _, p := range doc.Packages {
		if p == nil {
			continue
		}
		if strings.EqualFold(p.PrimaryPackagePurpose, "OPERATING-SYSTEM") {
			e.distro = Distro{ID: strings.ToLower(p.PackageName), VersionID: p.PackageVersion}
			continue
		}
		pkg, err := packageFromPURL(spdxPURL(p), p.PackageVersion)
		if err != nil {
			e.skipped++
			continue
		}
		for _, f := range p.Files {
			if f != nil && f.FileName != "" {
				pkg.Files = append(pkg.Files, absPath(f.FileName))
			}
		}
		pkg.Files = append(pkg.Files, rel.files[p.PackageSPDXIdentifier]...)
		pkg.Locations = rel.locations[p.PackageSPDXIdentifier]
		e.add(pkg)
	}
	var created string
	if doc.CreationInfo != nil {
		created = doc.CreationInfo.Created
	}
	return e.sbom(parseTime(created)), nil
}

// spdxPURL is the package's purl external reference ("PACKAGE-MANAGER" in 2.3, "PACKAGE_MANAGER" in 2.2).
func spdxPURL(p *spdx.Package) string {
	for _, ref := range p.PackageExternalReferences {
		if ref == nil {
			continue
		}
		cat := strings.ReplaceAll(strings.ToUpper(ref.Category), "_", "-")
		if cat == "PACKAGE-MANAGER" && strings.EqualFold(ref.RefType, "purl") {
			return ref.Locator
		}
	}
	return ""
}

// spdxRelation maps package IDs to the file paths related to them.
type spdxRelation struct {
	files     map[common.ElementID][]string // CONTAINS: files the package installed
	locations map[common.ElementID][]string // Syft's OTHER "evident-by": where the package was found
}

// spdxRelations reads the document's relationships between packages and files (hasFiles arrives as CONTAINS).
func spdxRelations(doc *spdx.Document) spdxRelation {
	names := map[common.ElementID]string{}
	for _, f := range doc.Files {
		if f != nil && f.FileName != "" {
			names[f.FileSPDXIdentifier] = absPath(f.FileName)
		}
	}
	r := spdxRelation{files: map[common.ElementID][]string{}, locations: map[common.ElementID][]string{}}
	link := func(m map[common.ElementID][]string, pkg, file common.DocElementID) {
		if pkg.DocumentRefID != "" || file.DocumentRefID != "" {
			return // an element of another document
		}
		if name, ok := names[file.ElementRefID]; ok {
			m[pkg.ElementRefID] = append(m[pkg.ElementRefID], name)
		}
	}
	for _, rel := range doc.Relationships {
		if rel == nil {
			continue
		}
		switch strings.ToUpper(rel.Relationship) {
		case common.TypeRelationshipContains:
			link(r.files, rel.RefA, rel.RefB)
		case common.TypeRelationshipContainedBy:
			link(r.files, rel.RefB, rel.RefA)
		case common.TypeRelationshipOther:
			if strings.Contains(rel.RelationshipComment, "evident-by") {
				link(r.locations, rel.RefA, rel.RefB)
			}
		}
	}
	return r
}
