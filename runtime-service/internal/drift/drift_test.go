package drift

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one tar entry of a test layer: a regular file with content, a directory (name ends in "/"), or a
// hardlink (link set).
type entry struct{ name, content, link string }

func layer(t testing.TB, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeReg, Size: int64(len(e.content))}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func sum(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

// TestBuildAppliesTheLayerRules builds indexes of images whose layers (bottom first) exercise each OCI rule and
// compares the merged files with what extracting the layers in order leaves.
func TestBuildAppliesTheLayerRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]entry
		want   map[string]string // path → content
	}{
		{"one layer", [][]entry{{{name: "bin/"}, {name: "bin/sh", content: "sh"}, {name: "./etc/passwd", content: "root"}}},
			map[string]string{"/bin/sh": "sh", "/etc/passwd": "root"}},
		{"upper file replaces lower", [][]entry{{{name: "bin/sh", content: "old"}}, {{name: "bin/sh", content: "new"}}},
			map[string]string{"/bin/sh": "new"}},
		{"whiteout removes a file", [][]entry{{{name: "bin/sh", content: "sh"}, {name: "bin/ls", content: "ls"}}, {{name: "bin/.wh.ls"}}},
			map[string]string{"/bin/sh": "sh"}},
		{"whiteout removes a directory's subtree", [][]entry{{{name: "opt/app/run", content: "r"}, {name: "opt/keep", content: "k"}}, {{name: "opt/.wh.app"}}},
			map[string]string{"/opt/keep": "k"}},
		{"opaque directory hides lower content only", [][]entry{{{name: "etc/a", content: "a"}, {name: "etc/b", content: "b"}},
			{{name: "etc/"}, {name: "etc/.wh..wh..opq"}, {name: "etc/c", content: "c"}}},
			map[string]string{"/etc/c": "c"}},
		{"whiteout does not apply within its own layer", [][]entry{{{name: "x/.wh.f"}, {name: "x/f", content: "f"}}},
			map[string]string{"/x/f": "f"}},
		{"file replacing a directory hides its lower subtree", [][]entry{{{name: "lib/"}, {name: "lib/libc.so", content: "c"}}, {{name: "lib", content: "now a file"}}},
			map[string]string{"/lib": "now a file"}},
		{"hardlink has its target's content", [][]entry{{{name: "bin/busybox", content: "bb"}, {name: "bin/ls", link: "bin/busybox"}}},
			map[string]string{"/bin/busybox": "bb", "/bin/ls": "bb"}},
		{"later entry of a layer wins", [][]entry{{{name: "f", content: "1"}, {name: "f", content: "2"}}},
			map[string]string{"/f": "2"}},
		{"whiteout of the root is ignored", [][]entry{{{name: "f", content: "1"}}, {{name: ".wh."}}},
			map[string]string{"/f": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ls []v1.Layer
			for _, l := range tc.layers {
				ls = append(ls, layer(t, l...))
			}
			idx, err := Build(context.Background(), image(t, ls...), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][sha256.Size]byte{}
			for p, c := range tc.want {
				want[p] = sum(c)
			}
			if !maps.Equal(idx.Files, want) || idx.Truncated {
				t.Errorf("files %v (truncated %v), want %v", slices.Sorted(maps.Keys(idx.Files)), idx.Truncated, slices.Sorted(maps.Keys(want)))
			}
		})
	}
}

// TestBuildBounds: a bound reached keeps what was read, marks the index truncated and says which bound.
func TestBuildBounds(t *testing.T) {
	img := image(t, layer(t, entry{name: "a", content: "aaaa"}, entry{name: "b", content: "bbbb"}, entry{name: "c", content: "cccc"}))
	for _, tc := range []struct {
		lim  Limits
		note string
	}{{Limits{MaxFiles: 2}, "MaxFiles"}, {Limits{MaxBytes: 6}, "MaxBytes"}} {
		idx, err := Build(context.Background(), img, tc.lim)
		if err != nil {
			t.Fatal(err)
		}
		if !idx.Truncated || len(idx.Files) == 0 || len(idx.Files) > 2 || !strings.Contains(strings.Join(idx.Notes, " "), tc.note) {
			t.Errorf("%+v: %d files, truncated %v, notes %v; want at most 2, truncated by %s", tc.lim, len(idx.Files), idx.Truncated, idx.Notes, tc.note)
		}
	}
}

func TestDecide(t *testing.T) {
	files := map[string][sha256.Size]byte{"/bin/sh": sum("sh")}
	hexOf := func(s string) string { h := sum(s); return hex.EncodeToString(h[:]) }
	for _, tc := range []struct {
		path, sha string
		truncated bool
		want      Verdict
	}{
		{"/bin/sh", hexOf("sh"), false, InImage},
		{"/bin/sh", hexOf("evil"), false, Modified},
		{"/tmp/dropper", hexOf("x"), false, Added},
		{"/tmp/dropper", hexOf("x"), true, Unknown},
		{"/memfd:payload", hexOf("x"), false, Memory},
		{"/usr/bin/gone (deleted)", "", false, Memory},
		{"/bin/sh", "", false, Unknown},
		{"/bin/sh", "zz" + hexOf("sh")[2:], false, Unknown},
		{"/bin/sh", hexOf("sh")[:10], false, Unknown},
	} {
		if got := Decide(files, tc.truncated, tc.path, tc.sha); got != tc.want {
			t.Errorf("Decide(%q, %q, truncated %v) = %s, want %s", tc.path, tc.sha, tc.truncated, got, tc.want)
		}
	}
}

func TestJudge(t *testing.T) {
	p, err := Compile(Rules{AllowImages: []string{"registry.example.com/ci/*"}, AllowPaths: []string{"/tmp/go-build**"},
		Severity: map[Verdict]string{Added: "medium"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v         Verdict
		repos     []string
		path      string
		severity  string
		allowedBy string
	}{
		{Modified, []string{"docker.io/library/nginx"}, "/bin/sh", "critical", ""},
		{Added, []string{"docker.io/library/nginx"}, "/tmp/x", "medium", ""},
		{Added, []string{"registry.example.com/ci/runner"}, "/tmp/x", "none", "image registry.example.com/ci/*"},
		{Added, []string{"registry.example.com/ci/team/runner"}, "/tmp/x", "medium", ""}, // * stays in one segment
		{Added, nil, "/tmp/go-build123/b001/exe/main", "none", "path /tmp/go-build**"},
		{Memory, nil, "/memfd:runc_cloned:/proc/self/exe", "none", "path /memfd:runc_cloned:**"},
		{Memory, nil, "/memfd:payload", "high", ""},
		{InImage, nil, "/bin/sh", "none", ""},
	} {
		j := p.Judge(tc.v, tc.repos, tc.path)
		if j.Severity != tc.severity || j.AllowedBy != tc.allowedBy {
			t.Errorf("Judge(%s, %v, %q) = %+v, want severity %s allowed by %q", tc.v, tc.repos, tc.path, j, tc.severity, tc.allowedBy)
		}
	}
}

func TestCompileRejects(t *testing.T) {
	for _, tc := range []struct {
		rules Rules
		want  string
	}{
		{Rules{Severity: map[Verdict]string{InImage: "high"}}, "not modified, added or memory"},
		{Rules{Severity: map[Verdict]string{Added: "urgent"}}, `"urgent"`},
	} {
		if _, err := Compile(tc.rules); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%+v) = %v, want an error saying %s", tc.rules, err, tc.want)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	idx := &Index{Files: map[string][sha256.Size]byte{"/bin/sh": sum("sh"), "/etc/passwd": sum("root")}}
	b, err := Encode(idx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || !maps.Equal(got, idx.Files) {
		t.Fatalf("Decode(Encode) = %v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("not gzip"), b[:len(b)/2]} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%q) accepted a broken index", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := Encode(&Index{Files: map[string][sha256.Size]byte{"/bin/sh": sum("sh")}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		files, err := Decode(in)
		if err != nil {
			return
		}
		again, err := Encode(&Index{Files: files})
		if err != nil {
			t.Fatal(err)
		}
		if back, err := Decode(again); err != nil || !maps.Equal(back, files) {
			t.Fatalf("a decoded index does not survive Encode/Decode: %v", err)
		}
	})
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"bin/sh", "etc/.wh..wh..opq", "x/.wh.y", ".wh.", "../../etc", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		_, p := classify(name)
		if p != "" && (!strings.HasPrefix(p, "/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..")) {
			t.Fatalf("classify(%q) = %q: not an absolute clean path", name, p)
		}
	})
}

// BenchmarkDecide is the per-exec decision with the index warm in memory.
func BenchmarkDecide(b *testing.B) {
	files := map[string][sha256.Size]byte{}
	for i := range 100_000 {
		files["/usr/lib/file"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i), byte(i >> 8)})] = sum("c")
	}
	files["/bin/sh"] = sum("sh")
	h := sum("sh")
	sha := hex.EncodeToString(h[:])
	for b.Loop() {
		if Decide(files, false, "/bin/sh", sha) != InImage {
			b.Fatal("not in_image")
		}
	}
}
