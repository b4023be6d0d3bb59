package configerr

import (
	"errors"
	"io/fs"
	"testing"
)

func TestPrefix(t *testing.T) {
	inner := errors.Join(errors.New("ca_file: missing"), errors.Join(errors.New("a: bad"), errors.New("b: bad")))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil stays nil", Prefix("tls", nil), ""},
		{"single", Prefix("tls", errors.New("ca_file: missing")), "tls.ca_file: missing"},
		{"joined and nested", Prefix("tls", inner), "tls.ca_file: missing\ntls.a: bad\ntls.b: bad"},
		{"index", Index("registries", 2, errors.New("name: empty")), "registries[2].name: empty"},
		{"twice", Prefix("processor", Index("rules", 0, errors.New("x: y"))), "processor.rules[0].x: y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if tc.err != nil {
				got = tc.err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if !errors.Is(Prefix("f", fs.ErrNotExist), fs.ErrNotExist) {
		t.Error("Prefix hides the wrapped error from errors.Is")
	}
}
