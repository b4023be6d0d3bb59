package sbom

import (
	"bytes"
	"fmt"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// decodeCycloneDX reads a CycloneDX JSON document (any spec version cyclonedx-go reads: 1.0 to 1.7).
func decodeCycloneDX(data []byte) (*SBOM, error) {
	var bom cdx.BOM
	err := guard("CycloneDX decoder", func() error {
		return cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom)
	})
	if err != nil {
		return nil, err
	}
	if bom.BOMFormat != cdx.BOMFormat {
		return nil, fmt.Errorf("not a CycloneDX document: bomFormat is %q, want %q", bom.BOMFormat, cdx.BOMFormat)
	}
	var e entries
	if bom.Components != nil {
		cdxComponents(&e, *bom.Components)
	}
	var created string
	if bom.Metadata != nil {
		created = bom.Metadata.Timestamp
	}
	return e.sbom(parseTime(created)), nil
}

// cdxComponents adds the components, and those nested in them, to e. The metadata component (the image itself)
// is not among them.
func cdxComponents(e *entries, comps []cdx.Component) {
	for i := range comps {
		c := &comps[i]
		if c.Components != nil {
			cdxComponents(e, *c.Components)
		}
		if c.Type == cdx.ComponentTypeOS {
			e.distro = Distro{ID: strings.ToLower(c.Name), VersionID: c.Version}
			continue
		}
		pkg, err := packageFromPURL(c.PackageURL, c.Version)
		if err != nil {
			e.skipped++
			continue
		}
		cdxProperties(&pkg, c)
		if c.Evidence != nil && c.Evidence.Occurrences != nil {
			for _, o := range *c.Evidence.Occurrences {
				if o.Location != "" {
					pkg.Locations = append(pkg.Locations, absPath(o.Location))
				}
			}
		}
		e.add(pkg)
	}
}

// cdxProperties reads the properties Syft and Trivy write: syft:location:N:path and
// aquasecurity:trivy:FilePath (where the package was found), syft:metadata:files:N:path (its files), and the
// source package (syft:metadata:source/sourceVersion for dpkg, originPackage for apk, Trivy's SrcName and
// SrcVersion) when the purl has no upstream qualifier.
func cdxProperties(pkg *Package, c *cdx.Component) {
	if c.Properties == nil {
		return
	}
	var srcName, srcVersion string
	for _, p := range *c.Properties {
		switch {
		case strings.HasPrefix(p.Name, "syft:location:") && strings.HasSuffix(p.Name, ":path"),
			p.Name == "aquasecurity:trivy:FilePath":
			pkg.Locations = append(pkg.Locations, absPath(p.Value))
		case strings.HasPrefix(p.Name, "syft:metadata:files:") && strings.HasSuffix(p.Name, ":path"):
			pkg.Files = append(pkg.Files, absPath(p.Value))
		case p.Name == "syft:metadata:source", p.Name == "syft:metadata:originPackage",
			p.Name == "aquasecurity:trivy:SrcName":
			srcName = p.Value
		case p.Name == "syft:metadata:sourceVersion", p.Name == "aquasecurity:trivy:SrcVersion":
			srcVersion = p.Value
		}
	}
	if pkg.SourceName == "" {
		pkg.SourceName = srcName
	}
	if pkg.SourceVersion == "" {
		pkg.SourceVersion = srcVersion
	}
}
