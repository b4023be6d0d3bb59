package sbom

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// purl is a package URL (https://github.com/package-url/purl-spec):
// pkg:type/namespace/name@version?qualifiers#subpath. No small maintained library is in go.mod, and we need only
// parsing and printing, so this is a minimal reader and writer of the spec.
type purl struct {
	Type       string
	Namespace  string // "/"-separated segments, decoded
	Name       string
	Version    string
	Qualifiers map[string]string
	Subpath    string
}

// parsePURL reads s, decoding percent-escapes; it names what is wrong when s is not a package URL.
func parsePURL(s string) (purl, error) {
	var p purl
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(scheme, "pkg") {
		return p, fmt.Errorf("purl %q: no \"pkg\" scheme", s)
	}
	rest = strings.TrimLeft(rest, "/")
	rest, p.Subpath, _ = strings.Cut(rest, "#")
	rest, quals, _ := strings.Cut(rest, "?")
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		v, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return p, fmt.Errorf("purl %q: version: %w", s, err)
		}
		p.Version, rest = v, rest[:i]
	}
	typ, path, ok := strings.Cut(rest, "/")
	if !ok || typ == "" {
		return p, fmt.Errorf("purl %q: no type/name", s)
	}
	p.Type = strings.ToLower(typ)
	segs, err := unescapeSegments(strings.Trim(path, "/"))
	if err != nil {
		return p, fmt.Errorf("purl %q: %w", s, err)
	}
	if len(segs) == 0 || segs[len(segs)-1] == "" {
		return p, fmt.Errorf("purl %q: no name", s)
	}
	p.Name = segs[len(segs)-1]
	p.Namespace = strings.Join(segs[:len(segs)-1], "/")
	if p.Qualifiers, err = parseQualifiers(quals); err != nil {
		return p, fmt.Errorf("purl %q: %w", s, err)
	}
	return p, nil
}

func unescapeSegments(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	var segs []string
	for _, seg := range strings.Split(path, "/") {
		if seg == "" {
			continue // the spec tells to ignore empty segments
		}
		v, err := url.PathUnescape(seg)
		if err != nil {
			return nil, fmt.Errorf("segment %q: %w", seg, err)
		}
		segs = append(segs, v)
	}
	return segs, nil
}

func parseQualifiers(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	q := map[string]string{}
	for _, kv := range strings.Split(s, "&") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue // a qualifier without a key or value carries nothing
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("qualifier %q: %w", k, err)
		}
		if val != "" {
			q[strings.ToLower(k)] = val
		}
	}
	return q, nil
}

// String prints p canonically: segments and values percent-encoded, qualifiers sorted by key.
func (p purl) String() string {
	var b strings.Builder
	b.WriteString("pkg:")
	b.WriteString(p.Type)
	b.WriteByte('/')
	if p.Namespace != "" {
		for _, seg := range strings.Split(p.Namespace, "/") {
			b.WriteString(escapePURL(seg))
			b.WriteByte('/')
		}
	}
	b.WriteString(escapePURL(p.Name))
	if p.Version != "" {
		b.WriteByte('@')
		b.WriteString(escapePURL(p.Version))
	}
	keys := make([]string, 0, len(p.Qualifiers))
	for k, v := range p.Qualifiers {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i, k := range keys {
		b.WriteByte("?&"[min(i, 1)])
		b.WriteString(k + "=" + escapePURL(p.Qualifiers[k]))
	}
	if p.Subpath != "" {
		b.WriteString("#" + p.Subpath)
	}
	return b.String()
}

// escapePURL percent-encodes everything but the unreserved characters and ':' (which the spec leaves as is, so
// Debian epochs read "1:2.3-4").
func escapePURL(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~:", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// distroFromQualifier reads the purl "distro" qualifier, "debian-12" or "alpine-3.19.1"; some tools write the
// version alone ("3.19.1"), then the ID is the purl namespace ("alpine").
func distroFromQualifier(p purl) Distro {
	q := p.Qualifiers["distro"]
	if q == "" {
		return Distro{}
	}
	for i := len(q) - 1; i > 0; i-- {
		if q[i-1] == '-' && isDigit(q[i]) {
			return Distro{ID: q[:i-1], VersionID: q[i:]}
		}
	}
	if isDigit(q[0]) {
		return Distro{ID: p.Namespace, VersionID: q}
	}
	return Distro{ID: q}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// sourceFromQualifier reads the source package from the purl "upstream" qualifier: "bash" or "glibc@2.36-9" for
// deb and apk, the source rpm file name ("acl-2.2.53-1.el8.src.rpm") for rpm.
func sourceFromQualifier(p purl) (name, version string) {
	up := p.Qualifiers["upstream"]
	if up == "" {
		return "", ""
	}
	if p.Type == TypeRPM {
		return splitSourceRPM(up)
	}
	name, version, _ = strings.Cut(up, "@")
	return name, version
}

// splitSourceRPM splits "name-version-release.src.rpm" into name and "version-release".
func splitSourceRPM(srpm string) (name, version string) {
	base := strings.TrimSuffix(srpm, ".src.rpm")
	rel := strings.LastIndexByte(base, '-')
	if rel <= 0 {
		return base, ""
	}
	ver := strings.LastIndexByte(base[:rel], '-')
	if ver <= 0 {
		return base, ""
	}
	return base[:ver], base[ver+1:]
}

var errNoPURL = errors.New("no package URL")

// packageFromPURL makes the Package a document entry describes by its purl, taking the name from the purl
// (namespace/name for Go modules, whose import path is the name) and the version from the document when the
// purl has none.
func packageFromPURL(s, version string) (Package, error) {
	if s == "" {
		return Package{}, errNoPURL
	}
	p, err := parsePURL(s)
	if err != nil {
		return Package{}, err
	}
	pkg := Package{Name: p.Name, Version: p.Version, Type: p.Type, PURL: s} // the package types are the purl types
	if p.Type == TypeGoModule && p.Namespace != "" {
		pkg.Name = p.Namespace + "/" + p.Name
	}
	if pkg.Version == "" {
		pkg.Version = version
	}
	pkg.SourceName, pkg.SourceVersion = sourceFromQualifier(p)
	return pkg, nil
}
