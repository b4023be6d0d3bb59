package sbom

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Generate builds the SBOM of img from its layers: the distro from os-release, the packages of dpkg's and
// apk's databases with the files each installed, and the Go modules linked into each Go executable. It reads
// the merged filesystem (mutate.Extract: upper layers over lower ones, whiteouts applied) as one tar stream,
// once, never unpacking it: memory holds what it keeps of the package databases and one small record per path
// (plus what mutate.Extract keeps itself: the name of every path, to apply whiteouts). Package files are
// reported as real paths (symlinked directories resolved, /bin/bash as /usr/bin/bash on merged-/usr images)
// and only when they are regular files in the image.
//
// Reaching a bound of lim sets Truncated and a Note; it is not an error. Errors are those of reading the
// image. rpm databases are not read: see the package documentation.
func Generate(ctx context.Context, img v1.Image, lim Limits) (*SBOM, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("sbom: generate: image digest: %w", err)
	}
	s := newScan(lim.withDefaults())
	fs := mutate.Extract(img)
	defer fs.Close()
	if err := s.read(ctx, fs); err != nil {
		return nil, fmt.Errorf("sbom: generate %s: %w", digest, err)
	}
	sb := s.sbom()
	sb.Digest = digest.String()
	return sb, nil
}

// scan is the state of one Generate: what it keeps of the stream until all of it is read. It is needed whole
// before packages can be made, as layers come top first and a package's database, file lists and files come in
// any order.
type scan struct {
	lim       Limits
	rep       report
	paths     *pathIndex
	osRelease map[string]Distro // by the path read from
	dpkg      dpkgDB
	apk       map[string][]apkRecord // by the path read from
	gobins    []goBinary
	filesRead int // paths read from all file lists, against MaxFiles
}

func newScan(lim Limits) *scan {
	s := &scan{lim: lim, osRelease: map[string]Distro{}, apk: map[string][]apkRecord{}}
	s.paths = newPathIndex(lim, &s.rep)
	s.dpkg.lists, s.dpkg.sums = map[string][]string{}, map[string][]string{}
	return s
}

// read reads the merged filesystem's tar stream to its end.
func (s *scan) read(ctx context.Context, fs io.Reader) error {
	pr := &progressReader{r: fs, report: s.lim.Progress}
	tr := tar.NewReader(pr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			pr.done()
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layers: %w", err)
		}
		if err := s.entry(hdr, tr); err != nil {
			return fmt.Errorf("read layers: %s: %w", hdr.Name, err)
		}
	}
}

func (s *scan) entry(hdr *tar.Header, r io.Reader) error {
	p := absPath(hdr.Name)
	switch hdr.Typeflag {
	case tar.TypeDir:
		s.paths.add(p, kindDir)
	case tar.TypeSymlink:
		s.paths.addSymlink(p, hdr.Linkname)
	case tar.TypeLink:
		s.paths.addHardlink(p, absPath(hdr.Linkname)) // hardlink targets are archive paths
	case tar.TypeReg: // tar.Reader reports the old TypeRegA and GNU sparse files as TypeReg
		s.paths.add(p, kindRegular)
		return s.regular(p, hdr, r)
	default:
		s.paths.add(p, kindOther)
	}
	return nil
}

// regular reads the regular files that tell what is installed.
func (s *scan) regular(p string, hdr *tar.Header, r io.Reader) error {
	dir, base := path.Split(p)
	dir = path.Clean(dir)
	switch {
	case p == dpkgStatusPath:
		s.readDpkgStatus(p, hdr, r)
	case dir == dpkgStatusDir && !strings.HasSuffix(base, ".md5sums"): // distroless: a package's paragraph
		s.readDpkgStatus(p, hdr, r)
	case dir == dpkgStatusDir, // distroless: <pkg>.md5sums
		dir == dpkgInfoDir && (strings.HasSuffix(base, ".list") || strings.HasSuffix(base, ".md5sums")):
		s.readDpkgList(p, hdr, r)
	case slices.Contains(apkDBPaths, p):
		s.readAPK(p, hdr, r)
	case slices.Contains(osReleasePaths, p):
		s.osRelease[p] = parseOSRelease(r)
	case hdr.Mode&0o111 != 0 && hdr.Size >= int64(len(elfMagic)):
		return s.readGoBinary(p, hdr, r)
	}
	return nil
}

// db bounds a package-database file to MaxDBBytes, telling whether that cuts it.
func (s *scan) db(hdr *tar.Header, r io.Reader) (io.Reader, bool) {
	if hdr.Size <= s.lim.MaxDBBytes {
		return r, false
	}
	s.rep.reached("MaxDBBytes", s.lim.MaxDBBytes)
	return io.LimitReader(r, s.lim.MaxDBBytes), true
}

func (s *scan) readDpkgStatus(p string, hdr *tar.Header, r io.Reader) {
	rd, cut := s.db(hdr, r)
	recs, truncated, err := parseDpkgStatus(rd, p, s.lim.MaxPackages-len(s.dpkg.records))
	if cut && len(recs) > 0 {
		recs = recs[:len(recs)-1] // the last paragraph may be cut short
	}
	if truncated {
		s.rep.reached("MaxPackages", int64(s.lim.MaxPackages))
	}
	if err != nil {
		s.rep.notef("dpkg: %v (the packages before it are kept)", err)
	}
	s.dpkg.records = append(s.dpkg.records, recs...)
}

func (s *scan) readDpkgList(p string, hdr *tar.Header, r io.Reader) {
	key, md5sums := dpkgListKey(path.Base(p))
	budget := max(min(s.lim.MaxFilesPerPackage, s.lim.MaxFiles-s.filesRead), 0)
	rd, cut := s.db(hdr, r)
	paths, truncated, err := parseDpkgFileList(rd, md5sums, budget)
	if cut && len(paths) > 0 {
		paths = paths[:len(paths)-1] // the last line may be cut short
	}
	switch {
	case truncated && budget < s.lim.MaxFilesPerPackage:
		s.rep.reached("MaxFiles", int64(s.lim.MaxFiles))
	case truncated:
		s.rep.reached("MaxFilesPerPackage", int64(s.lim.MaxFilesPerPackage))
	}
	if err != nil {
		s.rep.notef("dpkg: %s: %v (the paths before it are kept)", p, err)
	}
	s.filesRead += len(paths)
	if md5sums {
		s.dpkg.sums[key] = paths
	} else {
		s.dpkg.lists[key] = paths
	}
}

func (s *scan) readAPK(p string, hdr *tar.Header, r io.Reader) {
	rd, cut := s.db(hdr, r)
	recs, truncated, err := parseAPKInstalled(rd, s.lim.MaxPackages, s.lim.MaxFilesPerPackage)
	if cut && len(recs) > 0 {
		recs = recs[:len(recs)-1] // the last record may be cut short
	}
	if truncated {
		s.rep.reached("MaxPackages", int64(s.lim.MaxPackages))
	}
	if err != nil {
		s.rep.notef("apk: %s: %v (the packages before it are kept)", p, err)
	}
	for i := range recs {
		if recs[i].FilesTruncated {
			s.rep.reached("MaxFilesPerPackage", int64(s.lim.MaxFilesPerPackage))
		}
		if left := max(s.lim.MaxFiles-s.filesRead, 0); len(recs[i].Files) > left {
			recs[i].Files = recs[i].Files[:left]
			s.rep.reached("MaxFiles", int64(s.lim.MaxFiles))
		}
		s.filesRead += len(recs[i].Files)
	}
	s.apk[p] = recs
}

func (s *scan) readGoBinary(p string, hdr *tar.Header, r io.Reader) error {
	info, err := readGoBinary(r, hdr.Size, s.lim.MaxBinaryBytes, &s.rep)
	if err != nil || info == nil {
		return err
	}
	if mods := goModules(info); len(mods) > 0 {
		s.gobins = append(s.gobins, goBinary{path: p, modules: mods})
	}
	return nil
}

// sbom makes the SBOM of what the scan read.
func (s *scan) sbom() *SBOM {
	distro, _ := lookupResolved(s.paths.symlinks, osReleasePaths, s.osRelease)
	res := newResolver(s.paths.symlinks)
	loops := 0
	realFile := func(p string) (string, bool) {
		real, err := res.file(p)
		if err != nil {
			loops++
			return "", false
		}
		return real, s.paths.kind(real) == kindRegular
	}
	realFiles := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			if real, ok := realFile(p); ok {
				out = append(out, real)
			}
		}
		return out
	}
	pkgs := s.dpkg.packages(distro, realFiles)
	if recs, at := lookupResolved(s.paths.symlinks, apkDBPaths, s.apk); at != "" {
		pkgs = append(pkgs, apkPackages(recs, at, distro, realFiles)...)
	}
	pkgs = append(pkgs, goPackages(s.gobins, s.paths.hardlinks, realFile)...)
	pkgs = finishPackages(pkgs)
	if len(pkgs) > s.lim.MaxPackages {
		pkgs = pkgs[:s.lim.MaxPackages]
		s.rep.reached("MaxPackages", int64(s.lim.MaxPackages))
	}
	if loops > 0 {
		s.rep.notef("%d package file paths left out: %v", loops, errSymlinkLoop)
	}
	sb := &SBOM{Source: SourceGenerated, Format: FormatLayers, Distro: distro, Packages: pkgs, CreatedAt: time.Now().UTC()}
	s.rep.finish(sb)
	return sb
}

// lookupResolved returns what was read at the first of the paths that, symlinks resolved, names a file read,
// and that file's path ("" for none): /etc/os-release is mostly a link to /usr/lib/os-release.
func lookupResolved[T any](links map[string]string, paths []string, read map[string]T) (T, string) {
	for _, p := range paths {
		real, err := resolvePath(links, p, true)
		if err != nil {
			continue
		}
		if v, ok := read[real]; ok {
			return v, real
		}
	}
	var zero T
	return zero, ""
}

// progressEvery is how often (in bytes read) Limits.Progress is called.
const progressEvery = 8 << 20

// progressReader counts the bytes read through it for Limits.Progress.
type progressReader struct {
	r       io.Reader
	n, last int64
	report  func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.report != nil && p.n-p.last >= progressEvery {
		p.last = p.n
		p.report(p.n)
	}
	return n, err
}

func (p *progressReader) done() {
	if p.report != nil {
		p.report(p.n)
	}
}
