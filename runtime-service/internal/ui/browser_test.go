package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/runtrust/runtrust/internal/browsertest"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// badNamespace is no Kubernetes namespace name; the test sends it to see the page report the API's error.
const badNamespace = "Not_A_Namespace"

// browser starts Debian's headless Chromium for one test (internal/browsertest). The one error the test provokes
// on purpose is the bad namespace filter, which the page must report as the API's error.
func browser(t testing.TB) context.Context {
	t.Helper()
	return browsertest.Start(t, 3*time.Minute, func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && strings.Contains(m.URL, badNamespace)
	})
}

// artifactsDir is where screenshots go: $RUNTRUST_TEST_ARTIFACTS, else _build/test-artifacts/ui under the
// repository root (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RUNTRUST_TEST_ARTIFACTS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for root := wd; ; root = filepath.Dir(root) {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				dir = filepath.Join(root, "_build", "test-artifacts", "ui")
				break
			}
			if filepath.Dir(root) == root {
				t.Fatalf("no go.mod above %s", wd)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifactsDir(t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// open navigates to a view and waits until it has drawn (main[data-ready] names the view).
func open(t *testing.T, ctx context.Context, url, view string) {
	t.Helper()
	// Through about:blank, so every open is a fresh page load (as a shared link is), never an in-page hash change.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
	// A DOM query rather than a poll of an expression: it survives the page's execution context changing under
	// it while the navigation settles.
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`main[data-ready=%q]`, view)))); err != nil {
		t.Fatalf("waiting for the %s view at %s: %v", view, url, err)
	}
}

// redraw runs an action that changes the view in place (a filter, a search) and waits until the page has drawn
// the view anew: main[data-render] counts the views drawn.
func redraw(t *testing.T, ctx context.Context, view string, action chromedp.Action[chromedp.Void]) {
	t.Helper()
	n := eval[int](t, ctx, `Number(document.querySelector('main').dataset.render)`)
	if err := chromedp.Do(ctx, action); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, fmt.Sprintf(`Number(document.querySelector('main').dataset.render) > %d && document.querySelector('main').dataset.ready === %q`, n, view))
}

// redrawFree runs an action that does not change the view.
func redrawFree(t *testing.T, ctx context.Context, action chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, action); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits until a JavaScript expression is true.
func waitFor(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText.slice(0, 2000)`))
		t.Fatalf("waiting for %s: %v\npage:\n%s", expr, err, body)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func apiGet(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

type imageList struct {
	Total int `json:"total"`
	Items []struct {
		Digest   string `json:"digest"`
		Severity string `json:"severity"`
		Verdict  string `json:"verdict"`
	} `json:"items"`
}

// The seeded estate: two clusters, six images, one of each verdict plus an untrusted registry.
var (
	digestMismatch = image{ref: "ghcr.io/acme/payments:2.1", digest: digestOf('c'), expected: digestOf('1'),
		verdict: records.IntegrityDigestMismatch, severity: records.SeverityCritical, trusted: true,
		reasons: []string{"digest_mismatch: the registry never held this digest under ghcr.io/acme/payments"}}
	staleTag = image{ref: "registry.corp.example/platform/web:latest", digest: digestOf('5'), expected: digestOf('e'),
		verdict: records.IntegrityStaleTag, severity: records.SeverityMedium, trusted: true, pullPolicy: "IfNotPresent",
		reasons: []string{"stale_tag: registry.corp.example/platform/web:latest now points at " + digestOf('e')}}
	untrusted = image{ref: "docker.io/evil/miner:1", digest: digestOf('b'), expected: digestOf('b'),
		verdict: records.IntegrityVerified, severity: records.SeverityHigh, trusted: false,
		reasons: []string{"untrusted_registry: docker.io is not an approved registry"}}
	missing = image{ref: "registry.corp.example/platform/legacy:0.9", digest: digestOf('d'),
		verdict: records.IntegrityArtifactMissing, severity: records.SeverityHigh, trusted: true,
		reasons: []string{"artifact_missing: the tag 0.9 is gone from registry.corp.example/platform/legacy"}}
	verified = image{ref: "registry.corp.example/platform/api:1.4", digest: digestOf('a'), expected: digestOf('a'),
		verdict: records.IntegrityVerified, severity: records.SeverityNone, trusted: true}
	retired = image{ref: "registry.corp.example/platform/migrate:2024.1", digest: digestOf('7'), expected: digestOf('7'),
		verdict: records.IntegrityVerified, severity: records.SeverityNone, trusted: true}
	unverified = image{ref: "quay.io/prometheus/node-exporter:v1.8.0", digest: digestOf('f'),
		verdict: records.IntegrityUnverified, severity: records.SeverityLow, trusted: true,
		reasons: []string{"unverified: quay.io did not answer (timeout)"}}
)

// markupCollector is a collector id that is HTML: the page renders every API string as text, never markup.
const markupCollector = "<b>edge-2</b>"

func seedEstate(t *testing.T, s *runningService) {
	t.Helper()
	now := time.Now().UTC()
	// prod's collectors each hold their own token: the controller and node-a's sensor heartbeat now; node-b's
	// sensor, a release behind, last heartbeat 20 minutes ago, past the 5-minute live window.
	prod := s.collector(t, 0, "uid-prod", "prod", "controller", "v0.161.0", runtrustv1.Mode_MODE_INTEGRITY, 2, time.Time{})
	s.collector(t, 0, "uid-prod", "prod", "node-a", "v0.161.0", runtrustv1.Mode_MODE_IMPACT, 0, time.Time{})
	s.collector(t, 0, "uid-prod", "prod", "node-b", "v0.160.0", runtrustv1.Mode_MODE_IMPACT, 0, now.Add(-20*time.Minute))
	edge := s.enrol(t, 1, "uid-edge", "edge", runtrustv1.Mode_MODE_INTEGRITY, 1)
	// A collector id is any printable ASCII: this one is markup, which the page must show as text.
	s.collector(t, 1, "uid-edge", "edge", markupCollector, "v0.161.0", runtrustv1.Mode_MODE_INTEGRITY, 1, time.Time{})

	// An hour ago prod's web pods were verified: the tag moved since, which the timeline shows.
	before := staleTag
	before.expected, before.verdict, before.severity, before.reasons = staleTag.digest, records.IntegrityVerified, records.SeverityNone, nil
	prod.send(t, containers(now.Add(-time.Hour), before, workload{"Deployment", "web", "shop", []string{"node-a", "node-b"}, 3})...)

	// node-a's sensor reports every minute: 60,000 events in the last one, 1,000/s.
	prod.send(t, sensorHealth(now.Add(-time.Minute), "node-a", 60_000, 1))

	var recs []rec
	recs = append(recs, node(now, "node-a"), node(now, "node-b"),
		sensorHealth(now, "node-a", 120_000, 3),
		// node-b's sensor last reported 20 minutes ago: stale.
		sensorHealth(now.Add(-20*time.Minute), "node-b", 50_000, 0))
	recs = append(recs, containers(now, digestMismatch, workload{"Deployment", "payments", "shop", []string{"node-a", "node-b"}, 2})...)
	recs = append(recs, containers(now, staleTag, workload{"Deployment", "web", "shop", []string{"node-a", "node-b"}, 3})...)
	recs = append(recs, containers(now, missing, workload{"CronJob", "report", "batch", []string{"node-b"}, 1})...)
	recs = append(recs, containers(now, verified, workload{"Deployment", "api", "shop", []string{"node-a"}, 2})...)
	recs = append(recs,
		rec{records.EventProcessExec, now, map[string]any{records.AttrContainerID: "cid-shop-web-a", records.AttrProcessPID: 1,
			records.AttrProcessExecutablePath: "/usr/sbin/nginx", records.AttrProcessExecutableSHA256: strings.Repeat("9", 64)}},
		rec{records.EventProcessExec, now, map[string]any{records.AttrContainerID: "cid-shop-web-b", records.AttrProcessPID: 7,
			records.AttrProcessExecutablePath: "/usr/sbin/nginx", records.AttrProcessExecutableSHA256: strings.Repeat("9", 64)}},
		rec{records.EventProcessExec, now, map[string]any{records.AttrContainerID: "cid-shop-web-a", records.AttrProcessPID: 9,
			records.AttrProcessExecutablePath: "/memfd:payload", records.AttrFilePathDetached: true}},
		rec{records.EventProcessExec, now, map[string]any{records.AttrContainerID: "cid-shop-web-a", records.AttrProcessPID: 3,
			records.AttrProcessExecutablePath: "/memfd:runc_cloned:/proc/self/exe", records.AttrFilePathDetached: true}},
		rec{records.EventFileOpen, now, map[string]any{records.AttrContainerID: "cid-shop-web-a", records.AttrProcessPID: 1,
			records.AttrFilePath: "/etc/nginx/nginx.conf"}})
	prod.send(t, recs...)

	// A job that ran two months ago and is gone: its artifact is a cleanup candidate.
	old := containers(now.Add(-61*24*time.Hour), retired, workload{"Job", "migrate-2024", "batch", []string{"node-b"}, 1})
	prod.send(t, old...)
	gone := containers(now.Add(-60*24*time.Hour), retired, workload{"Job", "migrate-2024", "batch", []string{"node-b"}, 1})
	for _, r := range gone {
		r.attrs[records.AttrK8sChange] = records.ChangeDeleted
	}
	prod.send(t, gone...)

	edge.send(t, append(append(append([]rec{node(now, "edge-1")},
		containers(now, staleTag, workload{"Deployment", "web", "web", []string{"edge-1"}, 1})...),
		containers(now, untrusted, workload{"DaemonSet", "miner", "default", []string{"edge-1"}, 1})...),
		containers(now, unverified, workload{"DaemonSet", "node-exporter", "monitoring", []string{"edge-1"}, 1})...)...)
}

// TestBrowserLiveAssessment drives the UI in headless Chromium against the real service (real Postgres, data
// ingested over gRPC): the ranking, a filter, a stale tag's evidence and remediation, a stale sensor.
func TestBrowserLiveAssessment(t *testing.T) {
	// prod is entitled to one node: node-a's sensor holds it (node-b's is stale and counts no more), so a new
	// sensor, node-c, is refused over gRPC as the exporter would be. edge has no entry and no default: unlimited.
	s := startService(t, 2, "-node-entitlement", "prod=1")
	seedEstate(t, s)
	_, err := runtrustv1.NewClusterServiceClient(s.grpc).Enrol(context.Background(), &runtrustv1.EnrolRequest{
		JoinKey: joinKeyPrefix + "a", ClusterUid: "uid-prod", ClusterName: "prod", CollectorId: "node-c", Mode: runtrustv1.Mode_MODE_IMPACT})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition ||
		!strings.HasPrefix(st.Message(), `cluster "prod" is entitled to 1 node and 1 sensor is enrolled: sensor "node-c" refused (`) {
		t.Fatalf("node-c's enrolment beyond prod's entitlement: %v", err)
	}
	ctx := browser(t)

	// Images: the rows are in the API's ranking order.
	var api imageList
	apiGet(t, s.base+"/api/v1/images", &api)
	if api.Total != 6 {
		t.Fatalf("the API lists %d images, want the 6 seeded", api.Total)
	}
	var want []string
	for _, i := range api.Items {
		want = append(want, i.Digest)
	}
	open(t, ctx, s.base+"/", "images")
	got := eval[[]string](t, ctx, `[...document.querySelectorAll('table.images tbody tr')].map(r => r.dataset.digest)`)
	if !slices.Equal(got, want) {
		t.Fatalf("rows in the page:\n%v\nthe API's ranking:\n%v", got, want)
	}
	if got[0] != digestMismatch.digest {
		t.Fatalf("the digest mismatch should rank first, got %s", got[0])
	}
	// Severity is in words, not colour alone.
	if txt := eval[string](t, ctx, `document.querySelector('table.images tbody tr .sev').textContent`); !strings.Contains(txt, "critical") {
		t.Fatalf("severity badge text %q", txt)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-verdict="untrusted"]').length`); n != 1 {
		t.Fatalf("untrusted registry badges: %d, want 1", n)
	}
	screenshot(t, ctx, "images")
	// The filters are in the order the API serves (records' order, worst first), not one of the page's own.
	var order struct{ Severities, Verdicts []string }
	apiGet(t, s.base+"/api/v1/meta/order", &order)
	for name, want := range map[string][]string{"severity": order.Severities, "verdict": order.Verdicts} {
		got := eval[[]string](t, ctx, fmt.Sprintf(`[...document.querySelectorAll('input[name=%s]')].map(i => i.value)`, name))
		if !slices.Equal(got, want) || len(want) != 5 {
			t.Errorf("%s filters %v, the API's order %v", name, got, want)
		}
	}

	// A severity filter narrows the list, lands in the URL, and asks the API the same.
	redraw(t, ctx, "images", chromedp.Click(chromedp.CSS(`input[name=severity][value=high]`)))
	if !strings.Contains(eval[string](t, ctx, `location.hash`), "severity=high") {
		t.Fatalf("the filter is not in the URL: %s", eval[string](t, ctx, `location.href`))
	}
	var high imageList
	apiGet(t, s.base+"/api/v1/images?severity=high", &high)
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll('table.images tbody tr')].map(r => r.dataset.severity)`)
	if len(rows) != high.Total || len(rows) != 2 {
		t.Fatalf("filtered rows %v, the API has %d high images", rows, high.Total)
	}
	for _, sev := range rows {
		if sev != records.SeverityHigh {
			t.Fatalf("a %s row under the high filter", sev)
		}
	}
	// The view is shareable: loading the URL afresh shows the same.
	url := eval[string](t, ctx, `location.href`)
	open(t, ctx, url, "images")
	if n := eval[int](t, ctx, `document.querySelectorAll('table.images tbody tr').length`); n != 2 {
		t.Fatalf("the shared URL %s shows %d rows", url, n)
	}
	if !eval[bool](t, ctx, `document.querySelector('input[name=severity][value=high]').checked`) {
		t.Fatal("the shared URL's filter is not shown as checked")
	}
	screenshot(t, ctx, "images-filtered-high")

	// A bad filter in a shared URL: the API's error, naming the parameter, and a way out.
	open(t, ctx, s.base+"/#/images?namespace="+badNamespace, "error")
	if v := eval[string](t, ctx, `document.querySelector('[role=alert]').textContent`); !strings.Contains(v, `namespace "`+badNamespace+`" is not a Kubernetes namespace name`) {
		t.Fatalf("error shown for a bad namespace: %q", v)
	}
	open(t, ctx, url, "images")

	// Search, from the keyboard: type into the field and press Enter.
	redraw(t, ctx, "images", chromedp.SendKeys(chromedp.ID("f-q"), "evil\r"))
	if !strings.Contains(eval[string](t, ctx, `location.hash`), "q=evil") {
		t.Fatalf("the search is not in the URL: %s", eval[string](t, ctx, `location.href`))
	}
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('table.images tbody tr')].map(r => r.dataset.digest)`); !slices.Equal(got, []string{untrusted.digest}) {
		t.Fatalf("search for evil under the high filter: %v", got)
	}

	// Clusters: the stale sensor is marked, in words, and its cluster says how many.
	open(t, ctx, s.base+"/#/clusters", "clusters")
	screenshot(t, ctx, "clusters")
	if !eval[bool](t, ctx, `document.querySelector('tr[data-node="node-b"]').classList.contains('stale')`) {
		t.Fatal("node-b's stale sensor is not highlighted")
	}
	if v := eval[string](t, ctx, `document.querySelector('tr[data-node="node-b"]').textContent`); !strings.Contains(v, "stale") {
		t.Fatalf("node-b row does not say stale: %q", v)
	}
	if eval[bool](t, ctx, `document.querySelector('tr[data-node="node-a"]').classList.contains('stale')`) {
		t.Fatal("node-a's fresh sensor is highlighted as stale")
	}
	if v := eval[string](t, ctx, `document.querySelector('tr[data-node="node-a"]').textContent`); !strings.Contains(v, "1,000") || !strings.Contains(v, "reporting") {
		t.Fatalf("node-a's sensor row (1,000 events/s, reporting): %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('[data-cluster="prod"] [data-stale-sensors]').textContent`); !strings.Contains(v, "1 stale sensor") {
		t.Fatalf("prod's stale sensor count: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('[data-cluster="edge"] [data-mode]').dataset.mode`); v != "integrity" {
		t.Fatalf("edge's mode: %q", v)
	}

	// The node entitlement: prod uses its one node, which the card says in numbers and with a warning, naming the
	// refused sensor; edge is unlimited and warns of nothing.
	type entitlementView struct{ State, Used, Entitled, Text, Warning, WarningState, Refused string }
	entitlementOf := func(cluster string) entitlementView {
		return eval[entitlementView](t, ctx, `(() => { const c = document.querySelector('[data-cluster="`+cluster+`"]');
			const e = c.querySelector('[data-entitlement]'); const w = c.querySelector('h2 [data-entitlement-warning]');
			const r = e && e.querySelector('[data-sensors-refused]');
			return { State: e ? e.dataset.entitlement : '', Used: e ? e.dataset.nodesUsed : '', Entitled: e ? e.dataset.nodesEntitled : '',
				Text: e ? e.textContent : '', Warning: w ? w.textContent : '', WarningState: w ? w.dataset.entitlementWarning : '',
				Refused: r ? r.dataset.sensorsRefused : '' }; })()`)
	}
	prodEnt := entitlementOf("prod")
	if prodEnt.State != "at" || prodEnt.Used != "1" || prodEnt.Entitled != "1" || !strings.HasPrefix(prodEnt.Text, "nodes: 1 / 1") ||
		prodEnt.WarningState != "at" || !strings.Contains(prodEnt.Warning, "at its node entitlement") || prodEnt.Refused != "1" ||
		!strings.Contains(prodEnt.Text, "1 sensor refused in 24 h; last node-c") {
		t.Errorf("prod's entitlement on the page: %+v", prodEnt)
	}
	if edgeEnt := entitlementOf("edge"); edgeEnt.State != "unlimited" || edgeEnt.Text != "nodes: 0 / unlimited" || edgeEnt.Warning != "" || edgeEnt.Refused != "" {
		t.Errorf("edge's entitlement on the page: %+v", edgeEnt)
	}
	var prodAPI struct {
		Entitlement struct {
			Nodes             *int    `json:"nodes"`
			NodesUsed         int     `json:"nodes_used"`
			SensorsRefused    int     `json:"sensors_refused"`
			LastRefusedSensor *string `json:"last_refused_sensor"`
		} `json:"entitlement"`
	}
	apiGet(t, s.base+"/api/v1/clusters/uid-prod", &prodAPI)
	if e := prodAPI.Entitlement; e.Nodes == nil || *e.Nodes != 1 || e.NodesUsed != 1 || e.SensorsRefused != 1 || e.LastRefusedSensor == nil || *e.LastRefusedSensor != "node-c" {
		t.Errorf("prod's entitlement in the API: %+v", e)
	}

	// prod's collectors: the stale sensor first, marked in words and by class, then the live ones by id, each
	// with its mode and version as the API reports them.
	var prodDetail struct {
		Collectors []struct {
			ID          string    `json:"id"`
			Live        bool      `json:"live"`
			HeartbeatAt time.Time `json:"heartbeat_at"`
		} `json:"collectors"`
	}
	apiGet(t, s.base+"/api/v1/clusters/uid-prod", &prodDetail)
	if len(prodDetail.Collectors) != 3 {
		t.Fatalf("the API lists %d collectors of prod, want the 3 seeded: %+v", len(prodDetail.Collectors), prodDetail.Collectors)
	}
	type collectorRow struct {
		ID, Live, Class, Mode, Version, State, Heartbeat, HeartbeatTitle, Text string
	}
	collectorRows := eval[[]collectorRow](t, ctx, `[...document.querySelectorAll('[data-cluster="prod"] table.collectors tbody tr')].map(r => ({
		ID: r.dataset.collector, Live: r.dataset.live, Class: r.className,
		Mode: r.querySelector('[data-collector-mode]').textContent, Version: r.querySelector('[data-version]').dataset.version,
		State: r.cells[5].textContent, Heartbeat: r.cells[4].textContent,
		HeartbeatTitle: r.cells[4].querySelector('time') ? r.cells[4].querySelector('time').title : '', Text: r.textContent}))`)
	wantRows := []collectorRow{
		{ID: "node-b", Live: "false", Class: "stale", Mode: "impact · sensor", Version: "v0.160.0", State: "⚠ stale"},
		{ID: "controller", Live: "true", Class: "", Mode: "integrity · controller", Version: "v0.161.0", State: "✓ live"},
		{ID: "node-a", Live: "true", Class: "", Mode: "impact · sensor", Version: "v0.161.0", State: "✓ live"},
	}
	if len(collectorRows) != len(wantRows) {
		t.Fatalf("collector rows %+v, want %d", collectorRows, len(wantRows))
	}
	for i, w := range wantRows {
		g := collectorRows[i]
		if g.ID != w.ID || g.Live != w.Live || g.Class != w.Class || g.Mode != w.Mode || g.Version != w.Version || g.State != w.State {
			t.Errorf("collector row %d: %+v\nwant %+v", i, g, w)
		}
		if !strings.Contains(g.Text, w.Version) {
			t.Errorf("collector row %s does not show its version %s: %q", g.ID, w.Version, g.Text)
		}
		// The last heartbeat reads relative, with the absolute time in its title.
		if !strings.Contains(g.Heartbeat, "ago") && g.Heartbeat != "just now" {
			t.Errorf("collector %s's last heartbeat %q is not relative", g.ID, g.Heartbeat)
		}
		title, err := time.Parse(time.RFC3339, g.HeartbeatTitle)
		if err != nil {
			t.Errorf("collector %s's last heartbeat title %q is no absolute time: %v", g.ID, g.HeartbeatTitle, err)
		}
		for _, k := range prodDetail.Collectors {
			// The title is the API's time to the millisecond (Date.toISOString).
			if k.ID == g.ID && !title.Equal(k.HeartbeatAt.Truncate(time.Millisecond)) {
				t.Errorf("collector %s's last heartbeat title %s, the API says %s", g.ID, title, k.HeartbeatAt)
			}
		}
	}
	// node-b's sensor heartbeat 20 minutes before seeding; a slow machine may take the page past the next minute.
	if g := collectorRows[0].Heartbeat; g != "20 min ago" && g != "21 min ago" {
		t.Errorf("node-b's sensor heartbeat 20 minutes ago, the page says %q", g)
	}
	// The older release is called out against the cluster's version (the live controller's).
	if !strings.Contains(collectorRows[0].Text, "≠ v0.161.0") || strings.Contains(collectorRows[2].Text, "≠") {
		t.Errorf("version difference: node-b %q, node-a %q", collectorRows[0].Text, collectorRows[2].Text)
	}
	if v := eval[string](t, ctx, `document.querySelector('[data-cluster="prod"] table.collectors').previousElementSibling.textContent`); v != "Collectors — 3 · 1 stale" {
		t.Errorf("prod's collectors heading: %q", v)
	}
	// Stale is marked by more than colour: the row's background differs from a live row's, and the text says so.
	if bg := eval[[]string](t, ctx, `['node-b', 'node-a'].map(id => getComputedStyle(document.querySelector('[data-cluster="prod"] tr[data-collector="'+id+'"]')).backgroundColor)`); bg[0] == bg[1] {
		t.Errorf("the stale collector row looks like a live one: %v", bg)
	}
	// edge's collectors: one enrolled without a collector id ("legacy"), and one whose id is markup, shown as
	// the text it is.
	if v := eval[string](t, ctx, `[...document.querySelectorAll('[data-cluster="edge"] table.collectors tbody tr')].map(r => r.dataset.collector + ':' + r.dataset.live).join(',')`); v != markupCollector+":true,legacy:true" {
		t.Errorf("edge's collectors: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('[data-cluster="edge"] table.collectors tbody tr td').textContent`); v != markupCollector {
		t.Errorf("the markup collector id reads %q, want the text %q", v, markupCollector)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-cluster="edge"] table.collectors b').length`); n != 0 {
		t.Errorf("a collector id became %d <b> element(s)", n)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Image detail of the stale tag: running vs registry digest, and the pull-policy remediation.
	open(t, ctx, s.base+"/#/images/"+staleTag.digest, "image")
	screenshot(t, ctx, "image-stale-tag")
	if v := eval[string](t, ctx, `document.querySelector('[data-evidence=running]').textContent`); v != staleTag.digest {
		t.Fatalf("running digest shown: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('[data-evidence=expected]').textContent`); v != staleTag.expected {
		t.Fatalf("registry digest shown: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('.compare').textContent`); !strings.Contains(v, "different") {
		t.Fatalf("comparison: %q", v)
	}
	// The copy button copies the running digest (Clipboard API, or the fallback) and says so.
	redrawFree(t, ctx, chromedp.Click(chromedp.CSS(`.evidence .running button.copy`)))
	waitFor(t, ctx, `document.querySelector('.evidence .running .copied').textContent === 'copied'`)
	if v := eval[string](t, ctx, `document.querySelector('.evidence .running button.copy').dataset.copy`); v != staleTag.digest {
		t.Fatalf("the copy button copies %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('[data-pull-policy]').dataset.pullPolicy`); v != "IfNotPresent" {
		t.Fatalf("pull policy shown: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('[data-pinned]').dataset.pinned`); v != "registry.corp.example/platform/web@"+staleTag.expected {
		t.Fatalf("pinned reference: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('.meaning').textContent`); !strings.Contains(v, "IfNotPresent") {
		t.Fatalf("the meaning does not explain the IfNotPresent case: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('ul.tree').textContent`); !strings.Contains(v, "prod") || !strings.Contains(v, "edge") || !strings.Contains(v, "node-b") {
		t.Fatalf("where it runs: %q", v)
	}
	if v := eval[string](t, ctx, `[...document.querySelectorAll('li[data-to=stale_tag]')].map(li => li.textContent).filter(t => t.includes('prod')).join('\n')`); !strings.Contains(v, "verified") || !strings.Contains(v, "prod") {
		t.Fatalf("the timeline does not show prod's verified → stale tag change: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('#processes + table').textContent`); !strings.Contains(v, "/usr/sbin/nginx") || !strings.Contains(v, "99999999") {
		t.Fatalf("processes: %q", v)
	}
	// A program run from a memfd is flagged; runc's own re-exec from memory is named, not flagged.
	if v := eval[string](t, ctx, `[...document.querySelectorAll('#processes + table tr')].map(r => (r.querySelector('[data-fileless]')?.dataset.fileless || '-') + ' ' + r.querySelector('td code')?.textContent).join('\n')`); !strings.Contains(v, "yes /memfd:payload") ||
		!strings.Contains(v, "runc /memfd:runc_cloned:/proc/self/exe") || !strings.Contains(v, "- /usr/sbin/nginx") {
		t.Fatalf("processes run from memory: %q", v)
	}

	// Artifacts: the cleanup candidates list the artifact nothing has run for two months, and the CSV export
	// link carries the same filter and answers with it.
	open(t, ctx, s.base+"/#/artifacts?usage=unused,never_seen", "artifacts")
	screenshot(t, ctx, "artifacts-cleanup-candidates")
	usages := eval[[]string](t, ctx, `[...document.querySelectorAll('table.artifacts tbody tr')].map(r => r.dataset.usage + ' ' + r.dataset.repository + ':' + r.dataset.tag)`)
	if !slices.Contains(usages, "unused registry.corp.example/platform/migrate:2024.1") && !slices.Contains(usages, "unused platform/migrate:2024.1") {
		t.Fatalf("artifact rows under usage=unused,never_seen: %v", usages)
	}
	for _, u := range usages {
		if !strings.HasPrefix(u, "unused ") && !strings.HasPrefix(u, "never_seen ") {
			t.Fatalf("a row that is no cleanup candidate: %q", u)
		}
	}
	csvHref := eval[string](t, ctx, `document.querySelector('[data-csv=link]').href`)
	if !strings.Contains(csvHref, "/api/v1/artifacts.csv?") || !strings.Contains(csvHref, "usage=unused%2Cnever_seen") {
		t.Fatalf("CSV link %q", csvHref)
	}
	resp, err := http.Get(csvHref)
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(csvBody), "platform/migrate") || strings.Contains(string(csvBody), "platform/web") {
		t.Fatalf("CSV export: %s\n%s", resp.Status, csvBody)
	}
	// The whole list says in use for what runs now.
	open(t, ctx, s.base+"/#/artifacts", "artifacts")
	if n := eval[int](t, ctx, `document.querySelectorAll('table.artifacts tbody tr[data-usage=in_use]').length`); n < 6 {
		t.Fatalf("in-use artifacts shown: %d, want the 6 running references", n)
	}
	screenshot(t, ctx, "artifacts")

	// Large text for a projector: the root font grows, and the choice survives a reload.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("pref-large"))); err != nil {
		t.Fatal(err)
	}
	open(t, ctx, s.base+"/#/images", "images")
	if v := eval[string](t, ctx, `getComputedStyle(document.documentElement).fontSize`); v != "24px" {
		t.Fatalf("large text: root font size %s, want 24px", v)
	}
	screenshot(t, ctx, "images-large-text")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("pref-large"))); err != nil {
		t.Fatal(err)
	}
}
