package sbom

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	bashPURL   = "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12"
	stdlibPURL = "pkg:golang/stdlib@1.22.3"
)

var debian12 = Distro{ID: "debian", VersionID: "12"}

// decodeTests are the testdata documents and the SBOM each decodes to (CreatedAt zero: "now").
var decodeTests = []struct {
	file, format string
	want         SBOM // CreatedAt zero: "now"
}{
	{file: "spdx-2.3.json", format: FormatSPDXJSON, want: SBOM{
		Distro:    debian12,
		CreatedAt: time.Date(2024, 5, 14, 9, 30, 0, 0, time.UTC),
		Packages: []Package{
			{Name: "bash", Version: "5.2.15-2+b2", Type: TypeDeb, SourceVersion: "5.2.15-2",
				PURL:  "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&upstream=bash%405.2.15-2&distro=debian-12",
				Files: []string{"/etc/bash.bashrc", "/usr/bin/bash"}, Locations: []string{"/var/lib/dpkg/status"}},
			{Name: "libc6", Version: "2.36-9+deb12u4", Type: TypeDeb, SourceName: "glibc",
				PURL:  "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&upstream=glibc&distro=debian-12",
				Files: []string{"/usr/lib/x86_64-linux-gnu/libc.so.6"}},
			{Name: GoStdlib, Version: "1.22.3", Type: TypeGoModule, PURL: stdlibPURL,
				Files: []string{"/usr/local/bin/app"}, Locations: []string{"/usr/local/bin/app"}},
		},
		Notes: []string{"1 document entries without a package URL were left out"},
	}},
	{file: "spdx-2.2.json", format: FormatSPDXJSON, want: SBOM{
		Distro:    Distro{ID: "alpine", VersionID: "3.19.1"},
		CreatedAt: time.Date(2023, 4, 1, 12, 0, 0, 0, time.UTC),
		Packages: []Package{
			{Name: "busybox", Version: "1.36.1-r15", Type: TypeAPK,
				PURL:  "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=3.19.1",
				Files: []string{"/bin/busybox"}},
			{Name: "ssl_client", Version: "1.36.1-r15", Type: TypeAPK, SourceName: "busybox",
				PURL: "pkg:apk/alpine/ssl_client@1.36.1-r15?arch=x86_64&distro=3.19.1&upstream=busybox"},
		},
	}},
	{file: "cyclonedx-1.5.json", format: FormatCycloneDXJSON, want: SBOM{
		Distro:    debian12,
		CreatedAt: time.Date(2024, 5, 14, 9, 31, 0, 0, time.UTC),
		Packages: []Package{
			{Name: "bash", Version: "5.2.15-2+b2", Type: TypeDeb, PURL: bashPURL, SourceVersion: "5.2.15-2",
				Files: []string{"/etc/bash.bashrc", "/usr/bin/bash"}, Locations: []string{"/var/lib/dpkg/status"}},
			{Name: "libssl3", Version: "3.0.11-1~deb12u2", Type: TypeDeb, SourceName: "openssl",
				PURL: "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"},
			{Name: "github.com/gorilla/mux", Version: "v1.8.1", Type: TypeGoModule, PURL: "pkg:golang/github.com/gorilla/mux@v1.8.1",
				Files: []string{"/usr/local/bin/app"}, Locations: []string{"/usr/local/bin/app"}},
			{Name: GoStdlib, Version: "1.22.3", Type: TypeGoModule, PURL: "pkg:golang/stdlib@v1.22.3",
				Files: []string{"/usr/local/bin/app"}, Locations: []string{"/usr/local/bin/app"}},
		},
		Notes: []string{"1 document entries without a package URL were left out"},
	}},
	{file: "syft.json", format: FormatSyftJSON, want: SBOM{
		Distro: debian12,
		Packages: []Package{
			{Name: "ssl_client", Version: "1.36.1-r15", Type: TypeAPK, SourceName: "busybox",
				Files: []string{"/usr/bin", "/usr/bin/ssl_client"}, Locations: []string{"/lib/apk/db/installed"}},
			{Name: "bash", Version: "5.2.15-2+b2", Type: TypeDeb, PURL: bashPURL, SourceVersion: "5.2.15-2",
				Files: []string{"/bin/bash", "/etc/bash.bashrc"}, Locations: []string{"/var/lib/dpkg/status"}},
			{Name: "golang.org/x/net", Version: "v0.23.0", Type: TypeGoModule, PURL: "pkg:golang/golang.org/x/net@v0.23.0",
				Files:     []string{"/usr/local/bin/app", "/usr/local/bin/other"},
				Locations: []string{"/usr/local/bin/app", "/usr/local/bin/other"}},
			{Name: GoStdlib, Version: "1.22.3", Type: TypeGoModule, PURL: stdlibPURL,
				Files: []string{"/usr/local/bin/app"}, Locations: []string{"/usr/local/bin/app"}},
			{Name: "some-python-thing", Version: "1.0", Type: "pypi", PURL: "pkg:pypi/some-python-thing@1.0",
				Locations: []string{"/usr/lib/python3/dist-packages/x"}},
		},
		Notes: []string{"1 document entries without a package URL were left out"},
	}},
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeTests {
		t.Run(tt.file, func(t *testing.T) {
			data := readTestdata(t, tt.file)
			for _, format := range []string{tt.format, ""} { // named, and told from the document
				got, err := Decode(data, format)
				if err != nil {
					t.Fatal(err)
				}
				want := tt.want
				want.Format = tt.format
				if want.CreatedAt.IsZero() {
					if time.Since(got.CreatedAt) > time.Minute {
						t.Errorf("CreatedAt = %v, want now", got.CreatedAt)
					}
					want.CreatedAt = got.CreatedAt
				}
				if !reflect.DeepEqual(*got, want) {
					t.Errorf("Decode(%s, %q):\n got %+v\nwant %+v", tt.file, format, *got, want)
				}
			}
		})
	}
}

func TestDecodeSyftSchema1Distro(t *testing.T) {
	sb, err := Decode([]byte(`{"artifacts":[],"distro":{"name":"alpine","version":"3.12.0"}}`), FormatSyftJSON)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Distro{ID: "alpine", VersionID: "3.12.0"}); sb.Distro != want || len(sb.Packages) != 0 {
		t.Errorf("got %+v, want distro %+v and no packages", sb, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in, format, want string
	}{
		{"not json", "", "not a JSON document"},
		{`{}`, "", "not an SPDX, CycloneDX or Syft JSON document"},
		{`{}`, "xml", `unknown document format "xml"`},
		{`{"spdxVersion":"SPDX-9.9"}`, FormatSPDXJSON, "SPDX-9.9"},
		{`[1,2]`, FormatSPDXJSON, "not a valid SPDX JSON document"},
		{`{"bomFormat":"SPDX"}`, FormatCycloneDXJSON, `bomFormat is "SPDX"`},
		{`{"bomFormat":"CycloneDX","components":"x"}`, FormatCycloneDXJSON, "components"},
		{`{"x":1}`, FormatSyftJSON, "no artifacts"},
		{`{"artifacts":"x"}`, FormatSyftJSON, "artifacts"},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in), tt.format)
		if err == nil || !strings.HasPrefix(err.Error(), "sbom: decode") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%s, %q) = %v, want an error naming %q", tt.in, tt.format, err, tt.want)
		}
	}
}

// FuzzDecode: Decode never panics, and what it returns follows the contract: a known format, packages sorted by
// Key and unique, each with a name and type, files and locations sorted, unique and absolute.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"spdx-2.3.json", "spdx-2.2.json", "cyclonedx-1.5.json", "syft.json"} {
		data := readTestdata(f, name)
		for format := range uint8(len(fuzzFormats)) {
			f.Add(data, format)
		}
	}
	f.Add([]byte(`{"spdxVersion":"SPDX-2.3","packages":[{"SPDXID":"SPDXRef-x","externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:a/b"}]}]}`), uint8(1))
	f.Add([]byte(`{"bomFormat":"CycloneDX","components":[{"type":"library","purl":"pkg:golang/x@v1","components":[{"purl":"pkg:deb/x"}]}]}`), uint8(2))
	f.Add([]byte(`{"artifacts":[{"name":"x","type":"deb","metadata":{"files":[{"path":"../../x"}]}}]}`), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		sb, err := Decode(data, fuzzFormats[int(format)%len(fuzzFormats)])
		if err != nil {
			return
		}
		if !slices.Contains(fuzzFormats[1:], sb.Format) {
			t.Fatalf("format %q", sb.Format)
		}
		for i, p := range sb.Packages {
			if p.Name == "" || p.Type == "" {
				t.Fatalf("package %+v without name or type", p)
			}
			if i > 0 && sb.Packages[i-1].Key() >= p.Key() {
				t.Fatalf("packages not sorted and unique: %q then %q", sb.Packages[i-1].Key(), p.Key())
			}
			for _, paths := range [][]string{p.Files, p.Locations} {
				for j, q := range paths {
					if q != absPath(q) || j > 0 && paths[j-1] >= q {
						t.Fatalf("paths %q not absolute, sorted and unique", paths)
					}
				}
			}
		}
	})
}

var fuzzFormats = []string{"", FormatSPDXJSON, FormatCycloneDXJSON, FormatSyftJSON}
