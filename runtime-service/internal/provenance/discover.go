package provenance

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/runtrust/runtrust/runtime-service/internal/referrers"
)

// Bounds on what one check reads from a registry.
const (
	maxBlob            = 4 << 20 // one signature payload, envelope or bundle
	maxLayers          = 32      // signature or attestation layers read per manifest
	maxReferrers       = 256     // referrer descriptors looked at
	maxReferrerFetches = 32      // referrer manifests fetched
)

// Sources of what was found.
const (
	SourceSigTag   = "sig_tag"  // cosign's <repo>:sha256-<hex>.sig
	SourceAttTag   = "att_tag"  // cosign's <repo>:sha256-<hex>.att
	SourceReferrer = "referrer" // an OCI 1.1 referrer (the referrers API or its tag index)
)

// item is one signature, attestation or bundle read from the registry.
type item struct {
	mediaType   string // MediaSimpleSigning, MediaDSSE or MediaBundle
	source      string
	artifact    string // digest of the manifest that holds it
	annotations map[string]string
	data        []byte
}

// discover reads what is attached to d: cosign's .sig and .att tags, and the referrers that hold signatures,
// attestations or bundles. A registry error (other than "not there") fails the whole discovery: an image is not
// called unsigned because a registry was down.
func discover(d name.Digest, opts []remote.Option) ([]item, error) {
	var out []item
	hex := strings.TrimPrefix(d.DigestStr(), "sha256:")
	for _, t := range []struct{ suffix, source string }{{".sig", SourceSigTag}, {".att", SourceAttTag}} {
		tag := d.Context().Tag("sha256-" + hex + t.suffix)
		desc, err := remote.Head(tag, opts...)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tag, err)
		}
		m, err := referrers.Manifest(tag, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tag, err)
		}
		items, err := readLayers(d, desc.Digest.String(), t.source, m, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tag, err)
		}
		out = append(out, items...)
	}
	idx, _, err := referrers.List(d, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: list referrers: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: read referrers index: %w", d, err)
	}
	fetched := 0
	for i, desc := range im.Manifests {
		if i >= maxReferrers || fetched >= maxReferrerFetches {
			break
		}
		// The listing's artifactType is enough to skip most referrers (SBOMs, other artifacts); one that names
		// nothing (an empty config, a registry that reports the config media type) is fetched to look at its
		// layers, within the bound.
		if !attachedType(desc.ArtifactType) && (!desc.MediaType.IsImage() || knownOther(desc.ArtifactType)) {
			continue
		}
		fetched++
		ref := d.Context().Digest(desc.Digest.String())
		m, err := referrers.Manifest(ref, opts)
		if err != nil {
			return nil, fmt.Errorf("referrer %s: %w", desc.Digest, err)
		}
		items, err := readLayers(d, desc.Digest.String(), SourceReferrer, m, opts)
		if err != nil {
			return nil, fmt.Errorf("referrer %s: %w", desc.Digest, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// attachedType says whether a referrer's artifact type is a signature, an attestation or a bundle.
func attachedType(t string) bool {
	switch kindOf(t) {
	case MediaSimpleSigning, MediaDSSE, MediaBundle:
		return true
	}
	return t == MediaCosignSigArtifact || t == PayloadTypeInToto
}

// knownOther says an artifact type is something else attached to images (an SBOM, a scan), not worth fetching.
func knownOther(t string) bool {
	mt, _, err := mime.ParseMediaType(t)
	return err == nil && (strings.Contains(mt, "spdx") || strings.Contains(mt, "cyclonedx") || strings.Contains(mt, "syft"))
}

// kindOf maps a media type to MediaSimpleSigning, MediaDSSE or MediaBundle ("" for none of them).
func kindOf(mediaType string) string {
	mt, params, err := mime.ParseMediaType(mediaType)
	if err != nil {
		return ""
	}
	switch {
	case mt == MediaSimpleSigning, mt == MediaDSSE, mt == MediaBundle:
		return mt
	case mt == "application/vnd.dev.sigstore.bundle+json" && strings.HasPrefix(params["version"], "0."):
		return MediaBundle
	}
	return ""
}

// readLayers reads the signature, attestation and bundle layers of an attached manifest.
func readLayers(d name.Digest, artifact, source string, m *v1.Manifest, opts []remote.Option) ([]item, error) {
	var out []item
	for _, l := range m.Layers {
		k := kindOf(string(l.MediaType))
		if k == "" {
			continue
		}
		if len(out) == maxLayers {
			break
		}
		data, err := referrers.ReadBlob(d.Context().Digest(l.Digest.String()), l.Size, maxBlob, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, item{mediaType: k, source: source, artifact: artifact, annotations: l.Annotations, data: data})
	}
	return out, nil
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}
