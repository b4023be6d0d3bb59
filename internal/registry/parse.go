package registry

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxRetryAfter caps how long a Retry-After may block a registry: a broken header must not silence it for days.
const maxRetryAfter = time.Hour

// ParseRetryAfter reads a Retry-After header (RFC 9110: delay-seconds or an HTTP-date) and returns how long to
// wait from now, capped at an hour. ok is false when the header is absent or unreadable.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return maxRetryAfter, true
			}
			return 0, false
		}
		if n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > maxRetryAfter:
		return maxRetryAfter, true
	}
	return d, true
}

// Platform is one manifest listed in an index.
type Platform struct {
	Digest string
	// Platform is os/architecture[/variant], "" when the index does not say (attestations, unknown entries).
	Platform string
}

// maxIndexManifests bounds the entries kept from one index; real ones list a few dozen at most.
const maxIndexManifests = 4096

// ParseIndex reads the manifests an image index (OCI) or manifest list (Docker) lists. body must be the
// index whose digest was asked for; mediaType is the registry's Content-Type, used when the body has none.
func ParseIndex(mediaType string, body []byte) ([]Platform, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("empty index")
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	mt := im.MediaType
	if mt == "" {
		mt = types.MediaType(mediaType)
	}
	if mt != "" && !mt.IsIndex() {
		return nil, fmt.Errorf("index: media type %q is not an index", truncateStr(string(mt)))
	}
	if len(im.Manifests) > maxIndexManifests {
		return nil, fmt.Errorf("index: %d manifests, more than %d", len(im.Manifests), maxIndexManifests)
	}
	out := make([]Platform, 0, len(im.Manifests))
	for i, m := range im.Manifests {
		if m.Digest.Algorithm == "" || m.Digest.Hex == "" {
			return nil, fmt.Errorf("index: manifests[%d] has no digest", i)
		}
		p := Platform{Digest: m.Digest.String()}
		if m.Platform != nil && m.Platform.OS != "" {
			p.Platform = m.Platform.OS + "/" + m.Platform.Architecture
			if m.Platform.Variant != "" {
				p.Platform += "/" + m.Platform.Variant
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func truncateStr(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// isIndex reports whether a Content-Type names an index or manifest list.
func isIndex(mediaType string) bool {
	return types.MediaType(mediaType).IsIndex()
}
