// Package ui is the runtime service's web UI: the live assessment (images ranked by risk, one image's evidence,
// clusters with their sensors, registry artifacts) as a page of plain HTML, CSS and one JavaScript module that
// call the JSON API. Every byte is embedded in the binary, so the UI works offline and needs no build step.
//
// Handler serves "/" (the page) and "/ui/…" (its assets). The assets' names carry a hash of their content, so a
// browser may keep them forever (Cache-Control immutable) and a new binary's assets are new names; the page
// itself is revalidated with its ETag on every load. The service gzips what other handlers write (httpmw.Gzip);
// the assets are compressed once at start and pass through it.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/runtrust/runtrust/runtime-service/internal/httpmw"
)

//go:embed static
var static embed.FS

// asset is one file as it is served.
type asset struct {
	contentType  string
	body, gz     []byte // gz is nil when gzip does not make it smaller
	etag         string // strong, quoted
	cacheControl string
}

type handler struct {
	index  *asset
	assets map[string]*asset // by the name under /ui/
}

var (
	loadOnce sync.Once
	loaded   *handler
	loadErr  error
)

// Handler returns the UI handler. The embedded files are read, hashed and compressed once per process.
func Handler() http.Handler {
	loadOnce.Do(func() { loaded, loadErr = load(static) })
	if loadErr != nil {
		// The files are compiled in; failing here means the package itself is broken, which its tests catch.
		panic("ui: " + loadErr.Error())
	}
	return loaded
}

// contentTypes are the types of the files in static/ (by extension). A file of another type is an error at
// load, so nothing is served with a guessed type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// load reads static/: index.html becomes the page, every other file an asset under a content-hashed name
// (app.js → app.3f2a9c1e.js), and index.html's {{name}} placeholders are replaced by those names.
func load(fsys fs.FS) (*handler, error) {
	h := &handler{assets: map[string]*asset{}}
	var page []byte
	names := map[string]string{}
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		if name == "index.html" {
			page = b
			return nil
		}
		ext := path.Ext(name)
		ct, ok := contentTypes[ext]
		if !ok {
			return fmt.Errorf("static/%s: no content type for %q files", name, ext)
		}
		sum := sha256.Sum256(b)
		hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:4]) + ext
		names[name] = hashed
		h.assets[hashed] = newAsset(ct, b, "public, max-age=31536000, immutable")
		return nil
	})
	if err != nil {
		return nil, err
	}
	if page == nil {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	for name, hashed := range names {
		page = bytes.ReplaceAll(page, []byte("{{"+name+"}}"), []byte("/ui/"+hashed))
	}
	if i := bytes.Index(page, []byte("{{")); i >= 0 {
		end := min(i+40, len(page))
		return nil, fmt.Errorf("static/index.html: placeholder %q names no file in static/", page[i:end])
	}
	// The page is small and names the current assets: revalidate it every time (a 304 costs a round trip only).
	h.index = newAsset(contentTypes[".html"], page, "no-cache")
	return h, nil
}

func newAsset(contentType string, body []byte, cacheControl string) *asset {
	sum := sha256.Sum256(body)
	a := &asset{contentType: contentType, body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, cacheControl: cacheControl}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid; the error cannot happen
	_, _ = zw.Write(body)
	_ = zw.Close()
	if buf.Len() < len(body) {
		a.gz = buf.Bytes()
	}
	return a
}

// securityHeaders: the page loads only its own scripts and styles (no inline code, no third party), so a value
// from the API that slipped into the DOM as markup still could not run.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var a *asset
	switch {
	case r.URL.Path == "/":
		a = h.index
	case strings.HasPrefix(r.URL.Path, "/ui/"):
		a = h.assets[strings.TrimPrefix(r.URL.Path, "/ui/")]
	}
	if a == nil {
		http.Error(w, "not found: "+r.URL.Path+" (the UI is at /, the API under /api/v1/)", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, r.Method+" is not allowed here", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	securityHeaders(hd)
	hd.Set("Cache-Control", a.cacheControl)
	hd.Set("ETag", a.etag)
	hd.Set("Vary", "Accept-Encoding")
	if ETagMatches(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", a.contentType)
	body := a.body
	if a.gz != nil && httpmw.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		hd.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// ETagMatches reports whether an If-None-Match header value names etag (RFC 9110 §13.1.2: "*" matches any,
// otherwise a comma-separated list of entity tags compared weakly, so W/"x" matches "x"). A malformed list
// matches nothing, which only costs a full response.
func ETagMatches(ifNoneMatch, etag string) bool {
	v := strings.TrimSpace(ifNoneMatch)
	if v == "" {
		return false
	}
	if v == "*" {
		return true
	}
	etag = strings.TrimPrefix(etag, "W/")
	for v != "" {
		v = strings.TrimLeft(v, " \t,")
		if v == "" {
			break
		}
		v = strings.TrimPrefix(v, "W/")
		if !strings.HasPrefix(v, `"`) {
			return false
		}
		end := strings.IndexByte(v[1:], '"')
		if end < 0 {
			return false
		}
		if v[:end+2] == etag {
			return true
		}
		v = v[end+2:]
		v = strings.TrimLeft(v, " \t")
		if v != "" && v[0] != ',' {
			return false
		}
	}
	return false
}
