package vulnscan

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// maxDocument bounds a stored SBOM document once decompressed (a 20,000-package image with its file lists is
// well under it).
const maxDocument = 512 << 20

// encode turns an SBOM into the store's row: gzip-compressed JSON, with its counts.
func encode(doc *sbom.SBOM) (store.StoredSBOM, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(doc); err != nil {
		return store.StoredSBOM{}, fmt.Errorf("encoding the SBOM of %s: %w", doc.Digest, err)
	}
	if err := zw.Close(); err != nil {
		return store.StoredSBOM{}, err
	}
	files := 0
	for i := range doc.Packages {
		files += len(doc.Packages[i].Files)
	}
	return store.StoredSBOM{Digest: doc.Digest, Source: doc.Source, Format: doc.Format, Distro: distroString(doc.Distro),
		Packages: len(doc.Packages), Files: files, Truncated: doc.Truncated, Notes: doc.Notes, Document: buf.Bytes(),
		CreatedAt: doc.CreatedAt}, nil
}

// decode reads a stored SBOM document back.
func decode(raw []byte) (*sbom.SBOM, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var doc sbom.SBOM
	dec := json.NewDecoder(io.LimitReader(zr, maxDocument))
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

// parsePlatform reads "os/arch[/variant]"; empty is linux/amd64.
func parsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("vulnscan: platform %q is not os/arch[/variant] (e.g. linux/amd64)", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}
