// Package api is the runtime service's JSON HTTP API: images ranked by risk, one image with its evidence,
// clusters with their nodes and sensors, workloads, and registry artifacts. openapi.yaml documents it; a test
// checks that document against these handlers.
package api

import (
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/policywatch"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// OpenAPI is the API's OpenAPI 3 document, served at /api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Route is one endpoint: method, Go ServeMux pattern path, the role it needs, and the handler method that
// serves it.
type Route struct {
	Method, Path string
	Role         string
	serve        func(h *Handler, w http.ResponseWriter, r *http.Request)
}

const (
	viewer = store.RoleViewer
	admin  = store.RoleAdmin
)

// Routes lists every endpoint the handler serves (the OpenAPI test compares it with openapi.yaml).
var Routes = []Route{
	{"GET", "/api/v1/images", viewer, (*Handler).listImages},
	{"GET", "/api/v1/images/{digest}", viewer, (*Handler).getImage},
	{"GET", "/api/v1/clusters", viewer, (*Handler).listClusters},
	{"GET", "/api/v1/clusters/{cluster}", viewer, (*Handler).getCluster},
	{"GET", "/api/v1/workloads", viewer, (*Handler).listWorkloads},
	{"GET", "/api/v1/artifacts", viewer, (*Handler).listArtifacts},
	{"GET", "/api/v1/openapi.yaml", viewer, (*Handler).openAPI},
	{"GET", "/api/v1/artifacts.csv", viewer, (*Handler).artifactsCSV},
	{"GET", "/api/v1/registries", viewer, (*Handler).listRegistries},
	{"GET", "/api/v1/vulnerabilities", viewer, (*Handler).listVulnerabilities},
	{"GET", "/api/v1/vulnerabilities.csv", viewer, (*Handler).vulnerabilitiesCSV},
	{"GET", "/api/v1/placement/findings", viewer, (*Handler).listPlacementFindings},
	{"GET", "/api/v1/placement/policy", viewer, (*Handler).placementPolicy},
	{"GET", "/api/v1/provenance/findings", viewer, (*Handler).listProvenanceFindings},
	{"GET", "/api/v1/provenance/policy", viewer, (*Handler).provenancePolicy},
	{"GET", "/api/v1/drift/findings", viewer, (*Handler).listDriftFindings},
	{"GET", "/api/v1/policy/files", viewer, (*Handler).listPolicyFiles},
	{"GET", "/api/v1/meta/order", viewer, (*Handler).order},
	{"GET", "/api/v1/me", viewer, (*Handler).me},
	{"GET", "/api/v1/tokens", admin, (*Handler).listTokens},
	{"POST", "/api/v1/tokens", admin, (*Handler).createToken},
	{"DELETE", "/api/v1/tokens/{name}", admin, (*Handler).revokeToken},
	{"DELETE", "/api/v1/clusters/{cluster}/collectors/{collector}", admin, (*Handler).revokeCollector},
	{"POST", "/api/v1/join-keys/retire", admin, (*Handler).retireJoinKey},
	{"GET", "/api/v1/audit", admin, (*Handler).listAudit},
}

// Order is /api/v1/meta/order: the record contract's severities and verdicts, worst first, as lists and filters
// show them. The UI draws its filters from it, so the order is defined once (internal/records).
type Order struct {
	Severities []string `json:"severities"`
	Verdicts   []string `json:"verdicts"`
}

func (h *Handler) order(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Order{Severities: records.WorstFirst(records.Severities), Verdicts: records.WorstFirst(records.Verdicts)})
}

// Handler serves the API from a store.
type Handler struct {
	store *store.Store
	log   *slog.Logger
	authn *auth.Authenticator
	mux   *http.ServeMux
	// provenance is the signature and provenance policy in force (WithProvenance), read at each call since a
	// reload may replace it; nil: none configured.
	provenance func() *provenance.Policy
	// policyFiles: where each policy file stands, by kind (WithPolicyFile); a kind without a file is absent.
	policyFiles map[string]func() policywatch.Status
	// driftBuilding: exact drift runs (WithDrift); nil: off.
	driftBuilding func(digest string) bool
}

// New returns the API handler; authn decides who each call acts as.
func New(s *store.Store, log *slog.Logger, authn *auth.Authenticator) *Handler {
	h := &Handler{store: s, log: log, authn: authn, mux: http.NewServeMux()}
	methods := map[string][]string{}
	for _, r := range Routes {
		h.mux.HandleFunc(r.Method+" "+r.Path, h.guard(r))
		methods[r.Path] = append(methods[r.Path], r.Method)
	}
	for path, allowed := range methods {
		list := strings.Join(allowed, ", ")
		h.mux.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Allow", list)
			writeError(w, http.StatusMethodNotAllowed, req.Method+" is not allowed here (allowed: "+list+")")
		})
	}
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+" (see /api/v1/openapi.yaml)")
	})
	return h
}

// guard authenticates a call, checks the route's role and, on a state-changing call, its CSRF header, and
// serves it with the principal in its context.
func (h *Handler) guard(r Route) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		p, err := h.authn.Authenticate(req)
		switch {
		case errors.Is(err, auth.ErrNoCredentials) || errors.Is(err, auth.ErrBadCredentials):
			w.Header().Set("WWW-Authenticate", `Bearer realm="runtrust"`)
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		case err != nil:
			h.fail(w, req, err)
			return
		case r.Role == admin && !p.Admin():
			writeError(w, http.StatusForbidden, r.Method+" "+r.Path+" needs the admin role; "+p.Actor()+" is a "+p.Role)
			return
		}
		if err := auth.CheckCSRF(p, req); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
		r.serve(h, w, req.WithContext(auth.With(req.Context(), p)))
	}
}

// principal is who the call acts as (guard put it in the context).
func principal(r *http.Request) auth.Principal {
	p, _ := auth.From(r.Context())
	return p
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// ErrorBody is every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

// fail answers with the status an error deserves: 400 for a bad parameter, 404 for nothing found, 503 when the
// store is unreachable (retry), 500 otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *ParamError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, pe.Msg)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, store.ErrUnavailable):
		h.log.Warn("API call failed: store unavailable", "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the store is unavailable; retry shortly")
	default:
		h.log.Error("API call failed", "path", r.URL.Path, "query", r.URL.RawQuery, "error", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// List is every list response.
type List[T any] struct {
	Items      []T  `json:"items"`
	Total      int  `json:"total"`
	Limit      int  `json:"limit"`
	Offset     int  `json:"offset"`
	NextOffset *int `json:"next_offset"`
}

func listOf[T, S any](page store.Page[S], f store.Filter, conv func(S) T) List[T] {
	out := List[T]{Items: make([]T, 0, len(page.Items)), Total: page.Total, Limit: f.Limit, Offset: f.Offset}
	for _, s := range page.Items {
		out.Items = append(out.Items, conv(s))
	}
	if next := f.Offset + len(page.Items); len(page.Items) > 0 && next < page.Total {
		out.NextOffset = &next
	}
	return out
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// BlastRadius says how far an image reaches.
type BlastRadius struct {
	Clusters   int `json:"clusters"`
	Namespaces int `json:"namespaces"`
	Workloads  int `json:"workloads"`
	Pods       int `json:"pods"`
	Containers int `json:"containers"`
}

// Image is an image in the ranked list.
type Image struct {
	Digest          string      `json:"digest"`
	Severity        *string     `json:"severity"`
	Verdict         *string     `json:"verdict"`
	Reasons         []string    `json:"reasons"`
	Refs            []string    `json:"refs"`
	ExpectedDigests []string    `json:"expected_digests"`
	BlastRadius     BlastRadius `json:"blast_radius"`
	FirstSeen       time.Time   `json:"first_seen"`
	LastSeen        time.Time   `json:"last_seen"`
	VulnCounts      VulnCounts  `json:"vulnerability_counts"`
	DriftCounts     DriftCounts `json:"drift_counts"`
}

func imageOf(i store.ImageSummary) Image {
	return Image{
		Digest: i.Digest, Severity: orNull(i.Severity), Verdict: orNull(i.Verdict), Reasons: nonNil(i.Reasons),
		Refs: nonNil(i.Refs), ExpectedDigests: nonNil(i.ExpectedDigests),
		BlastRadius: BlastRadius{Clusters: i.Clusters, Namespaces: i.Namespaces, Workloads: i.Workloads, Pods: i.Pods, Containers: i.Containers},
		FirstSeen:   i.FirstSeen, LastSeen: i.LastSeen, VulnCounts: vulnCountsOf(i.Vulns),
		DriftCounts: DriftCounts{Findings: i.Drift.Findings, Severity: orNull(i.Drift.Severity)},
	}
}

func (h *Handler) listImages(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFor(r, "images")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.store.ListImages(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(page, f, imageOf))
}

// ClusterRef names a cluster.
type ClusterRef struct {
	UID  string `json:"uid"`
	Name string `json:"name"`
}

// WorkloadRef names a workload.
type WorkloadRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Placement is where an image runs.
type Placement struct {
	Cluster         ClusterRef   `json:"cluster"`
	Namespace       string       `json:"namespace"`
	Workload        *WorkloadRef `json:"workload"`
	Pod             string       `json:"pod"`
	Container       string       `json:"container"`
	Node            string       `json:"node"`
	ImageName       string       `json:"image_name"`
	ImageRef        *string      `json:"image_ref"`
	RunningDigest   string       `json:"running_digest"`
	ExpectedDigest  *string      `json:"expected_digest"`
	Verdict         *string      `json:"verdict"`
	Severity        *string      `json:"severity"`
	Reasons         []string     `json:"reasons"`
	RegistryHost    *string      `json:"registry_host"`
	RegistryTrusted *bool        `json:"registry_trusted"`
	PullPolicy      *string      `json:"pull_policy"`
	LastSeen        time.Time    `json:"last_seen"`
	// Placement is the placement policy's verdict on this container (placement.go); null when no rule selects it.
	Placement *PlacementVerdict `json:"placement"`
}

// Process is an executable an image's containers ran.
type Process struct {
	Path       string    `json:"path"`
	SHA256     *string   `json:"sha256"`
	Count      int64     `json:"count"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Containers []string  `json:"containers"`
	// Drift is its drift verdict (docs/drift.md); null until judged (drift off, its image not indexed yet, or
	// its index failed).
	Drift *ProcessDrift `json:"drift"`
}

// File is a file an image's containers opened.
type File struct {
	Path       string    `json:"path"`
	Count      int64     `json:"count"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Containers []string  `json:"containers"`
}

// ImageDetail is one image with its evidence.
type ImageDetail struct {
	Image
	Placements      []Placement     `json:"placements"`
	PlacementsTotal int             `json:"placements_total"`
	Processes       []Process       `json:"processes"`
	ProcessesTotal  int             `json:"processes_total"`
	Files           []File          `json:"files"`
	FilesTotal      int             `json:"files_total"`
	Timeline        []VerdictChange `json:"timeline"`
	Remediation     []Remediation   `json:"remediation"`
	// Vulnerabilities are the image's findings, ranked, at most store.DetailLimit (the list endpoint pages
	// them all with ?digest=); SBOM says where its SBOM stands.
	Vulnerabilities      []Vulnerability `json:"vulnerabilities"`
	VulnerabilitiesTotal int             `json:"vulnerabilities_total"`
	SBOM                 SBOMStatus      `json:"sbom"`
	// Provenance: its signatures and build provenance under the policy (docs/provenance.md).
	Provenance ProvenanceStatus `json:"provenance"`
	// Drift: where the index of its layers stands; each process carries its verdict (docs/drift.md).
	Drift DriftStatus `json:"drift"`
}

func (h *Handler) getImage(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		h.fail(w, r, paramErr("this endpoint takes no query parameters"))
		return
	}
	digest, err := ParseDigest(r.PathValue("digest"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d, err := h.store.GetImageIn(r.Context(), digest, principal(r).Clusters)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := ImageDetail{Image: imageOf(d.ImageSummary), Placements: []Placement{}, PlacementsTotal: d.PlacementsTotal,
		Processes: []Process{}, ProcessesTotal: d.ProcessesTotal, Files: []File{}, FilesTotal: d.FilesTotal,
		Timeline: timelineOf(d.Timeline), Remediation: remediationOf(d.Remediation)}
	for _, p := range d.Placements {
		pl := Placement{
			Cluster: ClusterRef{UID: p.ClusterUID, Name: p.ClusterName}, Namespace: p.Namespace, Pod: p.Pod,
			Container: p.Container, Node: p.Node, ImageName: p.ImageName, ImageRef: orNull(p.ImageRef),
			RunningDigest: p.RunningDigest, ExpectedDigest: orNull(p.ExpectedDigest), Verdict: orNull(p.Verdict),
			Severity: orNull(p.Severity), Reasons: nonNil(p.Reasons), RegistryHost: orNull(p.RegistryHost),
			RegistryTrusted: p.RegistryTrusted, PullPolicy: orNull(p.PullPolicy), LastSeen: p.LastSeen,
			Placement: placementVerdictOf(p.Placement),
		}
		if p.WorkloadName != "" {
			pl.Workload = &WorkloadRef{Kind: p.WorkloadKind, Name: p.WorkloadName}
		}
		out.Placements = append(out.Placements, pl)
	}
	if err := h.addVulnerabilities(r, &out); err != nil {
		h.fail(w, r, err)
		return
	}
	if out.Provenance, err = h.provenanceStatus(r, digest); err != nil {
		h.fail(w, r, err)
		return
	}
	if out.Drift, err = h.driftStatus(r, digest); err != nil {
		h.fail(w, r, err)
		return
	}
	for _, e := range d.Processes {
		out.Processes = append(out.Processes, Process{Path: e.Path, SHA256: orNull(e.SHA256), Count: e.Count,
			FirstSeen: e.FirstSeen, LastSeen: e.LastSeen, Containers: nonNil(e.Containers), Drift: processDriftOf(e.Drift)})
	}
	for _, f := range d.Files {
		out.Files = append(out.Files, File{Path: f.Path, Count: f.Count, FirstSeen: f.FirstSeen, LastSeen: f.LastSeen,
			Containers: nonNil(f.Containers)})
	}
	writeJSON(w, http.StatusOK, out)
}

// Sensors sums up a cluster's sensors.
type Sensors struct {
	Reporting     int   `json:"reporting"`
	Stale         int   `json:"stale"`
	EventsDropped int64 `json:"events_dropped"`
}

// Cluster is an enrolled cluster.
type Cluster struct {
	UID              string      `json:"uid"`
	Name             string      `json:"name"`
	EnrolledAt       time.Time   `json:"enrolled_at"`
	HeartbeatAt      *time.Time  `json:"heartbeat_at"`
	LastIngestAt     *time.Time  `json:"last_ingest_at"`
	CollectorVersion *string     `json:"collector_version"`
	Mode             *string     `json:"mode"`
	ReportedNodes    int         `json:"reported_nodes"`
	Nodes            int         `json:"nodes"`
	Sensors          Sensors     `json:"sensors"`
	Entitlement      Entitlement `json:"entitlement"`
}

// Entitlement is a cluster's licensed node count and its use (docs/runtime-service.md, "Entitlement").
type Entitlement struct {
	Nodes             *int       `json:"nodes"` // null: unlimited
	NodesUsed         int        `json:"nodes_used"`
	SensorsRefused    int        `json:"sensors_refused"`
	LastRefusedSensor *string    `json:"last_refused_sensor"`
	LastRefusedAt     *time.Time `json:"last_refused_at"`
}

func clusterOf(c store.ClusterSummary) Cluster {
	ent := Entitlement{NodesUsed: c.NodesUsed, SensorsRefused: c.SensorsRefused, LastRefusedSensor: orNull(c.LastRefusedSensor),
		LastRefusedAt: c.LastRefusedAt}
	if c.EntitledNodes > 0 {
		n := c.EntitledNodes
		ent.Nodes = &n
	}
	return Cluster{UID: c.UID, Name: c.Name, EnrolledAt: c.EnrolledAt, HeartbeatAt: c.HeartbeatAt, LastIngestAt: c.LastIngestAt,
		CollectorVersion: orNull(c.CollectorVersion), Mode: orNull(c.Mode), ReportedNodes: c.ReportedNodes, Nodes: c.Nodes,
		Sensors: Sensors{Reporting: c.SensorsReporting, Stale: c.SensorsStale, EventsDropped: c.EventsDropped}, Entitlement: ent}
}

func (h *Handler) listClusters(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFor(r, "clusters")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.store.ListClusters(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(page, f, clusterOf))
}

// Sensor is a node's sensor health.
type Sensor struct {
	EventsSeen      int64     `json:"events_seen"`
	EventsDropped   int64     `json:"events_dropped"`
	Kernel          string    `json:"kernel"`
	ProgramStatus   string    `json:"program_status"`
	Programs        []string  `json:"programs"`
	OpenHook        *string   `json:"open_hook"`     // lsm, fexit or tracepoint; null when the sensor does not say
	HooksRefused    *string   `json:"hooks_refused"` // the cheaper hooks the kernel refused, and why; null when none
	EventsPerSecond *float64  `json:"events_per_second"`
	DropsPerSecond  *float64  `json:"drops_per_second"`
	IntervalSeconds *float64  `json:"interval_seconds"`
	LastSeen        time.Time `json:"last_seen"`
	Stale           bool      `json:"stale"`
}

// Node is a node of a cluster.
type Node struct {
	UID      string    `json:"uid"`
	Name     string    `json:"name"`
	LastSeen time.Time `json:"last_seen"`
	Sensor   *Sensor   `json:"sensor"`
}

// Collector is one enrolled collector of a cluster (the controller, a node's sensor) and its last heartbeat.
type Collector struct {
	ID          string     `json:"id"`
	Mode        *string    `json:"mode"`
	Version     *string    `json:"version"`
	NodeCount   int        `json:"node_count"`
	EnrolledAt  time.Time  `json:"enrolled_at"`
	HeartbeatAt *time.Time `json:"heartbeat_at"`
	Live        bool       `json:"live"`
}

// ClusterDetail is a cluster with its nodes and collectors.
type ClusterDetail struct {
	Cluster
	NodeList   []Node      `json:"node_list"`
	Collectors []Collector `json:"collectors"`
}

func (h *Handler) getCluster(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		h.fail(w, r, paramErr("this endpoint takes no query parameters"))
		return
	}
	ref := r.PathValue("cluster")
	if err := checkClusterRef("cluster", ref); err != nil {
		h.fail(w, r, err)
		return
	}
	d, err := h.store.GetClusterIn(r.Context(), ref, principal(r).Clusters)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := ClusterDetail{Cluster: clusterOf(d.ClusterSummary), NodeList: []Node{}, Collectors: []Collector{}}
	for _, k := range d.Collectors {
		out.Collectors = append(out.Collectors, Collector{ID: k.ID, Mode: orNull(k.Mode), Version: orNull(k.Version),
			NodeCount: k.NodeCount, EnrolledAt: k.EnrolledAt, HeartbeatAt: k.HeartbeatAt, Live: k.Live})
	}
	for _, n := range d.NodeList {
		node := Node{UID: n.UID, Name: n.Name, LastSeen: n.LastSeen}
		if s := n.Sensor; s != nil {
			node.Sensor = &Sensor{EventsSeen: s.EventsSeen, EventsDropped: s.EventsDropped, Kernel: s.Kernel,
				ProgramStatus: s.ProgramStatus, Programs: s.Programs(), OpenHook: orNull(s.OpenHook),
				HooksRefused: orNull(s.HooksRefused), EventsPerSecond: s.EventsPerSecond,
				DropsPerSecond: s.DropsPerSecond, LastSeen: s.LastSeen, Stale: s.Stale}
			if s.Interval > 0 {
				secs := s.Interval.Seconds()
				node.Sensor.IntervalSeconds = &secs
			}
		}
		out.NodeList = append(out.NodeList, node)
	}
	writeJSON(w, http.StatusOK, out)
}

// Workload is a workload with its images.
type Workload struct {
	Cluster    ClusterRef `json:"cluster"`
	UID        string     `json:"uid"`
	Kind       string     `json:"kind"`
	Name       string     `json:"name"`
	Namespace  string     `json:"namespace"`
	Pods       int        `json:"pods"`
	Containers int        `json:"containers"`
	Images     []string   `json:"images"`
	Severity   *string    `json:"severity"`
	Verdict    *string    `json:"verdict"`
	LastSeen   time.Time  `json:"last_seen"`
}

func (h *Handler) listWorkloads(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFor(r, "workloads")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.store.ListWorkloads(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(page, f, func(x store.WorkloadSummary) Workload {
		return Workload{Cluster: ClusterRef{UID: x.ClusterUID, Name: x.ClusterName}, UID: x.UID, Kind: x.Kind, Name: x.Name,
			Namespace: x.Namespace, Pods: x.Pods, Containers: x.Containers, Images: nonNil(x.Images),
			Severity: orNull(x.Severity), Verdict: orNull(x.Verdict), LastSeen: x.LastSeen}
	}))
}

func (h *Handler) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}
