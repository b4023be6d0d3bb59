package imageref_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/runtrust/runtrust/internal/imageref"
)

// maxErrLen bounds an error message: the input and any part of it quoted in
// the reason are cut to 80 bytes, each of which quotes to at most 4 bytes.
const maxErrLen = 1024

func addSeeds(f *testing.F) {
	for _, cases := range [][]testCase{parseCases, imageIDCases} {
		for _, tc := range cases {
			f.Add(tc.in)
		}
	}
}

// checkResult checks the properties every result of Parse or ParseImageID
// must have.
func checkResult(t *testing.T, in string, r imageref.Reference, err error) {
	t.Helper()
	if err != nil {
		var e *imageref.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not *imageref.Error", err)
		}
		if e.Input != in {
			t.Fatalf("Error.Input = %q, want the input", e.Input)
		}
		if e.Reason == "" {
			t.Fatal("empty Reason")
		}
		if n := len(err.Error()); n > maxErrLen {
			t.Fatalf("error message has %d bytes: %.200s", n, err.Error())
		}
		if r != (imageref.Reference{}) {
			t.Fatalf("non-zero Reference %+v with error", r)
		}
		return
	}
	if r.IsImageID() {
		if r.Registry != "" || r.Tag != "" || r.Digest == "" {
			t.Fatalf("malformed image id %+v", r)
		}
	} else {
		if r.Registry == "" || r.Repository == "" {
			t.Fatalf("missing registry or repository in %+v", r)
		}
		if n := len(r.Name()); n > 255 {
			t.Fatalf("Name() has %d characters", n)
		}
		if len(r.Tag) > 128 {
			t.Fatalf("tag has %d characters", len(r.Tag))
		}
	}
	if r.IsImageID() && !strings.HasPrefix(r.Digest, "sha256:") {
		// A sha384 or sha512 image id comes only from ParseImageID: in a reference it reads as a repository
		// with a tag, as in docker's ParseAnyReference.
		return
	}
	for _, s := range []string{r.String(), r.Familiar()} {
		r2, err := imageref.Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) (from %+v): %v", s, r, err)
		}
		if r2 != r {
			t.Fatalf("Parse(%q) = %+v, want %+v", s, r2, r)
		}
	}
	if s := r.String(); len(s) > 0 {
		if r2, _ := imageref.Parse(s); r2.String() != s {
			t.Fatalf("String() not idempotent: %q -> %q", s, r2.String())
		}
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in string) {
		r, err := imageref.Parse(in)
		checkResult(t, in, r, err)
		if err == nil {
			// Whatever Parse accepts with a digest is also an image id.
			id, err := imageref.ParseImageID(in)
			if r.Digest != "" && (err != nil || id != r) {
				t.Fatalf("ParseImageID(%q) = %+v, %v; Parse gave %+v", in, id, err, r)
			}
			// Without a digest ParseImageID accepts it only as a bare id
			// with uppercase hex, which Parse reads as repository sha256.
			if r.Digest == "" && err == nil && !id.IsImageID() {
				t.Fatalf("ParseImageID(%q) = %+v, accepted a reference without digest", in, id)
			}
		}
	})
}

func FuzzParseImageID(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in string) {
		r, err := imageref.ParseImageID(in)
		checkResult(t, in, r, err)
		if err != nil {
			return
		}
		if r.Digest == "" {
			t.Fatalf("ParseImageID(%q) = %+v without digest", in, r)
		}
		if r2, err := imageref.ParseImageID(r.String()); err != nil || r2 != r {
			t.Fatalf("ParseImageID(%q) = %+v, %v; want %+v", r.String(), r2, err, r)
		}
	})
}
