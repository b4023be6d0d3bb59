package provenance

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/policyfile"
)

// Media types and annotations of what cosign and sigstore attach to an image.
const (
	// MediaSimpleSigning is a cosign signature's layer: the signed payload (SimpleSigning JSON).
	MediaSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// MediaDSSE is a cosign attestation's layer: a DSSE envelope of an in-toto statement.
	MediaDSSE = "application/vnd.dsse.envelope.v1+json"
	// MediaBundle is a sigstore bundle (v0.3), attached as a referrer by cosign's newer bundle format.
	MediaBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// MediaCosignSigArtifact is the artifactType of a cosign signature pushed as an OCI 1.1 referrer.
	MediaCosignSigArtifact = "application/vnd.dev.cosign.artifact.sig.v1+json"

	AnnotationSignature   = "dev.cosignproject.cosign/signature"
	AnnotationCertificate = "dev.sigstore.cosign/certificate"
	AnnotationChain       = "dev.sigstore.cosign/chain"

	// PayloadTypeInToto is the DSSE payload type of an in-toto statement.
	PayloadTypeInToto = "application/vnd.in-toto+json"
	// PredicateSLSA1 and PredicateSLSA02 are the SLSA provenance predicate types read.
	PredicateSLSA1  = "https://slsa.dev/provenance/v1"
	PredicateSLSA02 = "https://slsa.dev/provenance/v0.2"
	// PredicateCosignSign is the predicate cosign's bundle format signs an image with.
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"

	simpleSigningType = "cosign container image signature"
	maxDoc            = 4 << 20 // bound on any one document parsed here
)

// Fulcio's OIDC issuer extensions.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// SimpleSigning is the part of a cosign simple-signing payload that is checked: the digest it signs.
type SimpleSigning struct {
	DockerReference string
	ManifestDigest  string
}

// ParseSimpleSigning reads a cosign simple-signing payload
// ({"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},"type":…},"optional":…}).
func ParseSimpleSigning(b []byte) (SimpleSigning, error) {
	var v struct {
		Critical *struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := unmarshal(b, &v); err != nil {
		return SimpleSigning{}, fmt.Errorf("simple-signing payload: %w", err)
	}
	switch {
	case v.Critical == nil:
		return SimpleSigning{}, errors.New("simple-signing payload: no \"critical\" section")
	case !strings.EqualFold(v.Critical.Type, simpleSigningType):
		return SimpleSigning{}, fmt.Errorf("simple-signing payload: type %q is not %q", policyfile.Clip(v.Critical.Type), simpleSigningType)
	case !isDigest(v.Critical.Image.DockerManifestDigest):
		return SimpleSigning{}, fmt.Errorf("simple-signing payload: docker-manifest-digest %q is not a sha256 digest", policyfile.Clip(v.Critical.Image.DockerManifestDigest))
	}
	return SimpleSigning{DockerReference: v.Critical.Identity.DockerReference, ManifestDigest: v.Critical.Image.DockerManifestDigest}, nil
}

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string
	Payload     []byte
	Signatures  int
	// Raw is the envelope's JSON, which the sigstore DSSE verifier reads again.
	Raw []byte
}

type envelopeJSON struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// ParseEnvelope reads a DSSE envelope ({"payloadType","payload","signatures":[{"keyid","sig"}]}).
func ParseEnvelope(b []byte) (Envelope, error) {
	var v envelopeJSON
	if err := unmarshal(b, &v); err != nil {
		return Envelope{}, fmt.Errorf("DSSE envelope: %w", err)
	}
	payload, err := base64.StdEncoding.DecodeString(v.Payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("DSSE envelope: payload is not base64: %w", err)
	}
	if v.PayloadType == "" {
		return Envelope{}, errors.New("DSSE envelope: no payloadType")
	}
	if len(v.Signatures) == 0 {
		return Envelope{}, errors.New("DSSE envelope: no signatures")
	}
	for i, s := range v.Signatures {
		if _, err := base64.StdEncoding.DecodeString(s.Sig); err != nil || s.Sig == "" {
			return Envelope{}, fmt.Errorf("DSSE envelope: signatures[%d].sig is not base64", i)
		}
	}
	return Envelope{PayloadType: v.PayloadType, Payload: payload, Signatures: len(v.Signatures), Raw: bytes.Clone(b)}, nil
}

// Statement is an in-toto statement (v0.1 or v1).
type Statement struct {
	PredicateType string
	Subjects      []Subject
	Predicate     json.RawMessage
}

// Subject is a statement's subject.
type Subject struct {
	Name   string
	SHA256 string // hex
}

// ParseStatement reads an in-toto statement.
func ParseStatement(b []byte) (Statement, error) {
	var v struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := unmarshal(b, &v); err != nil {
		return Statement{}, fmt.Errorf("in-toto statement: %w", err)
	}
	if v.Type != "https://in-toto.io/Statement/v1" && v.Type != "https://in-toto.io/Statement/v0.1" {
		return Statement{}, fmt.Errorf("in-toto statement: _type %q is not an in-toto statement v0.1 or v1", policyfile.Clip(v.Type))
	}
	if v.PredicateType == "" {
		return Statement{}, errors.New("in-toto statement: no predicateType")
	}
	s := Statement{PredicateType: v.PredicateType, Predicate: v.Predicate}
	for _, sub := range v.Subject {
		s.Subjects = append(s.Subjects, Subject{Name: sub.Name, SHA256: strings.ToLower(sub.Digest["sha256"])})
	}
	return s, nil
}

// Names says whether the statement is about the manifest of digest ("sha256:<hex>").
func (s Statement) Names(digest string) bool {
	hex, _ := strings.CutPrefix(digest, "sha256:")
	for _, sub := range s.Subjects {
		if sub.SHA256 != "" && sub.SHA256 == hex {
			return true
		}
	}
	return false
}

// BuildInfo is what a provenance predicate says of the build.
type BuildInfo struct {
	BuilderID  string `json:"builder_id"`
	BuildType  string `json:"build_type"`
	SourceRepo string `json:"source_repo"`
	Commit     string `json:"commit"`
	Ref        string `json:"ref"`
	BuildID    string `json:"build_id"` // the invocation id
	CIURL      string `json:"ci_url"`
	StartedOn  string `json:"started_on"`
}

// IsProvenance says whether a predicate type is SLSA provenance this package reads.
func IsProvenance(predicateType string) bool {
	return predicateType == PredicateSLSA1 || predicateType == PredicateSLSA02
}

type digestSet map[string]string

func (d digestSet) commit() string {
	for _, k := range []string{"gitCommit", "sha1", "sha256"} {
		if v := d[k]; v != "" {
			return v
		}
	}
	return ""
}

// ParseProvenance reads the build facts of a SLSA v1 or v0.2 provenance predicate.
func ParseProvenance(predicateType string, predicate []byte) (BuildInfo, error) {
	switch predicateType {
	case PredicateSLSA1:
		return parseSLSA1(predicate)
	case PredicateSLSA02:
		return parseSLSA02(predicate)
	}
	return BuildInfo{}, fmt.Errorf("predicate type %q is not SLSA provenance v1 or v0.2", policyfile.Clip(predicateType))
}

func parseSLSA1(b []byte) (BuildInfo, error) {
	var v struct {
		BuildDefinition struct {
			BuildType          string          `json:"buildType"`
			ExternalParameters json.RawMessage `json:"externalParameters"`
			Resolved           []struct {
				URI    string    `json:"uri"`
				Digest digestSet `json:"digest"`
			} `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Metadata struct {
				InvocationID string `json:"invocationId"`
				StartedOn    string `json:"startedOn"`
			} `json:"metadata"`
		} `json:"runDetails"`
	}
	if err := unmarshal(b, &v); err != nil {
		return BuildInfo{}, fmt.Errorf("SLSA v1 provenance: %w", err)
	}
	if v.RunDetails.Builder.ID == "" {
		return BuildInfo{}, errors.New("SLSA v1 provenance: no runDetails.builder.id")
	}
	bi := BuildInfo{BuilderID: v.RunDetails.Builder.ID, BuildType: v.BuildDefinition.BuildType,
		BuildID: v.RunDetails.Metadata.InvocationID, StartedOn: v.RunDetails.Metadata.StartedOn}
	// The source: GitHub's and GitLab's build types name it in externalParameters (workflow.repository, or
	// source); any build type lists it among the resolved dependencies, with the commit.
	var ext struct {
		Workflow struct {
			Repository string `json:"repository"`
			Ref        string `json:"ref"`
		} `json:"workflow"`
		Source json.RawMessage `json:"source"`
	}
	if len(v.BuildDefinition.ExternalParameters) > 0 {
		_ = json.Unmarshal(v.BuildDefinition.ExternalParameters, &ext) // optional, build-type specific
	}
	bi.SourceRepo, bi.Ref = ext.Workflow.Repository, ext.Workflow.Ref
	if bi.SourceRepo == "" && len(ext.Source) > 0 {
		var s string
		var o struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(ext.Source, &s) == nil {
			bi.SourceRepo = s
		} else if json.Unmarshal(ext.Source, &o) == nil {
			bi.SourceRepo = o.URI
		}
	}
	for _, dep := range v.BuildDefinition.Resolved {
		repo, ref := splitSourceURI(dep.URI)
		if bi.SourceRepo != "" && !sameRepo(repo, bi.SourceRepo) {
			continue
		}
		if c := dep.Digest.commit(); c != "" || bi.SourceRepo == "" {
			if bi.SourceRepo == "" {
				bi.SourceRepo = repo
			}
			bi.Commit = c
			if bi.Ref == "" {
				bi.Ref = ref
			}
			break
		}
	}
	bi.CIURL = ciURL(bi.BuildID)
	return bi, nil
}

func parseSLSA02(b []byte) (BuildInfo, error) {
	var v struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		BuildType  string `json:"buildType"`
		Invocation struct {
			ConfigSource struct {
				URI    string    `json:"uri"`
				Digest digestSet `json:"digest"`
			} `json:"configSource"`
		} `json:"invocation"`
		Metadata struct {
			BuildInvocationID string `json:"buildInvocationId"`
			BuildStartedOn    string `json:"buildStartedOn"`
		} `json:"metadata"`
	}
	if err := unmarshal(b, &v); err != nil {
		return BuildInfo{}, fmt.Errorf("SLSA v0.2 provenance: %w", err)
	}
	if v.Builder.ID == "" {
		return BuildInfo{}, errors.New("SLSA v0.2 provenance: no builder.id")
	}
	repo, ref := splitSourceURI(v.Invocation.ConfigSource.URI)
	bi := BuildInfo{BuilderID: v.Builder.ID, BuildType: v.BuildType, SourceRepo: repo, Ref: ref,
		Commit: v.Invocation.ConfigSource.Digest.commit(), BuildID: v.Metadata.BuildInvocationID, StartedOn: v.Metadata.BuildStartedOn}
	bi.CIURL = ciURL(bi.BuildID)
	return bi, nil
}

// splitSourceURI turns "git+https://github.com/o/r@refs/heads/main" into the repository URL and the ref. An
// '@' before the path (user@host) is not a ref.
func splitSourceURI(u string) (repo, ref string) {
	u = strings.TrimPrefix(u, "git+")
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		rest = u
	}
	slash, at := strings.Index(rest, "/"), strings.LastIndex(rest, "@")
	if slash < 0 || at < slash {
		return u, ""
	}
	cut := len(u) - len(rest) + at
	return u[:cut], u[cut+1:]
}

func sameRepo(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "git+"), "https://"), ".git")
		return strings.ToLower(strings.TrimSuffix(s, "/"))
	}
	return norm(a) == norm(b)
}

// ciURL is the invocation id when it is a web address: GitHub Actions and GitLab CI give their run's URL.
func ciURL(id string) string {
	u, err := url.Parse(id)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return id
}

// Bundle is a sigstore bundle: the signing material and one signed content.
type Bundle struct {
	MediaType string
	// Certificates: the signing certificate first, then its chain (if the bundle carries one). None: a
	// public key (KeyHint names it).
	Certificates []*x509.Certificate
	KeyHint      string
	// TlogEntries counts the transparency log entries it carries (not checked offline).
	TlogEntries int
	// Either a message signature (over the SHA-256 MessageDigest) or a DSSE envelope.
	MessageDigest, MessageSignature []byte
	Envelope                        *Envelope
}

// ParseBundle reads a sigstore bundle v0.1–v0.3 (JSON, protobuf field names in camelCase).
func ParseBundle(b []byte) (Bundle, error) {
	type rawBytes struct {
		RawBytes string `json:"rawBytes"`
	}
	var v struct {
		MediaType            string `json:"mediaType"`
		VerificationMaterial struct {
			Certificate *rawBytes `json:"certificate"`
			Chain       *struct {
				Certificates []rawBytes `json:"certificates"`
			} `json:"x509CertificateChain"`
			PublicKey *struct {
				Hint string `json:"hint"`
			} `json:"publicKey"`
			TlogEntries []json.RawMessage `json:"tlogEntries"`
		} `json:"verificationMaterial"`
		MessageSignature *struct {
			MessageDigest struct {
				Algorithm string `json:"algorithm"`
				Digest    string `json:"digest"`
			} `json:"messageDigest"`
			Signature string `json:"signature"`
		} `json:"messageSignature"`
		DSSEEnvelope json.RawMessage `json:"dsseEnvelope"`
	}
	if err := unmarshal(b, &v); err != nil {
		return Bundle{}, fmt.Errorf("sigstore bundle: %w", err)
	}
	if !strings.HasPrefix(v.MediaType, "application/vnd.dev.sigstore.bundle") {
		return Bundle{}, fmt.Errorf("sigstore bundle: mediaType %q is not a sigstore bundle's", policyfile.Clip(v.MediaType))
	}
	out := Bundle{MediaType: v.MediaType, TlogEntries: len(v.VerificationMaterial.TlogEntries)}
	var ders []rawBytes
	vm := v.VerificationMaterial
	switch {
	case vm.Certificate != nil:
		ders = []rawBytes{*vm.Certificate}
	case vm.Chain != nil:
		ders = vm.Chain.Certificates
	case vm.PublicKey != nil:
		out.KeyHint = vm.PublicKey.Hint
	default:
		return Bundle{}, errors.New("sigstore bundle: verificationMaterial has no certificate, chain or public key")
	}
	for i, d := range ders {
		der, err := base64.StdEncoding.DecodeString(d.RawBytes)
		if err != nil {
			return Bundle{}, fmt.Errorf("sigstore bundle: certificate %d is not base64", i)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Bundle{}, fmt.Errorf("sigstore bundle: certificate %d: %w", i, err)
		}
		out.Certificates = append(out.Certificates, c)
	}
	switch {
	case v.MessageSignature != nil && len(v.DSSEEnvelope) > 0:
		return Bundle{}, errors.New("sigstore bundle: both messageSignature and dsseEnvelope")
	case v.MessageSignature != nil:
		ms := v.MessageSignature
		if ms.MessageDigest.Algorithm != "SHA2_256" {
			return Bundle{}, fmt.Errorf("sigstore bundle: message digest algorithm %q is not SHA2_256", policyfile.Clip(ms.MessageDigest.Algorithm))
		}
		var err error
		if out.MessageDigest, err = base64.StdEncoding.DecodeString(ms.MessageDigest.Digest); err != nil || len(out.MessageDigest) != 32 {
			return Bundle{}, errors.New("sigstore bundle: messageDigest.digest is not a base64 SHA-256")
		}
		if out.MessageSignature, err = base64.StdEncoding.DecodeString(ms.Signature); err != nil || len(out.MessageSignature) == 0 {
			return Bundle{}, errors.New("sigstore bundle: messageSignature.signature is not base64")
		}
	case len(v.DSSEEnvelope) > 0:
		env, err := ParseEnvelope(v.DSSEEnvelope)
		if err != nil {
			return Bundle{}, fmt.Errorf("sigstore bundle: %w", err)
		}
		out.Envelope = &env
	default:
		return Bundle{}, errors.New("sigstore bundle: neither messageSignature nor dsseEnvelope")
	}
	return out, nil
}

// CertificateIdentity is who a Fulcio-style signing certificate was issued to: its email or URI SAN, and the
// OIDC issuer extension (1.3.6.1.4.1.57264.1.8, a DER UTF8String; else the older 1.3.6.1.4.1.57264.1.1, raw).
func CertificateIdentity(c *x509.Certificate) (subject, issuer string) {
	switch {
	case len(c.EmailAddresses) > 0:
		subject = c.EmailAddresses[0]
	case len(c.URIs) > 0:
		subject = c.URIs[0].String()
	}
	for _, e := range c.Extensions {
		switch {
		case e.Id.Equal(oidIssuerV2):
			var s string
			if _, err := asn1.Unmarshal(e.Value, &s); err == nil {
				return subject, s
			}
		case e.Id.Equal(oidIssuerV1) && issuer == "":
			issuer = string(e.Value)
		}
	}
	return subject, issuer
}

// parseTime reads an RFC 3339 time for display; anything else is kept as it was given.
func parseTime(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format(time.RFC3339)
	}
	return s
}

func isDigest(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	return strings.IndexFunc(hex, func(r rune) bool { return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') }) < 0
}

// decodeB64 reads a base64 signature.
func decodeB64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	return b, nil
}

// unmarshal decodes a bounded JSON document.
func unmarshal(b []byte, v any) error {
	if len(b) > maxDoc {
		return fmt.Errorf("%d bytes; at most %d", len(b), maxDoc)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("not JSON of that shape: %w", err)
	}
	return nil
}
