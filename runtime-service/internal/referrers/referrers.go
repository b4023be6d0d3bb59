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

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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
func List(d name.Digest, opts []remote.Option) (v1.ImageIndex, string, error) {
	idx, err := remote.Referrers(d, append(slices.Clip(opts), remote.WithReferrersTagFallback(false))...)
	if err == nil {
		return idx, SourceReferrer, nil
	}
	var terr *transport.Error
	if errors.As(err, &terr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, "", err
	}
	idx, err = remote.Referrers(d, append(slices.Clip(opts), remote.WithReferrersTagFallback(true))...)
	if err != nil {
		return nil, "", err
	}
	return idx, SourceTag, nil
}

// Manifest fetches the image manifest ref names.
func Manifest(ref name.Reference, opts []remote.Option) (*v1.Manifest, error) {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, err
	}
	return img.Manifest()
}

// ReadBlob reads the blob ref names, of the size its descriptor gave, as stored (not decompressed), refusing
// one over limit bytes with an error wrapping ErrTooLarge; go-containerregistry checks its digest as it is read
// to the end.
func ReadBlob(ref name.Digest, size, limit int64, opts []remote.Option) ([]byte, error) {
	tooLarge := fmt.Errorf("%w: layer %s is larger than the %d MiB limit", ErrTooLarge, ref.DigestStr(), limit>>20)
	if limit < 1<<20 {
		tooLarge = fmt.Errorf("%w: layer %s is larger than the %d KiB limit", ErrTooLarge, ref.DigestStr(), limit>>10)
	}
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
	n, err := buf.ReadFrom(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read layer %s: %w", ref.DigestStr(), err)
	}
	if n > limit {
		return nil, tooLarge
	}
	return buf.Bytes(), nil
}
