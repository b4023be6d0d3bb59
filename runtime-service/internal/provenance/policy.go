package provenance

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/runtrust/runtrust/internal/configerr"
	"github.com/runtrust/runtrust/runtime-service/internal/policyfile"
)

// Limits on the policy file and what it names.
const (
	MaxFileBytes = 1 << 20
	MaxRules     = 1000
	maxPattern   = 253
	maxListed    = 64 // keys, identities per rule
)

// What a rule can require.
const (
	RequireSignature  = "signature"
	RequireProvenance = "provenance"
)

// Policy is a parsed signature and provenance policy. Rules are tried in order; the first that selects an
// artifact decides. The zero value (and nil) has no rules.
type Policy struct {
	Rules []Rule
	// Roots and Intermediates are the trusted root's CA certificates: a signing certificate must chain to a root.
	Roots, Intermediates *x509.CertPool
	// RootFile names the trusted root file ("" for none); RootSubjects are its certificates' subjects.
	RootFile     string
	RootSubjects []string
	// Fingerprint changes whenever the policy, a key or the trusted root does: stored checks made under another
	// fingerprint are made again.
	Fingerprint string
}

// Rule is one rule in its compiled form.
type Rule struct {
	Name       string
	Registry   string // path.Match glob on the registry host
	Repository string // path.Match glob on the repository path without the host
	Keys       []Key
	Identities []Identity
	Require    []string // RequireSignature, RequireProvenance
	Severity   string
}

// Requires says whether the rule requires what.
func (r Rule) Requires(what string) bool { return slices.Contains(r.Require, what) }

// Key is a trusted public key.
type Key struct {
	Name        string // the file's name as the policy gave it
	Fingerprint string // sha256 of its DER form, hex, first 16 characters
	Public      crypto.PublicKey
}

// Identity is a keyless signer the rule accepts: the signing certificate's subject (an email or URI SAN) and
// the OIDC issuer Fulcio wrote into it, each exact or a regular expression (matched whole).
type Identity struct {
	Subject, SubjectRegexp, Issuer, IssuerRegexp string
	subjectRE, issuerRE                          *regexp.Regexp
}

// String says what the identity accepts, for reasons and the API.
func (id Identity) String() string {
	s, i := id.Subject, id.Issuer
	if id.SubjectRegexp != "" {
		s = "/" + id.SubjectRegexp + "/"
	}
	if id.IssuerRegexp != "" {
		i = "/" + id.IssuerRegexp + "/"
	}
	return s + " from " + i
}

// Matches says whether a certificate's subject and issuer are this identity.
func (id Identity) Matches(subject, issuer string) bool {
	okS := subject == id.Subject || (id.subjectRE != nil && id.subjectRE.MatchString(subject))
	okI := issuer == id.Issuer || (id.issuerRE != nil && id.issuerRE.MatchString(issuer))
	return subject != "" && issuer != "" && okS && okI
}

// Empty says the policy has no rules.
func (p *Policy) Empty() bool { return p == nil || len(p.Rules) == 0 }

// Files are the files the policy was read from besides the policy file itself: its trusted root and its rules'
// keys, named as the policy names them (relative to the policy file's directory, or absolute). A reload
// watches them too: a key replaced in place changes the policy as much as an edit of the file does.
func (p *Policy) Files() []string {
	if p == nil {
		return nil
	}
	var out []string
	if p.RootFile != "" {
		out = append(out, p.RootFile)
	}
	for _, r := range p.Rules {
		for _, k := range r.Keys {
			if !slices.Contains(out, k.Name) {
				out = append(out, k.Name)
			}
		}
	}
	return out
}

// RuleFor returns the first rule that selects the repository (registry host, path), or nil.
func (p *Policy) RuleFor(registry, repository string) *Rule {
	if p == nil {
		return nil
	}
	for i, r := range p.Rules {
		if r.Registry != "" && !match(r.Registry, registry) {
			continue
		}
		if r.Repository != "" && !match(r.Repository, repository) {
			continue
		}
		return &p.Rules[i]
	}
	return nil
}

func match(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

type fileIdentity struct {
	Subject       string `yaml:"subject"`
	SubjectRegexp string `yaml:"subject_regexp"`
	Issuer        string `yaml:"issuer"`
	IssuerRegexp  string `yaml:"issuer_regexp"`
}

type fileRule struct {
	Name  string `yaml:"name"`
	Match struct {
		Registry   string `yaml:"registry"`
		Repository string `yaml:"repository"`
	} `yaml:"match"`
	Keys       []string       `yaml:"keys"`
	Identities []fileIdentity `yaml:"identities"`
	Require    *[]string      `yaml:"require"`
	Severity   string         `yaml:"severity"`
}

type file struct {
	TrustedRoot string      `yaml:"trusted_root"`
	Rules       *[]fileRule `yaml:"rules"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

// ReadFile reads a file the policy names; tests and LoadFile give os.ReadFile bounded to MaxFileBytes.
type ReadFile func(name string) ([]byte, error)

// LoadFile reads and checks a policy file. Key and trusted root files it names are read relative to its
// directory.
func LoadFile(name string) (*Policy, error) {
	data, err := policyfile.Read(name, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("provenance file: %w", err)
	}
	dir := filepath.Dir(name)
	p, err := Parse(data, func(f string) ([]byte, error) {
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		return policyfile.Read(f, MaxFileBytes)
	})
	if err != nil {
		return nil, fmt.Errorf("provenance file %s: %w", name, err)
	}
	return p, nil
}

// Parse reads a policy file: YAML (or JSON) with an optional "trusted_root" (a PEM file of CA certificates) and
// a "rules" list. read reads the files it names. Unknown keys are errors; every error names its rule and field,
// and all of them are reported.
func Parse(data []byte, read ReadFile) (*Policy, error) {
	var f file
	if err := policyfile.Decode(data, MaxFileBytes, "provenance policy", &f); err != nil {
		return nil, err
	}
	if err := policyfile.Rules(f.Rules, MaxRules); err != nil {
		return nil, err
	}
	fp := sha256.New()
	fp.Write(data)
	p := &Policy{Rules: []Rule{}, RootFile: f.TrustedRoot}
	var errs []error
	if f.TrustedRoot != "" {
		raw, err := read(f.TrustedRoot)
		if err == nil {
			err = p.loadRoot(raw)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("trusted_root: %w", err))
		}
		fp.Write(raw)
	}
	seen := map[string]int{}
	for i, fr := range *f.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		if nameRE.MatchString(fr.Name) {
			field += " (" + fr.Name + ")"
		}
		r, err := fr.compile(read, fp)
		if err == nil {
			if j, dup := seen[r.Name]; dup {
				err = fmt.Errorf("name: %q is also rules[%d]'s name", r.Name, j)
			} else if len(r.Identities) > 0 && p.Roots == nil {
				err = errors.New("identities: need a trusted_root (the CA certificates that issue signing certificates)")
			}
		}
		if err != nil {
			errs = append(errs, configerr.Prefix(field, err))
			continue
		}
		seen[r.Name] = i
		p.Rules = append(p.Rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p.Fingerprint = hex.EncodeToString(fp.Sum(nil))
	return p, nil
}

// loadRoot reads the trusted root: PEM CERTIFICATE blocks, each a CA; self-signed ones are roots, the others
// intermediates that may complete a chain the signature did not carry.
func (p *Policy) loadRoot(raw []byte) error {
	p.Roots, p.Intermediates = x509.NewCertPool(), x509.NewCertPool()
	n := 0
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if len(bytes.TrimSpace(rest)) > 0 {
				return errors.New("trailing data that is not PEM")
			}
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d is %q; want CERTIFICATE (trusted keys go in a rule's keys)", n+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		if !c.IsCA {
			return fmt.Errorf("certificate %d (%s) is not a CA certificate", n+1, c.Subject)
		}
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			p.Roots.AddCert(c)
		} else {
			p.Intermediates.AddCert(c)
		}
		p.RootSubjects = append(p.RootSubjects, c.Subject.String())
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate in it")
	}
	return nil
}

func (fr fileRule) compile(read ReadFile, fp io.Writer) (Rule, error) {
	var errs []error
	r := Rule{Name: fr.Name, Registry: fr.Match.Registry, Repository: fr.Match.Repository, Severity: fr.Severity,
		Require: []string{RequireSignature}}
	if !nameRE.MatchString(fr.Name) {
		errs = append(errs, fmt.Errorf("name: %q is not 1–63 letters, digits, '.', '_' or '-' (starting and ending with a letter or digit)", policyfile.Clip(fr.Name)))
	}
	for _, g := range []struct{ field, v string }{{"match.registry", r.Registry}, {"match.repository", r.Repository}} {
		if g.v == "" {
			continue
		}
		if err := checkPattern(g.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.field, err))
		}
	}
	if strings.HasPrefix(r.Repository, "/") {
		errs = append(errs, fmt.Errorf("match.repository: %q starts with '/': give the path without the host (\"shop/web\")", r.Repository))
	}
	if len(fr.Keys) == 0 && len(fr.Identities) == 0 {
		errs = append(errs, errors.New("keys, identities: give at least one: the public keys or keyless identities whose signatures the rule accepts"))
	}
	if len(fr.Keys) > maxListed || len(fr.Identities) > maxListed {
		errs = append(errs, fmt.Errorf("keys, identities: at most %d each", maxListed))
	}
	for i, k := range fr.Keys {
		key, raw, err := loadKey(k, read)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys[%d]: %w", i, err))
			continue
		}
		fp.Write(raw)
		r.Keys = append(r.Keys, key)
	}
	for i, fi := range fr.Identities {
		id, err := fi.compile()
		if err != nil {
			errs = append(errs, configerr.Index("identities", i, err))
			continue
		}
		r.Identities = append(r.Identities, id)
	}
	if fr.Require != nil {
		r.Require = []string{}
		for i, q := range *fr.Require {
			if q != RequireSignature && q != RequireProvenance {
				errs = append(errs, fmt.Errorf("require[%d]: %q is not signature or provenance", i, policyfile.Clip(q)))
			} else if !slices.Contains(r.Require, q) {
				r.Require = append(r.Require, q)
			}
		}
	}
	var err error
	if r.Severity, err = policyfile.Severity(r.Severity); err != nil {
		errs = append(errs, err)
	}
	return r, errors.Join(errs...)
}

func (fi fileIdentity) compile() (Identity, error) {
	id := Identity{Subject: fi.Subject, SubjectRegexp: fi.SubjectRegexp, Issuer: fi.Issuer, IssuerRegexp: fi.IssuerRegexp}
	var errs []error
	for _, f := range []struct {
		field, exact, re string
		dst              **regexp.Regexp
	}{{"subject", fi.Subject, fi.SubjectRegexp, &id.subjectRE}, {"issuer", fi.Issuer, fi.IssuerRegexp, &id.issuerRE}} {
		switch {
		case (f.exact == "") == (f.re == ""):
			errs = append(errs, fmt.Errorf("%s: give %s or %s_regexp, one of them", f.field, f.field, f.field))
		case f.re != "":
			re, err := regexp.Compile(`^(?:` + f.re + `)$`)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_regexp: %w", f.field, err))
			}
			*f.dst = re
		case !utf8.ValidString(f.exact) || len(f.exact) > 1024:
			errs = append(errs, fmt.Errorf("%s: not valid UTF-8 of at most 1024 bytes", f.field))
		}
	}
	return id, errors.Join(errs...)
}

// loadKey reads a PEM public key file.
func loadKey(name string, read ReadFile) (Key, []byte, error) {
	raw, err := read(name)
	if err != nil {
		return Key{}, nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(raw)
	if err != nil {
		return Key{}, nil, fmt.Errorf("%s: not a PEM public key: %w", name, err)
	}
	// A key no verifier takes (an unsupported type or curve) is refused now, not at every check.
	if _, err := signature.LoadVerifier(pub, crypto.SHA256); err != nil {
		return Key{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	return Key{Name: name, Fingerprint: keyFingerprint(pub), Public: pub}, raw, nil
}

func keyFingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

// checkPattern refuses an empty, overlong, malformed or whitespace-holding glob.
func checkPattern(p string) error {
	switch {
	case len(p) > maxPattern:
		return fmt.Errorf("pattern is %d bytes long; at most %d", len(p), maxPattern)
	case !utf8.ValidString(p):
		return errors.New("pattern is not valid UTF-8")
	case strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf("pattern %q contains a space or control character", p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("pattern %q is not a valid glob: %w", p, err)
	}
	return nil
}
