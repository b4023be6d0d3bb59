// Package provenance checks the signatures and build provenance of the images running now (issue #18, item 2).
// For each running digest it reads, from the digest's registry, cosign signatures and in-toto attestations
// attached under cosign's tag scheme (<repo>:sha256-<hex>.sig and .att) and as OCI 1.1 referrers (including
// sigstore bundles), verifies them offline against the keys and keyless identities a policy file trusts (with
// sigstore's signature libraries; no transparency log is asked), reads builder, source, commit and build id from
// SLSA provenance, and decides the findings the policy asks for: unsigned, signature_invalid,
// provenance_missing (docs/provenance.md). The results are kept in the store (Checker).
package provenance

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtrust/runtrust/runtime-service/internal/policyfile"
)

// Finding codes.
const (
	FindingUnsigned          = "unsigned"
	FindingSignatureInvalid  = "signature_invalid"
	FindingProvenanceMissing = "provenance_missing"
)

// Statuses of a checked digest.
const (
	StatusVerified  = "verified"   // every requirement of its rule is met
	StatusFinding   = "finding"    // one or more findings
	StatusNotJudged = "not_judged" // no rule selects it: what is attached is shown, nothing is trusted
)

// Result is what one check found for a digest.
type Result struct {
	Ref        string       `json:"ref"` // the digest reference checked (host/repo@sha256:…)
	Rule       string       `json:"rule"`
	Status     string       `json:"status"`
	Severity   string       `json:"severity"`
	Findings   []Finding    `json:"findings"`
	Signatures []Signature  `json:"signatures"`
	Provenance []Provenance `json:"provenance"`
	// Notes say what was found and not used (other attestation types, transparency log entries not checked).
	Notes []string `json:"notes"`
}

// Finding is one finding with its reason.
type Finding struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Signature is one image signature found.
type Signature struct {
	Source   string `json:"source"`   // SourceSigTag, SourceReferrer
	Format   string `json:"format"`   // "simplesigning", "bundle"
	Artifact string `json:"artifact"` // digest of the manifest holding it
	Signer   Signer `json:"signer"`
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
}

// Provenance is one SLSA provenance attestation found.
type Provenance struct {
	Source        string `json:"source"` // SourceAttTag, SourceReferrer
	Format        string `json:"format"` // "dsse", "bundle"
	Artifact      string `json:"artifact"`
	PredicateType string `json:"predicate_type"`
	BuildInfo
	Signer   Signer `json:"signer"`
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
}

// Check reads and verifies what is attached to d under the rule (nil: none selects it; then nothing is
// verified) and decides the findings. It fails only when the registry could not be read.
func Check(d name.Digest, pol *Policy, rule *Rule, opts []remote.Option) (Result, error) {
	items, err := discover(d, opts)
	if err != nil {
		return Result{}, err
	}
	r := Result{Ref: d.String(), Findings: []Finding{}, Signatures: []Signature{}, Provenance: []Provenance{}, Notes: []string{}}
	for _, it := range items {
		switch it.mediaType {
		case MediaSimpleSigning:
			r.Signatures = append(r.Signatures, checkSimpleSigning(d, pol, rule, it))
		case MediaDSSE:
			r.addEnvelope(d, pol, rule, it, "dsse", material{}, nil)
		case MediaBundle:
			r.addBundle(d, pol, rule, it)
		}
	}
	r.decide(rule)
	return r, nil
}

func checkSimpleSigning(d name.Digest, pol *Policy, rule *Rule, it item) Signature {
	s := Signature{Source: it.source, Format: "simplesigning", Artifact: it.artifact}
	fail := func(err error) Signature { s.Error = err.Error(); return s }
	m, err := materialFromAnnotations(it.annotations)
	if err != nil {
		return fail(err)
	}
	if m.cert != nil {
		s.Signer.Kind = "certificate"
		s.Signer.Subject, s.Signer.Issuer = CertificateIdentity(m.cert)
	}
	sig, err := decodeB64(it.annotations[AnnotationSignature])
	if err != nil {
		return fail(fmt.Errorf("the %s annotation: %w", AnnotationSignature, err))
	}
	payload, err := ParseSimpleSigning(it.data)
	if err != nil {
		return fail(err)
	}
	if payload.ManifestDigest != d.DigestStr() {
		return fail(fmt.Errorf("the payload signs %s, not this image", payload.ManifestDigest))
	}
	signer, err := verify(pol, rule, m, checkBlob(sig, it.data))
	s.Signer = signer
	if err != nil {
		return fail(err)
	}
	s.Verified = true
	return s
}

// addEnvelope reads a DSSE envelope of an in-toto statement: SLSA provenance is kept as Provenance, cosign's
// image-signing statement (bundle format) as a Signature; other predicates are noted.
func (r *Result) addEnvelope(d name.Digest, pol *Policy, rule *Rule, it item, format string, m material, env *Envelope) {
	var err error
	if env == nil {
		if m, err = materialFromAnnotations(it.annotations); err == nil {
			var e Envelope
			e, err = ParseEnvelope(it.data)
			env = &e
		}
		if err != nil {
			r.Provenance = append(r.Provenance, Provenance{Source: it.source, Format: format, Artifact: it.artifact, Error: err.Error()})
			return
		}
	}
	p := Provenance{Source: it.source, Format: format, Artifact: it.artifact}
	fail := func(err error) { p.Error = err.Error(); r.Provenance = append(r.Provenance, p) }
	if env.PayloadType != PayloadTypeInToto {
		fail(fmt.Errorf("DSSE payload type %q is not an in-toto statement", policyfile.Clip(env.PayloadType)))
		return
	}
	st, err := ParseStatement(env.Payload)
	if err != nil {
		fail(err)
		return
	}
	p.PredicateType = st.PredicateType
	if st.PredicateType == PredicateCosignSign {
		s := Signature{Source: it.source, Format: format, Artifact: it.artifact}
		if !st.Names(d.DigestStr()) {
			s.Error = "the statement's subjects do not name this image's digest"
		} else if s.Signer, err = verify(pol, rule, m, checkEnvelope(*env)); err != nil {
			s.Error = err.Error()
		} else {
			s.Verified = true
		}
		r.Signatures = append(r.Signatures, s)
		return
	}
	if !IsProvenance(st.PredicateType) {
		r.Notes = append(r.Notes, fmt.Sprintf("attestation %s of predicate type %s: not provenance, not read", short(it.artifact), policyfile.Clip(st.PredicateType)))
		return
	}
	if p.BuildInfo, err = ParseProvenance(st.PredicateType, st.Predicate); err != nil {
		fail(err)
		return
	}
	p.StartedOn = parseTime(p.StartedOn)
	if !st.Names(d.DigestStr()) {
		fail(fmt.Errorf("the statement's subjects do not name this image's digest"))
		return
	}
	if p.Signer, err = verify(pol, rule, m, checkEnvelope(*env)); err != nil {
		fail(err)
		return
	}
	p.Verified = true
	r.Provenance = append(r.Provenance, p)
}

func (r *Result) addBundle(d name.Digest, pol *Policy, rule *Rule, it item) {
	b, err := ParseBundle(it.data)
	if err != nil {
		r.Signatures = append(r.Signatures, Signature{Source: it.source, Format: "bundle", Artifact: it.artifact, Error: err.Error()})
		return
	}
	if b.TlogEntries > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("bundle %s carries %d transparency log entr%s: not checked (offline)", short(it.artifact),
			b.TlogEntries, map[bool]string{true: "y", false: "ies"}[b.TlogEntries == 1]))
	}
	m := materialFromBundle(b)
	if b.Envelope != nil {
		r.addEnvelope(d, pol, rule, it, "bundle", m, b.Envelope)
		return
	}
	// A message signature signs the image's manifest: its digest is the image's digest.
	s := Signature{Source: it.source, Format: "bundle", Artifact: it.artifact}
	want, _ := hex.DecodeString(strings.TrimPrefix(d.DigestStr(), "sha256:"))
	if string(b.MessageDigest) != string(want) {
		s.Error = "the bundle's message digest is not this image's digest"
	} else if s.Signer, err = verify(pol, rule, m, checkDigest(b.MessageSignature, b.MessageDigest)); err != nil {
		s.Error = err.Error()
	} else {
		s.Verified = true
	}
	r.Signatures = append(r.Signatures, s)
}

// decide sets the status and findings from what was verified, as the rule requires.
func (r *Result) decide(rule *Rule) {
	if rule == nil {
		r.Status = StatusNotJudged
		return
	}
	r.Rule, r.Severity = rule.Name, rule.Severity
	if rule.Requires(RequireSignature) {
		var errs []string
		ok := false
		for _, s := range r.Signatures {
			ok = ok || s.Verified
			if !s.Verified {
				errs = append(errs, fmt.Sprintf("%s (%s): %s", short(s.Artifact), s.Source, s.Error))
			}
		}
		switch {
		case ok:
		case len(r.Signatures) == 0:
			r.Findings = append(r.Findings, Finding{FindingUnsigned, fmt.Sprintf("rule %q requires a signature, and no cosign signature, signature referrer or sigstore bundle is attached to the image", rule.Name)})
		default:
			r.Findings = append(r.Findings, Finding{FindingSignatureInvalid, fmt.Sprintf("rule %q: no signature of the %d attached verifies: %s", rule.Name, len(r.Signatures), strings.Join(errs, "; "))})
		}
	}
	if rule.Requires(RequireProvenance) {
		var errs []string
		ok := false
		for _, p := range r.Provenance {
			ok = ok || p.Verified
			if !p.Verified {
				errs = append(errs, fmt.Sprintf("%s (%s): %s", short(p.Artifact), p.Source, p.Error))
			}
		}
		switch {
		case ok:
		case len(r.Provenance) == 0:
			r.Findings = append(r.Findings, Finding{FindingProvenanceMissing, fmt.Sprintf("rule %q requires SLSA provenance, and no provenance attestation is attached to the image", rule.Name)})
		default:
			r.Findings = append(r.Findings, Finding{FindingProvenanceMissing, fmt.Sprintf("rule %q requires SLSA provenance, and none of the %d provenance attestations verifies: %s", rule.Name, len(r.Provenance), strings.Join(errs, "; "))})
		}
	}
	r.Status = StatusVerified
	if len(r.Findings) > 0 {
		r.Status = StatusFinding
	}
}

func short(digest string) string {
	if h, ok := strings.CutPrefix(digest, "sha256:"); ok && len(h) >= 12 {
		return "sha256:" + h[:12]
	}
	return digest
}
