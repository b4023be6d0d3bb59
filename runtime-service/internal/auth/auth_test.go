package auth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestModeFor(t *testing.T) {
	for _, c := range []struct {
		asked, listen string
		want          Mode
		err           string
	}{
		{"", "localhost:8080", ModeNone, ""},
		{"", "127.0.0.1:0", ModeNone, ""},
		{"", "[::1]:8080", ModeNone, ""},
		{"", ":8080", "", "not a loopback address: set -auth tokens"},
		{"", "0.0.0.0:8080", "", "not a loopback address"},
		{"", "10.0.0.5:8080", "", "not a loopback address"},
		{"none", "127.0.0.1:8080", ModeNone, ""},
		{"none", ":8080", "", "only allowed on a loopback address"},
		{"tokens", ":8080", ModeTokens, ""},
		{"tokens", "localhost:8080", ModeTokens, ""},
		{"oauth", "localhost:8080", "", `-auth "oauth" is not none or tokens`},
		{"", "localhost.evil.example:80", "", "not a loopback address"},
	} {
		got, err := ModeFor(c.asked, c.listen)
		if c.err == "" && (err != nil || got != c.want) {
			t.Errorf("ModeFor(%q, %q) = %q, %v; want %q", c.asked, c.listen, got, err, c.want)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ModeFor(%q, %q) error %v, want %q", c.asked, c.listen, err, c.err)
		}
	}
}

func TestCheckCSRF(t *testing.T) {
	session := Principal{Kind: KindUser, CSRF: "s3cret"}
	for _, c := range []struct {
		method, header string
		p              Principal
		ok             bool
	}{
		{"GET", "", session, true},
		{"HEAD", "", session, true},
		{"POST", "", session, false},
		{"POST", "wrong", session, false},
		{"POST", "s3cret", session, true},
		{"DELETE", "", Principal{Kind: KindToken}, false},
		{"DELETE", "1", Principal{Kind: KindToken}, true},
		{"DELETE", "1", Principal{Kind: KindDev}, true},
	} {
		r := httptest.NewRequest(c.method, "/api/v1/tokens", nil)
		if c.header != "" {
			r.Header.Set(CSRFHeader, c.header)
		}
		if err := CheckCSRF(c.p, r); (err == nil) != c.ok {
			t.Errorf("%s with %q as %s: %v, want ok=%v", c.method, c.header, c.p.Kind, err, c.ok)
		}
	}
}
