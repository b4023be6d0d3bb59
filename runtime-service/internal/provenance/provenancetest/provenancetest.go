// Package provenancetest signs images and attests their provenance for tests, the way cosign does, with
// sigstore's signature libraries: an ECDSA key pair, or a keyless-style certificate from a test CA (with an
// email or URI SAN and Fulcio's OIDC issuer extension); cosign simple-signing signatures and DSSE envelopes of
// SLSA v1 provenance, pushed under cosign's .sig/.att tags or as OCI 1.1 referrers; sigstore bundles as
// referrers. Tamper flips a signature's bytes after signing.
package provenancetest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Signer signs: with a bare key (Cert nil) or with a certificate the test CA issued for its key.
type Signer struct {
	Key   *ecdsa.PrivateKey
	Cert  *x509.Certificate
	Chain []*x509.Certificate
}

// NewKey makes an ECDSA P-256 key pair, as `cosign generate-key-pair` does.
func NewKey(t testing.TB) *Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Key: k}
}

// PublicPEM is the signer's public key in PEM.
func (s *Signer) PublicPEM(t testing.TB) []byte {
	t.Helper()
	b, err := cryptoutils.MarshalPublicKeyToPEM(s.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WritePublic writes the public key to dir/name and returns the path.
func (s *Signer) WritePublic(t testing.TB, dir, name string) string {
	t.Helper()
	return write(t, filepath.Join(dir, name), s.PublicPEM(t))
}

// CA is a test certificate authority standing in for Fulcio.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA valid from an hour ago for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "runtrust test CA", Organization: []string{"runtrust test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: c, key: k}
}

// WriteRoot writes the CA certificate (the trusted root) to dir/name and returns the path.
func (ca *CA) WriteRoot(t testing.TB, dir, name string) string {
	t.Helper()
	return write(t, filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}))
}

// Fulcio's OIDC issuer extension (a DER UTF8String).
var oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

// Keyless issues a short-lived code-signing certificate for a new key, as Fulcio does for an OIDC identity:
// subject is an email address or a URI (a CI workflow), issuer the OIDC issuer.
func (ca *CA) Keyless(t testing.TB, subject, issuer string) *Signer {
	t.Helper()
	s := NewKey(t)
	iss, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(10 * time.Minute), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV2, Value: iss}}}
	if strings.Contains(subject, "://") {
		u, err := url.Parse(subject)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{subject}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, s.Key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	s.Chain = []*x509.Certificate{ca.Cert}
	return s
}

func (s *Signer) sign(t testing.TB, payload []byte) []byte {
	t.Helper()
	sv, err := signature.LoadECDSASignerVerifier(s.Key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// annotations are cosign's certificate and chain annotations for the signer (none for a bare key).
func (s *Signer) annotations() map[string]string {
	ann := map[string]string{}
	if s.Cert != nil {
		ann["dev.sigstore.cosign/certificate"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Cert.Raw}))
		var chain []byte
		for _, c := range s.Chain {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		ann["dev.sigstore.cosign/chain"] = string(chain)
	}
	return ann
}

// How an item is attached.
type Mode int

const (
	// Tag: cosign's tag scheme (<repo>:sha256-<hex>.sig / .att).
	Tag Mode = iota
	// Referrer: an OCI 1.1 referrer (subject = the image).
	Referrer
)

// Options vary what is signed.
type Options struct {
	// Tamper flips a byte of the signature after signing.
	Tamper bool
	// Digest signs this digest instead of the image's (a signature for another image).
	Digest string
}

// SimpleSigningPayload is cosign's payload for an image digest.
func SimpleSigningPayload(d name.Digest, digest string) []byte {
	b, _ := json.Marshal(map[string]any{
		"critical": map[string]any{"identity": map[string]string{"docker-reference": d.Context().Name()},
			"image": map[string]string{"docker-manifest-digest": digest}, "type": "cosign container image signature"},
		"optional": nil})
	return b
}

// SignImage signs the image d names as `cosign sign` does and attaches the signature.
func SignImage(t testing.TB, d name.Digest, s *Signer, mode Mode, o Options) {
	t.Helper()
	digest := d.DigestStr()
	if o.Digest != "" {
		digest = o.Digest
	}
	payload := SimpleSigningPayload(d, digest)
	sig := s.sign(t, payload)
	if o.Tamper {
		sig[len(sig)/2] ^= 0xff
	}
	ann := s.annotations()
	ann["dev.cosignproject.cosign/signature"] = base64.StdEncoding.EncodeToString(sig)
	l := layer{payload, "application/vnd.dev.cosign.simplesigning.v1+json", ann}
	switch mode {
	case Tag:
		pushTagged(t, d, ".sig", l)
	case Referrer:
		pushReferrer(t, d, "application/vnd.dev.cosign.artifact.sig.v1+json", l)
	}
}

// Build is the provenance of a build, as a SLSA v1 predicate of GitHub's workflow build type says it.
type Build struct {
	BuilderID, Repository, Ref, Commit, InvocationID string
}

// ProvenanceStatement is an in-toto v1 statement of SLSA v1 provenance for the image d names.
func ProvenanceStatement(d name.Digest, b Build) []byte {
	sum := strings.TrimPrefix(d.DigestStr(), "sha256:")
	st := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": d.Context().Name(), "digest": map[string]string{"sha256": sum}}},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType":          "https://actions.github.io/buildtypes/workflow/v1",
				"externalParameters": map[string]any{"workflow": map[string]string{"ref": b.Ref, "repository": b.Repository, "path": ".github/workflows/release.yml"}},
				"resolvedDependencies": []any{map[string]any{"uri": "git+" + b.Repository + "@" + b.Ref,
					"digest": map[string]string{"gitCommit": b.Commit}}},
			},
			"runDetails": map[string]any{
				"builder":  map[string]string{"id": b.BuilderID},
				"metadata": map[string]string{"invocationId": b.InvocationID, "startedOn": "2026-11-30T10:00:00Z"},
			},
		},
	}
	raw, _ := json.Marshal(st)
	return raw
}

// envelope signs statement into a DSSE envelope with sigstore's DSSE signer.
func (s *Signer) envelope(t testing.TB, statement []byte, tamper bool) []byte {
	t.Helper()
	sv, err := signature.LoadECDSASignerVerifier(s.Key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	env, err := dsse.WrapSigner(sv, "application/vnd.in-toto+json").SignMessage(bytes.NewReader(statement))
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		var e map[string]any
		if err := json.Unmarshal(env, &e); err != nil {
			t.Fatal(err)
		}
		// Change what is attested, keeping the signature: the envelope no longer verifies.
		e["payload"] = base64.StdEncoding.EncodeToString(bytes.Replace(statement, []byte(`"builder"`), []byte(`"Builder"`), 1))
		env, _ = json.Marshal(e)
	}
	return env
}

// AttestProvenance attests SLSA v1 provenance for d as `cosign attest --type slsaprovenance1` does.
func AttestProvenance(t testing.TB, d name.Digest, s *Signer, b Build, mode Mode, o Options) {
	t.Helper()
	env := s.envelope(t, ProvenanceStatement(d, b), o.Tamper)
	ann := s.annotations()
	ann["predicateType"] = "https://slsa.dev/provenance/v1"
	l := layer{env, "application/vnd.dsse.envelope.v1+json", ann}
	switch mode {
	case Tag:
		pushTagged(t, d, ".att", l)
	case Referrer:
		pushReferrer(t, d, "application/vnd.dsse.envelope.v1+json", l)
	}
}

// BundleProvenance attaches SLSA v1 provenance for d as a sigstore bundle v0.3 referrer (cosign's newer bundle
// format), with the signer's certificate as its verification material.
func BundleProvenance(t testing.TB, d name.Digest, s *Signer, b Build) {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(s.envelope(t, ProvenanceStatement(d, b), false), &env); err != nil {
		t.Fatal(err)
	}
	pushBundle(t, d, s, map[string]any{"dsseEnvelope": env})
}

// BundleSignature attaches a sigstore bundle v0.3 referrer with a message signature over d's digest.
func BundleSignature(t testing.TB, d name.Digest, s *Signer, o Options) {
	t.Helper()
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	digest, err := hex.DecodeString(h.Hex)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(s.Key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(nil, options.WithDigest(digest))
	if err != nil {
		t.Fatal(err)
	}
	if o.Tamper {
		sig[len(sig)/2] ^= 0xff
	}
	pushBundle(t, d, s, map[string]any{"messageSignature": map[string]any{
		"messageDigest": map[string]string{"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(digest)},
		"signature":     base64.StdEncoding.EncodeToString(sig)}})
}

func pushBundle(t testing.TB, d name.Digest, s *Signer, content map[string]any) {
	t.Helper()
	vm := map[string]any{"publicKey": map[string]string{"hint": "test"}}
	if s.Cert != nil {
		vm = map[string]any{"certificate": map[string]string{"rawBytes": base64.StdEncoding.EncodeToString(s.Cert.Raw)}}
	}
	// A transparency log entry a bundle from a public instance would carry; not checked offline.
	vm["tlogEntries"] = []any{map[string]string{"logIndex": "1", "integratedTime": "1764496800"}}
	bundle := map[string]any{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": vm}
	for k, v := range content {
		bundle[k] = v
	}
	raw, err := json.Marshal(bundle)
	if err != nil {
		t.Fatal(err)
	}
	pushReferrer(t, d, "application/vnd.dev.sigstore.bundle.v0.3+json", layer{raw, "application/vnd.dev.sigstore.bundle.v0.3+json", nil})
}

type layer struct {
	data        []byte
	mediaType   string
	annotations map[string]string
}

// pushTagged writes a cosign-style manifest (an OCI image manifest whose layers are the items) under the
// image's sha256-<hex><suffix> tag.
func pushTagged(t testing.TB, d name.Digest, suffix string, l layer) {
	t.Helper()
	tag := d.Context().Tag("sha256-" + strings.TrimPrefix(d.DigestStr(), "sha256:") + suffix)
	put(t, tag, manifest(t, d, "application/vnd.oci.image.config.v1+json", "", nil, l))
}

func pushReferrer(t testing.TB, d name.Digest, artifactType string, l layer) {
	t.Helper()
	subj, err := remote.Head(d)
	if err != nil {
		t.Fatal(err)
	}
	raw := manifest(t, d, "application/vnd.oci.empty.v1+json", artifactType, &v1.Descriptor{MediaType: subj.MediaType, Digest: subj.Digest, Size: subj.Size}, l)
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	put(t, d.Context().Digest(h.String()), raw)
}

func manifest(t testing.TB, d name.Digest, configType, artifactType string, subject *v1.Descriptor, l layer) []byte {
	t.Helper()
	cfgBody := []byte("{}")
	cfg := static.NewLayer(cfgBody, types.MediaType(configType))
	lay := static.NewLayer(l.data, types.MediaType(l.mediaType))
	for _, x := range []v1.Layer{cfg, lay} {
		if err := remote.WriteLayer(d.Context(), x); err != nil {
			t.Fatal(err)
		}
	}
	ld := descriptor(t, lay)
	ld.Annotations = l.annotations
	raw, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
		Config: descriptor(t, cfg), Layers: []v1.Descriptor{ld}, Subject: subject,
		Annotations: map[string]string{"org.opencontainers.image.created": time.Now().UTC().Format(time.RFC3339)}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func descriptor(t testing.TB, l v1.Layer) v1.Descriptor {
	t.Helper()
	dg, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sz, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mt, Digest: dg, Size: sz}
}

type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error)        { return r, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func put(t testing.TB, ref name.Reference, raw []byte) {
	t.Helper()
	if err := remote.Put(ref, rawManifest(raw)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func write(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
