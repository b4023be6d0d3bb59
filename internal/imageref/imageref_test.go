package imageref_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/runtrust/runtrust/internal/imageref"
)

var (
	h64      = strings.Repeat("0123456789abcdef", 4)
	h64Upper = strings.ToUpper(h64)
	h96      = strings.Repeat("0123456789abcdef", 6)
	h128     = strings.Repeat("f", 128)
	h32      = strings.Repeat("ab", 16)
	sha      = "sha256:" + h64
)

// ref builds an expected Reference.
func ref(registry, repository, tag, digest string) imageref.Reference {
	return imageref.Reference{Registry: registry, Repository: repository, Tag: tag, Digest: digest}
}

type testCase struct {
	in   string
	want imageref.Reference // for valid inputs
	str  string             // expected String(); for valid inputs
	fam  string             // expected Familiar(); for valid inputs
	err  string             // for invalid inputs: a substring of the Reason
}

func (tc testCase) valid() bool { return tc.err == "" }

// parseCases is the specification of Parse.
var parseCases = []testCase{
	// Docker Hub: implied registry, library/ prefix, aliases.
	{in: "nginx", want: ref("docker.io", "library/nginx", "latest", ""), str: "docker.io/library/nginx:latest", fam: "nginx:latest"},
	{in: "nginx:1.25", want: ref("docker.io", "library/nginx", "1.25", ""), str: "docker.io/library/nginx:1.25", fam: "nginx:1.25"},
	{in: "nginx:latest", want: ref("docker.io", "library/nginx", "latest", ""), str: "docker.io/library/nginx:latest", fam: "nginx:latest"},
	{in: "docker.io/library/nginx", want: ref("docker.io", "library/nginx", "latest", ""), str: "docker.io/library/nginx:latest", fam: "nginx:latest"},
	{in: "docker.io/nginx", want: ref("docker.io", "library/nginx", "latest", ""), str: "docker.io/library/nginx:latest", fam: "nginx:latest"},
	{in: "index.docker.io/nginx", want: ref("docker.io", "library/nginx", "latest", ""), str: "docker.io/library/nginx:latest", fam: "nginx:latest"},
	{in: "index.docker.io/library/nginx:1", want: ref("docker.io", "library/nginx", "1", ""), str: "docker.io/library/nginx:1", fam: "nginx:1"},
	{in: "registry-1.docker.io/library/nginx:latest", want: ref("docker.io", "library/nginx", "latest", ""), str: "docker.io/library/nginx:latest", fam: "nginx:latest"},
	{in: "Docker.IO/org/app", want: ref("docker.io", "org/app", "latest", ""), str: "docker.io/org/app:latest", fam: "org/app:latest"},
	{in: "org/app", want: ref("docker.io", "org/app", "latest", ""), str: "docker.io/org/app:latest", fam: "org/app:latest"},
	{in: "library/nginx:1", want: ref("docker.io", "library/nginx", "1", ""), str: "docker.io/library/nginx:1", fam: "nginx:1"},
	{in: "docker.io/library/a/b", want: ref("docker.io", "library/a/b", "latest", ""), str: "docker.io/library/a/b:latest", fam: "library/a/b:latest"},
	{in: "123/456", want: ref("docker.io", "123/456", "latest", ""), str: "docker.io/123/456:latest", fam: "123/456:latest"},
	{in: "test_com", want: ref("docker.io", "library/test_com", "latest", ""), str: "docker.io/library/test_com:latest", fam: "test_com:latest"},
	// A first component with '.' or ':' (and no '/' after the name) is a repository, not a host.
	{in: "foo_bar.com:8080", want: ref("docker.io", "library/foo_bar.com", "8080", ""), str: "docker.io/library/foo_bar.com:8080", fam: "foo_bar.com:8080"},
	{in: "foo/foo_bar.com:8080", want: ref("docker.io", "foo/foo_bar.com", "8080", ""), str: "docker.io/foo/foo_bar.com:8080", fam: "foo/foo_bar.com:8080"},
	{in: "test.com:5000", want: ref("docker.io", "library/test.com", "5000", ""), str: "docker.io/library/test.com:5000", fam: "test.com:5000"},
	{in: "localhost:5000", want: ref("docker.io", "library/localhost", "5000", ""), str: "docker.io/library/localhost:5000", fam: "localhost:5000"},
	// Docker Hub repositories whose short form would be read differently keep a prefix.
	{in: "docker.io/foo.bar/app", want: ref("docker.io", "foo.bar/app", "latest", ""), str: "docker.io/foo.bar/app:latest", fam: "docker.io/foo.bar/app:latest"},
	{in: "docker.io/localhost/app:1", want: ref("docker.io", "localhost/app", "1", ""), str: "docker.io/localhost/app:1", fam: "docker.io/localhost/app:1"},
	{in: "docker.io/library/" + h64, want: ref("docker.io", "library/"+h64, "latest", ""), str: "docker.io/library/" + h64 + ":latest", fam: h64 + ":latest"},
	{in: "docker.io/library/sha256:" + h64, want: ref("docker.io", "library/sha256", h64, ""), str: "docker.io/library/sha256:" + h64, fam: "library/sha256:" + h64},
	{in: h64 + ":tag", want: ref("docker.io", "library/"+h64, "tag", ""), str: "docker.io/library/" + h64 + ":tag", fam: h64 + ":tag"},
	{in: "sha256:" + h64[:63] + "g", want: ref("docker.io", "library/sha256", h64[:63]+"g", ""), str: "docker.io/library/sha256:" + h64[:63] + "g", fam: "sha256:" + h64[:63] + "g"},
	{in: "sha256:abc", want: ref("docker.io", "library/sha256", "abc", ""), str: "docker.io/library/sha256:abc", fam: "sha256:abc"},
	// Other registries.
	{in: "ghcr.io/org/app@" + sha, want: ref("ghcr.io", "org/app", "", sha), str: "ghcr.io/org/app@" + sha, fam: "ghcr.io/org/app@" + sha},
	{in: "ghcr.io/x/y:1", want: ref("ghcr.io", "x/y", "1", ""), str: "ghcr.io/x/y:1", fam: "ghcr.io/x/y:1"},
	{in: "GHCR.io/x/y", want: ref("ghcr.io", "x/y", "latest", ""), str: "ghcr.io/x/y:latest", fam: "ghcr.io/x/y:latest"},
	{in: "quay.io/prometheus/node-exporter:v1.7.0", want: ref("quay.io", "prometheus/node-exporter", "v1.7.0", ""), str: "quay.io/prometheus/node-exporter:v1.7.0", fam: "quay.io/prometheus/node-exporter:v1.7.0"},
	{in: "registry.k8s.io/pause:3.9", want: ref("registry.k8s.io", "pause", "3.9", ""), str: "registry.k8s.io/pause:3.9", fam: "registry.k8s.io/pause:3.9"},
	{in: "localhost/foo", want: ref("localhost", "foo", "latest", ""), str: "localhost/foo:latest", fam: "localhost/foo:latest"},
	{in: "localhost:5000/foo/bar", want: ref("localhost:5000", "foo/bar", "latest", ""), str: "localhost:5000/foo/bar:latest", fam: "localhost:5000/foo/bar:latest"},
	{in: "LocalHost:5000/foo", want: ref("localhost:5000", "foo", "latest", ""), str: "localhost:5000/foo:latest", fam: "localhost:5000/foo:latest"},
	{in: "localhost:65535/x", want: ref("localhost:65535", "x", "latest", ""), str: "localhost:65535/x:latest", fam: "localhost:65535/x:latest"},
	{in: "a.b.c.d:443/x", want: ref("a.b.c.d:443", "x", "latest", ""), str: "a.b.c.d:443/x:latest", fam: "a.b.c.d:443/x:latest"},
	{in: "test:5000/repo", want: ref("test:5000", "repo", "latest", ""), str: "test:5000/repo:latest", fam: "test:5000/repo:latest"},
	{in: "test:5000/repo:tag@" + sha, want: ref("test:5000", "repo", "tag", sha), str: "test:5000/repo:tag@" + sha, fam: "test:5000/repo:tag@" + sha},
	{in: "192.168.1.1/repo", want: ref("192.168.1.1", "repo", "latest", ""), str: "192.168.1.1/repo:latest", fam: "192.168.1.1/repo:latest"},
	{in: "192.168.1.1:5000/repo", want: ref("192.168.1.1:5000", "repo", "latest", ""), str: "192.168.1.1:5000/repo:latest", fam: "192.168.1.1:5000/repo:latest"},
	{in: "sub-dom1.foo.com/bar/baz/quux:some-long-tag", want: ref("sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", ""), str: "sub-dom1.foo.com/bar/baz/quux:some-long-tag", fam: "sub-dom1.foo.com/bar/baz/quux:some-long-tag"},
	{in: "b.gcr.io/test.example.com/my-app:test.example.com", want: ref("b.gcr.io", "test.example.com/my-app", "test.example.com", ""), str: "b.gcr.io/test.example.com/my-app:test.example.com", fam: "b.gcr.io/test.example.com/my-app:test.example.com"},
	{in: "xn--n3h.com/myimage:xn--n3h.com", want: ref("xn--n3h.com", "myimage", "xn--n3h.com", ""), str: "xn--n3h.com/myimage:xn--n3h.com", fam: "xn--n3h.com/myimage:xn--n3h.com"},
	{in: "xn--7o8h.com/myimage:xn--7o8h.com@sha512:" + h128, want: ref("xn--7o8h.com", "myimage", "xn--7o8h.com", "sha512:"+h128), str: "xn--7o8h.com/myimage:xn--7o8h.com@sha512:" + h128, fam: "xn--7o8h.com/myimage:xn--7o8h.com@sha512:" + h128},
	// A dot-less, port-less host recognized only by uppercase keeps its spelling.
	{in: "Foo/bar", want: ref("Foo", "bar", "latest", ""), str: "Foo/bar:latest", fam: "Foo/bar:latest"},
	// IPv6 hosts.
	{in: "[::1]:5000/app:1", want: ref("[::1]:5000", "app", "1", ""), str: "[::1]:5000/app:1", fam: "[::1]:5000/app:1"},
	{in: "[2001:db8::1]/app", want: ref("[2001:db8::1]", "app", "latest", ""), str: "[2001:db8::1]/app:latest", fam: "[2001:db8::1]/app:latest"},
	{in: "[2001:DB8::1]:5000/repo@" + sha, want: ref("[2001:db8::1]:5000", "repo", "", sha), str: "[2001:db8::1]:5000/repo@" + sha, fam: "[2001:db8::1]:5000/repo@" + sha},
	{in: "[2001:db8:1:2:3:4:5:6]/repo:tag", want: ref("[2001:db8:1:2:3:4:5:6]", "repo", "tag", ""), str: "[2001:db8:1:2:3:4:5:6]/repo:tag", fam: "[2001:db8:1:2:3:4:5:6]/repo:tag"},
	{in: "[2001:db8:3:4::192.0.2.33]:5000/repo", err: "IPv4-embedded IPv6 addresses are not supported"},
	// Path separators.
	{in: "foo__bar", want: ref("docker.io", "library/foo__bar", "latest", ""), str: "docker.io/library/foo__bar:latest", fam: "foo__bar:latest"},
	{in: "a-b--c_d__e/f---g.h", want: ref("docker.io", "a-b--c_d__e/f---g.h", "latest", ""), str: "docker.io/a-b--c_d__e/f---g.h:latest", fam: "a-b--c_d__e/f---g.h:latest"},
	{in: "a-b.c/d", want: ref("a-b.c", "d", "latest", ""), str: "a-b.c/d:latest", fam: "a-b.c/d:latest"}, // a dotted first component is a host
	// Tags.
	{in: "lowercase:Uppercase", want: ref("docker.io", "library/lowercase", "Uppercase", ""), str: "docker.io/library/lowercase:Uppercase", fam: "lowercase:Uppercase"},
	{in: "foo:_x.y-Z", want: ref("docker.io", "library/foo", "_x.y-Z", ""), str: "docker.io/library/foo:_x.y-Z", fam: "foo:_x.y-Z"},
	{in: "foo:" + strings.Repeat("a", 128), want: ref("docker.io", "library/foo", strings.Repeat("a", 128), ""), str: "docker.io/library/foo:" + strings.Repeat("a", 128), fam: "foo:" + strings.Repeat("a", 128)},
	// Digests.
	{in: "nginx@" + sha, want: ref("docker.io", "library/nginx", "", sha), str: "docker.io/library/nginx@" + sha, fam: "nginx@" + sha},
	{in: "nginx:1.25@" + sha, want: ref("docker.io", "library/nginx", "1.25", sha), str: "docker.io/library/nginx:1.25@" + sha, fam: "nginx:1.25@" + sha},
	{in: "nginx@sha256:" + h64Upper, want: ref("docker.io", "library/nginx", "", sha), str: "docker.io/library/nginx@" + sha, fam: "nginx@" + sha},
	{in: "nginx@sha384:" + h96, want: ref("docker.io", "library/nginx", "", "sha384:"+h96), str: "docker.io/library/nginx@sha384:" + h96, fam: "nginx@sha384:" + h96},
	{in: "nginx@blake3:" + h64, err: `unsupported digest algorithm "blake3"`},
	{in: "nginx@x.y+z_w-V1:" + strings.ToUpper(h32), err: `unsupported digest algorithm "x.y+z_w-V1"`},
	// Length limits: the normalized name may have 255 characters.
	{in: "localhost/" + strings.Repeat("a", 245), want: ref("localhost", strings.Repeat("a", 245), "latest", ""), str: "localhost/" + strings.Repeat("a", 245) + ":latest", fam: "localhost/" + strings.Repeat("a", 245) + ":latest"},
	{in: strings.Repeat("a/", 122) + "a:tag", want: ref("docker.io", strings.Repeat("a/", 122)+"a", "tag", ""), str: "docker.io/" + strings.Repeat("a/", 122) + "a:tag", fam: strings.Repeat("a/", 122) + "a:tag"},
	// Bare image ids.
	{in: sha, want: ref("", "", "", sha), str: sha, fam: sha},
	// A bare id needs lowercase hex (as in docker); otherwise it is a repository and tag.
	{in: "sha256:" + h64Upper, want: ref("docker.io", "library/sha256", h64Upper, ""), str: "docker.io/library/sha256:" + h64Upper, fam: "sha256:" + h64Upper},
	{in: h64Upper, err: "repository name must be lowercase"},
	{in: h64, want: ref("", "", "", sha), str: sha, fam: sha},
	// Only sha256 reads as a bare id in a reference (docker's ParseAnyReference): this is repository sha512.
	{in: "sha512:" + h128, want: ref("docker.io", "library/sha512", h128, ""), str: "docker.io/library/sha512:" + h128, fam: "sha512:" + h128},

	// Invalid: emptiness and whitespace.
	{in: "", err: "empty reference"},
	{in: " nginx", err: "leading or trailing whitespace"},
	{in: "nginx:1.25 ", err: "leading or trailing whitespace"},
	{in: "nginx\n", err: "leading or trailing whitespace"},
	{in: "\u00a0nginx", err: "leading or trailing whitespace"},
	{in: "ngi nx", err: "unexpected character ' ' at offset 3"},
	// Invalid: repository names.
	{in: "Uppercase:tag", err: "repository name must be lowercase"},
	{in: "example.com/Uppercase", err: "repository name must be lowercase"},
	{in: "test:5000/Uppercase/lowercase:tag", err: "repository name must be lowercase"},
	{in: "foo//bar", err: "empty path component at offset 4"},
	{in: "foo/", err: "empty path component at offset 4"},
	{in: "/foo", err: "empty path component at offset 0"},
	{in: "foo/-bar", err: "path component must start with a lowercase letter or digit"},
	{in: "-foo", err: "path component must start with a lowercase letter or digit"},
	{in: "foo-", err: "path component must end with a lowercase letter or digit"},
	{in: "foo_/bar", err: "path component must end with a lowercase letter or digit"},
	{in: "foo___bar", err: `invalid separator "___" at offset 3`},
	{in: "foo..bar", err: `invalid separator ".." at offset 3`},
	{in: "foo._bar", err: `invalid separator "._"`},
	{in: "foo-_bar", err: `invalid separator "-_"`},
	{in: "aa/asdf$$^/aa", err: "unexpected character '$' at offset 7"},
	{in: "foo:bar:baz", err: "unexpected character ':' at offset 3"},
	{in: "ü/bar", err: "unexpected character 'ü' at offset 0"},
	{in: "nginx\x00", err: `unexpected character '\x00' at offset 5`},
	{in: "\xff", err: `unexpected character "\xff" at offset 0`},
	{in: ":tag", err: "missing repository name"},
	{in: "@" + sha, err: "missing repository name"},
	{in: "docker.io/", err: "missing repository path"},
	{in: strings.Repeat("a/", 128) + "a:tag", err: "repository name too long (max 255)"},
	{in: "localhost/" + strings.Repeat("a", 246), err: "repository name too long (max 255)"},
	{in: strings.Repeat("a/", 122) + "ab", err: "repository name too long (max 255)"},
	// Invalid: registry hosts.
	{in: "localhost:0/foo", err: "invalid port in registry host"},
	{in: "localhost:65536/foo", err: "invalid port in registry host"},
	{in: "localhost:/foo", err: "invalid port in registry host: empty port"},
	{in: "localhost:50a0/foo", err: "invalid port in registry host: unexpected character 'a' at offset 12"},
	{in: "2001:db8::1/repo", err: "invalid port in registry host"},
	{in: ":5000/foo", err: "empty registry host"},
	{in: "foo..com/bar", err: "empty component in registry host"},
	{in: "-foo.com/bar", err: "may not start or end with '-'"},
	{in: "foo-.com/bar", err: "may not start or end with '-'"},
	{in: "foo_bar.com:8080/x", err: "unexpected character '_' at offset 3 in registry host"},
	{in: "Foo_Bar/x", err: "unexpected character '_' at offset 3 in registry host"},
	{in: "[fe80::1%25eth0]:5000/repo", err: "zone identifiers are not supported"},
	{in: "[::1/app", err: "unterminated '['"},
	{in: "[]:5000/app", err: "empty IPv6 address"},
	{in: "[::g]/app", err: "unexpected character 'g' at offset 3 in IPv6 registry host"},
	{in: "[1:2:3]/app", err: "invalid IPv6 address"},
	{in: "[1.2.3.4]:5000/app", err: "IPv4-embedded IPv6 addresses are not supported"},
	{in: "[::1]x/app", err: "unexpected character 'x' at offset 5 in registry host"},
	{in: "[::1]:5000", err: "bracketed registry host must be followed by '/'"},
	// Invalid: tags.
	{in: "foo/bar:", err: "empty tag"},
	{in: "foo:" + strings.Repeat("a", 129), err: "longer than 128 characters"},
	{in: "foo:.bar", err: `tag ".bar" is invalid: must start with a letter, digit or '_'`},
	{in: "foo:-bar", err: "must start with a letter, digit or '_'"},
	{in: "foo:a$b", err: `tag "a$b" is invalid: unexpected character '$' at offset 5`},
	// Invalid: digests.
	{in: "nginx@", err: "empty digest"},
	{in: "nginx@:" + h64, err: "digest algorithm missing"},
	{in: "nginx@" + h64, err: "digest algorithm missing"},
	{in: "nginx@sha256", err: "want algorithm:hex"},
	{in: "nginx@sha256:", err: "digest hex missing"},
	{in: "nginx@sha256:" + h64[:63], err: "digest hex too short (sha256 needs exactly 64 hex digits, got 63)"},
	{in: "nginx@sha256:" + h64 + "0", err: "digest hex too long"},
	{in: "nginx@sha384:" + h64, err: "sha384 needs exactly 96"},
	{in: "nginx@sha256:" + h64[:63] + "g", err: "digest hex has unexpected character 'g' at offset 76"},
	{in: "nginx@foo:" + h32[:31], err: `unsupported digest algorithm "foo"`},
	{in: "nginx@1sha:" + h32, err: "each component must start with a letter"},
	{in: "nginx@sha256+:" + h64, err: "must not end with a separator"},
	{in: "nginx@sha++256:" + h64, err: "misplaced separator '+'"},
	{in: "nginx@sh$a:" + h64, err: "unexpected character '$'"},
	{in: "nginx@" + sha + "@x", err: "digest hex has unexpected character '@'"},
	{in: "foo/bar@" + sha + ":tag", err: "digest hex has unexpected character ':'"},
}

// imageIDCases is the specification of ParseImageID.
var imageIDCases = []testCase{
	{in: "docker-pullable://nginx@" + sha, want: ref("docker.io", "library/nginx", "", sha), str: "docker.io/library/nginx@" + sha, fam: "nginx@" + sha},
	{in: "docker-pullable://ghcr.io/org/app@" + sha, want: ref("ghcr.io", "org/app", "", sha), str: "ghcr.io/org/app@" + sha, fam: "ghcr.io/org/app@" + sha},
	{in: "docker-pullable://nginx:1.25@" + sha, want: ref("docker.io", "library/nginx", "1.25", sha), str: "docker.io/library/nginx:1.25@" + sha, fam: "nginx:1.25@" + sha},
	{in: "docker://" + sha, want: ref("", "", "", sha), str: sha, fam: sha},
	{in: "docker://sha256:" + h64Upper, want: ref("", "", "", sha), str: sha, fam: sha},
	{in: sha, want: ref("", "", "", sha), str: sha, fam: sha},
	{in: h64, want: ref("", "", "", sha), str: sha, fam: sha},
	{in: h64Upper, want: ref("", "", "", sha), str: sha, fam: sha}, // ParseImageID takes either case
	{in: "sha256:" + h64Upper, want: ref("", "", "", sha), str: sha, fam: sha},
	{in: "docker.io/library/nginx@" + sha, want: ref("docker.io", "library/nginx", "", sha), str: "docker.io/library/nginx@" + sha, fam: "nginx@" + sha},
	{in: "registry.k8s.io/pause@" + sha, want: ref("registry.k8s.io", "pause", "", sha), str: "registry.k8s.io/pause@" + sha, fam: "registry.k8s.io/pause@" + sha},

	{in: "", err: "empty reference"},
	{in: "docker://", err: `missing image id after "docker://"`},
	{in: "docker-pullable://", err: `missing image id after "docker-pullable://"`},
	{in: "nginx:1.25", err: "image id has no digest"},
	{in: "docker-pullable://nginx", err: "image id has no digest"},
	{in: "docker://nginx@sha256:abc", err: "digest hex too short"},
	{in: "docker:// " + sha, err: "leading or trailing whitespace"},
	{in: "containerd://" + sha, err: "invalid port in registry host"},
	// Offsets count from the start of the whole input, prefix included.
	{in: "docker-pullable://Nginx@" + sha, err: "repository name must be lowercase ('N' at offset 18)"},
}

func runCases(t *testing.T, parse func(string) (imageref.Reference, error), cases []testCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(shortName(tc.in), func(t *testing.T) {
			got, err := parse(tc.in)
			if !tc.valid() {
				if err == nil {
					t.Fatalf("parse(%q) = %+v, want error containing %q", tc.in, got, tc.err)
				}
				var e *imageref.Error
				if !errors.As(err, &e) {
					t.Fatalf("parse(%q) error %T is not *imageref.Error", tc.in, err)
				}
				if !strings.Contains(e.Reason, tc.err) {
					t.Fatalf("parse(%q) reason = %q, want it to contain %q", tc.in, e.Reason, tc.err)
				}
				if e.Input != tc.in {
					t.Errorf("Error.Input = %q, want %q", e.Input, tc.in)
				}
				if got != (imageref.Reference{}) {
					t.Errorf("parse(%q) returned %+v with the error, want zero Reference", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("parse(%q) =\n  %+v, want\n  %+v", tc.in, got, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Errorf("String() = %q, want %q", s, tc.str)
			}
			if s := got.Familiar(); s != tc.fam {
				t.Errorf("Familiar() = %q, want %q", s, tc.fam)
			}
			if got.HasTag() != (tc.want.Tag != "") || got.HasDigest() != (tc.want.Digest != "") {
				t.Errorf("HasTag/HasDigest = %v/%v for %+v", got.HasTag(), got.HasDigest(), got)
			}
			if got.IsImageID() != (tc.want.Repository == "") {
				t.Errorf("IsImageID() = %v for %+v", got.IsImageID(), got)
			}
		})
	}
}

func shortName(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func TestParse(t *testing.T) { runCases(t, imageref.Parse, parseCases) }

func TestParseImageID(t *testing.T) { runCases(t, imageref.ParseImageID, imageIDCases) }

// TestRoundTrip checks that String() and Familiar() of every valid reference
// parse back to the same Reference.
func TestRoundTrip(t *testing.T) {
	for _, cases := range [][]testCase{parseCases, imageIDCases} {
		for _, tc := range cases {
			if !tc.valid() {
				continue
			}
			r := tc.want
			for _, s := range []string{r.String(), r.Familiar()} {
				got, err := imageref.Parse(s)
				if err != nil {
					t.Errorf("%q: Parse(%q): %v", tc.in, s, err)
					continue
				}
				if got != r {
					t.Errorf("%q: Parse(%q) = %+v, want %+v", tc.in, s, got, r)
				}
			}
		}
	}
}

func TestNameAndHost(t *testing.T) {
	for _, tc := range []struct{ in, name, host string }{
		{"nginx", "docker.io/library/nginx", "docker.io"},
		{"localhost:5000/foo", "localhost:5000/foo", "localhost"},
		{"[::1]:5000/app:1", "[::1]:5000/app", "::1"},
		{"[2001:db8::1]/app", "[2001:db8::1]/app", "2001:db8::1"},
		{"ghcr.io/org/app@" + sha, "ghcr.io/org/app", "ghcr.io"},
		{"Foo/bar", "Foo/bar", "Foo"},
		{sha, "", ""},
	} {
		r, err := imageref.Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if got := r.Name(); got != tc.name {
			t.Errorf("Parse(%q).Name() = %q, want %q", tc.in, got, tc.name)
		}
		if got := r.Host(); got != tc.host {
			t.Errorf("Parse(%q).Host() = %q, want %q", tc.in, got, tc.host)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := imageref.Parse("Uppercase:tag")
	want := `invalid image reference "Uppercase:tag": repository name must be lowercase ('U' at offset 0)`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}

	// A huge input gives a short message, and the cut keeps UTF-8 valid.
	huge := strings.Repeat("é", 1<<19) // 1 MiB
	_, err = imageref.Parse(huge)
	if err == nil {
		t.Fatal("Parse(huge) succeeded")
	}
	msg := err.Error()
	if len(msg) > 300 {
		t.Fatalf("error message has %d bytes: %.400s", len(msg), msg)
	}
	if !strings.Contains(msg, "é…\"") {
		t.Errorf("message %q does not end the quoted input with …", msg)
	}
	_, err = imageref.Parse("foo:" + strings.Repeat("a", 1<<20))
	if err == nil || len(err.Error()) > 400 {
		t.Fatalf("huge tag: err = %.500v", err)
	}
}

// TestAllocs pins the allocation budget of the common cases.
func TestAllocs(t *testing.T) {
	for _, tc := range []struct {
		in  string
		max float64
	}{
		{"ghcr.io/org/app@" + sha, 0},
		{"docker.io/library/nginx:1.25", 0},
		{"nginx:1.25", 1}, // "library/" + "nginx"
	} {
		n := testing.AllocsPerRun(100, func() {
			if _, err := imageref.Parse(tc.in); err != nil {
				t.Fatal(err)
			}
		})
		if n > tc.max {
			t.Errorf("Parse(%q) allocates %v times, want ≤ %v", tc.in, n, tc.max)
		}
	}
}
