package registry

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"3600", time.Hour, true},
		{"3601", time.Hour, true},
		{"99999999999999999999999", time.Hour, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"Mon, 23 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Monday, 23-Nov-26 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Mon Nov 23 12:00:10 2026", 10 * time.Second, true},  // asctime
		{"Mon, 23 Nov 2026 11:00:00 GMT", 0, true},            // in the past: go ahead
		{"Mon, 23 Nov 2027 12:00:00 GMT", time.Hour, true},    // capped
		{"tomorrow", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "Mon, 23 Nov 2026 12:00:30 GMT", "99999999999999999999", "-5", "1e3", "Mon Nov 23 12:00:10 2026"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %s, outside [0, %s]", s, d, maxRetryAfter)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %s with ok false", s, d)
		}
	})
}

const (
	dA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestParseIndex(t *testing.T) {
	tests := []struct {
		name, mediaType, body string
		want                  []Platform
		wantErr               string
	}{
		{
			name: "oci index",
			body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
				{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + dA + `","size":1,"platform":{"os":"linux","architecture":"amd64"}},
				{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + dB + `","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}`,
			want: []Platform{{dA, "linux/amd64"}, {dB, "linux/arm/v7"}},
		},
		{
			name:      "docker manifest list, media type from the header",
			mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
			body:      `{"schemaVersion":2,"manifests":[{"digest":"` + dA + `","size":1}]}`,
			want:      []Platform{{dA, ""}},
		},
		{name: "empty list", body: `{"schemaVersion":2,"manifests":[]}`, want: []Platform{}},
		{name: "empty body", body: ``, wantErr: "empty index"},
		{name: "not json", body: `<html>`, wantErr: "index:"},
		{name: "an image manifest", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`, wantErr: "is not an index"},
		{name: "bad digest", body: `{"manifests":[{"digest":"sha256:xyz","size":1}]}`, wantErr: "index:"},
		{name: "no digest", body: `{"manifests":[{"size":1}]}`, wantErr: "manifests[0] has no digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIndex(tt.mediaType, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// FuzzParseIndex: whatever a registry answers, ParseIndex returns manifests with well-formed digests, or an
// error; never a panic.
func FuzzParseIndex(f *testing.F) {
	f.Add("application/vnd.oci.image.index.v1+json", `{"schemaVersion":2,"manifests":[{"digest":"`+dA+`","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}`)
	f.Add("", `{"manifests":null}`)
	f.Add("application/vnd.docker.distribution.manifest.list.v2+json", `{"manifests":[{"digest":"sha256:"}]}`)
	f.Add("text/html", `[]`)
	f.Fuzz(func(t *testing.T, mediaType, body string) {
		ps, err := ParseIndex(mediaType, []byte(body))
		if err != nil {
			return
		}
		for _, p := range ps {
			alg, hex, ok := strings.Cut(p.Digest, ":")
			if !ok || alg == "" || hex == "" {
				t.Fatalf("accepted a manifest without a digest: %q", p.Digest)
			}
		}
	})
}
