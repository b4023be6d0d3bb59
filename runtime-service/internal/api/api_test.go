package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	critical = "sha256:" + strings.Repeat("c", 64)
	verified = "sha256:" + strings.Repeat("a", 64)
)

// seeded returns a handler over a store holding two clusters, workloads, an image with every kind of evidence
// and a clean one.
func seeded(t testing.TB) *Handler {
	t.Helper()
	ctx := context.Background()
	s := storetest.Open(t, store.Options{MaxConns: 4})
	now := time.Now().UTC().Truncate(time.Second)
	trusted := true
	for i, uid := range []string{"uid-prod", "uid-stage"} {
		c := storetest.Enrol(t, s, uid, strings.TrimPrefix(uid, "uid-"))
		if err := s.Heartbeat(ctx, c, "v0.161.0", "impact", 1); err != nil {
			t.Fatal(err)
		}
		ns := []string{"shop", "batch"}[i]
		b := &store.Batch{
			Nodes:        []store.Node{{UID: "n-" + uid, Name: "node-a", Time: now}},
			Workloads:    []store.Workload{{UID: "w-" + uid, Kind: "Deployment", Name: "web", Namespace: ns, Time: now}},
			SensorHealth: []store.SensorHealth{{NodeName: "node-a", EventsSeen: 10, EventsDropped: 1, Kernel: "6.1", ProgramStatus: "ok", Time: now}},
			Containers: []store.Container{
				{PodUID: "p1-" + uid, Name: "app", ContainerID: "cid1-" + uid, Namespace: ns, PodName: "web-1", NodeName: "node-a",
					WorkloadUID: "w-" + uid, WorkloadKind: "Deployment", WorkloadName: "web", ImageName: "ghcr.io/acme/web:1",
					ImageRef: "ghcr.io/acme/web:1", RegistryHost: "ghcr.io", RegistryTrusted: &trusted, RunningDigest: critical,
					ExpectedDigest: "sha256:" + strings.Repeat("e", 64), Integrity: records.IntegrityDigestMismatch,
					Severity: records.SeverityCritical, Reasons: []string{"digest_mismatch: the registry never held it"}, Time: now},
				{PodUID: "p2-" + uid, Name: "sidecar", ContainerID: "cid2-" + uid, Namespace: ns, PodName: "bare", NodeName: "node-a",
					ImageName: "busybox", RunningDigest: verified, Integrity: records.IntegrityVerified, Severity: records.SeverityNone, Time: now},
			},
			Execs:     []store.ExecEvent{{Time: now, ContainerID: "cid1-" + uid, PID: 1, ExecutablePath: "/usr/bin/curl", SHA256: strings.Repeat("f", 64)}},
			FileOpens: []store.FileOpenEvent{{Time: now, ContainerID: "cid1-" + uid, FilePath: "/etc/shadow"}},
		}
		if _, err := s.Apply(ctx, c, "", b); err != nil {
			t.Fatal(err)
		}
	}
	// One configured registry listing the critical image's tag, a tag nothing runs, and a second registry that
	// is down.
	if err := s.ConfigureRegistries(ctx, []store.RegistryConfig{{Name: "ghcr", Kind: "oci", URL: "https://ghcr.io", Host: "ghcr.io"},
		{Name: "jfrog", Kind: "artifactory", URL: "https://jfrog.example/artifactory", Host: "jfrog.example", Feedback: true}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordListing(ctx, "ghcr", store.Listing{Started: now, Repositories: 1, CatalogComplete: true, Tags: []store.ListedTag{
		{Repository: "acme/web", Tag: "1", Digest: critical}, {Repository: "acme/web", Tag: "old,\"quoted\"", Digest: "sha256:" + strings.Repeat("d", 64)}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordListing(ctx, "jfrog", store.Listing{Started: now, Err: errors.New("catalog: connection refused")}); err != nil {
		t.Fatal(err)
	}
	return New(s, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(s, auth.ModeNone))
}

// TestRegistryCorrelationEndpoints: artifacts with usage and placements, the CSV export, the registries, and
// the image detail's timeline and remediation, each against openapi.yaml.
func TestRegistryCorrelationEndpoints(t *testing.T) {
	s := loadSpec(t)
	h := seeded(t)
	body := checkResponse(t, s, h, route("/api/v1/artifacts"), "/api/v1/artifacts?registry=ghcr&sort=registry", 200)
	items := list(body["items"])
	if len(items) != 2 {
		t.Fatalf("artifacts: %v", body)
	}
	a := m(items[0])
	if a["usage"] != "in_use" || a["registry"] != "ghcr" || a["repository"] != "acme/web" || a["tag"] != "1" ||
		m(a["running"])["clusters"] != 2.0 || m(a["running"])["nodes"] != 2.0 || len(list(a["where"])) != 2 || a["listed_at"] == nil {
		t.Fatalf("in use artifact: %v", a)
	}
	if w := m(list(a["where"])[0]); m(w["cluster"])["name"] != "prod" || m(w["workload"])["name"] != "web" || w["namespace"] != "shop" {
		t.Fatalf("where: %v", w)
	}
	if b := m(items[1]); b["usage"] != "never_seen" || b["last_seen_in_runtime"] != nil {
		t.Fatalf("never seen: %v", b)
	}
	body = checkResponse(t, s, h, route("/api/v1/artifacts"), "/api/v1/artifacts?usage=unused,never_seen", 200)
	if items := list(body["items"]); len(items) != 1 || m(items[0])["tag"] != `old,"quoted"` {
		t.Fatalf("cleanup candidates: %v", body)
	}
	body = checkResponse(t, s, h, route("/api/v1/artifacts"), "/api/v1/artifacts?usage=in_use&cluster=stage", 200)
	if items := list(body["items"]); len(items) != 2 || m(m(items[0])["running"])["clusters"] != 1.0 {
		t.Fatalf("in use in stage: %v", body)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/artifacts.csv?usage=never_seen", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %d %s", rec.Code, rec.Header())
	}
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil || len(rows) != 2 || !slices.Equal(rows[0], CSVColumns) || rows[1][3] != `old,"quoted"` || rows[1][6] != "never_seen" {
		t.Fatalf("csv rows %q %v", rows, err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/artifacts.csv?usage=in_use&registry=nope", nil))
	if rows, _ := csv.NewReader(rec.Body).ReadAll(); rec.Code != 200 || len(rows) != 1 {
		t.Fatalf("empty csv: %d %q", rec.Code, rows)
	}
	checkResponse(t, s, h, route("/api/v1/artifacts"), "/api/v1/artifacts.csv?limit=5", 400)

	body = checkResponse(t, s, h, route("/api/v1/registries"), "/api/v1/registries", 200)
	regs := list(body["items"])
	if len(regs) != 2 || m(regs[0])["status"] != "ok" || m(regs[0])["artifacts"] != 2.0 || m(regs[0])["in_use"] != 1.0 ||
		m(regs[1])["status"] != "error" || m(regs[1])["error"] != "catalog: connection refused" || m(regs[1])["feedback"] != true {
		t.Fatalf("registries: %v", body)
	}
	checkResponse(t, s, h, route("/api/v1/registries"), "/api/v1/registries?x=1", 400)

	body = checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+critical, 200)
	tl := list(body["timeline"])
	if len(tl) != 2 || m(tl[0])["from"] != nil || m(m(tl[0])["to"])["verdict"] != records.IntegrityDigestMismatch {
		t.Fatalf("timeline: %v", tl)
	}
	rem := list(body["remediation"])
	if len(rem) != 1 || m(rem[0])["registry"] != "ghcr" || m(rem[0])["pinned_ref"] != "ghcr.io/acme/web@"+critical {
		t.Fatalf("remediation: %v", rem)
	}
	body = checkResponse(t, s, h, route("/api/v1/clusters/{cluster}"), "/api/v1/clusters/prod", 200)
	if sn := m(m(list(body["node_list"])[0])["sensor"]); sn["events_per_second"] != nil || len(list(sn["programs"])) != 1 {
		t.Fatalf("sensor: %v", sn)
	}
}

func route(path string) Route { return Route{Method: "GET", Path: path} }

// TestEveryEndpointAnswersAsDocumented calls each endpoint, with and without filters, and checks both what it
// says and that the response matches openapi.yaml.
func TestEveryEndpointAnswersAsDocumented(t *testing.T) {
	s := loadSpec(t)
	h := seeded(t)

	body := checkResponse(t, s, h, route("/api/v1/images"), "/api/v1/images", 200)
	items := list(body["items"])
	if len(items) != 2 || m(items[0])["digest"] != critical || body["total"] != 2.0 {
		t.Fatalf("ranking: %v", body)
	}
	if br := m(m(items[0])["blast_radius"]); br["clusters"] != 2.0 || br["namespaces"] != 2.0 || br["workloads"] != 2.0 || br["pods"] != 2.0 {
		t.Fatalf("blast radius: %v", br)
	}
	body = checkResponse(t, s, h, route("/api/v1/images"), "/api/v1/images?cluster=prod&severity=none,low&limit=1", 200)
	if items := list(body["items"]); len(items) != 1 || m(items[0])["digest"] != verified || body["next_offset"] != nil {
		t.Fatalf("filtered: %v", body)
	}
	body = checkResponse(t, s, h, route("/api/v1/images"), "/api/v1/images?limit=1&sort=digest", 200)
	if body["next_offset"] != 1.0 {
		t.Fatalf("paging: next_offset %v", body["next_offset"])
	}

	body = checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+critical, 200)
	if list(body["placements"]) == nil || body["placements_total"] != 2.0 || body["processes_total"] != 1.0 || body["files_total"] != 1.0 {
		t.Fatalf("detail: %v", body)
	}
	p := m(list(body["placements"])[0])
	if p["running_digest"] != critical || p["expected_digest"] != "sha256:"+strings.Repeat("e", 64) || p["verdict"] != records.IntegrityDigestMismatch {
		t.Fatalf("placement: %v", p)
	}
	if proc := m(list(body["processes"])[0]); proc["path"] != "/usr/bin/curl" || proc["sha256"] != strings.Repeat("f", 64) || proc["count"] != 2.0 {
		t.Fatalf("process: %v", proc)
	}
	checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+verified, 200)
	checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/sha256:"+strings.Repeat("0", 64), 404)
	checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/latest", 400)

	body = checkResponse(t, s, h, route("/api/v1/clusters"), "/api/v1/clusters", 200)
	if c := m(list(body["items"])[0]); c["name"] != "prod" || c["mode"] != "impact" || m(c["sensors"])["reporting"] != 1.0 {
		t.Fatalf("clusters: %v", body)
	}
	body = checkResponse(t, s, h, route("/api/v1/clusters/{cluster}"), "/api/v1/clusters/uid-stage", 200)
	if n := list(body["node_list"]); len(n) != 1 || m(m(n[0])["sensor"])["events_dropped"] != 1.0 {
		t.Fatalf("cluster detail: %v", body)
	}
	if k := list(body["collectors"]); len(k) != 1 || m(k[0])["id"] != "legacy" || m(k[0])["mode"] != "impact" || m(k[0])["live"] != true {
		t.Fatalf("cluster detail collectors: %v", body["collectors"])
	}
	checkResponse(t, s, h, route("/api/v1/clusters/{cluster}"), "/api/v1/clusters/nope", 404)

	body = checkResponse(t, s, h, route("/api/v1/workloads"), "/api/v1/workloads?namespace=shop", 200)
	if w := list(body["items"]); len(w) != 1 || m(w[0])["severity"] != records.SeverityCritical {
		t.Fatalf("workloads: %v", body)
	}
	checkResponse(t, s, h, route("/api/v1/workloads"), "/api/v1/workloads?sort=name&verdict=digest_mismatch", 200)

	body = checkResponse(t, s, h, route("/api/v1/artifacts"), "/api/v1/artifacts?registry=ghcr.io&usage=in_use", 200)
	if a := list(body["items"]); len(a) != 1 || m(a[0])["ref"] != "ghcr.io/acme/web:1" {
		t.Fatalf("artifacts: %v", body)
	}
	checkResponse(t, s, h, route("/api/v1/artifacts"), "/api/v1/artifacts?cluster=stage&namespace=batch&sort=ref", 200)

	body = checkResponse(t, s, h, route("/api/v1/meta/order"), "/api/v1/meta/order", 200)
	if fmt.Sprint(body["severities"]) != "[critical high medium low none]" ||
		fmt.Sprint(body["verdicts"]) != "[digest_mismatch artifact_missing stale_tag unverified verified]" {
		t.Fatalf("order: %v", body)
	}

	body = checkResponse(t, s, h, route("/api/v1/images"), "/api/v1/images?severity=urgent", 400)
	if !strings.Contains(body["error"].(string), `severity "urgent" is not one of none, low, medium, high, critical`) {
		t.Fatalf("error message: %v", body["error"])
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.yaml", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "openapi: 3.0.3") {
		t.Fatalf("openapi.yaml: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/images", nil))
	if rec.Code != 405 {
		t.Fatalf("POST: %d", rec.Code)
	}
}
