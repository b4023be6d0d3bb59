package provenance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// testFiles are the files a test policy may name: a public key, a CA certificate, a leaf certificate.
func testFiles(t testing.TB) ReadFile {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	cert := func(ca bool) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c"}, NotBefore: time.Now(),
			NotAfter: time.Now().Add(time.Hour), IsCA: ca, BasicConstraintsValid: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	files := map[string][]byte{"k.pub": pub, "root.pem": cert(true), "leaf.pem": cert(false), "junk": []byte("nope")}
	return func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func TestParse(t *testing.T) {
	read := testFiles(t)
	p, err := Parse([]byte(`trusted_root: root.pem
rules:
  - name: shop
    match: {registry: "*.corp.example", repository: "shop/*"}
    keys: [k.pub]
    identities: [{subject_regexp: ".*@corp\\.example", issuer: "https://accounts.corp.example"}]
    require: [provenance, signature, provenance]
    severity: medium
  - name: rest
    keys: [k.pub]
`), read)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 2 || p.Fingerprint == "" || len(p.RootSubjects) != 1 {
		t.Fatalf("%+v", p)
	}
	r := p.Rules[0]
	if r.Severity != "medium" || len(r.Require) != 2 || !r.Requires(RequireProvenance) || len(r.Keys) != 1 || r.Keys[0].Fingerprint == "" {
		t.Errorf("rule %+v", r)
	}
	if !r.Identities[0].Matches("ci@corp.example", "https://accounts.corp.example") ||
		r.Identities[0].Matches("ci@corp.example.evil", "https://accounts.corp.example") ||
		r.Identities[0].Matches("ci@corp.example", "https://accounts.corp.example.evil") {
		t.Error("identity matching is not whole-string")
	}
	if p.Rules[1].Severity != "high" || !p.Rules[1].Requires(RequireSignature) || p.Rules[1].Requires(RequireProvenance) {
		t.Errorf("defaults %+v", p.Rules[1])
	}
	if got := p.RuleFor("registry.corp.example", "shop/web"); got == nil || got.Name != "shop" {
		t.Errorf("RuleFor shop: %+v", got)
	}
	if got := p.RuleFor("registry.corp.example", "shop/a/b"); got == nil || got.Name != "rest" {
		t.Errorf("RuleFor shop/a/b: %+v", got)
	}
	// The files a reload watches: the root and each key once, as the policy names them.
	if f := p.Files(); strings.Join(f, " ") != "root.pem k.pub" {
		t.Errorf("Files() = %q", f)
	}
	if f := (*Policy)(nil).Files(); f != nil {
		t.Errorf("no policy's files: %q", f)
	}
	q, err := Parse([]byte("trusted_root: root.pem\nrules:\n  - name: shop\n    keys: [k.pub]\n"), read)
	if err != nil || q.Fingerprint == p.Fingerprint {
		t.Errorf("another policy, same fingerprint (%v)", err)
	}
}

func TestParseErrors(t *testing.T) {
	read := testFiles(t)
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", "", "empty: want a \"rules\" list"},
		{"no rules", "trusted_root: root.pem\n", "rules: missing"},
		{"unknown key", "rules: []\nextra: 1\n", "field extra not found"},
		{"bad name", "rules: [{name: 'a b', keys: [k.pub]}]", `rules[0].name: "a b" is not`},
		{"duplicate", "rules: [{name: a, keys: [k.pub]}, {name: a, keys: [k.pub]}]", `rules[1] (a).name: "a" is also rules[0]'s name`},
		{"nothing trusted", "rules: [{name: a}]", "rules[0] (a).keys, identities: give at least one"},
		{"missing key file", "rules: [{name: a, keys: [nope.pub]}]", "rules[0] (a).keys[0]: open nope.pub"},
		{"not a key", "rules: [{name: a, keys: [junk]}]", "rules[0] (a).keys[0]: junk: not a PEM public key"},
		{"identities without a root", "rules: [{name: a, identities: [{subject: x, issuer: y}]}]", "rules[0] (a).identities: need a trusted_root"},
		{"identity without issuer", "trusted_root: root.pem\nrules: [{name: a, identities: [{subject: x}]}]", "rules[0] (a).identities[0].issuer: give issuer or issuer_regexp"},
		{"identity with both", "trusted_root: root.pem\nrules: [{name: a, identities: [{subject: x, subject_regexp: y, issuer: z}]}]", "identities[0].subject: give subject or subject_regexp, one of them"},
		{"bad regexp", "trusted_root: root.pem\nrules: [{name: a, identities: [{subject_regexp: '(', issuer: z}]}]", "identities[0].subject_regexp: error parsing regexp"},
		{"bad require", "rules: [{name: a, keys: [k.pub], require: [sbom]}]", `rules[0] (a).require[0]: "sbom" is not signature or provenance`},
		{"bad severity", "rules: [{name: a, keys: [k.pub], severity: none}]", `rules[0] (a).severity: "none" is not`},
		{"bad glob", "rules: [{name: a, keys: [k.pub], match: {repository: '['}}]", "rules[0] (a).match.repository: pattern \"[\" is not a valid glob"},
		{"leading slash", "rules: [{name: a, keys: [k.pub], match: {repository: /shop}}]", "starts with '/'"},
		{"root not a CA", "trusted_root: leaf.pem\nrules: []", "trusted_root: certificate 1 (CN=c) is not a CA certificate"},
		{"root not PEM", "trusted_root: junk\nrules: []", "trusted_root: trailing data that is not PEM"},
		{"root is a key", "trusted_root: k.pub\nrules: []", `trusted_root: PEM block 1 is "PUBLIC KEY"; want CERTIFICATE`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), read)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant it to say %q", err, tc.want)
			}
		})
	}
	// Every problem is reported, not only the first.
	_, err := Parse([]byte("rules: [{name: a}, {name: b, keys: [junk]}]"), read)
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("two bad rules: %v", err)
	}
}

func TestLoadFileMissing(t *testing.T) {
	if _, err := LoadFile("/nonexistent/provenance.yaml"); err == nil || !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(err.Error(), "provenance file") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	read := testFiles(f)
	f.Add([]byte("trusted_root: root.pem\nrules: [{name: a, keys: [k.pub], identities: [{subject: x, issuer_regexp: '.*'}]}]"))
	f.Add([]byte("rules: [{name: a, match: {registry: '*', repository: 'x/*'}, keys: [k.pub], require: [provenance]}]"))
	f.Add([]byte(`{"rules": []}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, read)
		if err == nil && p.Fingerprint == "" {
			t.Fatal("a policy without a fingerprint")
		}
	})
}
