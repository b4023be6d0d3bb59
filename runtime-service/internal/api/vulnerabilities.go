package api

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// VulnSeverities are the vulnerability severity filter's values, highest first.
var VulnSeverities = []string{"critical", "high", "medium", "low", "unknown"}

// vulnCSVMax bounds the CSV export: the whole list, one query.
const vulnCSVMax = 100_000

// VulnCounts summarises an image's vulnerability findings in the image list and detail.
type VulnCounts struct {
	Total    int `json:"total"`
	Critical int `json:"critical"`
	High     int `json:"high"`
	Fixable  int `json:"fixable"`
	Loaded   int `json:"loaded"`
}

func vulnCountsOf(v store.VulnCounts) VulnCounts {
	return VulnCounts{Total: v.Total, Critical: v.Critical, High: v.High, Fixable: v.Fixable, Loaded: v.Loaded}
}

// Vulnerability is one finding: an advisory against a package of an image, with its runtime reachability.
type Vulnerability struct {
	ID           string          `json:"id"`
	Aliases      []string        `json:"aliases"`
	Digest       string          `json:"digest"`
	Refs         []string        `json:"refs"`
	Package      string          `json:"package"`
	PackageType  string          `json:"package_type"`
	Installed    string          `json:"installed_version"`
	Fixed        *string         `json:"fixed_version"`
	Severity     string          `json:"severity"`
	CVSS         *float64        `json:"cvss"`
	CVSSVector   *string         `json:"cvss_vector"`
	Summary      string          `json:"summary"`
	Source       string          `json:"source"`
	Reachability string          `json:"reachability"`
	Evidence     *store.Evidence `json:"evidence"`
	MatchedAt    time.Time       `json:"matched_at"`
}

func vulnerabilityOf(v store.VulnFinding) Vulnerability {
	out := Vulnerability{ID: v.ID, Aliases: nonNil(v.Aliases), Digest: v.Digest, Refs: nonNil(v.Refs), Package: v.Package,
		PackageType: v.PackageType, Installed: v.Installed, Fixed: orNull(v.Fixed), Severity: v.Severity,
		CVSSVector: orNull(v.CVSSVector), Summary: v.Summary, Source: v.Source, Reachability: v.Reachability,
		Evidence: v.Evidence, MatchedAt: v.MatchedAt}
	if v.CVSS > 0 {
		c := v.CVSS
		out.CVSS = &c
	}
	return out
}

// Funnel is the prioritisation of a scope's findings: all, critical and high, of those with a fix, of those
// loaded at runtime.
type Funnel struct {
	All          int `json:"all"`
	CriticalHigh int `json:"critical_high"`
	FixAvailable int `json:"fix_available"`
	Loaded       int `json:"loaded"`
}

// VulnerabilityList is the vulnerabilities list: a page of findings and the scope's funnel.
type VulnerabilityList struct {
	List[Vulnerability]
	Funnel Funnel `json:"funnel"`
}

// ParseVulnList reads the query parameters of the vulnerabilities list (or, csv, its export: no paging).
func ParseVulnList(endpoint string, q url.Values) (store.VulnFilter, error) {
	if err := checkParams(endpoint, q); err != nil {
		return store.VulnFilter{}, err
	}
	f := store.VulnFilter{Limit: DefaultLimit}
	if err := applyParams(q, &f, vulnRules); err != nil {
		return store.VulnFilter{}, err
	}
	return f, nil
}

// vulnRules are the vulnerabilities list's parameters.
var vulnRules = []paramRule[store.VulnFilter]{
	{"limit", func(f *store.VulnFilter, v string) (err error) {
		f.Limit, err = intParam("limit", v, 1, MaxLimit)
		return
	}},
	{"offset", func(f *store.VulnFilter, v string) (err error) {
		f.Offset, err = intParam("offset", v, 0, MaxOffset)
		return
	}},
	{"severity", func(f *store.VulnFilter, v string) (err error) {
		f.Severities, err = setParam("severity", v, VulnSeverities)
		return
	}},
	{"reachability", func(f *store.VulnFilter, v string) (err error) {
		f.Reachabilities, err = setParam("reachability", v, store.Reachabilities)
		return
	}},
	{"fix", func(f *store.VulnFilter, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil || (v != "true" && v != "false") {
			return paramErr("fix %q is not true (a fixed version exists) or false (none)", clip(v))
		}
		f.Fixable = &b
		return nil
	}},
	{"cluster", func(f *store.VulnFilter, v string) (err error) { f.Cluster, err = clusterParam(v); return }},
	{"namespace", func(f *store.VulnFilter, v string) (err error) { f.Namespace, err = namespaceParam(v); return }},
	{"digest", func(f *store.VulnFilter, v string) (err error) { f.Digest, err = ParseDigest(v); return }},
	{"q", func(f *store.VulnFilter, v string) (err error) { f.Search, err = searchParam(v); return }},
}

func (h *Handler) listVulnerabilities(w http.ResponseWriter, r *http.Request) {
	f, err := parseVulnListFor(r, "vulnerabilities")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, fun, err := h.store.ListVulnerabilities(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := VulnerabilityList{List: listOf(page, store.Filter{Limit: f.Limit, Offset: f.Offset}, vulnerabilityOf),
		Funnel: Funnel{All: fun.All, CriticalHigh: fun.CriticalHigh, FixAvailable: fun.Fixable, Loaded: fun.Loaded}}
	writeJSON(w, http.StatusOK, out)
}

// VulnCSVColumns are the vulnerabilities CSV export's columns.
var VulnCSVColumns = []string{"id", "aliases", "severity", "cvss", "package", "package_type", "installed_version",
	"fixed_version", "reachability", "evidence_kind", "evidence_path", "evidence_process", "evidence_at", "digest", "refs", "source"}

func (h *Handler) vulnerabilitiesCSV(w http.ResponseWriter, r *http.Request) {
	f, err := parseVulnListFor(r, "vulnerabilities.csv")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f.Limit = vulnCSVMax
	page, _, err := h.store.ListVulnerabilities(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="vulnerabilities.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(VulnCSVColumns)
	for _, v := range page.Items {
		var kind, path, process, at string
		if e := v.Evidence; e != nil {
			kind, path, process, at = e.Kind, e.Path, e.Process, e.At.UTC().Format(time.RFC3339)
		}
		cvss := ""
		if v.CVSS > 0 {
			cvss = strconv.FormatFloat(v.CVSS, 'f', 1, 64)
		}
		_ = cw.Write([]string{v.ID, strings.Join(v.Aliases, " "), v.Severity, cvss, v.Package, v.PackageType, v.Installed,
			v.Fixed, v.Reachability, kind, path, process, at, v.Digest, strings.Join(v.Refs, " "), v.Source})
	}
	cw.Flush()
}

// SBOMStatus is where an image's SBOM stands, on its detail.
type SBOMStatus struct {
	State          string     `json:"state"` // pending, built, failed, or none (not running, or scanning off)
	Source         *string    `json:"source"`
	Format         *string    `json:"format"`
	Distro         *string    `json:"distro"`
	Packages       int        `json:"packages"`
	Files          int        `json:"files"`
	Truncated      bool       `json:"truncated"`
	Notes          []string   `json:"notes"`
	LastError      *string    `json:"last_error"`
	Attempts       int        `json:"attempts"`
	MatchedVersion *string    `json:"database_version"`
	UpdatedAt      *time.Time `json:"updated_at"`
}

func sbomStatusOf(s store.SBOMStatus) SBOMStatus {
	state := s.State
	if state == "" {
		state = "none"
	}
	return SBOMStatus{State: state, Source: orNull(s.Source), Format: orNull(s.Format), Distro: orNull(s.Distro),
		Packages: s.Packages, Files: s.Files, Truncated: s.Truncated, Notes: nonNil(s.Notes), LastError: orNull(s.LastError),
		Attempts: s.Attempts, MatchedVersion: orNull(s.MatchedVersion), UpdatedAt: s.UpdatedAt}
}

// addVulnerabilities puts an image's findings and SBOM status on its detail.
func (h *Handler) addVulnerabilities(r *http.Request, out *ImageDetail) error {
	page, _, err := h.store.ListVulnerabilities(r.Context(), store.VulnFilter{Digest: out.Digest, Limit: store.DetailLimit, Allowed: principal(r).Clusters})
	if err != nil {
		return err
	}
	out.Vulnerabilities, out.VulnerabilitiesTotal = make([]Vulnerability, 0, len(page.Items)), page.Total
	for _, v := range page.Items {
		out.Vulnerabilities = append(out.Vulnerabilities, vulnerabilityOf(v))
	}
	st, err := h.store.GetSBOMStatus(r.Context(), out.Digest)
	if err != nil {
		return err
	}
	out.SBOM = sbomStatusOf(st)
	return nil
}
