package sbom

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
)

// Options configure a Fetcher.
type Options struct {
	// Remote returns the options (authentication, transport, user agent) to reach repo's registry; nil for
	// none. Fetcher adds the request's context itself.
	Remote func(repo name.Repository) []remote.Option
	// Limits bound the SBOMs generated; zero fields take DefaultLimits.
	Limits Limits
	// Platform picks the manifest of an image index; zero is linux/amd64. Fields left empty match any
	// (arm64 matches arm64/v8).
	Platform v1.Platform
}

// Fetcher finds the SBOM of image digests in their registries. It keeps nothing between calls: SBOMs never
// change for a digest, and the service stores them by digest.
type Fetcher struct {
	opts Options
}

// New returns a Fetcher.
func New(opts Options) *Fetcher {
	if opts.Platform.OS == "" && opts.Platform.Architecture == "" {
		opts.Platform = v1.Platform{OS: "linux", Architecture: "amd64"}
	}
	return &Fetcher{opts: opts}
}

// Get returns the SBOM of the image d names. For an image index it picks the manifest of the Fetcher's
// platform. It prefers an SBOM attached in the registry — to the index, then to the manifest — and else
// generates one from the manifest's layers. An attached SBOM that cannot be read (too large, undecodable) is
// passed over with a Note; failing to reach the registry is an error. The SBOM's Digest is d's, and for an index
// a Note says which manifest was read.
func (f *Fetcher) Get(ctx context.Context, d name.Digest) (*SBOM, error) {
	opts := f.remoteOptions(ctx, d.Context())
	desc, err := remote.Get(d, opts...)
	if err != nil {
		return nil, fmt.Errorf("sbom: %s: fetch manifest: %w", d, err)
	}
	var notes []string
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		if sb, err := f.attached(ctx, d, opts, &notes); sb != nil || err != nil {
			return finishFetched(sb, d, notes), err
		}
		var m v1.Descriptor
		if img, m, err = correlate.PlatformImage(desc, f.opts.Platform); err != nil {
			return nil, fmt.Errorf("sbom: %s: %w", d, err)
		}
		notes = append(notes, fmt.Sprintf("image index %s: read the %s manifest %s", d.DigestStr(), m.Platform, m.Digest))
		if sb, err := f.attached(ctx, d.Context().Digest(m.Digest.String()), opts, &notes); sb != nil || err != nil {
			return finishFetched(sb, d, notes), err
		}
	case desc.MediaType.IsImage():
		if sb, err := f.attached(ctx, d, opts, &notes); sb != nil || err != nil {
			return finishFetched(sb, d, notes), err
		}
		if img, err = desc.Image(); err != nil {
			return nil, fmt.Errorf("sbom: %s: read manifest: %w", d, err)
		}
	default:
		return nil, fmt.Errorf("sbom: %s: media type %s is neither an image nor an index", d, desc.MediaType)
	}
	sb, err := Generate(ctx, img, f.opts.Limits)
	if err != nil {
		return nil, fmt.Errorf("sbom: %s: %w", d, err)
	}
	return finishFetched(sb, d, notes), nil
}

func (f *Fetcher) remoteOptions(ctx context.Context, repo name.Repository) []remote.Option {
	var opts []remote.Option
	if f.opts.Remote != nil {
		opts = slices.Clone(f.opts.Remote(repo))
	}
	return append(opts, remote.WithContext(ctx))
}

// attached returns the SBOM attached to d, nil when there is none or it cannot be read (a note then says why).
func (f *Fetcher) attached(ctx context.Context, d name.Digest, opts []remote.Option, notes *[]string) (*SBOM, error) {
	sb, err := Attached(ctx, d, opts...)
	switch {
	case err == nil:
		return sb, nil
	case errors.Is(err, ErrNotAttached):
		return nil, nil
	case errors.Is(err, errUnreadable):
		*notes = append(*notes, fmt.Sprintf("passed over: %v", err))
		return nil, nil
	}
	return nil, err
}

// finishFetched makes sb the answer for d: its Digest is d's, and the fetch's notes come first.
func finishFetched(sb *SBOM, d name.Digest, notes []string) *SBOM {
	if sb == nil {
		return nil
	}
	sb.Digest = d.DigestStr()
	sb.Notes = append(notes, sb.Notes...)
	return sb
}
