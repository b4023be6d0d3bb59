package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// WithProvenance gives the handler the signature and provenance policy in force (current returns it at each
// call; nil current, or a nil policy: none), for the policy endpoint and to tell "not checked yet" from "not
// configured".
func (h *Handler) WithProvenance(current func() *provenance.Policy) *Handler {
	h.provenance = current
	return h
}

// provenancePolicyNow is the signature and provenance policy in force, nil for none.
func (h *Handler) provenancePolicyNow() *provenance.Policy {
	if h.provenance == nil {
		return nil
	}
	return h.provenance()
}

// ProvenanceStatus is an image's signatures and build provenance as last checked (docs/provenance.md).
type ProvenanceStatus struct {
	// State: off (no policy loaded), pending (not checked yet), checked, or failed (the registry could not be read
	// at the last try; what an earlier check found is still shown).
	State    string  `json:"state"`
	Status   *string `json:"status"` // verified, finding, not_judged; null before a first check
	Rule     *string `json:"rule"`
	Severity *string `json:"severity"` // with findings only
	// Findings: unsigned, signature_invalid, provenance_missing, each with its reason.
	Findings    []provenance.Finding    `json:"findings"`
	Ref         *string                 `json:"ref"` // the digest reference the registry was asked about
	Signatures  []provenance.Signature  `json:"signatures"`
	Provenance  []provenance.Provenance `json:"provenance"`
	Notes       []string                `json:"notes"`
	Artifactory *ArtifactoryBuild       `json:"artifactory"`
	Error       *string                 `json:"error"`
	Attempts    int                     `json:"attempts"`
	CheckedAt   *time.Time              `json:"checked_at"`
	NextCheckAt *time.Time              `json:"next_check_at"`
}

// ArtifactoryBuild is the build Artifactory's build.name and build.number properties of the image's tags name.
type ArtifactoryBuild struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

func (h *Handler) provenanceStatus(r *http.Request, digest string) (ProvenanceStatus, error) {
	out := ProvenanceStatus{State: "off", Findings: []provenance.Finding{}, Signatures: []provenance.Signature{},
		Provenance: []provenance.Provenance{}, Notes: []string{}}
	if h.provenancePolicyNow() == nil {
		return out, nil
	}
	out.State = "pending"
	rec, ok, err := h.store.GetProvenance(r.Context(), digest)
	if err != nil || !ok {
		return out, err
	}
	return provenanceStatusOf(rec)
}

func provenanceStatusOf(rec store.ProvenanceRecord) (ProvenanceStatus, error) {
	out := ProvenanceStatus{State: rec.State, Findings: []provenance.Finding{}, Signatures: []provenance.Signature{},
		Provenance: []provenance.Provenance{}, Notes: []string{}, Error: orNull(rec.Error), Attempts: rec.Attempts,
		Status: orNull(rec.Status), Rule: orNull(rec.Rule), Severity: orNull(rec.Severity)}
	if rec.Result != nil {
		var res provenance.Result
		if err := json.Unmarshal(rec.Result, &res); err != nil {
			return out, fmt.Errorf("stored provenance check of %s: %w", rec.Digest, err)
		}
		out.Ref = orNull(res.Ref)
		out.Findings, out.Signatures, out.Provenance = orEmpty(res.Findings), orEmpty(res.Signatures), orEmpty(res.Provenance)
		out.Notes = nonNil(res.Notes)
		at, next := rec.CheckedAt, rec.NextCheckAt
		out.CheckedAt, out.NextCheckAt = &at, &next
	}
	if rec.BuildName != "" || rec.BuildNumber != "" {
		out.Artifactory = &ArtifactoryBuild{Name: rec.BuildName, Number: rec.BuildNumber}
	}
	return out, nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ProvenanceFinding is a running image whose signatures or provenance its rule finds wanting.
type ProvenanceFinding struct {
	Digest      string               `json:"digest"`
	Refs        []string             `json:"refs"`
	Rule        string               `json:"rule"`
	Severity    string               `json:"severity"`
	Findings    []provenance.Finding `json:"findings"`
	CheckedAt   time.Time            `json:"checked_at"`
	Artifactory *ArtifactoryBuild    `json:"artifactory"`
}

var findingCodes = []string{provenance.FindingUnsigned, provenance.FindingSignatureInvalid, provenance.FindingProvenanceMissing}

func (h *Handler) listProvenanceFindings(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFor(r, "provenance/findings")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	pf := store.ProvenanceFilter{Filter: f}
	if v, ok := get(r.URL.Query(), "rule"); ok {
		if !ruleNameRE.MatchString(v) {
			h.fail(w, r, paramErr("rule %q is not a rule name", clip(v)))
			return
		}
		pf.Rule = v
	}
	if v, ok := get(r.URL.Query(), "finding"); ok {
		if !slices.Contains(findingCodes, v) {
			h.fail(w, r, paramErr("finding %q is not unsigned, signature_invalid or provenance_missing", clip(v)))
			return
		}
		pf.Code = v
	}
	page, err := h.store.ListProvenanceFindings(r.Context(), pf)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var convErr error
	out := listOf(page, f, func(rec store.ProvenanceRecord) ProvenanceFinding {
		st, err := provenanceStatusOf(rec)
		if err != nil {
			convErr = err
		}
		return ProvenanceFinding{Digest: rec.Digest, Refs: nonNil(rec.Refs), Rule: rec.Rule, Severity: rec.Severity,
			Findings: st.Findings, CheckedAt: rec.CheckedAt, Artifactory: st.Artifactory}
	})
	if convErr != nil {
		h.fail(w, r, convErr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// ProvenancePolicy is the loaded signature and provenance policy: its trusted root and its rules in the order
// they are tried.
type ProvenancePolicy struct {
	Configured bool `json:"configured"`
	// File is -provenance-file and the content of it in force; null without one.
	File        *PolicyFile            `json:"file"`
	TrustedRoot *TrustedRoot           `json:"trusted_root"`
	Rules       []ProvenancePolicyRule `json:"rules"`
}

// TrustedRoot is the policy's trusted root file and the CA certificates in it.
type TrustedRoot struct {
	File         string   `json:"file"`
	Certificates []string `json:"certificates"` // their subjects
}

// ProvenancePolicyRule is one rule as loaded.
type ProvenancePolicyRule struct {
	Name  string `json:"name"`
	Match struct {
		Registry   *string `json:"registry"`
		Repository *string `json:"repository"`
	} `json:"match"`
	Keys       []TrustedKey `json:"keys"`
	Identities []string     `json:"identities"`
	Require    []string     `json:"require"`
	Severity   string       `json:"severity"`
}

// TrustedKey is a public key a rule trusts.
type TrustedKey struct {
	File        string `json:"file"`
	Fingerprint string `json:"fingerprint"`
}

func (h *Handler) provenancePolicy(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		h.fail(w, r, paramErr("this endpoint takes no query parameters"))
		return
	}
	pol := h.provenancePolicyNow()
	out := ProvenancePolicy{Configured: pol != nil, File: h.policyFile(PolicyProvenance), Rules: []ProvenancePolicyRule{}}
	if pol != nil {
		if pol.RootFile != "" {
			out.TrustedRoot = &TrustedRoot{File: pol.RootFile, Certificates: nonNil(pol.RootSubjects)}
		}
		for _, rule := range pol.Rules {
			pr := ProvenancePolicyRule{Name: rule.Name, Keys: []TrustedKey{}, Identities: []string{}, Require: nonNil(rule.Require), Severity: rule.Severity}
			pr.Match.Registry, pr.Match.Repository = orNull(rule.Registry), orNull(rule.Repository)
			for _, k := range rule.Keys {
				pr.Keys = append(pr.Keys, TrustedKey{File: k.Name, Fingerprint: k.Fingerprint})
			}
			for _, id := range rule.Identities {
				pr.Identities = append(pr.Identities, id.String())
			}
			out.Rules = append(out.Rules, pr)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
