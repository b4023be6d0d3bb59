// Package httpmw holds the runtime service's HTTP middleware: gzip for every response worth compressing, and
// the Accept-Encoding negotiation the UI's precompressed assets share with it.
package httpmw

import (
	"bufio"
	"compress/gzip"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Gzip gzips the responses of next for clients that accept gzip, when the response is of a textual type
// (JSON, CSV, YAML, HTML, CSS, JavaScript, plain text) and not already encoded. The service's HTTP stack
// (net/http) compresses nothing itself; the API's JSON shrinks about tenfold (docs/performance.md), which is
// what a page of 50 images costs on a slow link. A handler that encodes on its own (the UI's precompressed
// assets, promhttp's /metrics) sets Content-Encoding and is passed through untouched.
func Gzip(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every response that could be compressed varies with the header, compressed or not, so a cache between
		// here and the browser keeps the two apart.
		w.Header().Add("Vary", "Accept-Encoding")
		if !AcceptsGzip(r.Header.Get("Accept-Encoding")) || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		cw := &compressWriter{ResponseWriter: w}
		defer cw.close()
		next.ServeHTTP(cw, r)
	})
}

var gzipPool = sync.Pool{New: func() any {
	// Level 5, a middle setting: responses are made per request, so CPU per byte matters more than the last
	// percent of ratio (untuned; BenchmarkCompressJSON measures the cost).
	zw, _ := gzip.NewWriterLevel(nil, 5)
	return zw
}}

// compressWriter decides at the first WriteHeader (or Write) whether to compress, from the headers the
// handler set by then.
type compressWriter struct {
	http.ResponseWriter
	decided bool
	zw      *gzip.Writer
}

func (c *compressWriter) WriteHeader(status int) {
	if !c.decided {
		c.decided = true
		h := c.Header()
		if status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified &&
			h.Get("Content-Encoding") == "" && compressible(h.Get("Content-Type")) {
			h.Set("Content-Encoding", "gzip")
			h.Del("Content-Length") // the handler's length is the uncompressed one
			c.zw = gzipPool.Get().(*gzip.Writer)
			c.zw.Reset(c.ResponseWriter)
		}
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *compressWriter) Write(b []byte) (int, error) {
	if !c.decided {
		if c.Header().Get("Content-Type") == "" {
			// What net/http would sniff, so the decision sees the type the client will get.
			c.Header().Set("Content-Type", http.DetectContentType(b))
		}
		c.WriteHeader(http.StatusOK)
	}
	if c.zw != nil {
		return c.zw.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

// Flush sends what is compressed so far: a streamed response (a CSV export) reaches the client as it is made.
func (c *compressWriter) Flush() {
	if c.zw != nil {
		_ = c.zw.Flush()
	}
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines, hijacking).
func (c *compressWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Hijack is here for handlers that type-assert http.Hijacker rather than use http.ResponseController.
func (c *compressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := c.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, errors.New("httpmw: the underlying ResponseWriter cannot be hijacked")
}

func (c *compressWriter) close() {
	if c.zw != nil {
		_ = c.zw.Close()
		c.zw.Reset(nil)
		gzipPool.Put(c.zw)
		c.zw = nil
	}
}

// compressible says whether a Content-Type is text that gzip shrinks. Images, archives and unknown binary
// types are already dense or not ours to judge.
func compressible(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	switch {
	case strings.HasPrefix(ct, "text/"):
		return true
	case ct == "application/json", ct == "application/yaml", ct == "application/javascript", ct == "image/svg+xml",
		strings.HasSuffix(ct, "+json"), strings.HasSuffix(ct, "+yaml"):
		return true
	}
	return false
}

// AcceptsGzip reports whether an Accept-Encoding header value (RFC 9110 §12.5.3) allows gzip: "gzip" or
// "x-gzip" or "*" with a q-value above zero, and no "gzip;q=0" refusing it explicitly. An unparsable q-value
// counts as a refusal: when the client's wish is unclear, the uncompressed answer is always understood.
func AcceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(p, "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
				continue
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				f = 0
			}
			q = f
		}
		switch coding {
		case "gzip", "x-gzip":
			if gzipQ < 0 || q < gzipQ {
				gzipQ = q
			}
		case "*":
			starQ = q
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
