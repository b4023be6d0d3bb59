package imageref_test

import (
	"testing"

	"github.com/runtrust/runtrust/internal/imageref"
)

var benchSink imageref.Reference

func BenchmarkParse(b *testing.B) {
	for _, in := range []string{
		"nginx:1.25",
		"nginx",
		"ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"docker.io/library/nginx:1.25@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"registry.k8s.io/kube-apiserver:v1.30.2",
		"localhost:5000/team/service:v2",
		"[::1]:5000/app:1",
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := imageref.Parse(in)
				if err != nil {
					b.Fatal(err)
				}
				benchSink = r
			}
		})
	}
}

func BenchmarkParseImageID(b *testing.B) {
	in := "docker-pullable://ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	b.ReportAllocs()
	for b.Loop() {
		r, err := imageref.ParseImageID(in)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = r
	}
}

func BenchmarkString(b *testing.B) {
	r, err := imageref.Parse("ghcr.io/org/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var s string
	for b.Loop() {
		s = r.String()
	}
	_ = s
}
