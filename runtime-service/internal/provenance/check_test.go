package provenance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
	pt "github.com/runtrust/runtrust/runtime-service/internal/provenance/provenancetest"
)

const (
	releaseID  = "release@corp.example"
	oidcIssuer = "https://accounts.corp.example"
	workflowID = "https://github.com/corp/shop/.github/workflows/release.yml@refs/heads/main"
)

var build = pt.Build{BuilderID: "https://github.com/actions/runner/github-hosted", Repository: "https://github.com/corp/shop",
	Ref: "refs/heads/main", Commit: "8f3c2a1d9e0b7c6a5f4e3d2c1b0a9f8e7d6c5b4a", InvocationID: "https://github.com/corp/shop/actions/runs/4242/attempts/1"}

type fixture struct {
	pol      *provenance.Policy
	key      *pt.Signer
	ca       *pt.CA
	keyless  *pt.Signer
	workflow *pt.Signer
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{key: pt.NewKey(t), ca: pt.NewCA(t)}
	f.keyless = f.ca.Keyless(t, releaseID, oidcIssuer)
	f.workflow = f.ca.Keyless(t, workflowID, "https://token.actions.githubusercontent.com")
	f.key.WritePublic(t, dir, "release.pub")
	f.ca.WriteRoot(t, dir, "root.pem")
	policy := `trusted_root: root.pem
rules:
  - name: keyed
    match: {repository: "keyed/*"}
    keys: [release.pub]
    require: [signature, provenance]
  - name: keyless
    match: {repository: "keyless/*"}
    identities:
      - {subject: ` + releaseID + `, issuer: "` + oidcIssuer + `"}
      - {subject_regexp: "https://github\\.com/corp/.*", issuer: "https://token.actions.githubusercontent.com"}
    require: [signature, provenance]
  - name: plain
    match: {repository: "plain/*"}
    keys: [release.pub]
    severity: critical
`
	file := filepath.Join(dir, "provenance.yaml")
	if err := os.WriteFile(file, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.pol, err = provenance.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	return f
}

func check(t *testing.T, f fixture, d name.Digest) provenance.Result {
	t.Helper()
	rule := f.pol.RuleFor(d.RegistryStr(), d.RepositoryStr())
	r, err := provenance.Check(d, f.pol, rule, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func push(t *testing.T, reg *registrytest.Registry, repoTag string) name.Digest {
	t.Helper()
	digest := reg.PushImage(t, repoTag)
	repo, _, _ := strings.Cut(repoTag, ":")
	d, err := name.NewDigest(reg.Ref(repo) + "@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func codes(r provenance.Result) string {
	var c []string
	for _, f := range r.Findings {
		c = append(c, f.Code)
	}
	return strings.Join(c, ",")
}

var registries = []struct {
	name string
	opts []registrytest.Option
}{
	{"referrers API", []registrytest.Option{registrytest.WithReferrers()}},
	{"tag fallback", nil},
}

// TestCheck is the show: signatures and SLSA attestations made here with sigstore's libraries (a key
// pair, and keyless-style certificates from a test CA), attached under cosign's tags and as referrers
// (including sigstore bundles), are verified; unsigned, tampered, wrong-identity, wrong-CA and missing-provenance
// images each get their finding, and the build facts are read from the provenance.
func TestCheck(t *testing.T) {
	f := newFixture(t)
	for _, rg := range registries {
		t.Run(rg.name, func(t *testing.T) {
			reg := registrytest.Start(t, rg.opts...)

			t.Run("key, cosign tags", func(t *testing.T) {
				d := push(t, reg, "keyed/app:1")
				pt.SignImage(t, d, f.key, pt.Tag, pt.Options{})
				pt.AttestProvenance(t, d, f.key, build, pt.Tag, pt.Options{})
				r := check(t, f, d)
				if r.Status != provenance.StatusVerified || r.Rule != "keyed" || len(r.Signatures) != 1 || len(r.Provenance) != 1 {
					t.Fatalf("%+v", r)
				}
				s, p := r.Signatures[0], r.Provenance[0]
				if s.Source != provenance.SourceSigTag || s.Signer.Kind != "key" || !strings.HasSuffix(s.Signer.Key, "release.pub") || s.Signer.KeyFingerprint == "" {
					t.Errorf("signature %+v", s)
				}
				want := provenance.BuildInfo{BuilderID: build.BuilderID, BuildType: "https://actions.github.io/buildtypes/workflow/v1",
					SourceRepo: build.Repository, Commit: build.Commit, Ref: build.Ref, BuildID: build.InvocationID, CIURL: build.InvocationID,
					StartedOn: "2026-11-30T10:00:00Z"}
				if p.Source != provenance.SourceAttTag || !p.Verified || p.BuildInfo != want || p.PredicateType != provenance.PredicateSLSA1 {
					t.Errorf("provenance %+v\nwant %+v", p, want)
				}
			})

			t.Run("key, referrers", func(t *testing.T) {
				d := push(t, reg, "keyed/ref:1")
				pt.SignImage(t, d, f.key, pt.Referrer, pt.Options{})
				pt.AttestProvenance(t, d, f.key, build, pt.Referrer, pt.Options{})
				r := check(t, f, d)
				if r.Status != provenance.StatusVerified || len(r.Signatures) != 1 || r.Signatures[0].Source != provenance.SourceReferrer ||
					len(r.Provenance) != 1 || r.Provenance[0].Source != provenance.SourceReferrer || r.Provenance[0].Commit != build.Commit {
					t.Fatalf("%+v", r)
				}
			})

			t.Run("keyless, tag signature and bundle provenance", func(t *testing.T) {
				d := push(t, reg, "keyless/app:1")
				pt.SignImage(t, d, f.keyless, pt.Tag, pt.Options{})
				pt.BundleProvenance(t, d, f.workflow, build)
				r := check(t, f, d)
				if r.Status != provenance.StatusVerified {
					t.Fatalf("%+v", r)
				}
				if s := r.Signatures[0].Signer; s.Kind != "certificate" || s.Subject != releaseID || s.Issuer != oidcIssuer || !strings.Contains(s.CA, "runtrust test CA") {
					t.Errorf("signer %+v", s)
				}
				if p := r.Provenance[0]; p.Format != "bundle" || p.Signer.Subject != workflowID || p.BuilderID != build.BuilderID {
					t.Errorf("provenance %+v", p)
				}
				if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "transparency log") {
					t.Errorf("notes %q", r.Notes)
				}
			})

			t.Run("keyless, bundle message signature and referrer attestation", func(t *testing.T) {
				d := push(t, reg, "keyless/bundle:1")
				pt.BundleSignature(t, d, f.keyless, pt.Options{})
				pt.AttestProvenance(t, d, f.keyless, build, pt.Referrer, pt.Options{})
				if r := check(t, f, d); r.Status != provenance.StatusVerified || r.Signatures[0].Format != "bundle" {
					t.Fatalf("%+v", r)
				}
			})

			findings := []struct {
				name, repo, want, reason string
				attach                   func(t *testing.T, d name.Digest)
			}{
				{"unsigned", "plain/unsigned:1", provenance.FindingUnsigned, "no cosign signature", func(*testing.T, name.Digest) {}},
				{"tampered signature", "plain/tampered:1", provenance.FindingSignatureInvalid, "does not verify with any key rule \"plain\" trusts",
					func(t *testing.T, d name.Digest) { pt.SignImage(t, d, f.key, pt.Tag, pt.Options{Tamper: true}) }},
				{"tampered bundle signature", "keyless/tampered:1", provenance.FindingSignatureInvalid + "," + provenance.FindingProvenanceMissing,
					"does not verify with its certificate's key", func(t *testing.T, d name.Digest) {
						pt.BundleSignature(t, d, f.keyless, pt.Options{Tamper: true})
					}},
				{"another image's signature", "plain/other:1", provenance.FindingSignatureInvalid, "not this image",
					func(t *testing.T, d name.Digest) {
						pt.SignImage(t, d, f.key, pt.Tag, pt.Options{Digest: "sha256:" + strings.Repeat("ab", 32)})
					}},
				{"wrong identity", "keyless/mallory:1", provenance.FindingSignatureInvalid + "," + provenance.FindingProvenanceMissing,
					"signed by the certificate of mallory@corp.example (issuer " + oidcIssuer + "), not an identity rule \"keyless\" accepts",
					func(t *testing.T, d name.Digest) {
						pt.SignImage(t, d, f.ca.Keyless(t, "mallory@corp.example", oidcIssuer), pt.Tag, pt.Options{})
					}},
				{"wrong issuer", "keyless/issuer:1", provenance.FindingSignatureInvalid + "," + provenance.FindingProvenanceMissing, "not an identity",
					func(t *testing.T, d name.Digest) {
						pt.SignImage(t, d, f.ca.Keyless(t, releaseID, "https://evil.example"), pt.Referrer, pt.Options{})
					}},
				{"untrusted CA", "keyless/ca:1", provenance.FindingSignatureInvalid + "," + provenance.FindingProvenanceMissing, "does not chain to the trusted root",
					func(t *testing.T, d name.Digest) {
						pt.SignImage(t, d, pt.NewCA(t).Keyless(t, releaseID, oidcIssuer), pt.Tag, pt.Options{})
					}},
				{"a key the rule does not trust", "keyed/stranger:1", provenance.FindingSignatureInvalid + "," + provenance.FindingProvenanceMissing, "does not verify with any key",
					func(t *testing.T, d name.Digest) { pt.SignImage(t, d, pt.NewKey(t), pt.Tag, pt.Options{}) }},
				{"no attestation", "keyed/noatt:1", provenance.FindingProvenanceMissing, "no provenance attestation is attached",
					func(t *testing.T, d name.Digest) { pt.SignImage(t, d, f.key, pt.Tag, pt.Options{}) }},
				{"tampered attestation", "keyed/tamperatt:1", provenance.FindingProvenanceMissing, "none of the 1 provenance attestations verifies",
					func(t *testing.T, d name.Digest) {
						pt.SignImage(t, d, f.key, pt.Tag, pt.Options{})
						pt.AttestProvenance(t, d, f.key, build, pt.Tag, pt.Options{Tamper: true})
					}},
			}
			for _, tc := range findings {
				t.Run(tc.name, func(t *testing.T) {
					d := push(t, reg, tc.repo)
					tc.attach(t, d)
					r := check(t, f, d)
					if r.Status != provenance.StatusFinding || codes(r) != tc.want {
						t.Fatalf("status %s, findings %q; want %s\n%+v", r.Status, codes(r), tc.want, r)
					}
					if !strings.Contains(r.Findings[0].Reason, tc.reason) {
						t.Errorf("reason %q, want it to say %q", r.Findings[0].Reason, tc.reason)
					}
				})
			}

			t.Run("no rule", func(t *testing.T) {
				d := push(t, reg, "other/app:1")
				pt.SignImage(t, d, f.key, pt.Tag, pt.Options{})
				r := check(t, f, d)
				if r.Status != provenance.StatusNotJudged || len(r.Findings) != 0 || len(r.Signatures) != 1 || r.Signatures[0].Verified {
					t.Fatalf("%+v", r)
				}
			})
		})
	}
}

func TestCheckRegistryDown(t *testing.T) {
	f := newFixture(t)
	reg := registrytest.Start(t)
	d := push(t, reg, "plain/down:1")
	reg.Stop()
	if _, err := provenance.Check(d, f.pol, f.pol.RuleFor("", "plain/down"), nil); err == nil {
		t.Fatal("a registry that is down gave a result; want an error, never \"unsigned\"")
	}
}
