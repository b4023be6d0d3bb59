package sbom

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// debianLayers are a Debian-style image's layers: a merged-/usr base with a dpkg database (debianStatus) and
// file lists, a layer adding a Go binary and a hardlink to it, and a layer deleting one of bash's files.
func debianLayers(t testing.TB) []v1.Layer {
	t.Helper()
	goBin, _ := testGoBinary(t)
	base := layerOf(t,
		dir("etc"), dir("usr"), dir("usr/bin"), dir("usr/lib"), dir("usr/lib/x86_64-linux-gnu"),
		dir("usr/share"), dir("usr/share/doc"), dir("usr/share/doc/bash"), dir("var"), dir("var/lib"),
		dir("var/lib/dpkg"), dir("var/lib/dpkg/info"),
		symlink("bin", "usr/bin"), symlink("lib", "usr/lib"), symlink("lib64", "usr/lib64"),
		regular("usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"),
		symlink("etc/os-release", "../usr/lib/os-release"),
		regular("etc/debian_version", "12.5\n"),
		executable("usr/bin/bash", "#!fake bash: not an ELF file\n"),
		symlink("usr/bin/rbash", "bash"),
		regular("etc/bash.bashrc", "# bashrc\n"),
		regular("usr/share/doc/bash/copyright", "GPL-3\n"),
		regular("usr/lib/x86_64-linux-gnu/libfoo.so.1.2", "\x7fELF not really a library"),
		symlink("usr/lib/x86_64-linux-gnu/libfoo.so.1", "libfoo.so.1.2"),
		regular("var/lib/dpkg/status", debianStatus),
		regular("var/lib/dpkg/info/base-files.list", "/.\n/etc\n/etc/debian_version\n/usr/lib/os-release\n/etc/os-release\n"),
		regular("var/lib/dpkg/info/bash.list", "/.\n/bin\n/bin/bash\n/bin/rbash\n/etc\n/etc/bash.bashrc\n/usr/share/doc/bash\n/usr/share/doc/bash/copyright\n"),
		regular("var/lib/dpkg/info/bash.md5sums", "0cc175b9c0f1b6a831c399e269772661  usr/bin/bash\n"),
		regular("var/lib/dpkg/info/libfoo1:amd64.list", "/usr/lib/x86_64-linux-gnu/libfoo.so.1.2\n/usr/lib/x86_64-linux-gnu/libfoo.so.1\n"),
		regular("var/lib/dpkg/info/oldpkg.list", "/etc/debian_version\n"),
	)
	app := layerOf(t,
		dir("usr/local"), dir("usr/local/bin"),
		file{path: "usr/local/bin/hello", body: string(goBin), mode: 0o755},
		hardlink("usr/local/bin/hello-again", "usr/local/bin/hello"),
	)
	cleanup := layerOf(t, whiteoutOf("usr/share/doc/bash/copyright"))
	return []v1.Layer{base, app, cleanup}
}

// wantDebian is the SBOM Generate should give of the debianLayers image (CreatedAt and Digest aside).
func wantDebian(t testing.TB) SBOM {
	_, withDep := testGoBinary(t)
	goFiles := []string{"/usr/local/bin/hello", "/usr/local/bin/hello-again"}
	goLoc := []string{"/usr/local/bin/hello"}
	pkgs := []Package{
		{Name: "base-files", Version: "12.4+deb12u5", Type: TypeDeb,
			PURL:  "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
			Files: []string{"/etc/debian_version", "/usr/lib/os-release"}, Locations: []string{dpkgStatusPath}},
		{Name: "bash", Version: "5.2.15-2+b2", Type: TypeDeb, SourceVersion: "5.2.15-2",
			PURL: "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2",
			// /bin/bash is /usr/bin/bash; /bin/rbash is a symlink; the copyright file was deleted.
			Files: []string{"/etc/bash.bashrc", "/usr/bin/bash"}, Locations: []string{dpkgStatusPath}},
		{Name: "libfoo1", Version: "1.2-3+b1", Type: TypeDeb, SourceName: "foo", SourceVersion: "1.2-3",
			PURL:  "pkg:deb/debian/libfoo1@1.2-3%2Bb1?arch=amd64&distro=debian-12&upstream=foo%401.2-3",
			Files: []string{"/usr/lib/x86_64-linux-gnu/libfoo.so.1.2"}, Locations: []string{dpkgStatusPath}},
		{Name: "tzdata", Version: "2024a-0+deb12u1", Type: TypeDeb,
			PURL:      "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
			Locations: []string{dpkgStatusPath}},
	}
	if withDep {
		pkgs = append(pkgs, Package{Name: "golang.org/x/sync", Version: "v0.22.0", Type: TypeGoModule,
			PURL: "pkg:golang/golang.org/x/sync@v0.22.0", Files: goFiles, Locations: goLoc})
	}
	pkgs = append(pkgs, Package{Name: GoStdlib, Version: goSemver(testGoVersion(t)), Type: TypeGoModule,
		PURL: "pkg:golang/stdlib@" + goSemver(testGoVersion(t)), Files: goFiles, Locations: goLoc})
	return SBOM{Source: SourceGenerated, Format: FormatLayers, Distro: debian12, Packages: pkgs}
}

func TestGenerateDebian(t *testing.T) {
	img := imageOf(t, linuxAMD64, debianLayers(t)...)
	var progress []int64
	lim := DefaultLimits()
	lim.Progress = func(n int64) { progress = append(progress, n) }
	got, err := Generate(context.Background(), img, lim)
	if err != nil {
		t.Fatal(err)
	}
	want := wantDebian(t)
	want.Digest = imageDigest(t, img)
	checkSBOM(t, got, want)
	if len(progress) == 0 || progress[len(progress)-1] <= 0 || !slices.IsSorted(progress) {
		t.Errorf("progress reports %v, want a rising count ending with the bytes read", progress)
	}
}

// checkSBOM compares got with want, CreatedAt aside (it must be recent).
func checkSBOM(t *testing.T, got *SBOM, want SBOM) {
	t.Helper()
	if time.Since(got.CreatedAt) > time.Minute {
		t.Errorf("CreatedAt = %v, want now", got.CreatedAt)
	}
	want.CreatedAt = got.CreatedAt
	if !reflect.DeepEqual(got.Packages, want.Packages) {
		t.Errorf("packages:\n got %+v\nwant %+v", got.Packages, want.Packages)
	}
	got.Packages, want.Packages = nil, nil
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("SBOM:\n got %+v\nwant %+v", *got, want)
	}
}

func TestGenerateAlpine(t *testing.T) {
	img := imageOf(t, linuxAMD64, layerOf(t,
		dir("etc"), dir("lib"), dir("bin"), dir("usr"), dir("usr/bin"), dir("usr/lib"), dir("lib/apk"), dir("lib/apk/db"),
		regular("usr/lib/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n"),
		symlink("etc/os-release", "../usr/lib/os-release"),
		regular("lib/ld-musl-x86_64.so.1", "\x7fELF musl"),
		symlink("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
		executable("bin/busybox", "\x7fELF busybox, not Go"),
		regular("etc/securetty", "console\n"),
		executable("usr/bin/ssl_client", "\x7fELF"),
		regular("lib/apk/db/installed", alpineInstalled),
	))
	got, err := Generate(context.Background(), img, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	alpine := Distro{ID: "alpine", VersionID: "3.19.1"}
	loc := []string{"/lib/apk/db/installed"}
	want := SBOM{Source: SourceGenerated, Format: FormatLayers, Distro: alpine, Digest: imageDigest(t, img),
		Packages: []Package{
			// udhcpd.conf and logrotate.d/acpid are listed but not in the image.
			{Name: "busybox", Version: "1.36.1-r15", Type: TypeAPK, PURL: "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1",
				Files: []string{"/bin/busybox", "/etc/securetty"}, Locations: loc},
			{Name: "musl", Version: "1.2.4_git20230717-r4", Type: TypeAPK,
				PURL:  "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1",
				Files: []string{"/lib/ld-musl-x86_64.so.1"}, Locations: loc},
			{Name: "ssl_client", Version: "1.36.1-r15", Type: TypeAPK, SourceName: "busybox",
				PURL:  "pkg:apk/alpine/ssl_client@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1&upstream=busybox",
				Files: []string{"/usr/bin/ssl_client"}, Locations: loc},
		}}
	checkSBOM(t, got, want)
}

// TestGenerateDistroless reads dpkg's distroless layout: a status file per package in status.d/ and the
// md5sums beside it.
func TestGenerateDistroless(t *testing.T) {
	img := imageOf(t, linuxAMD64, layerOf(t,
		dir("etc"), dir("usr"), dir("usr/lib"), dir("usr/lib/x86_64-linux-gnu"), dir("var/lib/dpkg/status.d"),
		regular("etc/os-release", "ID=debian\nVERSION_ID=\"11\"\n"),
		regular("usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6", "\x7fELF"),
		regular("var/lib/dpkg/status.d/libsqlite3-0", "Package: libsqlite3-0\nSource: sqlite3\nVersion: 3.34.1-3\n"+
			"Architecture: amd64\nMulti-Arch: same\nDescription: SQLite 3 shared library\n SQLite is a C library.\n"),
		regular("var/lib/dpkg/status.d/libsqlite3-0.md5sums", "d41d8cd98f00b204e9800998ecf8427e  usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6\n"+
			"0cc175b9c0f1b6a831c399e269772661  usr/share/doc/libsqlite3-0/copyright\n"),
	))
	got, err := Generate(context.Background(), img, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := SBOM{Source: SourceGenerated, Format: FormatLayers, Distro: Distro{ID: "debian", VersionID: "11"},
		Digest: imageDigest(t, img),
		Packages: []Package{{Name: "libsqlite3-0", Version: "3.34.1-3", Type: TypeDeb, SourceName: "sqlite3",
			PURL:      "pkg:deb/debian/libsqlite3-0@3.34.1-3?arch=amd64&distro=debian-11&upstream=sqlite3",
			Files:     []string{"/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6"},
			Locations: []string{"/var/lib/dpkg/status.d/libsqlite3-0"}}}}
	checkSBOM(t, got, want)
}

// TestGenerateLimits checks each bound cuts what it bounds and says so in a Note, without an error.
func TestGenerateLimits(t *testing.T) {
	img := imageOf(t, linuxAMD64, debianLayers(t)...)
	tests := []struct {
		name  string
		lim   Limits
		check func(t *testing.T, sb *SBOM)
	}{
		{"MaxPackages", Limits{MaxPackages: 2}, func(t *testing.T, sb *SBOM) {
			if len(sb.Packages) != 2 {
				t.Errorf("%d packages, want 2", len(sb.Packages))
			}
		}},
		{"MaxFilesPerPackage", Limits{MaxFilesPerPackage: 1}, func(t *testing.T, sb *SBOM) {
			for _, p := range sb.Packages {
				if p.Type == TypeDeb && len(p.Files) > 1 {
					t.Errorf("%s has %d files", p.Name, len(p.Files))
				}
			}
		}},
		{"MaxFiles", Limits{MaxFiles: 3}, func(t *testing.T, sb *SBOM) {
			n := 0
			for _, p := range sb.Packages {
				if p.Type == TypeDeb {
					n += len(p.Files)
				}
			}
			if n > 3 {
				t.Errorf("%d deb files, want at most 3", n)
			}
		}},
		{"MaxDBBytes", Limits{MaxDBBytes: int64(strings.Index(debianStatus, "Package: libfoo1"))}, func(t *testing.T, sb *SBOM) {
			for _, p := range sb.Packages {
				if p.Name == "libfoo1" || p.Name == "tzdata" {
					t.Errorf("%s read past MaxDBBytes", p.Name)
				}
			}
		}},
		{"MaxBinaryBytes", Limits{MaxBinaryBytes: 1024}, func(t *testing.T, sb *SBOM) {
			for _, p := range sb.Packages {
				if p.Type == TypeGoModule {
					t.Errorf("Go module %s read from a binary over MaxBinaryBytes", p.Name)
				}
			}
		}},
		{"MaxSymlinks", Limits{MaxSymlinks: 1}, func(t *testing.T, sb *SBOM) {
			// Layers come top first: the hardlink to the Go binary is the one link kept, /bin → usr/bin is
			// not, so /bin/bash no longer resolves to the regular file /usr/bin/bash.
			i := slices.IndexFunc(sb.Packages, func(p Package) bool { return p.Name == "bash" })
			if i < 0 || !reflect.DeepEqual(sb.Packages[i].Files, []string{"/etc/bash.bashrc"}) {
				t.Errorf("packages %+v: want bash with /etc/bash.bashrc alone", sb.Packages)
			}
		}},
		{"MaxPaths", Limits{MaxPaths: 5}, func(t *testing.T, sb *SBOM) {
			for _, p := range sb.Packages {
				if p.Type == TypeDeb && len(p.Files) > 0 {
					t.Errorf("%s has files %v though their paths were not kept", p.Name, p.Files)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, err := Generate(context.Background(), img, tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if !sb.Truncated || !slices.ContainsFunc(sb.Notes, func(n string) bool { return strings.Contains(n, tt.name+" (") }) {
				t.Errorf("Truncated %v, notes %q: want a note naming %s", sb.Truncated, sb.Notes, tt.name)
			}
			tt.check(t, sb)
		})
	}
	sb, err := Generate(context.Background(), img, Limits{})
	if err != nil || sb.Truncated || len(sb.Notes) != 0 {
		t.Errorf("default limits: truncated %v, notes %q, err %v", sb.Truncated, sb.Notes, err)
	}
}

func TestGenerateCanceled(t *testing.T) {
	img := imageOf(t, linuxAMD64, debianLayers(t)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, img, Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want %v", err, context.Canceled)
	}
}

// TestGenerateMalformedDB keeps what a damaged database holds before the damage, with a Note.
func TestGenerateMalformedDB(t *testing.T) {
	img := imageOf(t, linuxAMD64, layerOf(t,
		regular("var/lib/dpkg/status", "Package: a\nVersion: 1\nStatus: install ok installed\n\nPackage: b\nbroken line\n"),
		regular("lib/apk/db/installed", "P:x\nV:1\n\n?\n"),
	))
	sb, err := Generate(context.Background(), img, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range sb.Packages {
		keys = append(keys, p.Key())
	}
	if want := []string{"apk/x@1", "deb/a@1"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("packages %q, want %q", keys, want)
	}
	if len(sb.Notes) != 2 || !strings.Contains(sb.Notes[0], "paragraph 2") || !strings.Contains(sb.Notes[1], "line 4") {
		t.Errorf("notes %q, want the dpkg and apk damage named", sb.Notes)
	}
}
