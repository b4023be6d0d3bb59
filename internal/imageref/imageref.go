package imageref

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reference is a normalized image reference.
type Reference struct {
	// Registry is the normalized host[:port]: lowercased (see the package
	// documentation for the one exception), "docker.io" for Docker Hub with
	// its aliases index.docker.io and registry-1.docker.io folded in. It is
	// empty only for a bare image id.
	Registry string
	// Repository is the path inside the registry, e.g. "library/nginx". It
	// is empty only for a bare image id.
	Repository string
	// Tag is DefaultTag ("latest") when the reference names neither a tag nor a digest, as runtimes read it;
	// "" when it names only a digest.
	Tag string
	// Digest is "algorithm:hex" when present, with the hex lowercased.
	Digest string
}

// DefaultRegistry is the registry implied when a reference names none.
const DefaultRegistry = "docker.io"

// DefaultTag is the tag implied when a reference names neither a tag nor a digest.
const DefaultTag = "latest"

const (
	maxNameLen = 255 // registry + "/" + repository, after normalization
	maxTagLen  = 128
	maxQuoted  = 80 // bytes of user input quoted in an error message
)

// Error reports an invalid image reference. Parse and ParseImageID return
// errors of type *Error.
type Error struct {
	Input  string // the whole input, as given
	Reason string // what is wrong with it
}

// Error returns `invalid image reference "INPUT": REASON`, with INPUT cut to
// its first 80 bytes.
func (e *Error) Error() string {
	return "invalid image reference " + quoteTrunc(e.Input) + ": " + e.Reason
}

// Parse parses an image reference as written in a pod spec or given to
// docker run: [registry/]repository[:tag][@digest]. It also accepts a bare
// image id, "sha256:<64 hex>" or 64 hex digits alone, which yields a
// Reference with only Digest set. As in docker's ParseAnyReference, the hex
// of a bare id must be lowercase here: "sha256:<64 uppercase hex>" is the
// repository docker.io/library/sha256 with a tag, and 64 uppercase hex digits
// alone are an invalid repository name.
func Parse(s string) (Reference, error) {
	return parser{in: s}.parse(s, 0)
}

var imageIDPrefixes = [...]string{"docker-pullable://", "docker://"}

// ParseImageID parses a containerStatuses[].imageID. It strips a
// "docker-pullable://" or "docker://" prefix and then accepts a repository
// digest ("repo@sha256:...", optionally with a tag before the digest) or a
// bare image id ("sha256:<64 hex>" or 64 hex digits, in either case). A
// reference without a digest is an error: an image id always identifies
// content.
func ParseImageID(s string) (Reference, error) {
	p := parser{in: s, anyCaseID: true}
	rest, off := s, 0
	for _, prefix := range imageIDPrefixes {
		if strings.HasPrefix(s, prefix) {
			rest, off = s[len(prefix):], len(prefix)
			if rest == "" {
				return Reference{}, p.fail("missing image id after %q", prefix)
			}
			break
		}
	}
	ref, err := p.parse(rest, off)
	if err != nil {
		return Reference{}, err
	}
	if ref.Digest == "" {
		return Reference{}, p.fail("image id has no digest (want repo@algorithm:hex or a bare sha256:<64 hex> id)")
	}
	return ref, nil
}

// Name returns the normalized repository name, e.g. "docker.io/library/nginx";
// "" for a bare image id.
func (r Reference) Name() string {
	if r.Registry == "" {
		return r.Repository
	}
	return r.Registry + "/" + r.Repository
}

// String returns the canonical full form name[:tag][@digest], e.g.
// "docker.io/library/nginx:1.25"; for a bare image id just the digest.
func (r Reference) String() string {
	if r.IsImageID() {
		return r.Digest
	}
	return r.join(r.Registry, r.Repository)
}

// Familiar returns the short form docker prints: "nginx:1.25", "org/app",
// "ghcr.io/x/y:1"; for a bare image id just the digest. Parsing it gives back
// r. Where the short form would be read differently (a Docker Hub repository
// whose first component looks like a host, e.g. "docker.io/foo.bar/app", or
// "library/sha256:<64 hex>", which would read as an image id) the registry or
// the "library/" prefix is kept.
func (r Reference) Familiar() string {
	if r.IsImageID() {
		return r.Digest
	}
	if r.Registry != DefaultRegistry {
		return r.join(r.Registry, r.Repository)
	}
	repo := r.Repository
	if rest, ok := strings.CutPrefix(repo, "library/"); ok && strings.IndexByte(rest, '/') < 0 {
		if !r.shortLooksLikeImageID(rest) {
			return r.join("", rest)
		}
		return r.join("", repo)
	}
	first := repo
	if i := strings.IndexByte(repo, '/'); i >= 0 {
		first = repo[:i]
	}
	if looksLikeRegistry(first) {
		return r.join(r.Registry, repo)
	}
	return r.join("", repo)
}

// shortLooksLikeImageID reports whether the familiar form built from the
// Docker Hub official-image name short would parse as a bare image id.
func (r Reference) shortLooksLikeImageID(short string) bool {
	if r.Digest != "" {
		return false
	}
	if r.Tag == "" {
		return len(short) == 64 && isLowerHex(short)
	}
	// Only sha256:<64 hex> reads as a bare id (imageIDDigest).
	return short == "sha256" && len(r.Tag) == 64 && isLowerHex(r.Tag)
}

// join returns registry/repo[:tag][@digest] (without "registry/" when
// registry is empty) in one allocation.
func (r Reference) join(registry, repo string) string {
	var slash, colon, at string
	if registry != "" {
		slash = "/"
	}
	if r.Tag != "" {
		colon = ":"
	}
	if r.Digest != "" {
		at = "@"
	}
	return registry + slash + repo + colon + r.Tag + at + r.Digest
}

// IsImageID reports whether r is a bare image id (a digest with no
// repository). A bare image id is the digest of an image's config, not a
// repository (manifest) digest.
func (r Reference) IsImageID() bool { return r.Repository == "" && r.Digest != "" }

// HasTag reports whether r has a tag.
func (r Reference) HasTag() bool { return r.Tag != "" }

// HasDigest reports whether r has a digest.
func (r Reference) HasDigest() bool { return r.Digest != "" }

// Host returns the registry host without the port ("localhost" for
// "localhost:5000", "::1" for "[::1]:5000").
func (r Reference) Host() string {
	h := r.Registry
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// parser carries the whole input so that errors can quote it.
type parser struct {
	in        string
	anyCaseID bool // accept uppercase hex in a bare image id
}

func (p parser) fail(format string, args ...any) error {
	return &Error{Input: p.in, Reason: fmt.Sprintf(format, args...)}
}

// parse parses s, which is p.in[off:].
func (p parser) parse(s string, off int) (Reference, error) {
	if s == "" {
		return Reference{}, p.fail("empty reference")
	}
	if hasOuterSpace(s) {
		return Reference{}, p.fail("leading or trailing whitespace")
	}
	if d, ok := imageIDDigest(s, p.anyCaseID); ok {
		return Reference{Digest: d}, nil
	}

	// Neither name nor tag may contain '@', and a tag contains neither ':'
	// nor '/', so the first '@' starts the digest and the last ':' after the
	// last '/' starts the tag (an earlier ':' is a port).
	nameTag, digest, hasDigest := s, "", false
	if i := strings.IndexByte(s, '@'); i >= 0 {
		nameTag, digest, hasDigest = s[:i], s[i+1:], true
	}
	name, tag, hasTag := nameTag, "", false
	if i := strings.LastIndexByte(nameTag, ':'); i >= 0 && i > strings.LastIndexByte(nameTag, '/') {
		name, tag, hasTag = nameTag[:i], nameTag[i+1:], true
	}
	if name == "" {
		if hasTag {
			return Reference{}, p.fail("missing repository name before ':'")
		}
		return Reference{}, p.fail("missing repository name before '@'")
	}

	var ref Reference
	path, pathOff := name, off
	if i := strings.IndexByte(name, '/'); i >= 0 && looksLikeRegistry(name[:i]) {
		reg, err := p.registry(name[:i], off)
		if err != nil {
			return Reference{}, err
		}
		ref.Registry = reg
		path, pathOff = name[i+1:], off+i+1
		if path == "" {
			return Reference{}, p.fail("missing repository path after registry host")
		}
	} else {
		if name[0] == '[' && i < 0 {
			return Reference{}, p.fail("unexpected character '[' at offset %d: a bracketed registry host must be followed by '/' and a repository path", off)
		}
		ref.Registry = DefaultRegistry
	}
	if err := p.checkPath(path, pathOff); err != nil {
		return Reference{}, err
	}
	library := ref.Registry == DefaultRegistry && strings.IndexByte(path, '/') < 0
	n := len(ref.Registry) + 1 + len(path)
	if library {
		n += len("library/")
	}
	if n > maxNameLen {
		return Reference{}, p.fail("repository name too long (max %d): the normalized name has %d characters", maxNameLen, n)
	}
	if hasTag {
		if err := p.checkTag(tag, off+len(name)+1); err != nil {
			return Reference{}, err
		}
		ref.Tag = tag
	}
	if hasDigest {
		d, err := p.digest(digest, off+len(nameTag)+1)
		if err != nil {
			return Reference{}, err
		}
		ref.Digest = d
	}
	ref.Repository = path
	if library {
		ref.Repository = "library/" + path
	}
	if !hasTag && !hasDigest {
		// What a runtime pulls for a name alone, and what containerd's ParseDockerRef and the pod status show.
		ref.Tag = DefaultTag
	}
	return ref, nil
}

// looksLikeRegistry reports whether the first path component c names a
// registry host rather than the start of a Docker Hub repository (docker's
// splitDockerDomain rule).
func looksLikeRegistry(c string) bool {
	if c == "localhost" {
		return true
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; b == '.' || b == ':' || 'A' <= b && b <= 'Z' {
			return true
		}
	}
	return false
}

// registry validates the registry host[:port] h, found at offset off, and
// returns it normalized.
func (p parser) registry(h string, off int) (string, error) {
	host, port, hasPort := h, "", false
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", p.fail("unterminated '[' in registry host")
		}
		if err := p.checkIPv6(h[1:end], off+1); err != nil {
			return "", err
		}
		host = h[:end+1]
		if rest := h[end+1:]; rest != "" {
			if rest[0] != ':' {
				return "", p.fail("unexpected character %s at offset %d in registry host (want ':' or '/' after ']')", charAt(h, end+1), off+end+1)
			}
			port, hasPort = rest[1:], true
		}
	} else {
		if i := strings.IndexByte(h, ':'); i >= 0 {
			host, port, hasPort = h[:i], h[i+1:], true
		}
		if err := p.checkDomain(host, off); err != nil {
			return "", err
		}
	}
	if hasPort {
		if err := p.checkPort(port, off+len(host)+1); err != nil {
			return "", err
		}
	}
	if !hasPort && host[0] != '[' && strings.IndexByte(host, '.') < 0 && !strings.EqualFold(host, "localhost") {
		// Recognized as a host only by its uppercase letters: lowercasing
		// would make it a Docker Hub namespace, so keep the spelling.
		return h, nil
	}
	reg := strings.ToLower(h) // no allocation when already lowercase
	switch reg {
	case "index.docker.io", "registry-1.docker.io":
		reg = DefaultRegistry
	}
	return reg, nil
}

// checkDomain validates a domain name or IPv4 address (which the grammar
// covers as a domain name).
func (p parser) checkDomain(host string, off int) error {
	if host == "" {
		return p.fail("empty registry host")
	}
	start := 0
	for i := 0; i <= len(host); i++ {
		if i == len(host) || host[i] == '.' {
			c := host[start:i]
			if c == "" {
				return p.fail("empty component in registry host at offset %d", off+i)
			}
			if c[0] == '-' || c[len(c)-1] == '-' {
				return p.fail("registry host component %s may not start or end with '-'", quoteTrunc(c))
			}
			start = i + 1
			continue
		}
		if c := host[i]; !isAlnum(c) && c != '-' {
			return p.fail("unexpected character %s at offset %d in registry host", charAt(host, i), off+i)
		}
	}
	return nil
}

// checkIPv6 validates the content of a bracketed registry host.
func (p parser) checkIPv6(ip string, off int) error {
	if ip == "" {
		return p.fail("empty IPv6 address in registry host")
	}
	for i := 0; i < len(ip); i++ {
		c := ip[i]
		if isHexDigit(c) || c == ':' {
			continue
		}
		if c == '.' {
			// distribution's grammar has no IPv4-embedded form ([::ffff:192.0.2.1]); containerd refuses it.
			return p.fail("IPv4-embedded IPv6 addresses are not supported in registry host (offset %d)", off+i)
		}
		if c == '%' {
			return p.fail("IPv6 zone identifiers are not supported in registry host")
		}
		return p.fail("unexpected character %s at offset %d in IPv6 registry host", charAt(ip, i), off+i)
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return p.fail("invalid IPv6 address %s in registry host", quoteTrunc(ip))
	}
	if !a.Is6() {
		return p.fail("bracketed registry host %s is not an IPv6 address", quoteTrunc(ip))
	}
	return nil
}

func (p parser) checkPort(port string, off int) error {
	if port == "" {
		return p.fail("invalid port in registry host: empty port")
	}
	v := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' {
			return p.fail("invalid port in registry host: unexpected character %s at offset %d", charAt(port, i), off+i)
		}
		if v <= 65535 {
			v = v*10 + int(c-'0')
		}
	}
	if v < 1 || v > 65535 {
		return p.fail("invalid port in registry host: %s is not in 1..65535", quoteTrunc(port))
	}
	return nil
}

// checkPath validates the repository path, found at offset off:
//
//	path-component := [a-z0-9]+ (separator [a-z0-9]+)*
//	separator      := "." | "_" | "__" | "-"+
func (p parser) checkPath(path string, off int) error {
	if path == "" {
		return p.fail("missing repository path")
	}
	compStart := true // at the start of a component
	for i := 0; i < len(path); {
		c := path[i]
		switch {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
			compStart = false
			i++
		case c == '/':
			if compStart {
				return p.fail("empty path component at offset %d", off+i)
			}
			compStart = true
			i++
		case c == '.' || c == '_' || c == '-':
			if compStart {
				return p.fail("path component must start with a lowercase letter or digit, not %s (offset %d)", charAt(path, i), off+i)
			}
			j := i + 1
			for j < len(path) && (path[j] == '.' || path[j] == '_' || path[j] == '-') {
				j++
			}
			if sep := path[i:j]; !validSeparator(sep) {
				return p.fail("invalid separator %s at offset %d (allowed: \".\", \"_\", \"__\" or dashes)", quoteTrunc(sep), off+i)
			}
			if j == len(path) || path[j] == '/' {
				return p.fail("path component must end with a lowercase letter or digit, not %s (offset %d)", charAt(path, j-1), off+j-1)
			}
			i = j
		case 'A' <= c && c <= 'Z':
			return p.fail("repository name must be lowercase (%s at offset %d)", charAt(path, i), off+i)
		default:
			return p.fail("unexpected character %s at offset %d", charAt(path, i), off+i)
		}
	}
	if compStart {
		return p.fail("empty path component at offset %d", off+len(path))
	}
	return nil
}

func validSeparator(sep string) bool {
	switch sep {
	case ".", "_", "__":
		return true
	}
	for i := 0; i < len(sep); i++ {
		if sep[i] != '-' {
			return false
		}
	}
	return true
}

// checkTag validates tag := [\w][\w.-]{0,127}, found at offset off.
func (p parser) checkTag(tag string, off int) error {
	if tag == "" {
		return p.fail("empty tag after ':'")
	}
	if len(tag) > maxTagLen {
		return p.fail("tag %s is invalid: longer than %d characters (%d)", quoteTrunc(tag), maxTagLen, len(tag))
	}
	if !isWord(tag[0]) {
		return p.fail("tag %s is invalid: must start with a letter, digit or '_', not %s", quoteTrunc(tag), charAt(tag, 0))
	}
	for i := 1; i < len(tag); i++ {
		if c := tag[i]; !isWord(c) && c != '.' && c != '-' {
			return p.fail("tag %s is invalid: unexpected character %s at offset %d", quoteTrunc(tag), charAt(tag, i), off+i)
		}
	}
	return nil
}

// digest validates d := algorithm ":" hex, found at offset off, and returns it
// with the hex lowercased.
func (p parser) digest(d string, off int) (string, error) {
	if d == "" {
		return "", p.fail("empty digest after '@'")
	}
	colon := strings.IndexByte(d, ':')
	if colon <= 0 {
		if colon == 0 || isHex(d) {
			return "", p.fail("digest algorithm missing (want algorithm:hex, e.g. sha256:<64 hex>)")
		}
		return "", p.fail("digest %s is invalid: want algorithm:hex, e.g. sha256:<64 hex>", quoteTrunc(d))
	}
	alg, hex := d[:colon], d[colon+1:]
	if err := p.checkAlgorithm(alg, off); err != nil {
		return "", err
	}
	if hex == "" {
		return "", p.fail("digest hex missing after %s", quoteTrunc(alg+":"))
	}
	for i := 0; i < len(hex); i++ {
		if !isHexDigit(hex[i]) {
			return "", p.fail("digest hex has unexpected character %s at offset %d", charAt(hex, i), off+colon+1+i)
		}
	}
	want := knownHexLen(alg)
	switch {
	case want == 0:
		// go-digest, which every runtime validates digests with, knows no other algorithm.
		return "", p.fail("unsupported digest algorithm %s (want sha256, sha384 or sha512)", quoteTrunc(alg))
	case len(hex) < want:
		return "", p.fail("digest hex too short (%s needs exactly %d hex digits, got %d)", alg, want, len(hex))
	case len(hex) > want:
		return "", p.fail("digest hex too long (%s needs exactly %d hex digits, got %d)", alg, want, len(hex))
	}
	return lowerHex(d, colon), nil
}

// checkAlgorithm validates
//
//	algorithm := component ([+._-] component)*
//	component := [A-Za-z][A-Za-z0-9]*
func (p parser) checkAlgorithm(alg string, off int) error {
	needLetter := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			needLetter = false
		case '0' <= c && c <= '9':
			if needLetter {
				return p.fail("digest algorithm %s is invalid: each component must start with a letter, not %s (offset %d)", quoteTrunc(alg), charAt(alg, i), off+i)
			}
		case c == '+' || c == '.' || c == '_' || c == '-':
			if needLetter {
				return p.fail("digest algorithm %s is invalid: misplaced separator %s at offset %d", quoteTrunc(alg), charAt(alg, i), off+i)
			}
			needLetter = true
		default:
			return p.fail("digest algorithm %s is invalid: unexpected character %s at offset %d", quoteTrunc(alg), charAt(alg, i), off+i)
		}
	}
	if needLetter {
		return p.fail("digest algorithm %s is invalid: must not end with a separator", quoteTrunc(alg))
	}
	return nil
}

// knownHexLen returns the hex length a registered digest algorithm requires,
// or 0 for an algorithm this package does not know.
func knownHexLen(alg string) int {
	switch alg {
	case "sha256":
		return 64
	case "sha384":
		return 96
	case "sha512":
		return 128
	}
	return 0
}

// imageIDDigest reports whether s is a bare image id: 64 hex digits, or
// known-algorithm:hex of that algorithm's exact length, with lowercase hex
// unless anyCase. It returns the id as a normalized digest.
func imageIDDigest(s string, anyCase bool) (string, bool) {
	hex := isLowerHex
	if anyCase {
		hex = isHex
	}
	if len(s) == 64 && hex(s) {
		return "sha256:" + strings.ToLower(s), true
	}
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", false
	}
	// In a reference (not anyCase) only sha256 reads as an id, as in docker's ParseAnyReference: "sha512:<hex>"
	// there is the repository sha512 with a tag. A pod status's imageID may name any known algorithm.
	n := knownHexLen(s[:i])
	if !anyCase && s[:i] != "sha256" {
		n = 0
	}
	if n == 0 || len(s)-i-1 != n || !hex(s[i+1:]) {
		return "", false
	}
	return lowerHex(s, i), true
}

// lowerHex returns d (algorithm:hex with the colon at colon) with its hex
// part lowercased, allocating only when there is something to lower.
func lowerHex(d string, colon int) string {
	i := colon + 1
	for i < len(d) && !('A' <= d[i] && d[i] <= 'F') {
		i++
	}
	if i == len(d) {
		return d
	}
	var b strings.Builder
	b.Grow(len(d))
	b.WriteString(d[:i])
	for ; i < len(d); i++ {
		c := d[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func hasOuterSpace(s string) bool {
	if c := s[0]; c < utf8.RuneSelf {
		if isASCIISpace(c) {
			return true
		}
	} else if r, _ := utf8.DecodeRuneInString(s); unicode.IsSpace(r) {
		return true
	}
	if c := s[len(s)-1]; c < utf8.RuneSelf {
		return isASCIISpace(c)
	}
	r, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsSpace(r)
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isWord(c byte) bool { return isAlnum(c) || c == '_' }

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// charAt quotes the character at byte offset i of s for an error message:
// 'x' for a valid rune, "\xff" for a byte that does not start one.
func charAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return strconv.Quote(s[i : i+1])
	}
	return strconv.QuoteRune(r)
}

// quoteTrunc quotes s, cut to its first maxQuoted bytes (at a rune boundary
// when there is one nearby) followed by "…".
func quoteTrunc(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := maxQuoted
	for k := 0; k < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(s[n]); k++ {
		n--
	}
	return strconv.Quote(s[:n] + "…")
}
