package httpmw

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serve runs one request through h, with acceptEncoding as its Accept-Encoding header ("" for none).
func serve(h http.Handler, method, acceptEncoding string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/api/v1/images", nil)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
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

func TestGzip(t *testing.T) {
	big := strings.Repeat(`{"digest":"sha256:0123456789abcdef","severity":"critical"},`, 200)
	json := Gzip(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "999999")
		_, _ = io.WriteString(w, big)
	}))
	rec := serve(json, "GET", "gzip")
	if rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Content-Length") != "" || rec.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("JSON: %v", rec.Header())
	}
	compressed := rec.Body.Len()
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	if body, err := io.ReadAll(zr); err != nil || string(body) != big || compressed*5 > len(big) {
		t.Fatalf("JSON body: %d compressed bytes for %d, %v", compressed, len(big), err)
	}
	if rec := serve(json, "GET", ""); rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != big {
		t.Fatalf("without Accept-Encoding: %v", rec.Header())
	}
	if rec := serve(json, "HEAD", "gzip"); rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("HEAD: %v", rec.Header())
	}

	// Sniffed types count: a handler that sets none and writes JSON text gets text/plain, compressed.
	sniffed := Gzip(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, big) }))
	if rec := serve(sniffed, "GET", "gzip"); rec.Header().Get("Content-Encoding") != "gzip" {
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
		rec := serve(Gzip(hf), "GET", "gzip")
		if (rec.Header().Get("Content-Encoding") == "gzip") != (name == "already encoded") {
			t.Errorf("%s: Content-Encoding %q", name, rec.Header().Get("Content-Encoding"))
		}
		if name == "already encoded" && rec.Body.String() != "precompressed" {
			t.Errorf("%s: body rewritten: %q", name, rec.Body.String())
		}
	}
}

// TestGzipFlushStreams: a streamed response (CSV export) reaches the client piece by piece, not when the
// handler returns.
func TestGzipFlushStreams(t *testing.T) {
	next := make(chan struct{})
	srv := httptest.NewServer(Gzip(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
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

func BenchmarkGzipJSON(b *testing.B) {
	body := []byte(strings.Repeat(`{"digest":"sha256:0123456789abcdef0123456789abcdef","severity":"critical","refs":["ghcr.io/acme/web:1"]},`, 500))
	h := Gzip(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
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
