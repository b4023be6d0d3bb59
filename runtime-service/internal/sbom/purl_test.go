package sbom

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePURL(t *testing.T) {
	tests := []struct {
		in      string
		want    purl
		wantErr string
	}{
		{in: "pkg:deb/debian/bash@5.2.15-2?arch=amd64&distro=debian-12&upstream=bash",
			want: purl{Type: "deb", Namespace: "debian", Name: "bash", Version: "5.2.15-2",
				Qualifiers: map[string]string{"arch": "amd64", "distro": "debian-12", "upstream": "bash"}}},
		{in: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?upstream=glibc%402.36-9",
			want: purl{Type: "deb", Namespace: "debian", Name: "libc6", Version: "2.36-9+deb12u4",
				Qualifiers: map[string]string{"upstream": "glibc@2.36-9"}}},
		{in: "pkg:golang/github.com/gorilla/mux@v1.8.1",
			want: purl{Type: "golang", Namespace: "github.com/gorilla", Name: "mux", Version: "v1.8.1"}},
		{in: "pkg:golang/stdlib@1.22.3", want: purl{Type: "golang", Name: "stdlib", Version: "1.22.3"}},
		{in: "PKG:APK/alpine/musl@1.2.4-r2?Arch=x86_64#sub/path",
			want: purl{Type: "apk", Namespace: "alpine", Name: "musl", Version: "1.2.4-r2",
				Qualifiers: map[string]string{"arch": "x86_64"}, Subpath: "sub/path"}},
		{in: "pkg://npm//%40angular/core@17.0.0", want: purl{Type: "npm", Namespace: "@angular", Name: "core", Version: "17.0.0"}},
		{in: "pkg:rpm/fedora/curl?arch=&epoch=1", want: purl{Type: "rpm", Namespace: "fedora", Name: "curl",
			Qualifiers: map[string]string{"epoch": "1"}}},
		{in: "deb/debian/bash@1", wantErr: `no "pkg" scheme`},
		{in: "pkg:deb", wantErr: "no type/name"},
		{in: "pkg:deb/", wantErr: "no name"},
		{in: "pkg:deb/debian/bash@%zz", wantErr: "version"},
		{in: "pkg:deb/deb%zzian/bash", wantErr: "segment"},
		{in: "pkg:deb/debian/bash?arch=%zz", wantErr: "qualifier"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestPURLStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		"pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2",
		"pkg:golang/github.com/foo/bar@v1.2.3%2Bincompatible",
		"pkg:golang/stdlib@1.22.3",
		"pkg:deb/debian/perl@1:5.36.0-7",
	} {
		p, err := parsePURL(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.String(); got != s {
			t.Errorf("round trip of %s gave %s", s, got)
		}
	}
}

func TestDistroFromQualifier(t *testing.T) {
	tests := []struct {
		in   string
		want Distro
	}{
		{"pkg:deb/debian/bash@1?distro=debian-12", Distro{ID: "debian", VersionID: "12"}},
		{"pkg:deb/ubuntu/bash@1?distro=ubuntu-22.04", Distro{ID: "ubuntu", VersionID: "22.04"}},
		{"pkg:rpm/opensuse/bash@1?distro=opensuse-leap-15.5", Distro{ID: "opensuse-leap", VersionID: "15.5"}},
		{"pkg:apk/alpine/musl@1?distro=3.19.1", Distro{ID: "alpine", VersionID: "3.19.1"}}, // Trivy's form
		{"pkg:deb/debian/bash@1?distro=debian", Distro{ID: "debian"}},
		{"pkg:deb/debian/bash@1", Distro{}},
	}
	for _, tt := range tests {
		p, err := parsePURL(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := distroFromQualifier(p); got != tt.want {
			t.Errorf("distroFromQualifier(%s) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestSourceFromQualifier(t *testing.T) {
	tests := []struct{ in, name, version string }{
		{"pkg:deb/debian/libc6@2.36-9?upstream=glibc", "glibc", ""},
		{"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?upstream=glibc%402.36-9", "glibc", "2.36-9"},
		{"pkg:rpm/centos/acl@2.2.53-1.el8?upstream=acl-2.2.53-1.el8.src.rpm", "acl", "2.2.53-1.el8"},
		{"pkg:rpm/redhat/python3-libs@3.9.18-1.el9?upstream=python3.9-3.9.18-1.el9.src.rpm", "python3.9", "3.9.18-1.el9"},
		{"pkg:apk/alpine/ssl_client@1.36.1-r15", "", ""},
	}
	for _, tt := range tests {
		p, err := parsePURL(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if name, version := sourceFromQualifier(p); name != tt.name || version != tt.version {
			t.Errorf("sourceFromQualifier(%s) = %q, %q; want %q, %q", tt.in, name, version, tt.name, tt.version)
		}
	}
}

func TestGoSemver(t *testing.T) {
	tests := []struct{ in, want string }{
		{"go1.22.3", "1.22.3"},
		{"go1.22.3 X:boringcrypto", "1.22.3"},
		{"v1.22.3", "1.22.3"},
		{"1.22.3", "1.22.3"},
		{"go1.20", "1.20.0"},
		{"go1.21rc2", "1.21.0-rc.2"},
		{"go1.18beta1", "1.18.0-beta.1"},
		{"devel go1.24-abcdef", ""},
		{"go1", ""},
		{"go1.x.3", ""},
		{"go1.21rcx", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := goSemver(tt.in); got != tt.want {
			t.Errorf("goSemver(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		in   string
		want Distro
	}{
		{"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
			Distro{ID: "debian", VersionID: "12"}},
		{"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n", Distro{ID: "alpine", VersionID: "3.19.1"}},
		{"ID='ubuntu'\nVERSION_ID='22.04'\n", Distro{ID: "ubuntu", VersionID: "22.04"}},
		{"# comment\nID=\"we\\\"ird\"\n", Distro{ID: `we"ird`}},
		{"PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nID=debian\n", Distro{ID: "debian"}}, // testing has no VERSION_ID
		{"garbage\n=\n", Distro{}},
	}
	for _, tt := range tests {
		if got := parseOSRelease(strings.NewReader(tt.in)); got != tt.want {
			t.Errorf("parseOSRelease(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
