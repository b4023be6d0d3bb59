package provenance

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Signer says who made a signature, as far as it could be told.
type Signer struct {
	Kind string `json:"kind"` // "key" or "certificate"; "" when unknown
	// Key: the rule's key that verified it (its file and fingerprint).
	Key            string `json:"key,omitempty"`
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// Certificate: the identity (SAN) and OIDC issuer it was issued to, and the CA that issued it.
	Subject string `json:"subject,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	CA      string `json:"ca,omitempty"`
}

// material is what a signature carries to be verified with: a signing certificate and its chain, or nothing
// (then it was made with a key, and the rule's keys are tried).
type material struct {
	cert  *x509.Certificate
	chain []*x509.Certificate
}

// materialFromAnnotations reads cosign's certificate and chain annotations of a signature or attestation layer.
func materialFromAnnotations(ann map[string]string) (material, error) {
	pemCert := ann[AnnotationCertificate]
	if pemCert == "" {
		return material{}, nil
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEMLimited([]byte(pemCert), 4)
	if err != nil || len(certs) == 0 {
		return material{}, fmt.Errorf("the %s annotation is not a PEM certificate", AnnotationCertificate)
	}
	m := material{cert: certs[0]}
	if c := ann[AnnotationChain]; c != "" {
		if m.chain, err = cryptoutils.UnmarshalCertificatesFromPEMLimited([]byte(c), 10); err != nil {
			return material{}, fmt.Errorf("the %s annotation is not PEM certificates", AnnotationChain)
		}
	}
	return m, nil
}

func materialFromBundle(b Bundle) material {
	if len(b.Certificates) == 0 {
		return material{}
	}
	return material{cert: b.Certificates[0], chain: b.Certificates[1:]}
}

// verify decides whether a signature is one the rule accepts. check verifies the signature itself with a
// verifier of one public key. With a certificate: the certificate must chain to the trusted root (checked at the
// start of its validity: offline there is no transparency log time to check it at; docs/provenance.md), the
// signature must verify with its key, and its identity must be one of the rule's. Without one, one of the rule's
// keys must verify it. The Signer is filled in as far as it was learnt, also on an error.
func verify(pol *Policy, rule *Rule, m material, check func(signature.Verifier) error) (Signer, error) {
	if m.cert != nil {
		subject, issuer := CertificateIdentity(m.cert)
		s := Signer{Kind: "certificate", Subject: subject, Issuer: issuer, CA: m.cert.Issuer.String()}
		if rule == nil {
			return s, errors.New("no rule selects the image, so nothing is trusted to verify it with")
		}
		if err := verifyChain(pol, m); err != nil {
			return s, err
		}
		v, err := signature.LoadVerifier(m.cert.PublicKey, crypto.SHA256)
		if err != nil {
			return s, fmt.Errorf("the certificate's key: %w", err)
		}
		if err := check(v); err != nil {
			return s, fmt.Errorf("the signature does not verify with its certificate's key: %w", err)
		}
		for _, id := range rule.Identities {
			if id.Matches(subject, issuer) {
				return s, nil
			}
		}
		accepted := make([]string, len(rule.Identities))
		for i, id := range rule.Identities {
			accepted[i] = id.String()
		}
		if len(accepted) == 0 {
			return s, fmt.Errorf("signed by the certificate of %s (issuer %s), and rule %q accepts no keyless identity", orNone(subject), orNone(issuer), rule.Name)
		}
		return s, fmt.Errorf("signed by the certificate of %s (issuer %s), not an identity rule %q accepts (%s)",
			orNone(subject), orNone(issuer), rule.Name, strings.Join(accepted, "; "))
	}
	if rule == nil {
		return Signer{Kind: "key"}, errors.New("no rule selects the image, so nothing is trusted to verify it with")
	}
	if len(rule.Keys) == 0 {
		return Signer{Kind: "key"}, fmt.Errorf("signed with a key (no certificate), and rule %q trusts no key", rule.Name)
	}
	names := make([]string, len(rule.Keys))
	for i, k := range rule.Keys {
		names[i] = k.Name
		v, err := signature.LoadVerifier(k.Public, crypto.SHA256)
		if err != nil {
			continue
		}
		if check(v) == nil {
			return Signer{Kind: "key", Key: k.Name, KeyFingerprint: k.Fingerprint}, nil
		}
	}
	return Signer{Kind: "key"}, fmt.Errorf("the signature does not verify with any key rule %q trusts (%s)", rule.Name, strings.Join(names, ", "))
}

func verifyChain(pol *Policy, m material) error {
	if pol == nil || pol.Roots == nil {
		return errors.New("signed with a certificate, and the policy has no trusted_root to check it against")
	}
	inter := pol.Intermediates.Clone()
	for _, c := range m.chain {
		inter.AddCert(c)
	}
	_, err := m.cert.Verify(x509.VerifyOptions{Roots: pol.Roots, Intermediates: inter, CurrentTime: m.cert.NotBefore,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	if err != nil {
		return fmt.Errorf("the signing certificate (%s) does not chain to the trusted root: %w", m.cert.Subject, err)
	}
	return nil
}

// checkBlob verifies a signature over a payload (cosign's simple signing).
func checkBlob(sig, payload []byte) func(signature.Verifier) error {
	return func(v signature.Verifier) error {
		return v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload))
	}
}

// checkDigest verifies a signature over a SHA-256 digest (a bundle's message signature).
func checkDigest(sig, digest []byte) func(signature.Verifier) error {
	return func(v signature.Verifier) error {
		return v.VerifySignature(bytes.NewReader(sig), nil, options.WithDigest(digest), options.WithCryptoSignerOpts(crypto.SHA256))
	}
}

// checkEnvelope verifies a DSSE envelope's signature over its pre-authentication encoding (sigstore's DSSE
// verifier).
func checkEnvelope(env Envelope) func(signature.Verifier) error {
	return func(v signature.Verifier) error {
		return dsse.WrapVerifier(v, dsse.WithExpectedPayloadType(env.PayloadType)).VerifySignature(bytes.NewReader(env.Raw), nil)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
