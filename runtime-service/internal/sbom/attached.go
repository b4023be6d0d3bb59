package sbom

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtrust/runtrust/runtime-service/internal/referrers"
)

// ErrNotAttached says the registry holds no SBOM (in a format we read) attached to the digest.
var ErrNotAttached = errors.New("no SBOM attached")

// errUnreadable marks an attached SBOM that was found but could not be read (too large, not decodable): asking
// again will not help, so Fetcher generates one instead.
var errUnreadable = errors.New("attached SBOM unreadable")

// MaxAttachedBytes bounds the SBOM document read from a referrer's layer.
const MaxAttachedBytes = 64 << 20

const (
	maxReferrers          = 256 // referrer descriptors looked at
	maxManifestsInspected = 16  // referrer manifests fetched to learn an artifact type the listing did not give
)

// Media types of the SBOM documents we read, as artifactType or layer media type, by format.
var sbomMediaTypes = map[string]string{
	"application/spdx+json":          FormatSPDXJSON,
	"text/spdx+json":                 FormatSPDXJSON, // cosign attach sbom --type spdxjson
	"application/vnd.cyclonedx+json": FormatCycloneDXJSON,
	"application/vnd.syft+json":      FormatSyftJSON,
}

// formatPreference orders formats when several SBOMs are attached: Syft JSON lists each package's files, the
// others do only when the tool was asked to.
var formatPreference = []string{FormatSyftJSON, FormatSPDXJSON, FormatCycloneDXJSON}

// formatOf returns the SBOM format a media type names ("" for none); parameters (";version=1.5") are ignored.
func formatOf(mediaType string) string {
	mt, _, err := mime.ParseMediaType(mediaType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(mediaType))
	}
	return sbomMediaTypes[mt]
}

// Attached returns the SBOM attached to the manifest d in its registry: an OCI 1.1 referrer of d, through the
// referrers API (Source SourceReferrer) or, on registries without it, the sha256-<hex> tag index
// (SourceTag). It picks the referrer by artifact type or layer media type (SPDX, CycloneDX or Syft JSON, in the
// order formatPreference gives, newest first) and reads its layer, at most MaxAttachedBytes. It returns
// ErrNotAttached when there is none. The SBOM's Digest is d's.
func Attached(ctx context.Context, d name.Digest, opts ...remote.Option) (*SBOM, error) {
	opts = append(slices.Clip(opts), remote.WithContext(ctx))
	idx, source, err := listReferrers(d, opts)
	if err != nil {
		return nil, fmt.Errorf("sbom: %s: list referrers: %w", d, err)
	}
	cands, err := sbomReferrers(d, idx, opts)
	if err != nil {
		return nil, fmt.Errorf("sbom: %s: %w", d, err)
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("sbom: %s: %w", d, ErrNotAttached)
	}
	var firstErr error
	for _, c := range cands {
		sb, err := readReferrer(d, c, opts)
		if err == nil {
			sb.Digest, sb.Source = d.DigestStr(), source
			sb.Notes = append(sb.Notes, fmt.Sprintf("attached SBOM %s (%s)", c.desc.Digest, c.format))
			return sb, nil
		}
		if !errors.Is(err, errUnreadable) {
			return nil, fmt.Errorf("sbom: %s: referrer %s: %w", d, c.desc.Digest, err)
		}
		firstErr = cmp.Or(firstErr, fmt.Errorf("sbom: %s: referrer %s: %w", d, c.desc.Digest, err))
	}
	return nil, firstErr
}

// listReferrers lists d's referrers (internal/referrers), telling which way it found them.
func listReferrers(d name.Digest, opts []remote.Option) (v1.ImageIndex, string, error) {
	return referrers.List(d, opts)
}

// candidate is a referrer holding an SBOM document.
type candidate struct {
	desc     v1.Descriptor
	format   string
	manifest *v1.Manifest // nil until fetched
}

// sbomReferrers returns the referrers holding an SBOM, best first. A listing's artifactType is enough to tell
// most; a referrer whose artifactType names nothing we know (an empty config, a registry that reports the config
// media type) is fetched, a bounded number of times, to read its manifest's artifactType and layer media types.
func sbomReferrers(d name.Digest, idx v1.ImageIndex, opts []remote.Option) ([]candidate, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read referrers index: %w", err)
	}
	var cands []candidate
	inspected := 0
	for i, desc := range im.Manifests {
		if i >= maxReferrers {
			break
		}
		if f := formatOf(desc.ArtifactType); f != "" {
			cands = append(cands, candidate{desc: desc, format: f})
			continue
		}
		if !desc.MediaType.IsImage() || inspected >= maxManifestsInspected {
			continue
		}
		inspected++
		m, err := fetchManifest(d.Context().Digest(desc.Digest.String()), opts)
		if err != nil {
			return nil, fmt.Errorf("referrer %s: %w", desc.Digest, err)
		}
		if f := manifestFormat(m); f != "" {
			cands = append(cands, candidate{desc: desc, format: f, manifest: m})
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if c := slices.Index(formatPreference, a.format) - slices.Index(formatPreference, b.format); c != 0 {
			return c
		}
		return strings.Compare(created(b.desc), created(a.desc)) // newest first
	})
	return cands, nil
}

func created(d v1.Descriptor) string { return d.Annotations["org.opencontainers.image.created"] }

func fetchManifest(ref name.Digest, opts []remote.Option) (*v1.Manifest, error) {
	return referrers.Manifest(ref, opts)
}

// manifestFormat tells the SBOM format of an artifact manifest from its artifactType, config media type or
// layer media types.
func manifestFormat(m *v1.Manifest) string {
	if f := formatOf(m.ArtifactType); f != "" {
		return f
	}
	if f := formatOf(string(m.Config.MediaType)); f != "" {
		return f
	}
	for _, l := range m.Layers {
		if f := formatOf(string(l.MediaType)); f != "" {
			return f
		}
	}
	return ""
}

// readReferrer downloads and decodes the candidate's document layer.
func readReferrer(d name.Digest, c candidate, opts []remote.Option) (*SBOM, error) {
	if c.manifest == nil {
		m, err := fetchManifest(d.Context().Digest(c.desc.Digest.String()), opts)
		if err != nil {
			return nil, err
		}
		c.manifest = m
	}
	layer, err := documentLayer(c.manifest)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	data, err := readBlob(d.Context().Digest(layer.Digest.String()), layer.Size, opts)
	if err != nil {
		return nil, err
	}
	sb, err := Decode(data, c.format)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	return sb, nil
}

// documentLayer is the layer holding the document: the one whose media type names an SBOM format, else the
// single layer of an artifact whose artifactType named it.
func documentLayer(m *v1.Manifest) (v1.Descriptor, error) {
	for _, l := range m.Layers {
		if formatOf(string(l.MediaType)) != "" {
			return l, nil
		}
	}
	if len(m.Layers) == 1 {
		return m.Layers[0], nil
	}
	return v1.Descriptor{}, fmt.Errorf("artifact has %d layers and none of an SBOM media type", len(m.Layers))
}

// readBlob reads a document blob of at most MaxAttachedBytes; one over it is unreadable (asking again will not
// help).
func readBlob(ref name.Digest, size int64, opts []remote.Option) ([]byte, error) {
	data, err := referrers.ReadBlob(ref, size, MaxAttachedBytes, opts)
	if errors.Is(err, referrers.ErrTooLarge) {
		return nil, fmt.Errorf("%w: layer %s is larger than the %d MiB limit on attached SBOMs", errUnreadable, ref.DigestStr(), MaxAttachedBytes>>20)
	}
	return data, err
}
