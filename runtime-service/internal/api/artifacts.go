package api

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Artifact is a registry artifact: a tag a configured registry lists, or a reference seen running that no
// configured registry lists (registry null), with where it runs and when it was last seen running.
type Artifact struct {
	Registry          *string             `json:"registry"`
	RegistryHost      string              `json:"registry_host"`
	Repository        string              `json:"repository"`
	Tag               *string             `json:"tag"`
	Ref               string              `json:"ref"`
	Digest            string              `json:"digest"`
	Usage             string              `json:"usage"`
	FirstListed       *time.Time          `json:"first_listed"`
	ListedAt          *time.Time          `json:"listed_at"`
	FirstSeenRuntime  *time.Time          `json:"first_seen_in_runtime"`
	LastSeenInRuntime *time.Time          `json:"last_seen_in_runtime"`
	Severity          *string             `json:"severity"`
	Verdict           *string             `json:"verdict"`
	Running           ArtifactReach       `json:"running"`
	Where             []ArtifactPlacement `json:"where"`
}

// ArtifactReach counts where an artifact runs now.
type ArtifactReach struct {
	Clusters   int `json:"clusters"`
	Namespaces int `json:"namespaces"`
	Workloads  int `json:"workloads"`
	Pods       int `json:"pods"`
	Nodes      int `json:"nodes"`
}

// ArtifactPlacement is a workload an artifact runs in.
type ArtifactPlacement struct {
	Cluster   ClusterRef   `json:"cluster"`
	Namespace string       `json:"namespace"`
	Workload  *WorkloadRef `json:"workload"`
	Pods      int          `json:"pods"`
}

func artifactOf(a store.Artifact) Artifact {
	out := Artifact{Registry: a.Registry, RegistryHost: a.RegistryHost, Repository: a.Repository, Tag: orNull(a.Tag),
		Ref: a.Ref, Digest: a.Digest, Usage: a.Usage, FirstListed: a.FirstListed, ListedAt: a.LastListed,
		FirstSeenRuntime: a.FirstSeen, LastSeenInRuntime: a.LastSeen, Severity: orNull(a.Severity), Verdict: orNull(a.Verdict),
		Running: ArtifactReach{Clusters: a.Clusters, Namespaces: a.Namespaces, Workloads: a.Workloads, Pods: a.Pods, Nodes: a.Nodes},
		Where:   []ArtifactPlacement{}}
	for _, p := range a.Where {
		pl := ArtifactPlacement{Cluster: ClusterRef{UID: p.ClusterUID, Name: p.ClusterName}, Namespace: p.Namespace, Pods: p.Pods}
		if p.WorkloadName != "" {
			pl.Workload = &WorkloadRef{Kind: p.WorkloadKind, Name: p.WorkloadName}
		}
		out.Where = append(out.Where, pl)
	}
	return out
}

func (h *Handler) listArtifacts(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFor(r, "artifacts")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.store.ListArtifacts(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(page, f, artifactOf))
}

// CSVColumns are the columns of GET /api/v1/artifacts.csv.
var CSVColumns = []string{"registry", "registry_host", "repository", "tag", "ref", "digest", "usage",
	"last_seen_in_runtime", "first_seen_in_runtime", "first_listed", "listed_at", "clusters", "namespaces",
	"workloads", "pods", "nodes", "severity", "verdict"}

// artifactsCSV streams every artifact the filters select (no paging) as CSV, for the cleanup export. The rows
// come from one query as Postgres produces them, so the export's memory does not grow with the registry.
func (h *Handler) artifactsCSV(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFor(r, "artifacts.csv")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var cw *csv.Writer
	flusher, _ := w.(http.Flusher)
	n := 0
	err = h.store.EachArtifact(r.Context(), f, func(a *store.Artifact) error {
		if cw == nil {
			start(w)
			cw = csv.NewWriter(w)
			_ = cw.Write(CSVColumns)
		}
		reg := ""
		if a.Registry != nil {
			reg = *a.Registry
		}
		if err := cw.Write([]string{reg, a.RegistryHost, a.Repository, a.Tag, a.Ref, a.Digest, a.Usage,
			csvTime(a.LastSeen), csvTime(a.FirstSeen), csvTime(a.FirstListed), csvTime(a.LastListed),
			strconv.Itoa(a.Clusters), strconv.Itoa(a.Namespaces), strconv.Itoa(a.Workloads), strconv.Itoa(a.Pods),
			strconv.Itoa(a.Nodes), a.Severity, a.Verdict}); err != nil {
			return err
		}
		if n++; n%500 == 0 {
			cw.Flush()
			if flusher != nil {
				flusher.Flush()
			}
		}
		return cw.Error()
	})
	if err != nil {
		if cw == nil {
			h.fail(w, r, err)
			return
		}
		// Rows are out already, with a 200: break the connection so the client sees a failed download rather
		// than a file that looks complete.
		h.log.Error("artifacts CSV export broken off", "query", r.URL.RawQuery, "rows", n, "error", err)
		panic(http.ErrAbortHandler)
	}
	if cw == nil {
		start(w)
		cw = csv.NewWriter(w)
		_ = cw.Write(CSVColumns)
	}
	cw.Flush()
}

func start(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="artifacts.csv"`)
	w.WriteHeader(http.StatusOK)
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Registry is a configured registry with the outcome of its last listing.
type Registry struct {
	Name            string     `json:"name"`
	Kind            string     `json:"kind"`
	URL             string     `json:"url"`
	Host            string     `json:"host"`
	Feedback        bool       `json:"feedback"`
	Status          string     `json:"status"`
	Error           *string    `json:"error"`
	LastRefreshAt   *time.Time `json:"last_refresh_at"`
	LastSuccessAt   *time.Time `json:"last_success_at"`
	DurationSeconds float64    `json:"duration_seconds"`
	Repositories    int        `json:"repositories"`
	Tags            int        `json:"tags"`
	Artifacts       int        `json:"artifacts"`
	InUse           int        `json:"in_use"`
}

// RegistryList is the answer of GET /api/v1/registries: every configured registry, by name.
type RegistryList struct {
	Items []Registry `json:"items"`
}

func (h *Handler) listRegistries(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		h.fail(w, r, paramErr("this endpoint takes no query parameters"))
		return
	}
	regs, err := h.store.ListRegistries(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := RegistryList{Items: make([]Registry, 0, len(regs))}
	for _, g := range regs {
		out.Items = append(out.Items, Registry{Name: g.Name, Kind: g.Kind, URL: g.URL, Host: g.Host, Feedback: g.Feedback,
			Status: g.Status, Error: orNull(g.Error), LastRefreshAt: g.LastRefreshAt, LastSuccessAt: g.LastSuccessAt,
			DurationSeconds: g.LastDuration.Seconds(), Repositories: g.Repositories, Tags: g.Tags, Artifacts: g.Artifacts,
			InUse: g.InUse})
	}
	writeJSON(w, http.StatusOK, out)
}

// VerdictState is a verdict with its severity.
type VerdictState struct {
	Verdict  *string `json:"verdict"`
	Severity *string `json:"severity"`
}

// VerdictChange is one entry of an image's timeline.
type VerdictChange struct {
	Time    time.Time     `json:"time"`
	Cluster ClusterRef    `json:"cluster"`
	Ref     string        `json:"ref"`
	From    *VerdictState `json:"from"`
	To      VerdictState  `json:"to"`
	Reasons []string      `json:"reasons"`
}

func timelineOf(vs []store.VerdictChange) []VerdictChange {
	out := make([]VerdictChange, 0, len(vs))
	for _, v := range vs {
		c := VerdictChange{Time: v.Time, Cluster: ClusterRef{UID: v.ClusterUID, Name: v.ClusterName}, Ref: v.Ref,
			To: VerdictState{Verdict: orNull(v.NewVerdict), Severity: orNull(v.NewSeverity)}, Reasons: nonNil(v.Reasons)}
		if v.OldVerdict != nil {
			c.From = &VerdictState{Verdict: orNull(*v.OldVerdict), Severity: orNull(deref(v.OldSeverity))}
		}
		out = append(out, c)
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Remediation is what fixing one reference of an image takes.
type Remediation struct {
	Ref              string     `json:"ref"`
	Repository       string     `json:"repository"`
	Tag              *string    `json:"tag"`
	PullPolicies     []string   `json:"pull_policies"`
	ExpectedDigests  []string   `json:"expected_digests"`
	Registry         *string    `json:"registry"`
	RegistryDigest   *string    `json:"registry_digest"`
	ListedAt         *time.Time `json:"listed_at"`
	PinnedRef        *string    `json:"pinned_ref"`
	RunningPinnedRef string     `json:"running_pinned_ref"`
}

func remediationOf(rs []store.Remediation) []Remediation {
	out := make([]Remediation, 0, len(rs))
	for _, r := range rs {
		out = append(out, Remediation{Ref: r.Ref, Repository: r.Repository, Tag: orNull(r.Tag), PullPolicies: nonNil(r.PullPolicies),
			ExpectedDigests: nonNil(r.ExpectedDigests), Registry: orNull(r.Registry), RegistryDigest: orNull(r.RegistryDigest),
			ListedAt: r.ListedAt, PinnedRef: orNull(r.PinnedRef), RunningPinnedRef: r.RunningPinnedRef})
	}
	return out
}
