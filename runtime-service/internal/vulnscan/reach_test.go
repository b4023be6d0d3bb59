package vulnscan

import (
	"fmt"
	"testing"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func testSBOM() *sbom.SBOM {
	return &sbom.SBOM{Digest: "sha256:" + fmt.Sprintf("%064d", 1), Packages: []sbom.Package{
		{Name: "curl", Version: "7.88.1-10", Type: sbom.TypeDeb, Files: []string{"/usr/bin/curl"}},
		{Name: "libcurl4", Version: "7.88.1-10", Type: sbom.TypeDeb, Files: []string{"/usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0"}},
		{Name: "zlib1g", Version: "1:1.2.13", Type: sbom.TypeDeb, Files: []string{"/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"}},
		// A file two packages claim loads both.
		{Name: "golang.org/x/net", Version: "v0.1.0", Type: sbom.TypeGoModule, Files: []string{"/usr/bin/curl"}},
	}}
}

func TestLoadedJoinsObservedPathsWithPackageFiles(t *testing.T) {
	idx := IndexFiles(testSBOM())
	observed := []store.ObservedPath{
		{Kind: "open", Path: "/usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0", Process: "/usr/bin/python3", ContainerID: "c2", First: t0.Add(time.Second), Count: 3},
		{Kind: "exec", Path: "/usr/bin/curl", Process: "/usr/bin/curl", ContainerID: "c1", First: t0, Count: 1},
		{Kind: "open", Path: "/usr/bin/curl", Process: "/bin/cat", ContainerID: "c3", First: t0, Count: 1}, // same instant: the exec wins
		{Kind: "open", Path: "/etc/passwd", Process: "/usr/bin/curl", First: t0},                           // no package's
	}
	got := Loaded(idx, observed)
	want := map[string]store.Evidence{
		"deb/curl@7.88.1-10":             {Kind: "exec", Path: "/usr/bin/curl", Process: "/usr/bin/curl", ContainerID: "c1", At: t0, Count: 1},
		"golang/golang.org/x/net@v0.1.0": {Kind: "exec", Path: "/usr/bin/curl", Process: "/usr/bin/curl", ContainerID: "c1", At: t0, Count: 1},
		"deb/libcurl4@7.88.1-10":         {Kind: "open", Path: "/usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0", Process: "/usr/bin/python3", ContainerID: "c2", At: t0.Add(time.Second), Count: 3},
	}
	if len(got) != len(want) {
		t.Fatalf("loaded %v; want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: %+v; want %+v", k, g, w)
		}
	}
}

func TestDecide(t *testing.T) {
	findings := []store.Reach{
		{ID: "CVE-1", PackageKey: "deb/curl@7.88.1-10"},
		{ID: "CVE-2", PackageKey: "deb/zlib1g@1:1.2.13"},
	}
	loaded := map[string]store.Evidence{"deb/curl@7.88.1-10": {Kind: "exec", Path: "/usr/bin/curl", At: t0}}
	window := 10 * time.Minute
	for _, tc := range []struct {
		name  string
		watch store.Watch
		want  []string
	}{
		{"no sensor (Integrity mode)", store.Watch{}, []string{store.ReachLoaded, store.ReachUnknown}},
		{"watched, not long enough", store.Watch{Sensed: true, Longest: window - time.Second}, []string{store.ReachLoaded, store.ReachUnknown}},
		{"watched for the window", store.Watch{Sensed: true, Longest: window}, []string{store.ReachLoaded, store.ReachNotLoaded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(findings, loaded, tc.watch, window)
			for i, r := range got {
				if r.Reachability != tc.want[i] {
					t.Errorf("%s: %s; want %s", r.ID, r.Reachability, tc.want[i])
				}
				if (r.Reachability == store.ReachLoaded) != (r.Evidence != nil) {
					t.Errorf("%s: %s with evidence %v", r.ID, r.Reachability, r.Evidence)
				}
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	doc := testSBOM()
	doc.Source, doc.Format, doc.CreatedAt = sbom.SourceGenerated, sbom.FormatLayers, t0
	row, err := encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	if row.Packages != 4 || row.Files != 4 || row.Digest != doc.Digest {
		t.Fatalf("row counts %+v", row)
	}
	back, err := decode(row.Document)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back.Packages) != fmt.Sprint(doc.Packages) || !back.CreatedAt.Equal(t0) {
		t.Fatalf("round trip: %+v", back)
	}
	if _, err := decode([]byte("not gzip")); err == nil {
		t.Fatal("decoded garbage")
	}
}

func TestParsePlatform(t *testing.T) {
	for in, ok := range map[string]bool{"": true, "linux/amd64": true, "linux/arm64/v8": true, "linux": false, "/amd64": false, "a/b/c/d": false} {
		if _, err := parsePlatform(in); (err == nil) != ok {
			t.Errorf("parsePlatform(%q): %v", in, err)
		}
	}
}

// BenchmarkJoin: the reachability join for 10,000 containers that opened or executed 1,000 files each, over 100
// images of 200 packages × 50 files (each container's image's index built once and cached, as the scanner does).
// Reported per container joined, and per observed path.
func BenchmarkJoin(b *testing.B) {
	const images, containers, filesPer, packages, pkgFiles = 100, 10_000, 1_000, 200, 50
	idxs := make([]FileIndex, images)
	for i := range idxs {
		doc := &sbom.SBOM{}
		for p := 0; p < packages; p++ {
			pkg := sbom.Package{Name: fmt.Sprintf("pkg%d", p), Version: "1.0", Type: sbom.TypeDeb}
			for f := 0; f < pkgFiles; f++ {
				pkg.Files = append(pkg.Files, fmt.Sprintf("/usr/lib/pkg%d/file%d.so", p, f))
			}
			doc.Packages = append(doc.Packages, pkg)
		}
		idxs[i] = IndexFiles(doc)
	}
	// Each container: half its paths are package files, half are not (/proc, /etc, its own data).
	observed := make([][]store.ObservedPath, images)
	for i := range observed {
		for f := 0; f < filesPer; f++ {
			path := fmt.Sprintf("/usr/lib/pkg%d/file%d.so", (f*7+i)%packages, f%pkgFiles)
			if f%2 == 1 {
				path = fmt.Sprintf("/var/data/%d/%d", i, f)
			}
			observed[i] = append(observed[i], store.ObservedPath{Kind: "open", Path: path, First: t0.Add(time.Duration(f))})
		}
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for c := 0; c < containers; c++ {
			img := c % images
			if len(Loaded(idxs[img], observed[img])) == 0 {
				b.Fatal("nothing loaded")
			}
		}
	}
	b.StopTimer()
	perContainer := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / containers
	b.ReportMetric(perContainer, "ns/container")
	b.ReportMetric(perContainer/filesPer, "ns/path")
}
