package referrers

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

const (
	sigType  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	sbomType = "application/spdx+json"
)

// TestList: the ways List finds d's referrers, on a real registry with and without the referrers API, and what
// it makes of the answers a misbehaving registry gives (served in front of the real one).
func TestList(t *testing.T) {
	bogus := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 2, ArtifactType: sigType,
		Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	imageManifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("0", 64) + `","size":2},"layers":[]}`)

	tests := []struct {
		name      string
		api       bool // the registry serves the referrers API
		attach    bool // a signature and an SBOM are attached
		opts      []remote.Option
		fake      func(t *testing.T, f *faker, d name.Digest)                   // answers in front of the registry
		push      func(t *testing.T, reg *registrytest.Registry, d name.Digest) // more pushed before listing
		ctx       func() context.Context
		wantSrc   string
		wantTypes []string // artifact types listed, sorted
		wantErr   []string // the error holds each
		wantTag   bool     // whether the sha256-<hex> tag was asked for, checked with checkTag
		checkTag  bool
	}{
		{name: "referrers API", api: true, attach: true, wantSrc: SourceReferrer, wantTypes: []string{sbomType, sigType}, checkTag: true},
		{name: "referrers API, none attached", api: true, wantSrc: SourceReferrer, wantTypes: []string{}, checkTag: true},
		{name: "tag fallback", attach: true, wantSrc: SourceTag, wantTypes: []string{sbomType, sigType}, wantTag: true, checkTag: true},
		{name: "tag fallback, none attached (404 on the tag)", wantSrc: SourceTag, wantTypes: []string{}, wantTag: true, checkTag: true},
		{name: "referrers API, artifactType filter", api: true, attach: true, opts: []remote.Option{remote.WithFilter("artifactType", sigType)},
			wantSrc: SourceReferrer, wantTypes: []string{sigType}},
		{name: "tag fallback, artifactType filter", attach: true, opts: []remote.Option{remote.WithFilter("artifactType", sbomType)},
			wantSrc: SourceTag, wantTypes: []string{sbomType}},
		{name: "artifactType filter matching none", api: true, attach: true, opts: []remote.Option{remote.WithFilter("artifactType", "application/x-none")},
			wantSrc: SourceReferrer, wantTypes: []string{}},

		// The referrers endpoint answers with something else than an OCI index: go-containerregistry takes the
		// registry for one without the API, and the tag is read, not the answer.
		{name: "API answers 404 (no referrers API)", api: true, attach: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusNotFound, contentType: "application/json", body: []byte(`{"errors":[{"code":"NOT_FOUND"}]}`)})
			},
			wantSrc: SourceTag, wantTypes: []string{}, wantTag: true, checkTag: true},
		{name: "API answers 400", attach: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusBadRequest})
			},
			wantSrc: SourceTag, wantTypes: []string{sbomType, sigType}, wantTag: true, checkTag: true},
		{name: "API answers 406", attach: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusNotAcceptable})
			},
			wantSrc: SourceTag, wantTypes: []string{sbomType, sigType}, wantTag: true, checkTag: true},
		{name: "API answers 200 of a wrong media type", attach: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusOK, contentType: "text/html", body: indexOf(t, types.OCIImageIndex, bogus)})
			},
			wantSrc: SourceTag, wantTypes: []string{sbomType, sigType}, wantTag: true, checkTag: true},
		// go-containerregistry compares the Content-Type exactly, so one with parameters is not taken for the API
		// either (a limitation of go-containerregistry, pinned here so a change shows).
		{name: "API answers an index with a charset parameter", attach: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex) + "; charset=utf-8", body: indexOf(t, types.OCIImageIndex, bogus)})
			},
			wantSrc: SourceTag, wantTypes: []string{sbomType, sigType}, wantTag: true, checkTag: true},

		// Answers of the API that fail, without falling back to the tag.
		{name: "API answers 500", api: true, attach: true, opts: noRetry,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusInternalServerError, body: []byte("boom")})
			},
			wantErr: []string{"500 Internal Server Error", "/referrers/" + "sha256:"}, checkTag: true},
		{name: "API answers 403", api: true, attach: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusForbidden, contentType: "application/json", body: []byte(`{"errors":[{"code":"DENIED","message":"no"}]}`)})
			},
			wantErr: []string{"DENIED"}, checkTag: true},
		{name: "API answers an index that is not JSON", api: true, attach: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex), body: []byte("<html>hi</html>")})
			},
			wantErr: []string{"referrers index from the referrers API", "parse", "invalid character '<'"}, checkTag: true},
		{name: "API answers an index that is truncated", api: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				b := indexOf(t, types.OCIImageIndex, bogus)
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex), body: b[:len(b)/2]})
			},
			wantErr: []string{"referrers index from the referrers API", "parse", "unexpected EOF"}},
		{name: "API answers an image manifest as an index", api: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex), body: imageManifest})
			},
			wantErr: []string{"referrers index from the referrers API", `media type "application/vnd.oci.image.manifest.v1+json"`}},
		{name: "API answers an index with a bad digest", api: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex),
					body: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:xyz","size":1}]}`)})
			},
			wantErr: []string{"referrers index from the referrers API", "parse", "non-hex character"}},
		{name: "API answers a referrer without a digest", api: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex),
					body: []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("ab", 32) + `","size":1},{"artifactType":"` + sigType + `"}]}`)})
			},
			wantErr: []string{"referrers index from the referrers API", "manifests[1] has no digest"}},
		{name: "tag lists a referrer without a digest",
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/manifests/"+tagOf(d), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex), body: []byte(`{"manifests":[{}]}`)})
			},
			wantErr: []string{"referrers index from tag ", tagOfPlaceholder, "manifests[0] has no digest"}},
		{name: "API answers an index without a mediaType", api: true,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex), body: indexOf(t, "", bogus)})
			},
			wantSrc: SourceReferrer, wantTypes: []string{sigType}},

		// Answers under the tag that fail.
		{name: "tag holds an image, not an index",
			push: func(t *testing.T, reg *registrytest.Registry, d name.Digest) {
				img, err := random.Image(16, 1)
				if err != nil {
					t.Fatal(err)
				}
				if err := remote.Write(d.Context().Tag(tagOf(d)), img); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: []string{"referrers index from tag ", tagOfPlaceholder, `media type "application/vnd.docker.distribution.manifest.v2+json"`}},
		{name: "tag holds malformed JSON",
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/manifests/"+tagOf(d), answer{status: http.StatusOK, contentType: string(types.OCIImageIndex), body: []byte(`{"manifests":[`)})
			},
			wantErr: []string{"referrers index from tag ", tagOfPlaceholder, "parse"}},
		{name: "tag answers 500", opts: noRetry,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/manifests/"+tagOf(d), answer{status: http.StatusInternalServerError, body: []byte("boom")})
			},
			wantErr: []string{"500 Internal Server Error", tagOfPlaceholder}},
		{name: "tag answers 401", opts: noRetry,
			fake: func(t *testing.T, f *faker, d name.Digest) {
				f.set("/manifests/"+tagOf(d), answer{status: http.StatusUnauthorized, contentType: "application/json", body: []byte(`{"errors":[{"code":"UNAUTHORIZED","message":"who"}]}`)})
			},
			wantErr: []string{"UNAUTHORIZED"}},

		{name: "context canceled", api: true,
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantErr: []string{"context canceled"}, checkTag: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &faker{}
			opts := []registrytest.Option{registrytest.WithMiddleware(f.wrap)}
			if tc.api {
				opts = append(opts, registrytest.WithReferrers())
			}
			reg := registrytest.Start(t, opts...)
			d := pushImage(t, reg, "app:v1")
			if tc.attach {
				attach(t, d, sigType, []byte("sig"))
				attach(t, d, sbomType, []byte("{}"))
			}
			if tc.push != nil {
				tc.push(t, reg, d)
			}
			if tc.fake != nil {
				tc.fake(t, f, d)
			}
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			tagsBefore := reg.Requests(http.MethodGet, "manifests:tag")
			idx, src, err := List(d, append(slices.Clip(tc.opts), remote.WithContext(ctx)))
			if tc.checkTag {
				if asked := reg.Requests(http.MethodGet, "manifests:tag") > tagsBefore; asked != tc.wantTag {
					t.Errorf("tag asked for: %v, want %v", asked, tc.wantTag)
				}
			}
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("List = %v, %q, nil; want an error holding %q", idx, src, tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if w == tagOfPlaceholder {
						w = tagOf(d)
					}
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to hold %q", err, w)
					}
				}
				if idx != nil || src != "" {
					t.Errorf("with an error, List returned %v, %q", idx, src)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src != tc.wantSrc {
				t.Errorf("source %q, want %q", src, tc.wantSrc)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, m := range im.Manifests {
				got = append(got, m.ArtifactType)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantTypes) {
				t.Errorf("artifact types %q, want %q", got, tc.wantTypes)
			}
		})
	}
}

// tagOfPlaceholder in wantErr stands for the subject's sha256-<hex> tag.
const tagOfPlaceholder = "\x00tag"

// TestListDigests: the referrers listed are the manifests attached, each of them fetchable by the digest listed,
// the same both ways.
func TestListDigests(t *testing.T) {
	for _, api := range []bool{true, false} {
		var opts []registrytest.Option
		if api {
			opts = append(opts, registrytest.WithReferrers())
		}
		reg := registrytest.Start(t, opts...)
		d := pushImage(t, reg, "app:v1")
		other := pushImage(t, reg, "app:other")
		a, _ := attach(t, d, sigType, []byte("one"))
		b, _ := attach(t, d, sigType, []byte("two"))
		attach(t, other, sigType, []byte("someone else's"))
		idx, _, err := List(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := digests(t, idx)
		want := []string{a.String(), b.String()}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("api %v: referrers %q, want %q", api, got, want)
		}
		for _, g := range got {
			if _, err := Manifest(d.Context().Digest(g), nil); err != nil {
				t.Errorf("api %v: manifest %s: %v", api, g, err)
			}
		}
	}
}

// TestListOversized: an answer over go-containerregistry's manifest bound (100 MiB) is an error naming the
// bound, not a fallback to the tag.
func TestListOversized(t *testing.T) {
	if testing.Short() {
		t.Skip("serves 100 MiB twice")
	}
	reg := registrytest.Start(t, registrytest.WithReferrers(), registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/referrers/") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", string(types.OCIImageIndex))
			_, _ = w.Write([]byte(`{"schemaVersion":2,"manifests":[`))
			chunk := bytes.Repeat([]byte(" "), 1<<20)
			for range 101 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			_, _ = w.Write([]byte(`]}`))
		})
	}))
	d := pushImage(t, reg, "app:v1")
	_, _, err := List(d, nil)
	if err == nil || !strings.Contains(err.Error(), "body exceeds 104857600 byte limit") {
		t.Errorf("err = %v, want the 100 MiB bound named", err)
	}
	if n := reg.Requests(http.MethodGet, "manifests:tag"); n != 0 {
		t.Errorf("tag asked for %d times", n)
	}
}

func TestListRegistryDown(t *testing.T) {
	reg := registrytest.Start(t)
	d := pushImage(t, reg, "app:v1")
	reg.Stop()
	if _, _, err := List(d, noRetry); err == nil || !strings.Contains(err.Error(), reg.Host) {
		t.Errorf("err = %v, want a failure naming %s", err, reg.Host)
	}
}

// TestManifest: Manifest reads image manifests by digest or tag, and fails, saying why, on what is not one.
func TestManifest(t *testing.T) {
	f := &faker{}
	reg := registrytest.Start(t, registrytest.WithMiddleware(f.wrap))
	d := pushImage(t, reg, "app:v1")
	art, layer := attach(t, d, sigType, []byte("sig"))
	idx, err := random.Index(16, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	idxRef := d.Context().Tag("multi")
	if err := remote.WriteIndex(idxRef, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	repo := d.Context()

	tests := []struct {
		name      string
		ref       name.Reference
		fake      *answer // served for the ref's manifest path
		opts      []remote.Option
		wantLayer *v1.Descriptor
		wantErr   []string
	}{
		{name: "artifact by digest", ref: repo.Digest(art.String()), wantLayer: &layer},
		{name: "image by tag", ref: repo.Tag("v1")},
		{name: "image by digest", ref: d},
		{name: "index by tag", ref: idxRef, wantErr: []string{"is an image index", string(types.OCIImageIndex), "multi"}},
		{name: "index by digest", ref: repo.Digest(idxDigest.String()), wantErr: []string{"is an image index", idxDigest.String()}},
		{name: "docker manifest list", ref: repo.Tag("list"),
			fake:    &answer{status: http.StatusOK, contentType: string(types.DockerManifestList), body: []byte(`{"schemaVersion":2,"manifests":[]}`)},
			wantErr: []string{"is an image index", string(types.DockerManifestList)}},
		{name: "tag not there", ref: repo.Tag("nope"), wantErr: []string{"MANIFEST_UNKNOWN"}},
		{name: "digest not there", ref: repo.Digest("sha256:" + strings.Repeat("1", 64)), wantErr: []string{"MANIFEST_UNKNOWN"}},
		{name: "bytes not of the digest asked for", ref: repo.Digest("sha256:" + strings.Repeat("2", 64)),
			fake:    &answer{status: http.StatusOK, contentType: string(types.OCIManifestSchema1), body: []byte(`{"schemaVersion":2}`)},
			wantErr: []string{"does not match requested digest", strings.Repeat("2", 64)}},
		{name: "malformed manifest", ref: repo.Tag("bad"),
			fake:    &answer{status: http.StatusOK, contentType: string(types.OCIManifestSchema1), body: []byte(`{"layers":{}`)},
			wantErr: []string{"unexpected"}},
		{name: "schema 1", ref: repo.Tag("old"),
			fake:    &answer{status: http.StatusOK, contentType: string(types.DockerManifestSchema1), body: []byte(`{"schemaVersion":1}`)},
			wantErr: []string{`unsupported MediaType: "application/vnd.docker.distribution.manifest.v1+json"`}},
		{name: "server error", ref: repo.Tag("boom"), opts: noRetry,
			fake:    &answer{status: http.StatusBadGateway, body: []byte("upstream")},
			wantErr: []string{"502 Bad Gateway"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.reset()
			if tc.fake != nil {
				f.set("/manifests/"+tc.ref.Identifier(), *tc.fake)
			}
			m, err := Manifest(tc.ref, tc.opts)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Manifest = %+v, want an error holding %q", m, tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to hold %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Layers) != 1 {
				t.Fatalf("%d layers, want 1", len(m.Layers))
			}
			if tc.wantLayer != nil && (m.Layers[0].Digest != tc.wantLayer.Digest || m.Layers[0].Size != tc.wantLayer.Size) {
				t.Errorf("layer %+v, want %+v", m.Layers[0], *tc.wantLayer)
			}
		})
	}
}

// TestReadBlob: ReadBlob reads a blob within its bound, refuses one over it (as its descriptor says, or as it
// turns out), and fails on one that is not there or not what its digest says.
func TestReadBlob(t *testing.T) {
	f := &faker{}
	reg := registrytest.Start(t, registrytest.WithMiddleware(f.wrap))
	repo, err := name.NewRepository(reg.Host + "/app")
	if err != nil {
		t.Fatal(err)
	}
	push := func(data []byte) v1.Descriptor {
		l := static.NewLayer(data, "application/octet-stream")
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatal(err)
		}
		return descriptorOf(t, l)
	}
	small := []byte("hello, referrers")
	kib := bytes.Repeat([]byte("k"), 1<<10)
	smallDesc, kibDesc := push(small), push(kib)
	tampered := push([]byte("original"))

	tests := []struct {
		name        string
		desc        v1.Descriptor
		size, limit int64 // size: what the descriptor claims
		fake        *answer
		opts        []remote.Option
		want        []byte
		wantErr     []string
		tooLarge    bool
		noFetch     bool // refused before asking the registry
	}{
		{name: "within the bound", desc: smallDesc, size: smallDesc.Size, limit: 4 << 20, want: small},
		{name: "exactly the bound", desc: kibDesc, size: kibDesc.Size, limit: 1 << 10, want: kib},
		{name: "no bound to speak of", desc: smallDesc, size: smallDesc.Size, limit: math.MaxInt64, want: small},
		{name: "descriptor over the bound", desc: kibDesc, size: 5 << 20, limit: 4 << 20, tooLarge: true, noFetch: true,
			wantErr: []string{"blob too large", kibDesc.Digest.String(), "4 MiB limit"}},
		{name: "blob over the bound its descriptor kept under", desc: kibDesc, size: 10, limit: 1<<10 - 1, tooLarge: true,
			wantErr: []string{"blob too large", "1023 byte limit"}},
		{name: "KiB bound", desc: kibDesc, size: 10, limit: 512, tooLarge: true, wantErr: []string{"512 byte limit"}},
		{name: "KiB bound named in KiB", desc: kibDesc, size: 4 << 10, limit: 2 << 10, tooLarge: true, noFetch: true, wantErr: []string{"2 KiB limit"}},
		{name: "descriptor with a negative size", desc: smallDesc, size: -1, limit: 1 << 10, want: small},
		{name: "not there", desc: v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("3", 64)}}, size: 1, limit: 1 << 10,
			wantErr: []string{"BLOB_UNKNOWN"}},
		{name: "bytes not of its digest", desc: tampered, size: tampered.Size, limit: 1 << 10,
			fake:    &answer{status: http.StatusOK, contentType: "application/octet-stream", body: []byte("tampered")},
			wantErr: []string{"read layer " + tampered.Digest.String(), "error verifying sha256 checksum"}},
		{name: "server error", desc: smallDesc, size: smallDesc.Size, limit: 1 << 10, opts: noRetry,
			fake:    &answer{status: http.StatusServiceUnavailable},
			wantErr: []string{"fetch layer " + smallDesc.Digest.String(), "503 Service Unavailable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.reset()
			if tc.fake != nil {
				f.set("/blobs/"+tc.desc.Digest.String(), *tc.fake)
			}
			before := reg.Requests(http.MethodGet, "blobs")
			got, err := ReadBlob(repo.Digest(tc.desc.Digest.String()), tc.size, tc.limit, tc.opts)
			if fetched := reg.Requests(http.MethodGet, "blobs") > before; tc.noFetch && fetched {
				t.Errorf("the registry was asked for a blob refused on its descriptor")
			}
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("ReadBlob = %q, want an error holding %q", got, tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to hold %q", err, w)
					}
				}
				if errors.Is(err, ErrTooLarge) != tc.tooLarge {
					t.Errorf("errors.Is(err, ErrTooLarge) = %v, want %v", !tc.tooLarge, tc.tooLarge)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestListErrorKinds: a registry's refusal reaches the caller as a transport.Error (the callers tell "not there"
// from "failed" with it).
func TestListErrorKinds(t *testing.T) {
	f := &faker{}
	reg := registrytest.Start(t, registrytest.WithReferrers(), registrytest.WithMiddleware(f.wrap))
	d := pushImage(t, reg, "app:v1")
	f.set("/referrers/"+d.DigestStr(), answer{status: http.StatusTooManyRequests, contentType: "application/json", body: []byte(`{"errors":[{"code":"TOOMANYREQUESTS"}]}`)})
	_, _, err := List(d, noRetry)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusTooManyRequests {
		t.Errorf("err = %v, want a transport.Error of status 429", err)
	}
}
