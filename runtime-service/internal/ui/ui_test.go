package ui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

var assetRE = regexp.MustCompile(`/ui/app\.[0-9a-f]{8}\.(js|css)`)

// TestHandlerServesPageAndAssets: the page names content-hashed assets, each asset is served immutable with a
// strong ETag, gzipped for clients that take it and plain for those that do not, and a matching If-None-Match
// gets 304.
func TestHandlerServesPageAndAssets(t *testing.T) {
	h := Handler()
	rec := get(t, h, "GET", "/", nil)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("page: %d %v", rec.Code, rec.Header())
	}
	page := rec.Body.String()
	if strings.Contains(page, "{{") {
		t.Fatalf("placeholder left in the page:\n%s", page)
	}
	if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("CSP: %q", rec.Header().Get("Content-Security-Policy"))
	}
	paths := assetRE.FindAllString(page, -1)
	if len(paths) != 2 {
		t.Fatalf("want the JS and CSS assets named in the page, got %v", paths)
	}
	for _, p := range paths {
		plain := get(t, h, "GET", p, nil)
		if plain.Code != 200 || plain.Header().Get("Content-Encoding") != "" ||
			plain.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Fatalf("%s: %d %v", p, plain.Code, plain.Header())
		}
		zipped := get(t, h, "GET", p, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
		if zipped.Header().Get("Content-Encoding") != "gzip" || zipped.Body.Len() >= plain.Body.Len() {
			t.Fatalf("%s gzipped: %v, %d bytes vs %d", p, zipped.Header(), zipped.Body.Len(), plain.Body.Len())
		}
		if gunzip(t, zipped.Body.Bytes()) != plain.Body.String() {
			t.Fatalf("%s: gzip body differs from the plain one", p)
		}
		etag := plain.Header().Get("ETag")
		if nm := get(t, h, "GET", p, map[string]string{"If-None-Match": `"other", ` + etag}); nm.Code != 304 || nm.Body.Len() != 0 {
			t.Fatalf("%s If-None-Match: %d", p, nm.Code)
		}
		if head := get(t, h, "HEAD", p, nil); head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") != plain.Header().Get("Content-Length") {
			t.Fatalf("%s HEAD: %d %d", p, head.Code, head.Body.Len())
		}
	}
	for path, code := range map[string]int{"/ui/app.js": 404, "/ui/": 404, "/index.html": 404, "/images": 404} {
		if rec := get(t, h, "GET", path, nil); rec.Code != code {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, code)
		}
	}
	if rec := get(t, h, "POST", "/", nil); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d %v", rec.Code, rec.Header())
	}
}

// TestAssetNameFollowsContent: a changed file gets a new name, so an immutable cache never serves old code.
func TestAssetNameFollowsContent(t *testing.T) {
	fs1 := fstest.MapFS{"static/index.html": {Data: []byte(`<script src="{{a.js}}"></script>`)}, "static/a.js": {Data: []byte("1")}}
	fs2 := fstest.MapFS{"static/index.html": {Data: []byte(`<script src="{{a.js}}"></script>`)}, "static/a.js": {Data: []byte("2")}}
	h1, err := load(fs1)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := load(fs2)
	if err != nil {
		t.Fatal(err)
	}
	if string(h1.index.body) == string(h2.index.body) || h1.index.etag == h2.index.etag {
		t.Fatalf("same page for different assets: %s", h1.index.body)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		fs   fstest.MapFS
		want string
	}{
		"no page":          {fstest.MapFS{"static/a.js": {Data: []byte("x")}}, "static/index.html is missing"},
		"unknown type":     {fstest.MapFS{"static/index.html": {Data: []byte("x")}, "static/a.exe": {Data: []byte("x")}}, `no content type for ".exe" files`},
		"dangling name":    {fstest.MapFS{"static/index.html": {Data: []byte(`<link href="{{b.css}}">`)}}, `placeholder "{{b.css}}`},
		"typo in the name": {fstest.MapFS{"static/index.html": {Data: []byte(`{{ap.js}}`)}, "static/app.js": {Data: []byte("x")}}, "names no file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(tc.fs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestETagMatches(t *testing.T) {
	const etag = `"abc"`
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"*", true},
		{` * `, true},
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`"x",W/"abc"`, true},
		{`"x" , "y"`, false},
		{`"ab"`, false},
		{`"abcd"`, false},
		{`abc`, false},
		{`"abc`, false},
		{`"x" "abc"`, false}, // no comma between tags: malformed
		{`,,"abc",`, true},
		{`W/`, false},
	} {
		if got := ETagMatches(tc.header, etag); got != tc.want {
			t.Errorf("ETagMatches(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func FuzzETagMatches(f *testing.F) {
	for _, s := range []string{"", "*", `"abc"`, `W/"abc"`, `"x", "abc"`, `"abc`, `,,`, `W/W/"abc"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := ETagMatches(header, `"abc"`)
		// Whatever the header, a match means it names the tag or is "*".
		if got && !strings.Contains(header, `"abc"`) && strings.TrimSpace(header) != "*" {
			t.Fatalf("ETagMatches(%q) matched without naming the tag", header)
		}
	})
}
