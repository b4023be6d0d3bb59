package imageref

import (
	"bufio"
	"errors"
	// containerd links crypto/sha512 (TLS needs it), so go-digest there supports sha384 and sha512; without
	// the import, this test binary's go-digest would refuse them.
	_ "crypto/sha512"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// distributionCases reads testdata/distribution-cases.txt: the string literals of distribution/reference's own
// tests (see the file's header for where they come from and their license).
func distributionCases(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("testdata/distribution-cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := strconv.Unquote(line)
		if err != nil {
			t.Fatalf("testdata/distribution-cases.txt: %q: %v", line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// agreesWithDistribution compares Parse with what containerd's ParseDockerRef (distribution/reference plus
// go-digest) makes of s: the same accept or refuse, and the same normalized reference. It returns "" when they
// agree, else what differs; documentedDifference says which differences are on purpose.
func agreesWithDistribution(s string) string {
	want, werr := reference.ParseDockerRef(s)
	got, gerr := Parse(s)
	switch {
	case werr != nil && gerr != nil:
		return ""
	case werr != nil:
		return "imageref accepts it as " + got.String() + "; distribution refuses it: " + werr.Error()
	case gerr != nil:
		return "imageref refuses it (" + gerr.Error() + "); distribution accepts it as " + want.String()
	case withoutTagBesideDigest(got) != want.String():
		return "imageref normalizes it to " + got.String() + ", distribution to " + want.String()
	}
	return ""
}

// withoutTagBesideDigest is r as ParseDockerRef spells it: a tag beside a digest dropped. imageref keeps it on
// purpose (the package documentation says why), so the comparison leaves it out.
func withoutTagBesideDigest(r Reference) string {
	if r.HasDigest() {
		r.Tag = ""
	}
	return r.String()
}

// documentedDifference says why imageref and distribution may differ on s (docs/decisions.md, "Image references
// as the runtimes read them"), or "" when they must agree.
func documentedDifference(s string) string {
	switch {
	case isBareID(s):
		// A pod status's imageID and `docker images --no-trunc` print bare ids; ParseDockerRef refuses them (or
		// reads sha256:<hex> as a repository with a tag), ParseAnyReference accepts them, as imageref does.
		return "bare image id"
	case hostCaseOnly(s):
		// DNS names are case-insensitive; imageref lowercases the host so two spellings compare equal, where
		// distribution keeps the spelling (the package documentation has the one exception).
		return "registry host lowercased"
	case stricterReason(s) != "":
		return stricterReason(s)
	case hasUpperHexDigest(s):
		// go-digest refuses uppercase hex; imageref lowercases it: it names the same content, and a record
		// carrying it is better kept, with the digest as registries write it, than lost.
		return "uppercase digest hex"
	}
	return ""
}

func hasUpperHexDigest(s string) bool {
	_, d, ok := strings.Cut(s, "@")
	return ok && strings.ContainsAny(d, "ABCDEF") && strings.ToLower(d) != d && isLowerHex(strings.ToLower(d[strings.IndexByte(d, ':')+1:]))
}

// hostCaseOnly says whether the parsers agree once the registry host of s is lowercased.
func hostCaseOnly(s string) bool {
	i := strings.IndexByte(s, '/')
	if i < 0 || strings.ToLower(s[:i]) == s[:i] {
		return false
	}
	lowered := strings.ToLower(s[:i]) + s[i:]
	return agreesWithDistribution(lowered) == "" && agreesWithDistribution(s) != "" && parsesSame(s, lowered)
}

func parsesSame(a, b string) bool {
	ra, ea := Parse(a)
	rb, eb := Parse(b)
	return ea == nil && eb == nil && ra == rb
}

// stricterChecks are the Reasons imageref refuses with where distribution's grammar alone accepts: a registry
// host no client could reach. distribution takes any digits as a port and any hex and colons in brackets as an
// IPv6 address, and reads a first component that looks like a host but is not a valid one ("a_b.c/app") as a
// repository path with no registry at all; imageref checks the port is 1..65535, the address parses, and the
// host is a host. imageref also bounds the normalized name (with docker.io/library/ added) at 255, the name the
// registry sees, where distribution lets it through.
var stricterChecks = []string{"invalid port in registry host", "invalid IPv6 address", "is not an IPv6 address", "in registry host",
	"repository name too long"}

// stricterReason is the check imageref refuses s by that distribution does not make, if it is one.
func stricterReason(s string) string {
	_, err := Parse(s)
	var e *Error
	if !errors.As(err, &e) {
		return ""
	}
	for _, c := range stricterChecks {
		if strings.Contains(e.Reason, c) {
			return "imageref is stricter: " + c
		}
	}
	return ""
}

func isBareID(s string) bool {
	hex := strings.TrimPrefix(s, "sha256:")
	return len(hex) == 64 && isLowerHex(hex)
}

// TestAgreesWithDistributionTables runs distribution/reference's own test inputs through both parsers.
func TestAgreesWithDistributionTables(t *testing.T) {
	cases := distributionCases(t)
	if len(cases) < 200 {
		t.Fatalf("%d cases read; the file holds about 290", len(cases))
	}
	for _, s := range cases {
		if diff := agreesWithDistribution(s); diff != "" {
			if why := documentedDifference(s); why == "" {
				t.Errorf("%q: %s", s, diff)
			}
		}
	}
}

// FuzzAgreesWithDistribution is the differential fuzz target: on any input, imageref and distribution agree
// but for the documented differences.
func FuzzAgreesWithDistribution(f *testing.F) {
	for _, s := range distributionCases(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if diff := agreesWithDistribution(s); diff != "" && documentedDifference(s) == "" {
			t.Errorf("%q: %s", s, diff)
		}
	})
}
