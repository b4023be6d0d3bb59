package referrers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// noRetry keeps go-containerregistry from retrying (and sleeping on) the 5xx answers the tests provoke.
var noRetry = []remote.Option{remote.WithRetryStatusCodes(), remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Steps: 1})}

// answer is what a misbehaving registry says to one request instead of the real registry.
type answer struct {
	status      int
	contentType string
	body        []byte
}

// faker sits in front of a real registry (registrytest.WithMiddleware) and answers the requests whose path ends
// in a key of its map itself, the others reaching the registry.
type faker struct {
	mu      sync.Mutex
	answers map[string]answer // path suffix ("/referrers/sha256:…", "/manifests/sha256-….sig") → answer
}

func (f *faker) set(suffix string, a answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answers == nil {
		f.answers = map[string]answer{}
	}
	f.answers[suffix] = a
}

func (f *faker) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.answers)
}

func (f *faker) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var a answer
		ok := false
		for suffix, v := range f.answers {
			if strings.HasSuffix(r.URL.Path, suffix) {
				a, ok = v, true
				break
			}
		}
		f.mu.Unlock()
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if a.contentType != "" {
			w.Header().Set("Content-Type", a.contentType)
		}
		w.WriteHeader(a.status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(a.body)
		}
	})
}

// pushImage pushes a random one-layer image as repoTag and returns its digest.
func pushImage(t testing.TB, reg *registrytest.Registry, repoTag string) name.Digest {
	t.Helper()
	ref, err := name.ParseReference(reg.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Digest(h.String())
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// attach pushes an OCI 1.1 artifact of artifactType (as its config media type, which both the registry's
// referrers API and go-containerregistry's tag index report) holding doc, referring to subject. It returns the
// artifact's manifest digest and its document layer's descriptor.
func attach(t testing.TB, subject name.Digest, artifactType string, doc []byte) (v1.Hash, v1.Descriptor) {
	t.Helper()
	repo := subject.Context()
	subj, err := remote.Head(subject)
	if err != nil {
		t.Fatal(err)
	}
	cfg := static.NewLayer([]byte("{}"), types.MediaType(artifactType))
	layer := static.NewLayer(doc, "application/octet-stream")
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatal(err)
		}
	}
	ld := descriptorOf(t, layer)
	raw, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: descriptorOf(t, cfg), Layers: []v1.Descriptor{ld},
		Subject: &v1.Descriptor{MediaType: subj.MediaType, Digest: subj.Digest, Size: subj.Size}})
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Digest(h.String()), rawManifest{raw, types.OCIManifestSchema1}); err != nil {
		t.Fatalf("attach to %s: %v", subject, err)
	}
	return h, ld
}

func descriptorOf(t testing.TB, l v1.Layer) v1.Descriptor {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	size, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}
}

// tagOf is the sha256-<hex> tag registries without the referrers API keep d's referrers under.
func tagOf(d name.Digest) string { return strings.Replace(d.DigestStr(), ":", "-", 1) }

// indexOf is an OCI image index listing descs, as a referrers answer.
func indexOf(t testing.TB, mediaType types.MediaType, descs ...v1.Descriptor) []byte {
	t.Helper()
	b, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: mediaType, Manifests: descs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// digests lists the manifests of idx.
func digests(t testing.TB, idx v1.ImageIndex) []string {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("index manifest: %v", err)
	}
	out := []string{}
	for _, d := range im.Manifests {
		out = append(out, d.Digest.String())
	}
	return out
}
