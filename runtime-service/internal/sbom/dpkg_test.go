package sbom

import (
	"reflect"
	"strings"
	"testing"
)

// debianStatus is a dpkg status file in the real format: multi-line Description and Conffiles, a package held,
// one removed with its configuration left, a Multi-Arch: same library built from another source at another
// version, and a source named without a version.
const debianStatus = `Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u5
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Pre-Depends: awk
Breaks: debian-security-support (<< 2019.04.25), initscripts (<< 2.88dsf-13.3)
Conffiles:
 /etc/debian_version 2a6e36d2e5a8e7c8a5c53a6ebd10d8b4
 /etc/host.conf 4eb63731c9f5e30903ac4fc07a7fe3d6
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files, such as /etc/debian_version,
 .
 /etc/host.conf, /etc/issue, /etc/motd, /etc/profile, and others,
 and the text of several common licenses in use on Debian systems.

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7164
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2
Replaces: bash-completion (<< 20060301-0), bash-doc (<= 2.05-1)
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)
Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)
Conffiles:
 /etc/bash.bashrc 89269e1298235f1b12b4c16e4065ad0d
 /etc/skel/.bashrc 7f9d3e1c7bd5e4b4e3d4b4d5b8f2f62c
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter that executes
 commands read from the standard input or from a file.
Homepage: http://tiswww.case.edu/php/chet/bash/bashtop.html

Package: libfoo1
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 120
Maintainer: Foo Maintainers <foo@example.org>
Architecture: amd64
Multi-Arch: same
Source: foo (1.2-3)
Version: 1.2-3+b1
Depends: libc6 (>= 2.34)
Description: foo library

Package: oldpkg
Status: deinstall ok config-files
Priority: optional
Section: misc
Installed-Size: 12
Maintainer: Old <old@example.org>
Architecture: amd64
Version: 0.9-1
Conffiles:
 /etc/oldpkg.conf 0a1b2c3d4e5f60718293a4b5c6d7e8f9
Description: removed, its configuration left

Package: tzdata
Status: hold ok installed
Priority: required
Section: localization
Installed-Size: 2401
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Multi-Arch: foreign
Source: tzdata
Version: 2024a-0+deb12u1
Provides: tzdata-bookworm
Depends: debconf (>= 0.5) | debconf-2.0
Description: time zone and daylight-saving time data
`

func TestParseDpkgStatus(t *testing.T) {
	loc := dpkgStatusPath
	all := []dpkgRecord{
		{Name: "base-files", Version: "12.4+deb12u5", Arch: "amd64", Location: loc},
		{Name: "bash", Version: "5.2.15-2+b2", Arch: "amd64", SourceName: "bash", SourceVersion: "5.2.15-2", Location: loc},
		{Name: "libfoo1", Version: "1.2-3+b1", Arch: "amd64", SourceName: "foo", SourceVersion: "1.2-3", Location: loc},
		{Name: "tzdata", Version: "2024a-0+deb12u1", Arch: "all", SourceName: "tzdata", Location: loc},
	}
	tests := []struct {
		name          string
		in            string
		max           int
		want          []dpkgRecord
		wantTruncated bool
		wantErr       string
	}{
		{name: "debian", in: debianStatus, max: 100, want: all},
		{name: "max packages", in: debianStatus, max: 2, want: all[:2], wantTruncated: true},
		{name: "extra blank lines, no final newline", in: "\n\n" + "Package: a\nVersion: 1\nStatus: install ok installed\n\n\n\nPackage: b\nVersion: 2",
			max: 10, want: []dpkgRecord{{Name: "a", Version: "1", Location: loc}, {Name: "b", Version: "2", Location: loc}}},
		{name: "distroless: no Status", in: "Package: libsqlite3-0\nSource: sqlite3\nVersion: 3.34.1-3\nArchitecture: arm64\n",
			max: 10, want: []dpkgRecord{{Name: "libsqlite3-0", Version: "3.34.1-3", Arch: "arm64", SourceName: "sqlite3", Location: loc}}},
		{name: "half installed is not installed", in: "Package: a\nVersion: 1\nStatus: install reinstreq half-installed\n", max: 10},
		{name: "no version", in: "Package: a\nStatus: install ok installed\n", max: 10},
		{name: "empty", in: "", max: 10},
		{name: "malformed keeps what came before", in: "Package: a\nVersion: 1\n\nPackage: b\nno colon here\n", max: 10,
			want: []dpkgRecord{{Name: "a", Version: "1", Location: loc}}, wantErr: "paragraph 2"},
		{name: "continuation first", in: " indented: x\n", max: 10, wantErr: "paragraph 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated, err := parseDpkgStatus(strings.NewReader(tt.in), loc, tt.max)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("records:\n got %+v\nwant %+v", got, tt.want)
			}
			if truncated != tt.wantTruncated {
				t.Errorf("truncated = %v, want %v", truncated, tt.wantTruncated)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseDpkgSource(t *testing.T) {
	tests := []struct{ in, name, version string }{
		{"foo (1.2-3)", "foo", "1.2-3"},
		{"glibc (2.36-9+deb12u4)", "glibc", "2.36-9+deb12u4"},
		{"bash", "bash", ""},
		{"  perl  ( 5.36.0-7 ) ", "perl", "5.36.0-7"},
		{"", "", ""},
		{"foo (unclosed", "foo", ""},
	}
	for _, tt := range tests {
		if name, version := parseDpkgSource(tt.in); name != tt.name || version != tt.version {
			t.Errorf("parseDpkgSource(%q) = %q, %q; want %q, %q", tt.in, name, version, tt.name, tt.version)
		}
	}
}

func TestParseDpkgFileList(t *testing.T) {
	tests := []struct {
		name          string
		in            string
		md5sums       bool
		max           int
		want          []string
		wantTruncated bool
	}{
		{name: "list", in: "/.\n/bin\n/bin/bash\n/usr/share/doc/bash/copyright\n", max: 10,
			want: []string{"/", "/bin", "/bin/bash", "/usr/share/doc/bash/copyright"}},
		{name: "path with spaces", in: "/usr/share/a b.txt\n", max: 10, want: []string{"/usr/share/a b.txt"}},
		{name: "md5sums are relative", in: "d41d8cd98f00b204e9800998ecf8427e  usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6\n" +
			"0cc175b9c0f1b6a831c399e269772661  usr/share/doc/libsqlite3-0/copyright\n", md5sums: true, max: 10,
			want: []string{"/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6", "/usr/share/doc/libsqlite3-0/copyright"}},
		{name: "max", in: "/a\n/b\n/c\n", max: 2, want: []string{"/a", "/b"}, wantTruncated: true},
		{name: "blank lines", in: "\n/a\n\n", max: 10, want: []string{"/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated, err := parseDpkgFileList(strings.NewReader(tt.in), tt.md5sums, tt.max)
			if err != nil || truncated != tt.wantTruncated || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, %v, %v; want %q, %v", got, truncated, err, tt.want, tt.wantTruncated)
			}
		})
	}
	long := "/" + strings.Repeat("x", maxListLine+1) + "\n"
	if _, _, err := parseDpkgFileList(strings.NewReader("/a\n"+long), false, 10); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a line over the bound: err = %v, want one naming line 2", err)
	}
}

func TestDpkgListKey(t *testing.T) {
	tests := []struct {
		base, key string
		md5sums   bool
	}{
		{"bash.list", "bash", false},
		{"libc6:amd64.list", "libc6:amd64", false},
		{"libc6:amd64.md5sums", "libc6:amd64", true},
		{"libsqlite3-0", "libsqlite3-0", false}, // status.d holds a package's paragraph under its name
	}
	for _, tt := range tests {
		if key, md5sums := dpkgListKey(tt.base); key != tt.key || md5sums != tt.md5sums {
			t.Errorf("dpkgListKey(%q) = %q, %v", tt.base, key, md5sums)
		}
	}
}

func TestOSPURL(t *testing.T) {
	debian := Distro{ID: "debian", VersionID: "12"}
	tests := []struct {
		typ, name, version, arch, srcName, srcVersion string
		distro                                        Distro
		want                                          string
	}{
		{TypeDeb, "bash", "5.2.15-2+b2", "amd64", "", "5.2.15-2", debian,
			"pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2"},
		{TypeDeb, "libfoo1", "1.2-3", "amd64", "foo", "", debian,
			"pkg:deb/debian/libfoo1@1.2-3?arch=amd64&distro=debian-12&upstream=foo"},
		{TypeDeb, "perl", "1:5.36.0-7", "amd64", "", "", Distro{ID: "debian"},
			"pkg:deb/debian/perl@1:5.36.0-7?arch=amd64&distro=debian"},
		{TypeAPK, "ssl_client", "1.36.1-r15", "x86_64", "busybox", "", Distro{ID: "alpine", VersionID: "3.19.1"},
			"pkg:apk/alpine/ssl_client@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1&upstream=busybox"},
		{TypeDeb, "bash", "5.2", "", "bash", "5.2", Distro{}, "pkg:deb/bash@5.2"},
	}
	for _, tt := range tests {
		if got := osPURL(tt.typ, tt.name, tt.version, tt.arch, tt.srcName, tt.srcVersion, tt.distro); got != tt.want {
			t.Errorf("osPURL(%s) =\n %s\nwant\n %s", tt.name, got, tt.want)
		}
	}
}

// FuzzDpkgStatus: the status parser never panics, keeps its bound, and returns only installed packages with a
// name and version.
func FuzzDpkgStatus(f *testing.F) {
	f.Add(debianStatus, 3)
	f.Add("Package: a\nVersion: 1\n", 1)
	f.Add("Package: a\n b\n\n\nStatus: x y installed\nVersion: 1", 5)
	f.Add(" x: y\n", 2)
	f.Add("Package:\nVersion:\n\n", 1)
	f.Fuzz(func(t *testing.T, in string, max int) {
		max = max%64 + 64 // a bound in [1, 127], whatever the fuzzer's sign
		recs, _, _ := parseDpkgStatus(strings.NewReader(in), dpkgStatusPath, max)
		if len(recs) > max {
			t.Fatalf("%d records, bound %d", len(recs), max)
		}
		for _, r := range recs {
			if r.Name == "" || r.Version == "" || r.Location != dpkgStatusPath {
				t.Fatalf("record %+v", r)
			}
		}
	})
}
