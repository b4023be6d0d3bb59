package sbom

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"
)

// testLinks is a filesystem of symlinks as images have them.
var testLinks = map[string]string{
	"/bin":                  "usr/bin", // merged /usr
	"/lib":                  "usr/lib",
	"/usr/bin/sh":           "dash",
	"/etc/os-release":       "../usr/lib/os-release",
	"/usr/bin/awk":          "/etc/alternatives/awk",
	"/etc/alternatives/awk": "/usr/bin/mawk",
	"/usr/lib64":            "lib",
	"/loop/a":               "b",
	"/loop/b":               "a",
	"/up":                   "../../../..",
	"/abs":                  "/",
	"/self":                 ".",
	"/empty":                "",
}

func TestResolvePath(t *testing.T) {
	tests := []struct {
		path       string
		followLast bool
		want       string
		wantErr    error
	}{
		{"/bin/bash", false, "/usr/bin/bash", nil},
		{"/bin/sh", false, "/usr/bin/sh", nil},
		{"/bin/sh", true, "/usr/bin/dash", nil},
		{"/etc/os-release", true, "/usr/lib/os-release", nil},
		{"/etc/os-release", false, "/etc/os-release", nil},
		{"/usr/bin/awk", true, "/usr/bin/mawk", nil}, // absolute link to an absolute link
		{"/usr/lib64/libc.so.6", false, "/usr/lib/libc.so.6", nil},
		{"/lib/x86_64-linux-gnu/libc.so.6", false, "/usr/lib/x86_64-linux-gnu/libc.so.6", nil},
		{"/up/etc/passwd", false, "/etc/passwd", nil}, // ".." clamped at the root
		{"/../../etc/passwd", true, "/etc/passwd", nil},
		{"/abs/abs/usr/bin/env", false, "/usr/bin/env", nil}, // absolute targets are against the image root
		{"/self/self/x", false, "/x", nil},
		{"/empty/x", false, "/x", nil},
		{"usr//bin/./bash", false, "/usr/bin/bash", nil},
		{"/bin/../etc", true, "/usr/etc", nil}, // ".." after a link leaves the link's target, as the kernel does
		{"", true, "/", nil},
		{"/", true, "/", nil},
		{"/loop/a", false, "/loop/a", nil}, // the last component is not followed
		{"/loop/a", true, "", errSymlinkLoop},
		{"/loop/a/x", false, "", errSymlinkLoop},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.path, tt.followLast), func(t *testing.T) {
			got, err := resolvePath(testLinks, tt.path, tt.followLast)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("resolvePath(%q, %v) = %q, %v; want %q, %v", tt.path, tt.followLast, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestResolvePathHops checks the bound is Linux's: 40 links on the way resolve, 41 do not.
func TestResolvePathHops(t *testing.T) {
	chain := func(n int) map[string]string {
		links := map[string]string{}
		for i := range n {
			links[fmt.Sprintf("/c%d", i)] = fmt.Sprintf("c%d", i+1)
		}
		return links
	}
	if got, err := resolvePath(chain(maxLinkHops), "/c0", true); err != nil || got != fmt.Sprintf("/c%d", maxLinkHops) {
		t.Errorf("%d links: got %q, %v", maxLinkHops, got, err)
	}
	if _, err := resolvePath(chain(maxLinkHops+1), "/c0", true); !errors.Is(err, errSymlinkLoop) {
		t.Errorf("%d links: got %v, want %v", maxLinkHops+1, err, errSymlinkLoop)
	}
}

// TestResolverFile checks the memoizing resolver agrees with resolvePath.
func TestResolverFile(t *testing.T) {
	r := newResolver(testLinks)
	for _, p := range []string{"/bin/bash", "/bin/sh", "/lib/x/y", "/up/etc/passwd", "/usr/bin/awk", "/", "/x"} {
		want, wantErr := resolvePath(testLinks, p, false)
		for range 2 { // the second time from the memo
			if got, err := r.file(p); got != want || !errors.Is(err, wantErr) {
				t.Errorf("file(%q) = %q, %v; want %q, %v", p, got, err, want, wantErr)
			}
		}
	}
	if _, err := r.file("/loop/a/x"); !errors.Is(err, errSymlinkLoop) {
		t.Errorf("file(/loop/a/x): %v, want %v", err, errSymlinkLoop)
	}
}

// FuzzResolve: resolving never panics, always ends, and never leaves the root.
func FuzzResolve(f *testing.F) {
	f.Add("/bin/bash", "/bin", "usr/bin", "/usr/bin/bash", "../../x", true)
	f.Add("/a/b/c", "/a", "/a/b", "/a/b", "..", false)
	f.Add("../../..", "/x", "/", "/y", "x/../../y", true)
	f.Add("/l/l/l/l", "/l", "l", "/m", "/l/l", true)
	f.Fuzz(func(t *testing.T, p, k1, t1, k2, t2 string, followLast bool) {
		links := map[string]string{absPath(k1): t1, absPath(k2): t2}
		got, err := resolvePath(links, p, followLast)
		if err != nil {
			if !errors.Is(err, errSymlinkLoop) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !strings.HasPrefix(got, "/") || path.Clean(got) != got {
			t.Fatalf("resolvePath(%q) = %q: not absolute and clean", p, got)
		}
		for _, c := range strings.Split(got, "/") {
			if c == ".." {
				t.Fatalf("resolvePath(%q) = %q: escapes the root", p, got)
			}
		}
	})
}
