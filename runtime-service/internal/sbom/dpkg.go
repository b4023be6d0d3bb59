package sbom

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/textproto"
	"strings"
)

// Where dpkg keeps its database. Distroless images have no status file but one status file per package in
// status.d/, with <pkg>.md5sums beside it.
const (
	dpkgStatusPath = "/var/lib/dpkg/status"
	dpkgStatusDir  = "/var/lib/dpkg/status.d"
	dpkgInfoDir    = "/var/lib/dpkg/info"
)

// maxListLine bounds one line of a dpkg file list (PATH_MAX is 4096).
const maxListLine = 64 << 10

// dpkgRecord is an installed package from a dpkg status file.
type dpkgRecord struct {
	Name, Version, Arch       string
	SourceName, SourceVersion string // from "Source: name" or "Source: name (version)"
	Location                  string // the status file it was read from
}

// parseDpkgStatus reads the installed packages from a dpkg status file: deb822 paragraphs separated by blank
// lines. textproto.Reader.ReadMIMEHeader reads exactly that shape — "Key: value" lines up to a blank line, lines
// starting with a space or tab continuing the previous value (Description, Conffiles) — so one call reads one
// paragraph. It returns at most maxRecords records (truncated then), and with an error the records read before
// the malformed paragraph.
func parseDpkgStatus(r io.Reader, location string, maxRecords int) (recs []dpkgRecord, truncated bool, err error) {
	tp := textproto.NewReader(bufio.NewReader(r))
	for read := 0; ; { // paragraphs read
		h, err := tp.ReadMIMEHeader()
		if len(h) > 0 {
			read++
			if rec, ok := dpkgInstalled(h); ok {
				if len(recs) >= maxRecords {
					return recs, true, nil
				}
				rec.Location = location
				recs = append(recs, rec)
			}
		}
		if err == io.EOF {
			return recs, false, nil
		}
		if err != nil {
			if len(h) == 0 {
				read++ // the paragraph that failed had nothing read yet
			}
			return recs, false, fmt.Errorf("%s: paragraph %d: %w", location, read, err)
		}
	}
}

// dpkgInstalled makes a record of an installed package's paragraph. dpkg's Status is "want error state"; the
// state word says what is on disk, so "install ok installed" and "hold ok installed" count and "deinstall ok
// config-files" (removed, configuration left) does not. Distroless status.d paragraphs have no Status: they
// list installed packages only.
func dpkgInstalled(h textproto.MIMEHeader) (dpkgRecord, bool) {
	rec := dpkgRecord{Name: h.Get("Package"), Version: h.Get("Version"), Arch: h.Get("Architecture")}
	if rec.Name == "" || rec.Version == "" {
		return rec, false
	}
	if status, ok := h["Status"]; ok {
		if f := strings.Fields(strings.Join(status, " ")); len(f) != 3 || f[2] != "installed" {
			return rec, false
		}
	}
	rec.SourceName, rec.SourceVersion = parseDpkgSource(h.Get("Source"))
	return rec, true
}

// parseDpkgSource splits dpkg's Source field, "name" or "name (version)" (the version given only when it differs
// from the binary package's).
func parseDpkgSource(s string) (name, version string) {
	name, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "(") && strings.HasSuffix(rest, ")") {
		version = strings.TrimSpace(rest[1 : len(rest)-1])
	}
	return name, version
}

// parseDpkgFileList reads a package's file list: info/<pkg>.list (one absolute path a line, directories
// included) or <pkg>.md5sums ("<md5>  <path relative to />", regular files only). It returns at most max paths
// (truncated then), absolute and clean.
func parseDpkgFileList(r io.Reader, md5sums bool, max int) (paths []string, truncated bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxListLine)
	line := 0
	for sc.Scan() {
		line++
		p := sc.Text()
		if md5sums {
			_, p, _ = strings.Cut(p, " ")
			p = strings.TrimLeft(p, " ")
		}
		if strings.TrimSpace(p) == "" {
			continue
		}
		if len(paths) >= max {
			return paths, true, nil
		}
		paths = append(paths, absPath(p))
	}
	if err := sc.Err(); err != nil {
		return paths, false, fmt.Errorf("line %d: %w", line+1, err)
	}
	return paths, false, nil
}

// dpkgListKey is the package a file under info/ or status.d/ belongs to: "libc6:amd64" for
// info/libc6:amd64.list (Multi-Arch: same packages), "bash" for info/bash.list.
func dpkgListKey(base string) (key string, md5sums bool) {
	if k, ok := strings.CutSuffix(base, ".md5sums"); ok {
		return k, true
	}
	return strings.TrimSuffix(base, ".list"), false
}

// dpkgDB is what was read of dpkg's database from the image.
type dpkgDB struct {
	records []dpkgRecord
	lists   map[string][]string // from .list files, by dpkgListKey
	sums    map[string][]string // from .md5sums files, by dpkgListKey
}

// files returns the paths rec's package installed: its .list (named with the architecture for Multi-Arch:
// same packages), else its md5sums.
func (db *dpkgDB) files(rec dpkgRecord) []string {
	for _, key := range []string{rec.Name + ":" + rec.Arch, rec.Name} {
		if l, ok := db.lists[key]; ok {
			return l
		}
	}
	for _, key := range []string{rec.Name + ":" + rec.Arch, rec.Name} {
		if l, ok := db.sums[key]; ok {
			return l
		}
	}
	return nil
}

// packages makes the Packages of the installed records; realFiles keeps a list's regular files, as real paths.
func (db *dpkgDB) packages(distro Distro, realFiles func([]string) []string) []Package {
	pkgs := make([]Package, 0, len(db.records))
	for _, rec := range db.records {
		pkgs = append(pkgs, Package{
			Name:          rec.Name,
			Version:       rec.Version,
			Type:          TypeDeb,
			PURL:          osPURL(TypeDeb, rec.Name, rec.Version, rec.Arch, rec.SourceName, rec.SourceVersion, distro),
			SourceName:    rec.SourceName,
			SourceVersion: rec.SourceVersion,
			Files:         realFiles(db.files(rec)),
			Locations:     []string{rec.Location},
		})
	}
	return pkgs
}

// osPURL is the purl of a distribution package as Syft and Trivy write it:
// pkg:deb/debian/bash@5.2.15-2?arch=amd64&distro=debian-12&upstream=bash, upstream "name@version" when the
// source version differs.
func osPURL(typ, name, version, arch, srcName, srcVersion string, distro Distro) string {
	q := map[string]string{"arch": arch}
	if distro.ID != "" {
		q["distro"] = distro.ID
		if distro.VersionID != "" {
			q["distro"] += "-" + distro.VersionID
		}
	}
	if srcName != "" && srcName != name || srcVersion != "" && srcVersion != version {
		q["upstream"] = cmp.Or(srcName, name)
		if srcVersion != "" && srcVersion != version {
			q["upstream"] += "@" + srcVersion
		}
	}
	return purl{Type: typ, Namespace: distro.ID, Name: name, Version: version, Qualifiers: q}.String()
}
