package vulndb

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	apkversion "github.com/knqyf263/go-apk-version"
	debversion "github.com/knqyf263/go-deb-version"
	rpmversion "github.com/knqyf263/go-rpm-version"
	"golang.org/x/mod/semver"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// kind is how the versions of an ecosystem are ordered: by the package manager's own rules (dpkg, apk, rpm)
// or by semantic versioning (Go modules and the Go toolchain, and any OSV range of type SEMVER).
type kind uint8

const (
	kindNone kind = iota
	kindDeb
	kindAPK
	kindRPM
	kindSemver
	kindCount
)

func (k kind) String() string {
	switch k {
	case kindDeb:
		return "deb"
	case kindAPK:
		return "apk"
	case kindRPM:
		return "rpm"
	case kindSemver:
		return "semver"
	}
	return "none"
}

// kindOfType is the ordering of an SBOM package type's versions.
func kindOfType(pkgType string) kind {
	switch pkgType {
	case sbom.TypeDeb:
		return kindDeb
	case sbom.TypeAPK:
		return kindAPK
	case sbom.TypeRPM:
		return kindRPM
	case sbom.TypeGoModule:
		return kindSemver
	}
	return kindNone
}

// maxVersionLen bounds a version string: real ones are well under 100 bytes, and the comparison libraries walk
// the whole string on every compare.
const maxVersionLen = 256

// errNoKind is returned for a version of a package type no ordering is known for.
var errNoKind = errors.New("no version ordering for this package type")

// version is a version string parsed once for its kind, so an index built at load compares without parsing
// again at match time.
type version struct {
	kind kind
	raw  string             // as written by the SBOM or the advisory
	deb  debversion.Version // kindDeb
	rpm  rpmversion.Version // kindRPM
	norm string             // kindAPK: the validated string; kindSemver: the canonical "vX.Y.Z[-pre]"
}

// parseVersion parses s in kind k. An error means s cannot be ordered: the caller must not treat it as
// affected (nor as safe), but report it.
func parseVersion(k kind, s string) (version, error) {
	s = strings.TrimSpace(s)
	v := version{kind: k, raw: s}
	switch {
	case s == "":
		return v, errors.New("empty version")
	case len(s) > maxVersionLen:
		return v, fmt.Errorf("version longer than %d bytes", maxVersionLen)
	}
	var err error
	switch k {
	case kindDeb:
		v.deb, err = debversion.NewVersion(s)
	case kindAPK:
		// go-apk-version accepts "-r1"; apk itself wants a version to start with a digit.
		if !apkversion.Valid(s) || s[0] < '0' || s[0] > '9' {
			err = errors.New("not an apk version")
		}
		v.norm = s
	case kindRPM:
		if err = validRPM(s); err == nil {
			v.rpm = rpmversion.NewVersion(s)
		}
	case kindSemver:
		var ok bool
		if v.norm, ok = canonicalSemver(s); !ok {
			err = errors.New("not a semantic version")
		}
	default:
		err = errNoKind
	}
	if err != nil {
		return v, fmt.Errorf("%s version %q: %w", k, s, err)
	}
	return v, nil
}

// compare orders two versions of the same kind: -1, 0 or +1. Versions of different kinds never meet (an index
// holds one kind per range); should they, they are ordered by their text rather than by a panic.
func (a version) compare(b version) int {
	if a.kind != b.kind {
		return strings.Compare(a.raw, b.raw)
	}
	switch a.kind {
	case kindDeb:
		return sign(a.deb.Compare(b.deb)) // go-deb-version returns the difference of the first unequal parts
	case kindAPK:
		return sign(apkversion.Version(a.norm).Compare(apkversion.Version(b.norm)))
	case kindRPM:
		return sign(a.rpm.Compare(b.rpm))
	case kindSemver:
		return semver.Compare(a.norm, b.norm)
	}
	return strings.Compare(a.raw, b.raw)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// CompareVersions orders two versions of an SBOM package type (sbom.TypeDeb, TypeAPK, TypeRPM, TypeGoModule)
// by that ecosystem's rules: -1 when a < b, 0 when equal, +1 when a > b. Go versions may be written with or
// without "v", and Go toolchain versions as "go1.22.3" or "go1.23rc1". An error says which version could not
// be parsed.
func CompareVersions(pkgType, a, b string) (int, error) {
	k := kindOfType(pkgType)
	if k == kindNone {
		return 0, fmt.Errorf("vulndb: package type %q: %w", pkgType, errNoKind)
	}
	va, err := parseVersion(k, a)
	if err != nil {
		return 0, err
	}
	vb, err := parseVersion(k, b)
	if err != nil {
		return 0, err
	}
	return va.compare(vb), nil
}

// goToolchain matches a Go release as the toolchain names it once "go" or "v" is cut off: 1.22, 1.22.3,
// 1.23rc1, 1.21beta2.
var goToolchain = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?(?:(beta|rc)(\d+))?$`)

// canonicalSemver turns a Go module version ("v1.2.3", "1.2.3", "v0.0.0-2023…-abcdef", "v2.0.0+incompatible")
// or a Go toolchain version ("go1.22.3", "1.22", "go1.23rc1", "go1.22.3 X:boringcrypto") into the canonical
// semver golang.org/x/mod/semver compares. Toolchain pre-releases become "v1.23.0-rc.1", as the Go
// vulnerability database writes them.
func canonicalSemver(s string) (string, bool) {
	if i := strings.IndexByte(s, ' '); i >= 0 { // "go1.22.3 X:boringcrypto": the experiment is not the version
		s = s[:i]
	}
	bare := strings.TrimPrefix(strings.TrimPrefix(s, "go"), "v")
	if semver.IsValid("v" + bare) {
		return semver.Canonical("v" + bare), true
	}
	m := goToolchain.FindStringSubmatch(bare)
	if m == nil {
		return "", false
	}
	patch := m[3]
	if patch == "" {
		patch = "0"
	}
	c := "v" + m[1] + "." + m[2] + "." + patch
	if m[4] != "" {
		c += "-" + m[4] + "." + m[5]
	}
	if !semver.IsValid(c) {
		return "", false
	}
	return semver.Canonical(c), true
}

// validRPM checks what go-rpm-version does not: it orders any string, so "" or "abc: def" would compare
// without complaint. An rpm EVR is [epoch:]version[-release], the epoch a number, the rest made of
// alphanumerics and . _ + ~ ^.
func validRPM(s string) error {
	evr := s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		epoch := s[:i]
		if epoch == "" || strings.Trim(epoch, "0123456789") != "" || len(epoch) > 9 {
			return errors.New("epoch is not a number")
		}
		evr = s[i+1:]
	}
	ver, _, _ := strings.Cut(evr, "-")
	if ver == "" {
		return errors.New("no version before the release")
	}
	hasAlnum := false
	for _, r := range evr {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			hasAlnum = true
		case strings.ContainsRune("._+~^-", r):
		default:
			return fmt.Errorf("character %q", r)
		}
	}
	if !hasAlnum {
		return errors.New("no digit or letter")
	}
	return nil
}
