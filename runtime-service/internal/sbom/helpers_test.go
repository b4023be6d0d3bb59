package sbom

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// file is one entry of a test layer: a regular file (body), a directory (dir), a symlink (link) or a hardlink
// (hard). mode 0 is 0644 for files, 0755 for directories.
type file struct {
	path string
	body string
	mode int64
	dir  bool
	link string
	hard string
}

func dir(p string) file              { return file{path: p, dir: true} }
func symlink(p, target string) file  { return file{path: p, link: target} }
func hardlink(p, target string) file { return file{path: p, hard: target} }
func regular(p, body string) file    { return file{path: p, body: body} }
func executable(p, body string) file { return file{path: p, body: body, mode: 0o755} }

// whiteoutOf is the whiteout entry that deletes p from the layers below.
func whiteoutOf(p string) file { return file{path: path.Join(path.Dir(p), ".wh."+path.Base(p))} }

func (f file) header() *tar.Header {
	h := &tar.Header{Name: f.path, Mode: f.mode, Typeflag: tar.TypeReg, Size: int64(len(f.body)), Format: tar.FormatPAX}
	switch {
	case f.dir:
		h.Typeflag, h.Size = tar.TypeDir, 0
		if h.Mode == 0 {
			h.Mode = 0o755
		}
	case f.link != "":
		h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, f.link, 0, 0o777
	case f.hard != "":
		h.Typeflag, h.Linkname, h.Size = tar.TypeLink, f.hard, 0
	}
	if h.Mode == 0 {
		h.Mode = 0o644
	}
	return h
}

// tarOf writes files as a tar archive.
func tarOf(t testing.TB, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(f.header()); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf is a gzip layer holding files.
func layerOf(t testing.TB, files ...file) v1.Layer {
	t.Helper()
	b := tarOf(t, files...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf is an OCI image of the layers (the first one lowest) for platform os/arch.
func imageOf(t testing.TB, platform v1.Platform, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = platform.OS, platform.Architecture
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// push writes img to the registry as repo:tag and returns its digest reference.
func push(t testing.TB, reg *registrytest.Registry, repoTag string, img v1.Image) name.Digest {
	t.Helper()
	ref, err := name.ParseReference(reg.Ref(repoTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return digestOf(t, ref.Context(), img)
}

func digestOf(t testing.TB, repo name.Repository, m interface{ Digest() (v1.Hash, error) }) name.Digest {
	t.Helper()
	h, err := m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return repo.Digest(h.String())
}

// rawManifest is a manifest pushed as written.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// attach pushes doc as an OCI 1.1 artifact referring to subject. With inManifest the SBOM media type is the
// manifest's artifactType and the config the empty descriptor (as oras attach writes it); else it is the
// config's media type (as older tools write it). It returns the artifact's digest.
func attach(t testing.TB, subject name.Digest, doc []byte, mediaType string, inManifest bool) v1.Hash {
	t.Helper()
	repo := subject.Context()
	subj, err := remote.Head(subject)
	if err != nil {
		t.Fatal(err)
	}
	cfgType := types.MediaType(mediaType)
	cfgBody := []byte("{}")
	if inManifest {
		cfgType = "application/vnd.oci.empty.v1+json"
	}
	config := static.NewLayer(cfgBody, cfgType)
	layer := static.NewLayer(doc, types.MediaType(mediaType))
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatal(err)
		}
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        descriptorOf(t, config),
		Layers:        []v1.Descriptor{descriptorOf(t, layer)},
		Subject:       &v1.Descriptor{MediaType: subj.MediaType, Digest: subj.Digest, Size: subj.Size},
		Annotations:   map[string]string{"org.opencontainers.image.created": "2026-01-02T03:04:05Z"},
	}
	if inManifest {
		m.ArtifactType = mediaType
	}
	raw, err := json.Marshal(m)
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
	return h
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

// imageDigest is img's manifest digest, "sha256:<hex>".
func imageDigest(t testing.TB, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// goBinaryOnce builds a small Go program once per test binary.
var goBinaryOnce struct {
	sync.Once
	bin       []byte
	withDep   bool
	goVersion string // of the toolchain that built it, "go1.26.8"
	err       error
}

// testGoVersion is the Go version testGoBinary's program was built with, as `go env GOVERSION` says.
func testGoVersion(t testing.TB) string {
	testGoBinary(t)
	return goBinaryOnce.goVersion
}

// testGoBinary returns a Go executable built from a temporary module, linking golang.org/x/sync from the local
// module cache when it is there (offline: GOPROXY=off), else the standard library alone; withDep tells which.
func testGoBinary(t testing.TB) (bin []byte, withDep bool) {
	t.Helper()
	goBinaryOnce.Do(func() {
		goBinaryOnce.bin, goBinaryOnce.withDep, goBinaryOnce.goVersion, goBinaryOnce.err = buildGoBinary()
	})
	if goBinaryOnce.err != nil {
		t.Fatalf("build a Go binary: %v", goBinaryOnce.err)
	}
	return goBinaryOnce.bin, goBinaryOnce.withDep
}

const helloWithDep = `package main

import (
	"fmt"

	"golang.org/x/sync/errgroup"
)

func main() {
	var g errgroup.Group
	g.Go(func() error { fmt.Println("hello"); return nil })
	_ = g.Wait()
}
`

const helloStdlib = `package main

import "fmt"

func main() { fmt.Println("hello") }
`

func buildGoBinary() (bin []byte, withDep bool, goVersion string, err error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, false, "", err
	}
	out, err := exec.Command(goTool, "env", "GOVERSION").Output()
	if err != nil {
		return nil, false, "", err
	}
	goVersion = strings.TrimSpace(string(out))
	if bin, err = goBuild(goTool, helloWithDep, "require golang.org/x/sync v0.22.0\n"); err == nil {
		return bin, true, goVersion, nil
	}
	bin, err = goBuild(goTool, helloStdlib, "")
	return bin, false, goVersion, err
}

func goBuild(goTool, mainGo, require string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "sbom-hello-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	gomod := "module example.com/hello\n\ngo 1.22\n\n" + require
	for name, body := range map[string]string{"go.mod": gomod, "main.go": mainGo} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, "hello")
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off",
		"GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOOS=linux")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, &buildError{strings.TrimSpace(string(msg)), err}
	}
	return os.ReadFile(out)
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }
