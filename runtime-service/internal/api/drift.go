package api

import (
	"net/http"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/drift"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// WithDrift tells the handler that exact drift runs (nil: -drift off), to tell "not indexed yet" from "off";
// building says whether a digest's layers are being read now.
func (h *Handler) WithDrift(building func(digest string) bool) *Handler {
	h.driftBuilding = building
	return h
}

// DriftVerdicts are the drift verdicts, as the findings list filters them (docs/drift.md).
var DriftVerdicts = []string{string(drift.Modified), string(drift.Added), string(drift.Memory), string(drift.InImage), string(drift.Unknown)}

// DriftStatus is where an image's layer index stands (docs/drift.md).
type DriftStatus struct {
	// State: off (-drift off), pending (not indexed yet), building (its layers are being read now), built, or
	// failed (the registry could not be read at the last try; tried again at next_try_at, and building meanwhile
	// when it is).
	State     string     `json:"state"`
	Manifest  *string    `json:"manifest"` // the platform manifest read, when the digest is an image index
	Files     int        `json:"files"`
	Bytes     int64      `json:"bytes"`
	Truncated bool       `json:"truncated"` // a bound cut the index: programs it lacks are unknown, not added
	Notes     []string   `json:"notes"`
	Error     *string    `json:"error"`
	Attempts  int        `json:"attempts"`
	BuiltAt   *time.Time `json:"built_at"` // when built, or when the last attempt failed
	NextTryAt *time.Time `json:"next_try_at"`
}

func (h *Handler) driftStatus(r *http.Request, digest string) (DriftStatus, error) {
	out := DriftStatus{State: "off", Notes: []string{}}
	if h.driftBuilding == nil {
		return out, nil
	}
	out.State = "pending"
	if h.driftBuilding(digest) {
		out.State = "building"
	}
	x, ok, err := h.store.GetDriftIndex(r.Context(), digest)
	if err != nil || !ok {
		return out, err
	}
	at := x.BuiltAt
	if x.State == "failed" && h.driftBuilding(digest) {
		x.State = "building" // tried again now; the last error stays shown
	}
	return DriftStatus{State: x.State, Manifest: orNull(x.Manifest), Files: x.Files, Bytes: x.Bytes, Truncated: x.Truncated,
		Notes: nonNil(x.Notes), Error: orNull(x.Error), Attempts: x.Attempts, BuiltAt: &at, NextTryAt: x.NextTryAt}, nil
}

// ProcessDrift is the drift verdict on a process: where it came from, the severity the rules give it, and the
// rule that allowed it.
type ProcessDrift struct {
	Verdict   string  `json:"verdict"`
	Severity  string  `json:"severity"`
	AllowedBy *string `json:"allowed_by"`
}

func processDriftOf(d store.ProcessDrift) *ProcessDrift {
	if d.Verdict == "" {
		return nil
	}
	return &ProcessDrift{Verdict: d.Verdict, Severity: d.Severity, AllowedBy: orNull(d.AllowedBy)}
}

// DriftCounts summarise an image's drift findings with a severity, in the caller's clusters.
type DriftCounts struct {
	Findings int     `json:"findings"`
	Severity *string `json:"severity"` // the worst; null without findings
}

// DriftFinding is one program a container of an image ran, judged against the image's layers.
type DriftFinding struct {
	Digest       string     `json:"digest"`
	Cluster      ClusterRef `json:"cluster"`
	Path         string     `json:"path"`
	SHA256       *string    `json:"sha256"`
	Verdict      string     `json:"verdict"`
	Severity     string     `json:"severity"`
	AllowedBy    *string    `json:"allowed_by"`
	Repositories []string   `json:"repositories"`
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
	JudgedAt     time.Time  `json:"judged_at"`
}

func (h *Handler) listDriftFindings(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFor(r, "drift/findings")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	df := store.DriftFilter{Filter: f}
	if v, ok := get(r.URL.Query(), "drift"); ok {
		if df.Verdicts, err = setParam("drift", v, DriftVerdicts); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if v, ok := get(r.URL.Query(), "allowed"); ok {
		if v != "true" && v != "false" {
			h.fail(w, r, paramErr("allowed %q is not true or false", clip(v)))
			return
		}
		df.WithAllowed = v == "true"
	}
	page, err := h.store.ListDriftFindings(r.Context(), df)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(page, f, func(d store.DriftRecord) DriftFinding {
		return DriftFinding{Digest: d.Digest, Cluster: ClusterRef{UID: d.ClusterUID, Name: d.ClusterName}, Path: d.Path,
			SHA256: orNull(d.SHA256), Verdict: d.Verdict, Severity: d.Severity, AllowedBy: orNull(d.AllowedBy),
			Repositories: nonNil(d.Repositories), FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, JudgedAt: d.JudgedAt}
	}))
}
