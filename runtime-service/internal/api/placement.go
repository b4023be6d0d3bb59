package api

import (
	"net/http"
	"regexp"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// PlacementVerdict is a container's placement under the policy (docs/placement.md): allowed, violation (a
// finding) or pending (its rule needs labels not read yet), the rule that decided and why. Null on a placement
// no rule selects.
type PlacementVerdict struct {
	Status   string    `json:"status"`
	Rule     string    `json:"rule"`
	Severity *string   `json:"severity"` // violations only
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
}

func placementVerdictOf(d store.PlacementDecision) *PlacementVerdict {
	if d.Status == "" {
		return nil
	}
	v := &PlacementVerdict{Status: d.Status, Rule: d.Rule, Reason: d.Reason, Since: d.Since}
	if d.Status == placement.Violation {
		v.Severity = orNull(d.Severity)
	}
	return v
}

// PlacementFinding is a live container running an artifact outside the places its rule allows.
type PlacementFinding struct {
	Cluster   ClusterRef   `json:"cluster"`
	Namespace string       `json:"namespace"`
	Workload  *WorkloadRef `json:"workload"`
	Pod       string       `json:"pod"`
	Container string       `json:"container"`
	Digest    string       `json:"digest"`
	ImageRef  string       `json:"image_ref"`
	Rule      string       `json:"rule"`
	Severity  string       `json:"severity"`
	Reason    string       `json:"reason"`
	Since     time.Time    `json:"since"`
}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

func (h *Handler) listPlacementFindings(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFor(r, "placement/findings")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	pf := store.PlacementFilter{Filter: f}
	if v, ok := get(r.URL.Query(), "rule"); ok {
		if !ruleNameRE.MatchString(v) {
			h.fail(w, r, paramErr("rule %q is not a rule name", clip(v)))
			return
		}
		pf.Rule = v
	}
	page, err := h.store.ListPlacementFindings(r.Context(), pf)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(page, f, func(d store.PlacementDecision) PlacementFinding {
		out := PlacementFinding{Cluster: ClusterRef{UID: d.ClusterUID, Name: d.ClusterName}, Namespace: d.Namespace, Pod: d.Pod,
			Container: d.Container, Digest: d.Digest, ImageRef: d.ImageRef, Rule: d.Rule, Severity: d.Severity,
			Reason: d.Reason, Since: d.Since}
		if d.WorkloadName != "" {
			out.Workload = &WorkloadRef{Kind: d.WorkloadKind, Name: d.WorkloadName}
		}
		return out
	}))
}

// PlacementPolicy is the loaded placement policy: its rules in the order they are tried.
type PlacementPolicy struct {
	Configured bool `json:"configured"`
	// File is -placement-file and the content of it in force; null without one.
	File  *PolicyFile           `json:"file"`
	Rules []PlacementPolicyRule `json:"rules"`
}

// PlacementPolicyRule is one rule as loaded.
type PlacementPolicyRule struct {
	Name  string `json:"name"`
	Match struct {
		Registry   *string `json:"registry"`
		Repository *string `json:"repository"`
		Label      *string `json:"label"`
	} `json:"match"`
	Allow          []string `json:"allow"`
	AllowFromLabel *string  `json:"allow_from_label"`
	Severity       string   `json:"severity"`
}

func (h *Handler) placementPolicy(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		h.fail(w, r, paramErr("this endpoint takes no query parameters"))
		return
	}
	pol := h.store.Placement()
	out := PlacementPolicy{Configured: pol != nil, File: h.policyFile(PolicyPlacement), Rules: []PlacementPolicyRule{}}
	if pol != nil {
		for _, rule := range pol.Rules {
			pr := PlacementPolicyRule{Name: rule.Name, Allow: []string{}, AllowFromLabel: orNull(rule.AllowFromLabel), Severity: rule.Severity}
			pr.Match.Registry, pr.Match.Repository, pr.Match.Label = orNull(rule.Registry), orNull(rule.Repository), orNull(rule.Label)
			for _, p := range rule.Allow {
				pr.Allow = append(pr.Allow, p.String())
			}
			out.Rules = append(out.Rules, pr)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
