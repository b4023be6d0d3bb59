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

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip;q=0.0, *", false}, // an explicit refusal wins over the wildcard
		{"*", true},
		{"*;q=0", false},
		{"br", false},
		{"identity", false},
		{"gzip;q=0.001", true},
		{"gzip;q=abc", false},
		{"gzip;q=2", false},
		{" gzip ; q=0.5 ", true},
		{"gzip;level=1", true},
		{",,gzip,,", true},
	} {
		if got := AcceptsGzip(tc.header); got != tc.want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip;q=0", "*;q=0.5", "br, gzip;q=0.8", "gzip;q=", ";;", "x-gzip;Q=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := AcceptsGzip(header)
		if got && !strings.Contains(strings.ToLower(header), "gzip") && !strings.Contains(header, "*") {
			t.Fatalf("AcceptsGzip(%q) without gzip or * in it", header)
		}
	})
}

func TestCompress(t *testing.T) {
	big := strings.Repeat(`{"digest":"sha256:0123456789abcdef","severity":"critical"},`, 200)
	json := Compress(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "999999")
		_, _ = io.WriteString(w, big)
	}))
	rec := get(t, json, "GET", "/api/v1/images", map[string]string{"Accept-Encoding": "gzip"})
	if rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Content-Length") != "" || rec.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("JSON: %v", rec.Header())
	}
	if gunzip(t, rec.Body.Bytes()) != big || rec.Body.Len()*5 > len(big) {
		t.Fatalf("JSON body: %d compressed bytes for %d", rec.Body.Len(), len(big))
	}
	if rec := get(t, json, "GET", "/api/v1/images", nil); rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != big {
		t.Fatalf("without Accept-Encoding: %v", rec.Header())
	}
	if rec := get(t, json, "HEAD", "/api/v1/images", map[string]string{"Accept-Encoding": "gzip"}); rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("HEAD: %v", rec.Header())
	}

	// Sniffed types count: a handler that sets none and writes JSON text gets text/plain, compressed.
	sniffed := Compress(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, big) }))
	if rec := get(t, sniffed, "GET", "/", map[string]string{"Accept-Encoding": "gzip"}); rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("sniffed: %v", rec.Header())
	}

	for name, hf := range map[string]http.HandlerFunc{
		"already encoded": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write([]byte("precompressed"))
		},
		"binary": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte("\x89PNG"))
		},
		"not modified": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/css")
			w.WriteHeader(http.StatusNotModified)
		},
	} {
		rec := get(t, Compress(hf), "GET", "/", map[string]string{"Accept-Encoding": "gzip"})
		if (rec.Header().Get("Content-Encoding") == "gzip") != (name == "already encoded") {
			t.Errorf("%s: Content-Encoding %q", name, rec.Header().Get("Content-Encoding"))
		}
		if name == "already encoded" && rec.Body.String() != "precompressed" {
			t.Errorf("%s: body rewritten: %q", name, rec.Body.String())
		}
	}
}

// TestCompressFlushStreams: a streamed response (CSV export) reaches the client piece by piece, not when the
// handler returns.
func TestCompressFlushStreams(t *testing.T) {
	next := make(chan struct{})
	srv := httptest.NewServer(Compress(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		_, _ = io.WriteString(w, "a,b\r\n")
		http.NewResponseController(w).Flush()
		<-next
		_, _ = io.WriteString(w, "c,d\r\n")
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip") // set by hand, so the client leaves the body compressed
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(zr, first); err != nil || string(first) != "a,b\r\n" {
		t.Fatalf("first row before the handler finished: %q %v", first, err)
	}
	close(next)
	rest, err := io.ReadAll(zr)
	if err != nil || string(rest) != "c,d\r\n" {
		t.Fatalf("rest: %q %v", rest, err)
	}
}

func BenchmarkCompressJSON(b *testing.B) {
	body := []byte(strings.Repeat(`{"digest":"sha256:0123456789abcdef0123456789abcdef","severity":"critical","refs":["ghcr.io/acme/web:1"]},`, 500))
	h := Compress(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	req := httptest.NewRequest("GET", "/api/v1/images", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
