package sbom

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"io"
	"os"
	"path"
	"runtime/debug"
	"slices"
)

var elfMagic = []byte("\x7fELF")

// goBinary is a Go executable found in the image, with the modules its build info lists.
type goBinary struct {
	path    string // as in the archive
	modules []Package
}

// readGoBinary reads the Go build info of the executable of size bytes streamed in r, if it is one.
// debug/buildinfo needs random access (an io.ReaderAt), so an ELF file of at most maxBytes is spooled to a
// temporary file under os.TempDir, removed as soon as it is read: memory stays bounded whatever the binary's
// size. It returns (nil, nil) for a file that is not a Go executable, an error only when reading r failed (the
// image stream is broken); a temporary file that cannot be written is a note in rep.
func readGoBinary(r io.Reader, size, maxBytes int64, rep *report) (*debug.BuildInfo, error) {
	magic := make([]byte, len(elfMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, err
	}
	if !bytes.Equal(magic, elfMagic) {
		return nil, nil
	}
	if size > maxBytes {
		rep.reached("MaxBinaryBytes", maxBytes)
		return nil, nil
	}
	f, err := os.CreateTemp("", "sbom-gobin-*")
	if err != nil {
		rep.notef("Go binary not read: %v", err)
		return nil, nil
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	src := &readErrors{r: io.MultiReader(bytes.NewReader(magic), r)}
	if _, err := io.Copy(f, src); err != nil {
		if src.err != nil {
			return nil, src.err
		}
		rep.notef("Go binary not read: spool: %v", err)
		return nil, nil
	}
	info, err := buildinfo.Read(f)
	if err != nil {
		return nil, nil // not a Go executable (or its build info stripped)
	}
	return info, nil
}

// readErrors remembers the error its reader returned (other than io.EOF), to tell a broken stream from a
// failed write.
type readErrors struct {
	r   io.Reader
	err error
}

func (e *readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}

// goModules lists what a Go binary links: the standard library as "stdlib" at the toolchain's version (OSV's
// form, "1.22.3"), the main module when it has a version ("(devel)" is a local build, nothing to match), and
// each dependency — the replacement where go.mod replaced it, as that is the code linked in; a replacement by
// a local directory has no version and is left out.
func goModules(info *debug.BuildInfo) []Package {
	var pkgs []Package
	if v := goSemver(info.GoVersion); v != "" {
		pkgs = append(pkgs, goPackage(GoStdlib, v))
	}
	if m := info.Main; m.Path != "" && m.Version != "" && m.Version != "(devel)" {
		pkgs = append(pkgs, goPackage(m.Path, m.Version))
	}
	for _, dep := range info.Deps {
		m := dep
		if dep.Replace != nil {
			m = dep.Replace
		}
		if m.Path != "" && m.Version != "" {
			pkgs = append(pkgs, goPackage(m.Path, m.Version))
		}
	}
	return pkgs
}

// goPackage is a Go module as Package, with its purl: pkg:golang/github.com/foo/bar@v1.2.3 (the import path's
// last element is the name, the rest the namespace).
func goPackage(modPath, version string) Package {
	ns, name := path.Split(modPath)
	p := purl{Type: TypeGoModule, Namespace: path.Clean("/" + ns)[1:], Name: name, Version: version}
	return Package{Name: modPath, Version: version, Type: TypeGoModule, PURL: p.String()}
}

// goPackages makes the Packages of the Go binaries found: each module once a binary, Files and Locations the
// binary's real path (and its hardlinks' paths in Files); finishPackages then merges a module@version linked
// into several binaries.
func goPackages(bins []goBinary, hardlinks map[string]string, realFile func(string) (string, bool)) []Package {
	aliases := map[string][]string{}
	for link, target := range hardlinks {
		aliases[target] = append(aliases[target], link)
	}
	var pkgs []Package
	for _, b := range bins {
		real, ok := realFile(b.path)
		if !ok {
			continue
		}
		files := []string{real}
		for _, a := range aliases[b.path] {
			if r, ok := realFile(a); ok {
				files = append(files, r)
			}
		}
		for _, m := range b.modules {
			m.Files = slices.Clone(files) // finishPackages appends to it
			m.Locations = []string{real}
			pkgs = append(pkgs, m)
		}
	}
	return pkgs
}
