// Package referrers reads what is attached to a manifest in its registry: the OCI 1.1 referrers of a digest
// (through the referrers API, or the sha256-<hex> tag index registries without it keep), their manifests, and
// their blobs with a bound. The attached-SBOM reader (internal/sbom) and the signature and provenance checks
// (internal/provenance) share it.
package referrers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where a referrer was found.
const (
	SourceReferrer = "referrer" // the referrers API
	SourceTag      = "tag"      // the sha256-<hex> tag index (registries without the API)
)

// ErrTooLarge marks a blob over the bound ReadBlob was given.
var ErrTooLarge = errors.New("blob too large")

// List lists d's referrers, telling which way it found them. remote.Referrers falls back to the tag scheme on its
// own but does not say so, so it is asked first with the fallback off; go-containerregistry then fails with a
// plain error (not a transport.Error) on a registry without the referrers API, and the second call takes the tag.
// go-containerregistry parses the answer only when asked, so List parses it once to fail here, naming where the
// answer came from, on one that is not JSON or not an image index (an image manifest pushed under the
// sha256-<hex> tag, say) rather than have it read as "no referrers".
func List(d name.Digest, opts []remote.Option) (v1.ImageIndex, string, error) {
	source := SourceReferrer
	idx, err := remote.Referrers(d, append(slices.Clip(opts), remote.WithReferrersTagFallback(false))...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, "", err
		}
		idx, err = remote.Referrers(d, append(slices.Clip(opts), remote.WithReferrersTagFallback(true))...)
		if err != nil {
			return nil, "", err
		}
		source = SourceTag
	}
	if err := checkIndex(idx); err != nil {
		from := "the referrers API"
		if source == SourceTag {
			from = "tag " + d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1)).String()
		}
		return nil, "", fmt.Errorf("referrers index from %s: %w", from, err)
	}
	return idx, source, nil
}

// checkIndex says why a referrers answer is not an image index: it does not parse, it says it is something
// else, or it lists a referrer without a digest. An answer without a mediaType is taken (the field is optional in
// an index).
func checkIndex(idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if im.MediaType != "" && im.MediaType != types.OCIImageIndex {
		return fmt.Errorf("media type %q, want %s", im.MediaType, types.OCIImageIndex)
	}
	// A descriptor without a digest parses (to the zero v1.Hash, ":"), and would be fetched as "<repo>@:".
	for i, m := range im.Manifests {
		if m.Digest == (v1.Hash{}) {
			return fmt.Errorf("manifests[%d] has no digest", i)
		}
	}
	return nil
}

// Manifest fetches the image manifest ref names. One that is an image index (or a Docker manifest list) is an
// error: go-containerregistry would otherwise answer with the manifest of its linux/amd64 child, not of ref.
func Manifest(ref name.Reference, opts []remote.Option) (*v1.Manifest, error) {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is an image index (%s), not an image manifest", ref, desc.MediaType)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	return img.Manifest()
}

// ReadBlob reads the blob ref names, of the size its descriptor gave, as stored (not decompressed), refusing
// one over limit bytes with an error wrapping ErrTooLarge; go-containerregistry checks its digest as it is read
// to the end.
func ReadBlob(ref name.Digest, size, limit int64, opts []remote.Option) ([]byte, error) {
	tooLarge := fmt.Errorf("%w: layer %s is larger than the %s limit", ErrTooLarge, ref.DigestStr(), bytesOf(limit))
	if size > limit {
		return nil, tooLarge
	}
	layer, err := remote.Layer(ref, opts...)
	if err != nil {
		return nil, err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetch layer %s: %w", ref.DigestStr(), err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(rc, max(limit, limit+1))) // limit+1 overflows at math.MaxInt64
	if err != nil {
		return nil, fmt.Errorf("read layer %s: %w", ref.DigestStr(), err)
	}
	if n > limit {
		return nil, tooLarge
	}
	return buf.Bytes(), nil
}

// bytesOf writes a limit in MiB or KiB when it is a whole number of them, else in bytes.
func bytesOf(n int64) string {
	switch {
	case n > 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n > 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d byte", n)
}
