// Package sbomtest builds container images with real package databases for tests: a Debian-style dpkg status
// with each package's file list, an Alpine-style apk installed database, an os-release, and the files
// themselves (given, or copied from this machine so a container can run them), in one layer.
package sbomtest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of the image: a regular file (Content, or HostPath copied from this machine), or a symlink
// (Link).
type File struct {
	Path     string // absolute, in the image
	Content  []byte
	HostPath string
	Link     string
	Mode     int64 // 0: 0755
}

// Package is an installed package and the paths of the files it owns (which should be among Spec.Files).
type Package struct {
	Name, Version  string
	Source         string // dpkg Source / apk origin; "" for none
	Files          []string
	NotInstalled   bool // dpkg: listed with "deinstall ok config-files", so not installed
	Architecture   string
	SourceVersion  string
	DescriptionTag string // appended to the description, to vary the database's bytes
}

// Spec describes an image.
type Spec struct {
	// OSRelease is the /etc/os-release ID and VERSION_ID ("debian", "12"); empty: none.
	OSID, OSVersion string
	Files           []File
	Deb             []Package // written as /var/lib/dpkg/status and /var/lib/dpkg/info/<name>.list
	APK             []Package // written as /lib/apk/db/installed
	Cmd             []string
}

// Image builds the image of spec for linux/amd64.
func Image(t testing.TB, spec Spec) v1.Image {
	t.Helper()
	layerTar, err := Layer(spec)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = spec.Cmd
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// Push writes img to the plain-HTTP registry at host as repoTag and returns the reference and digest.
func Push(t testing.TB, host, repoTag string, img v1.Image) (ref, digest string) {
	t.Helper()
	r, err := name.ParseReference(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.String(), d.String()
}

// Layer writes spec as one uncompressed layer tar.
func Layer(spec Spec) ([]byte, error) {
	files := append([]File(nil), spec.Files...)
	if spec.OSID != "" {
		files = append(files, File{Path: "/etc/os-release", Mode: 0o644,
			Content: fmt.Appendf(nil, "ID=%s\nVERSION_ID=%q\nPRETTY_NAME=\"%s %s (test)\"\n", spec.OSID, spec.OSVersion, spec.OSID, spec.OSVersion)})
	}
	if len(spec.Deb) > 0 {
		files = append(files, File{Path: "/var/lib/dpkg/status", Mode: 0o644, Content: dpkgStatus(spec.Deb)})
		for _, p := range spec.Deb {
			files = append(files, File{Path: "/var/lib/dpkg/info/" + p.Name + ".list", Mode: 0o644, Content: dpkgList(p.Files)})
		}
	}
	if len(spec.APK) > 0 {
		files = append(files, File{Path: "/lib/apk/db/installed", Mode: 0o644, Content: apkInstalled(spec.APK)})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, d := range []string{"/tmp", "/proc", "/dev", "/sys"} {
		if err := addDir(tw, dirs, d); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		if err := addFile(tw, dirs, f); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addDir(tw *tar.Writer, dirs map[string]bool, dir string) error {
	if dir == "/" || dir == "." || dirs[dir] {
		return nil
	}
	if err := addDir(tw, dirs, path.Dir(dir)); err != nil {
		return err
	}
	dirs[dir] = true
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(dir, "/") + "/", Mode: 0o755})
}

func addFile(tw *tar.Writer, dirs map[string]bool, f File) error {
	if err := addDir(tw, dirs, path.Dir(f.Path)); err != nil {
		return err
	}
	name := strings.TrimPrefix(f.Path, "/")
	if f.Link != "" {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: f.Link, Mode: 0o777})
	}
	content := f.Content
	if f.HostPath != "" {
		b, err := os.ReadFile(f.HostPath)
		if err != nil {
			return fmt.Errorf("sbomtest: %s needs %s from this machine: %w", f.Path, f.HostPath, err)
		}
		content = b
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content))}); err != nil {
		return err
	}
	_, err := tw.Write(content)
	return err
}

func dpkgStatus(pkgs []Package) []byte {
	var b strings.Builder
	for _, p := range pkgs {
		status := "install ok installed"
		if p.NotInstalled {
			status = "deinstall ok config-files"
		}
		arch := p.Architecture
		if arch == "" {
			arch = "amd64"
		}
		fmt.Fprintf(&b, "Package: %s\nStatus: %s\nPriority: optional\nArchitecture: %s\n", p.Name, status, arch)
		if p.Source != "" {
			if p.SourceVersion != "" {
				fmt.Fprintf(&b, "Source: %s (%s)\n", p.Source, p.SourceVersion)
			} else {
				fmt.Fprintf(&b, "Source: %s\n", p.Source)
			}
		}
		fmt.Fprintf(&b, "Version: %s\nDescription: %s for tests%s\n a longer description,\n .\n on continuation lines\n\n", p.Version, p.Name, p.DescriptionTag)
	}
	return []byte(b.String())
}

// dpkgList is an info/<pkg>.list: every directory on the way, then the files, as dpkg writes it.
func dpkgList(files []string) []byte {
	seen := map[string]bool{"/.": true}
	var lines []string
	for _, f := range files {
		var dirs []string
		for d := path.Dir(f); d != "/"; d = path.Dir(d) {
			dirs = append([]string{d}, dirs...)
		}
		for _, d := range dirs {
			if !seen[d] {
				seen[d] = true
				lines = append(lines, d)
			}
		}
		lines = append(lines, f)
	}
	return []byte("/.\n" + strings.Join(lines, "\n") + "\n")
}

func apkInstalled(pkgs []Package) []byte {
	var b strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&b, "C:Q1test=\nP:%s\nV:%s\nA:x86_64\nS:1000\nI:2000\nT:%s for tests\nL:MIT\n", p.Name, p.Version, p.Name)
		if p.Source != "" {
			fmt.Fprintf(&b, "o:%s\n", p.Source)
		}
		byDir := map[string][]string{}
		var order []string
		for _, f := range p.Files {
			d := strings.TrimPrefix(path.Dir(f), "/")
			if _, ok := byDir[d]; !ok {
				order = append(order, d)
			}
			byDir[d] = append(byDir[d], path.Base(f))
		}
		for _, d := range order {
			fmt.Fprintf(&b, "F:%s\n", d)
			for _, f := range byDir[d] {
				fmt.Fprintf(&b, "R:%s\nZ:Q1abc=\n", f)
			}
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// ShellSpec is an image of this machine's /bin/sh and /bin/sleep with the C library they link (dash and sleep
// link nothing else), running `sleep 600`; shSHA256 is the SHA-256 of the /bin/sh in it.
func ShellSpec(t testing.TB) (spec Spec, shSHA256 string) {
	t.Helper()
	spec.Cmd = []string{"/bin/sleep", "600"}
	for _, p := range []string{"/bin/sh", "/bin/sleep", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"} {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatalf("the shell image needs %s from this machine: %v", p, err)
		}
		if p == "/bin/sh" {
			b, err := os.ReadFile(real)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			shSHA256 = hex.EncodeToString(sum[:])
		}
		spec.Files = append(spec.Files, File{Path: p, HostPath: real})
	}
	return spec, shSHA256
}
