package referrers

import (
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// fuzzStatuses are the statuses the fuzzed registry answers with, by index: the ones go-containerregistry takes
// for "no referrers API" (404, 400, 406), success, and failures.
var fuzzStatuses = []int{http.StatusOK, http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable,
	http.StatusUnauthorized, http.StatusInternalServerError}

// FuzzList serves fuzzed answers from a real registry's referrers endpoint and sha256-<hex> tag (the parse of
// those bytes is go-containerregistry's; what is fuzzed is List's decision on them) and checks that List does
// not panic, that what it returns parses as an OCI image index, and that it names the source the answer came
// from: the referrers API exactly when that answered 200 with an OCI index Content-Type.
func FuzzList(f *testing.F) {
	idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` +
		strings.Repeat("ab", 32) + `","size":2,"artifactType":"application/spdx+json"}]}`
	oci := string(types.OCIImageIndex)
	f.Add(uint8(0), oci, []byte(idx), uint8(1), []byte(nil))
	f.Add(uint8(0), oci, []byte(`{"manifests":null}`), uint8(1), []byte(nil))
	f.Add(uint8(0), oci, []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`), uint8(1), []byte(nil))
	f.Add(uint8(0), oci, []byte(`[`), uint8(1), []byte(nil))
	f.Add(uint8(0), "text/html", []byte(idx), uint8(0), []byte(idx))
	f.Add(uint8(1), "", []byte(nil), uint8(0), []byte(idx))
	f.Add(uint8(1), "", []byte(nil), uint8(0), []byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:zz"}]}`))
	f.Add(uint8(2), "", []byte(nil), uint8(5), []byte(nil))
	f.Add(uint8(4), "", []byte(nil), uint8(0), []byte(idx))

	var cur struct{ api, tag answer }
	fk := &faker{}
	reg := registrytest.Start(f, registrytest.WithMiddleware(fk.wrap))
	d := pushImage(f, reg, "app:v1")
	opts := noRetry

	f.Fuzz(func(t *testing.T, apiStatus uint8, apiType string, apiBody []byte, tagStatus uint8, tagBody []byte) {
		cur.api = answer{status: fuzzStatuses[int(apiStatus)%len(fuzzStatuses)], contentType: apiType, body: apiBody}
		cur.tag = answer{status: fuzzStatuses[int(tagStatus)%len(fuzzStatuses)], contentType: oci, body: tagBody}
		fk.reset()
		fk.set("/referrers/"+d.DigestStr(), cur.api)
		fk.set("/manifests/"+tagOf(d), cur.tag)

		got, src, err := List(d, opts)
		if err != nil {
			if got != nil || src != "" {
				t.Fatalf("with error %v, List returned %v, %q", err, got, src)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		// The Content-Type reaches the client as net/http sends and reads it (trimmed, newlines made spaces), so
		// only the exact value is held to be taken for an index.
		switch {
		case cur.api.status == http.StatusOK && apiType == oci && src != SourceReferrer:
			t.Fatalf("the API answered an index, source %q", src)
		case cur.api.status != http.StatusOK && src != SourceTag:
			t.Fatalf("the API answered %d, source %q", cur.api.status, src)
		}
		im, err := got.IndexManifest()
		if err != nil {
			t.Fatalf("List took an answer that does not parse: %v", err)
		}
		if im.MediaType != "" && im.MediaType != types.OCIImageIndex {
			t.Fatalf("List took an answer of media type %q", im.MediaType)
		}
		for _, m := range im.Manifests {
			if _, err := v1.NewHash(m.Digest.String()); err != nil {
				t.Fatalf("List took a referrer of digest %q: %v", m.Digest, err)
			}
		}
	})
}

// FuzzManifest serves fuzzed bytes as the manifest under a tag (as cosign's sha256-<hex>.sig tag is read) and
// checks that Manifest does not panic and never answers for an image index.
func FuzzManifest(f *testing.F) {
	f.Add(string(types.OCIManifestSchema1), []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:`+strings.Repeat("0", 64)+`","size":2},"layers":[]}`))
	f.Add(string(types.OCIImageIndex), []byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add(string(types.DockerManifestList), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:`+strings.Repeat("1", 64)+`","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}`))
	f.Add(string(types.DockerManifestSchema1), []byte(`{}`))
	f.Add("text/plain", []byte(`{"layers":[{"digest":"sha256:x"}]}`))
	f.Add("", []byte(`null`))

	fk := &faker{}
	reg := registrytest.Start(f, registrytest.WithMiddleware(fk.wrap))
	d := pushImage(f, reg, "app:v1")
	tag := d.Context().Tag(tagOf(d) + ".sig")

	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		fk.reset()
		fk.set("/manifests/"+tag.TagStr(), answer{status: http.StatusOK, contentType: contentType, body: body})
		m, err := Manifest(tag, noRetry)
		if err != nil {
			if m != nil || err.Error() == "" {
				t.Fatalf("Manifest = %v, %v", m, err)
			}
			return
		}
		if types.MediaType(contentType).IsIndex() {
			t.Fatalf("Manifest answered %+v for an index (%s)", m, contentType)
		}
	})
}
