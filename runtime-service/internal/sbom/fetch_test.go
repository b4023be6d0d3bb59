package sbom

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// TestFetcherGenerates: with nothing attached, Get generates the SBOM from the layers in the registry.
func TestFetcherGenerates(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithReferrers())
	d := push(t, reg, "debian:12", imageOf(t, linuxAMD64, debianLayers(t)...))
	got, err := New(Options{}).Get(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	want := wantDebian(t)
	want.Digest = d.DigestStr()
	checkSBOM(t, got, want)
}

// TestFetcherPrefersAttached: an attached SBOM is returned, not a generated one, on both kinds of registry.
func TestFetcherPrefersAttached(t *testing.T) {
	for _, r := range registries {
		t.Run(r.name, func(t *testing.T) {
			reg := registrytest.Start(t, r.opts...)
			d := push(t, reg, "debian:12", imageOf(t, linuxAMD64, debianLayers(t)...))
			attach(t, d, readTestdata(t, "spdx-2.3.json"), "application/spdx+json", false)
			got, err := New(Options{}).Get(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != r.wantSource || got.Format != FormatSPDXJSON || got.Digest != d.DigestStr() {
				t.Errorf("source %s, format %s, digest %s; want %s, %s, %s", got.Source, got.Format, got.Digest,
					r.wantSource, FormatSPDXJSON, d.DigestStr())
			}
			// The document's libc6 is not in the image; the image's libfoo1 is not in the document.
			if !hasPackage(got, "deb/libc6@2.36-9+deb12u4") || hasPackage(got, "deb/libfoo1@1.2-3+b1") {
				t.Errorf("packages %v are not the attached document's", keys(got))
			}
		})
	}
}

// TestFetcherUnreadableAttached: an attached document that does not decode is passed over with a Note, and
// the SBOM is generated.
func TestFetcherUnreadableAttached(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithReferrers())
	d := push(t, reg, "debian:12", imageOf(t, linuxAMD64, debianLayers(t)...))
	attach(t, d, []byte(`{"bomFormat":"CycloneDX","components":7}`), "application/vnd.cyclonedx+json", false)
	got, err := New(Options{}).Get(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != SourceGenerated || len(got.Notes) != 1 || !strings.Contains(got.Notes[0], "passed over") {
		t.Errorf("source %s, notes %q: want generated, with a note on the attached document", got.Source, got.Notes)
	}
}

// pushIndex pushes an index of the images, one a platform, as repo:tag.
func pushIndex(t *testing.T, reg *registrytest.Registry, repoTag string, imgs map[string]v1.Image) (name.Digest, map[string]name.Digest) {
	t.Helper()
	ref, err := name.ParseReference(reg.Ref(repoTag))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	digests := map[string]name.Digest{}
	for _, arch := range []string{"amd64", "arm64"} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: imgs[arch],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		digests[arch] = digestOf(t, ref.Context(), imgs[arch])
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return digestOf(t, ref.Context(), idx), digests
}

func TestFetcherIndex(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithReferrers())
	alpine := imageOf(t, v1.Platform{OS: "linux", Architecture: "arm64"}, layerOf(t,
		regular("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"), regular("lib/apk/db/installed", alpineInstalled)))
	idx, manifests := pushIndex(t, reg, "multi:1", map[string]v1.Image{
		"amd64": imageOf(t, linuxAMD64, debianLayers(t)...),
		"arm64": alpine,
	})
	tests := []struct {
		platform   v1.Platform
		wantDistro string
		wantArch   string
	}{
		{v1.Platform{}, "debian", "amd64"}, // the default, linux/amd64
		{v1.Platform{OS: "linux", Architecture: "arm64"}, "alpine", "arm64"},
	}
	for _, tt := range tests {
		t.Run(tt.wantArch, func(t *testing.T) {
			got, err := New(Options{Platform: tt.platform}).Get(context.Background(), idx)
			if err != nil {
				t.Fatal(err)
			}
			note := fmt.Sprintf("image index %s: read the linux/%s manifest %s", idx.DigestStr(), tt.wantArch, manifests[tt.wantArch].DigestStr())
			if got.Digest != idx.DigestStr() || got.Distro.ID != tt.wantDistro || !slices.Contains(got.Notes, note) {
				t.Errorf("digest %s, distro %s, notes %q; want %s, %s, a note %q", got.Digest, got.Distro.ID, got.Notes,
					idx.DigestStr(), tt.wantDistro, note)
			}
		})
	}
	_, err := New(Options{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}}).Get(context.Background(), idx)
	if err == nil || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") || !strings.Contains(err.Error(), idx.String()) {
		t.Errorf("no such platform: err = %v, want one naming the index and its platforms", err)
	}

	// An SBOM attached to the platform's manifest is found through the index; one attached to the index
	// itself comes first.
	attach(t, manifests["arm64"], readTestdata(t, "spdx-2.2.json"), "application/spdx+json", true)
	arm := New(Options{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}})
	if got, err := arm.Get(context.Background(), idx); err != nil || got.Source != SourceReferrer || got.Digest != idx.DigestStr() {
		t.Errorf("attached to the manifest: got %+v, %v", got, err)
	}
	attach(t, idx, readTestdata(t, "syft.json"), "application/vnd.syft+json", true)
	if got, err := arm.Get(context.Background(), idx); err != nil || got.Format != FormatSyftJSON {
		t.Errorf("attached to the index: got %+v, %v", got, err)
	}
}

func TestFetcherErrors(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("u", "p"))
	d, err := name.NewDigest(reg.Ref("app@sha256:" + strings.Repeat("ab", 32)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{}).Get(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), d.String()) || !strings.Contains(err.Error(), "fetch manifest") {
		t.Errorf("unauthorized: err = %v, want one naming the image and the manifest fetch", err)
	}
	// Options.Remote is asked for the repository's options.
	var asked []string
	f := New(Options{Remote: func(repo name.Repository) []remote.Option {
		asked = append(asked, repo.String())
		return nil
	}})
	_, _ = f.Get(context.Background(), d)
	if !slices.Equal(asked, []string{d.Context().String()}) {
		t.Errorf("Remote asked for %q, want %q", asked, d.Context().String())
	}
}

func hasPackage(sb *SBOM, key string) bool { return slices.Contains(keys(sb), key) }

func keys(sb *SBOM) []string {
	var k []string
	for _, p := range sb.Packages {
		k = append(k, p.Key())
	}
	return k
}
