package sbom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// registries are the two ways a registry keeps referrers: the OCI 1.1 referrers API, and none (clients keep a
// sha256-<hex> tag index instead).
var registries = []struct {
	name       string
	opts       []registrytest.Option
	wantSource string
}{
	{"referrers API", []registrytest.Option{registrytest.WithReferrers()}, SourceReferrer},
	{"tag fallback", nil, SourceTag},
}

var fixtureFormats = []struct{ file, format, mediaType string }{
	{"spdx-2.3.json", FormatSPDXJSON, "application/spdx+json"},
	{"cyclonedx-1.5.json", FormatCycloneDXJSON, "application/vnd.cyclonedx+json"},
	{"syft.json", FormatSyftJSON, "application/vnd.syft+json"},
}

// smallImage pushes a one-file image as repo:tag.
func smallImage(t *testing.T, reg *registrytest.Registry, repoTag, content string) name.Digest {
	t.Helper()
	return push(t, reg, repoTag, imageOf(t, linuxAMD64, layerOf(t, regular("etc/hello", content))))
}

func TestAttached(t *testing.T) {
	for _, r := range registries {
		reg := registrytest.Start(t, r.opts...)
		for _, f := range fixtureFormats {
			for _, inManifest := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/artifactType in manifest %v", r.name, f.format, inManifest), func(t *testing.T) {
					d := smallImage(t, reg, "app:"+strings.ReplaceAll(f.format, "-", ""), t.Name())
					doc := readTestdata(t, f.file)
					art := attach(t, d, doc, f.mediaType, inManifest)
					got, err := Attached(context.Background(), d)
					if err != nil {
						t.Fatal(err)
					}
					want, err := Decode(doc, f.format)
					if err != nil {
						t.Fatal(err)
					}
					want.Digest, want.Source, want.CreatedAt = d.DigestStr(), r.wantSource, got.CreatedAt
					want.Notes = append(want.Notes, fmt.Sprintf("attached SBOM %s (%s)", art, f.format))
					if !reflect.DeepEqual(got, want) {
						t.Errorf("got  %+v\nwant %+v", got, want)
					}
				})
			}
		}
	}
}

func TestAttachedNone(t *testing.T) {
	for _, r := range registries {
		t.Run(r.name, func(t *testing.T) {
			reg := registrytest.Start(t, r.opts...)
			d := smallImage(t, reg, "app:none", "no sbom")
			if _, err := Attached(context.Background(), d); !errors.Is(err, ErrNotAttached) || !strings.Contains(err.Error(), d.String()) {
				t.Errorf("no referrers: err = %v, want %v naming %s", err, ErrNotAttached, d)
			}
			attach(t, d, []byte(`{"critical":{}}`), "application/vnd.dev.cosign.simplesigning.v1+json", true)
			if _, err := Attached(context.Background(), d); !errors.Is(err, ErrNotAttached) {
				t.Errorf("a signature only: err = %v, want %v", err, ErrNotAttached)
			}
		})
	}
}

// TestAttachedPrefersSyft: of several SBOMs, the Syft JSON one (which lists files) is read.
func TestAttachedPrefersSyft(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithReferrers())
	d := smallImage(t, reg, "app:several", "several")
	attach(t, d, readTestdata(t, "cyclonedx-1.5.json"), "application/vnd.cyclonedx+json", false)
	attach(t, d, readTestdata(t, "syft.json"), "application/vnd.syft+json", true)
	attach(t, d, readTestdata(t, "spdx-2.3.json"), "application/spdx+json", false)
	got, err := Attached(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if got.Format != FormatSyftJSON {
		t.Errorf("format %s, want %s", got.Format, FormatSyftJSON)
	}
}

// TestAttachedUnreadable: a document that does not decode, or a layer over the bound, is an error that names
// what is wrong, and the next SBOM attached is read instead.
func TestAttachedUnreadable(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithReferrers())
	d := smallImage(t, reg, "app:bad", "bad")
	attach(t, d, []byte(`{"spdxVersion":"SPDX-2.3","packages":"nope"}`), "application/spdx+json", false)
	_, err := Attached(context.Background(), d)
	if !errors.Is(err, errUnreadable) || !strings.Contains(err.Error(), "decode spdx-json") {
		t.Errorf("undecodable: err = %v", err)
	}

	big := smallImage(t, reg, "app:big", "big")
	attachSized(t, big, []byte(`{}`), "application/vnd.syft+json", MaxAttachedBytes+1)
	_, err = Attached(context.Background(), big)
	if !errors.Is(err, errUnreadable) || !strings.Contains(err.Error(), "64 MiB limit") {
		t.Errorf("too large: err = %v", err)
	}
	attach(t, big, readTestdata(t, "cyclonedx-1.5.json"), "application/vnd.cyclonedx+json", true)
	if got, err := Attached(context.Background(), big); err != nil || got.Format != FormatCycloneDXJSON {
		t.Errorf("with a readable one beside it: got %+v, %v", got, err)
	}
}

// attachSized attaches doc under a layer descriptor claiming size bytes.
func attachSized(t *testing.T, subject name.Digest, doc []byte, mediaType string, size int64) {
	t.Helper()
	repo := subject.Context()
	subj, err := remote.Head(subject)
	if err != nil {
		t.Fatal(err)
	}
	layer := static.NewLayer(doc, types.MediaType(mediaType))
	cfg := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatal(err)
		}
	}
	ld := descriptorOf(t, layer)
	ld.Size = size
	raw, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: mediaType,
		Config: descriptorOf(t, cfg), Layers: []v1.Descriptor{ld},
		Subject: &v1.Descriptor{MediaType: subj.MediaType, Digest: subj.Digest, Size: subj.Size}})
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := v1.SHA256(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Digest(h.String()), rawManifest{raw, types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
}

func TestAttachedRegistryDown(t *testing.T) {
	reg := registrytest.Start(t)
	d := smallImage(t, reg, "app:down", "down")
	reg.Stop()
	_, err := Attached(context.Background(), d)
	if err == nil || errors.Is(err, ErrNotAttached) || !strings.Contains(err.Error(), d.String()) {
		t.Errorf("err = %v, want a failure naming %s", err, d)
	}
}

func TestFormatOf(t *testing.T) {
	tests := map[string]string{
		"application/spdx+json":                       FormatSPDXJSON,
		"text/spdx+json":                              FormatSPDXJSON,
		"application/vnd.cyclonedx+json":              FormatCycloneDXJSON,
		"application/vnd.cyclonedx+json; version=1.5": FormatCycloneDXJSON,
		"Application/VND.Syft+JSON":                   FormatSyftJSON,
		"application/vnd.cyclonedx+xml":               "",
		"application/vnd.oci.empty.v1+json":           "",
		"":                                            "",
	}
	for mt, want := range tests {
		if got := formatOf(mt); got != want {
			t.Errorf("formatOf(%q) = %q, want %q", mt, got, want)
		}
	}
}
