package ui_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runtrust/runtrust/internal/records"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// The vulnerability estate: checkout has a finding of every severity, one critical with a fix loaded at runtime;
// storefront shares a high finding and has a medium one loaded through a library open (loaded, but not in the
// funnel's last step); cache's SBOM failed.
var (
	vulnCheckout = image{ref: "registry.corp.example/shop/checkout:3.2", digest: digestOf('3'), expected: digestOf('3'),
		verdict: records.IntegrityVerified, severity: records.SeverityNone, trusted: true}
	vulnStorefront = image{ref: "registry.corp.example/shop/storefront:1.9", digest: digestOf('4'), expected: digestOf('4'),
		verdict: records.IntegrityVerified, severity: records.SeverityNone, trusted: true}
	vulnCache = image{ref: "registry.corp.example/shop/cache:7", digest: digestOf('6'), expected: digestOf('6'),
		verdict: records.IntegrityVerified, severity: records.SeverityNone, trusted: true}
)

const (
	vulnDBVersion = "osv-2025-03-14"
	// loadedContainer is a containerd container id: the page shortens it.
	loadedContainer = "3f1c2a9b7d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef"
	sbomError       = "fetch registry.corp.example/shop/cache:7: 401 Unauthorized"
	// markupSummary is an advisory summary that is HTML: the page must show it as text.
	markupSummary = `<img src=x onerror="document.title='pwned'">Heap overflow in the TLS record layer`
)

// loadedAt is when checkout's loaded finding was first seen loaded: another day than the test's, so the page
// shows the date and the test knows the text.
var loadedAt = time.Date(2025, 3, 14, 12, 3, 0, 0, time.UTC)

func seedVulnerabilities(t *testing.T, s *runningService) {
	t.Helper()
	now := time.Now().UTC()
	prod := s.enrol(t, 0, "uid-prod", "prod", runtrustv1.Mode_MODE_IMPACT, 1)
	recs := []rec{node(now, "node-a")}
	recs = append(recs, containers(now, vulnCheckout, workload{"Deployment", "checkout", "shop", []string{"node-a"}, 2})...)
	recs = append(recs, containers(now, vulnStorefront, workload{"Deployment", "storefront", "shop", []string{"node-a"}, 1})...)
	recs = append(recs, containers(now, vulnCache, workload{"StatefulSet", "cache", "shop", []string{"node-a"}, 1})...)
	prod.send(t, recs...)

	ctx := context.Background()
	st, err := store.Open(ctx, s.dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutSBOM(ctx, store.StoredSBOM{Digest: vulnCheckout.digest, Source: "referrer", Format: "spdx-json", Distro: "debian-12",
		Packages: 143, Files: 5021, Document: []byte("{}"), CreatedAt: now}))
	must(st.PutSBOM(ctx, store.StoredSBOM{Digest: vulnStorefront.digest, Source: "generated", Format: "layers", Distro: "debian-12",
		Packages: 88, Files: 3000, Truncated: true, Notes: []string{"file lists cut at 3,000 files"}, Document: []byte("{}"), CreatedAt: now}))
	must(st.FailSBOM(ctx, vulnCache.digest, sbomError, now.Add(time.Hour)))

	deb := func(id, sev string, cvss float64, pkg, installed, fixed string) store.VulnFinding {
		return store.VulnFinding{ID: id, PackageKey: "deb:" + pkg, Package: pkg, PackageType: "deb", Installed: installed, Fixed: fixed,
			Severity: sev, CVSS: cvss, Summary: "A flaw in " + pkg, Source: "osv:Debian"}
	}
	openssl := deb("CVE-2024-1001", "critical", 9.8, "openssl", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1")
	openssl.Aliases, openssl.CVSSVector = []string{"DSA-5600-1"}, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
	xnet := store.VulnFinding{ID: "GHSA-4374-p667-p6c8", PackageKey: "golang:golang.org/x/net", Package: "golang.org/x/net",
		PackageType: "golang", Installed: "v0.17.0", Fixed: "v0.23.0", Severity: "unknown", Source: "osv:Go"}
	must(st.ReplaceFindings(ctx, vulnCheckout.digest, vulnDBVersion, []store.VulnFinding{
		openssl,
		deb("CVE-2024-1002", "critical", 9.1, "libc6", "2.36-9+deb12u4", ""),
		deb("CVE-2024-1003", "high", 7.5, "curl", "7.88.1-10+deb12u4", "7.88.1-10+deb12u5"),
		deb("CVE-2024-1004", "medium", 5.3, "zlib1g", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-2"),
		deb("CVE-2024-1005", "low", 3.1, "tar", "1.34+dfsg-1.2", ""),
		xnet,
	}))
	must(st.SetReachability(ctx, vulnCheckout.digest, []store.Reach{
		{ID: "CVE-2024-1001", PackageKey: "deb:openssl", Reachability: store.ReachLoaded, Evidence: &store.Evidence{Kind: "exec",
			Path: "/usr/bin/openssl", Process: "/usr/bin/openssl", ContainerID: loadedContainer, At: loadedAt, Count: 14}},
		{ID: "CVE-2024-1003", PackageKey: "deb:curl", Reachability: store.ReachNotLoaded},
		{ID: "CVE-2024-1005", PackageKey: "deb:tar", Reachability: store.ReachNotLoaded},
	}))
	libssl := deb("CVE-2024-1006", "medium", 6.5, "libssl3", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1")
	libssl.Summary = markupSummary
	must(st.ReplaceFindings(ctx, vulnStorefront.digest, vulnDBVersion, []store.VulnFinding{
		deb("CVE-2024-1003", "high", 7.5, "curl", "7.88.1-10+deb12u4", "7.88.1-10+deb12u5"), libssl}))
	must(st.SetReachability(ctx, vulnStorefront.digest, []store.Reach{
		{ID: "CVE-2024-1006", PackageKey: "deb:libssl3", Reachability: store.ReachLoaded, Evidence: &store.Evidence{Kind: "open",
			Path: "/usr/lib/x86_64-linux-gnu/libssl.so.3", Process: "/usr/bin/python3", ContainerID: "cid-shop-storefront-a",
			At: now.Add(-5 * time.Minute), Count: 3}},
	}))
}

type vulnList struct {
	Total int `json:"total"`
	Items []struct {
		ID     string `json:"id"`
		Digest string `json:"digest"`
	} `json:"items"`
	Funnel struct {
		All          int `json:"all"`
		CriticalHigh int `json:"critical_high"`
		FixAvailable int `json:"fix_available"`
		Loaded       int `json:"loaded"`
	} `json:"funnel"`
}

// rowsOf lists the findings table's rows as "id digest".
const rowsOf = `[...document.querySelectorAll('table.vulns tbody tr')].map(r => r.dataset.id + ' ' + r.dataset.digest)`

// csvRows fetches a CSV export and returns its rows as "id digest", after checking its header.
func csvRows(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatalf("CSV %s: %v", url, err)
	}
	if len(recs) == 0 || recs[0][0] != "id" || recs[0][13] != "digest" {
		t.Fatalf("CSV %s header: %v", url, recs)
	}
	var out []string
	for _, r := range recs[1:] {
		out = append(out, r[0]+" "+r[13])
	}
	return out
}

// TestBrowserVulnerabilities: the Vulnerabilities view's funnel draws the API's counts and its steps filter the
// table; a loaded finding says which event loaded it; the CSV link exports what the table lists; the images
// list and an image's page show its findings and where its SBOM stands.
func TestBrowserVulnerabilities(t *testing.T) {
	s := startService(t, 1)
	seedVulnerabilities(t, s)
	ctx := browser(t)

	var all vulnList
	apiGet(t, s.base+"/api/v1/vulnerabilities", &all)
	// The seed's funnel, so a change to the seed that makes the steps equal (and the test weak) shows here.
	if f := all.Funnel; f.All != 8 || f.CriticalHigh != 4 || f.FixAvailable != 3 || f.Loaded != 1 || all.Total != 8 {
		t.Fatalf("the API's funnel of the seed: %+v (total %d), want 8 → 4 → 3 → 1", f, all.Total)
	}
	var apiRows []string
	for _, v := range all.Items {
		apiRows = append(apiRows, v.ID+" "+v.Digest)
	}

	open(t, ctx, s.base+"/#/vulnerabilities", "vulnerabilities")
	type step struct {
		Key, Label, Count, Share string
		Width                    float64
		Current                  bool
	}
	steps := eval[[]step](t, ctx, `[...document.querySelectorAll('ol.funnel li')].map(li => ({Key: li.dataset.step,
		Label: li.querySelector('.step-label').textContent, Count: li.querySelector('.step-count').textContent,
		Share: li.querySelector('.step-share').textContent, Width: li.querySelector('.bar').getBoundingClientRect().width,
		Current: li.querySelector('a').hasAttribute('aria-current')}))`)
	want := []step{
		{Key: "all", Label: "All findings", Count: strconv.Itoa(all.Funnel.All), Share: "100%", Current: true},
		{Key: "critical_high", Label: "Critical & high", Count: strconv.Itoa(all.Funnel.CriticalHigh), Share: "50%"},
		{Key: "fix_available", Label: "Fix available", Count: strconv.Itoa(all.Funnel.FixAvailable), Share: "38%"},
		{Key: "loaded", Label: "Loaded at runtime", Count: strconv.Itoa(all.Funnel.Loaded), Share: "13%"},
	}
	if len(steps) != len(want) {
		t.Fatalf("funnel steps: %+v", steps)
	}
	for i, w := range want {
		g := steps[i]
		if g.Key != w.Key || g.Label != w.Label || g.Count != w.Count || g.Share != w.Share || g.Current != w.Current {
			t.Errorf("funnel step %d: %+v, want %+v", i, g, w)
		}
		// Drawn as a funnel: each bar narrower than the one before.
		if i > 0 && !(g.Width < steps[i-1].Width) {
			t.Errorf("funnel bar %s is %.0fpx wide, the step before %.0fpx", g.Key, g.Width, steps[i-1].Width)
		}
	}
	if got := eval[[]string](t, ctx, rowsOf); !slices.Equal(got, apiRows) {
		t.Fatalf("table rows:\n%v\nthe API's:\n%v", got, apiRows)
	}
	// An advisory's summary that is markup is shown as text.
	if n := eval[int](t, ctx, `document.querySelectorAll('main img').length`); n != 0 {
		t.Errorf("a summary became %d <img> element(s)", n)
	}
	if v := eval[string](t, ctx, `document.querySelector('tr[data-id="CVE-2024-1006"] .vuln-summary').textContent`); v != markupSummary {
		t.Errorf("the markup summary reads %q", v)
	}
	// Every row of the view is in its CSV export, in the same order.
	if got := csvRows(t, eval[string](t, ctx, `document.querySelector('[data-csv=link]').href`)); !slices.Equal(got, apiRows) {
		t.Errorf("CSV rows of the whole list:\n%v\nthe table's:\n%v", got, apiRows)
	}
	screenshot(t, ctx, "vulnerabilities")
	if t.Failed() {
		t.FailNow()
	}

	// The funnel's last step filters the table to the loaded critical and high findings with a fix: checkout's
	// openssl, and not storefront's loaded medium one.
	redraw(t, ctx, "vulnerabilities", chromedp.Click(chromedp.CSS(`ol.funnel li[data-step=loaded] a`)))
	hash := eval[string](t, ctx, `location.hash`)
	for _, p := range []string{"severity=critical%2Chigh", "fix=true", "reachability=loaded"} {
		if !strings.Contains(hash, p) {
			t.Errorf("the step's filters are not in the URL: %s lacks %s", hash, p)
		}
	}
	if v := eval[string](t, ctx, `[...document.querySelectorAll('form.filters input:checked')].map(i => i.name + '=' + i.value).join(' ') + ' fix=' + document.getElementById('f-fix').value`); v != "severity=critical severity=high reachability=loaded fix=true" {
		t.Errorf("the filters shown after the step: %s", v)
	}
	if !eval[bool](t, ctx, `document.querySelector('ol.funnel li[data-step=loaded] a').hasAttribute('aria-current')`) {
		t.Error("the chosen step is not marked current")
	}
	if got := eval[[]string](t, ctx, rowsOf); !slices.Equal(got, []string{"CVE-2024-1001 " + vulnCheckout.digest}) {
		t.Fatalf("rows under the loaded step: %v", got)
	}
	type row struct{ Reach, Badge, Evidence, Package, Image, ImageRef, ImageHref string }
	r := eval[row](t, ctx, `(() => { const r = document.querySelector('table.vulns tbody tr'); const a = r.cells[5].querySelector('a');
		return {Reach: r.dataset.reachability, Badge: r.querySelector('.reach').textContent, Evidence: r.querySelector('.loaded-by')?.textContent ?? '',
		Package: r.cells[3].textContent, Image: r.cells[5].textContent, ImageRef: a.title, ImageHref: a.getAttribute('href')}; })()`)
	wantRow := row{Reach: "loaded", Badge: "▶loaded", Evidence: "exec /usr/bin/openssl in container 3f1c2a9b7d4e… at 2025-03-14 12:03 UTC · 14 events",
		Package: "openssl@3.0.11-1~deb12u2 → 3.0.13-1~deb12u1deb", Image: "registry.corp.example" + "shop/checkout:3.2", ImageRef: vulnCheckout.ref,
		ImageHref: "#/images/" + strings.ReplaceAll(vulnCheckout.digest, ":", "%3A")}
	if r != wantRow {
		t.Errorf("the loaded row:\n%+v\nwant\n%+v", r, wantRow)
	}
	csvHref := eval[string](t, ctx, `document.querySelector('[data-csv=link]').href`)
	for _, p := range []string{"/api/v1/vulnerabilities.csv?", "severity=critical%2Chigh", "fix=true", "reachability=loaded"} {
		if !strings.Contains(csvHref, p) {
			t.Errorf("CSV link %s lacks %s", csvHref, p)
		}
	}
	if got := csvRows(t, csvHref); !slices.Equal(got, []string{"CVE-2024-1001 " + vulnCheckout.digest}) {
		t.Errorf("CSV rows under the loaded step: %v", got)
	}
	// The step's URL, loaded afresh, shows the same.
	open(t, ctx, eval[string](t, ctx, `location.href`), "vulnerabilities")
	if got := eval[[]string](t, ctx, rowsOf); len(got) != 1 {
		t.Errorf("the step's URL loaded afresh lists %v", got)
	}
	screenshot(t, ctx, "vulnerabilities-loaded")

	// Empty states: filters that match nothing in a scope with findings; a scope without any.
	open(t, ctx, s.base+"/#/vulnerabilities?q=no-such-advisory", "vulnerabilities")
	if v := eval[string](t, ctx, `document.querySelector('[data-empty]')?.dataset.empty + ': ' + document.querySelector('[data-empty]')?.textContent`); v != "vulnerabilities: No finding matches these filters (8 in this scope). Show them all" {
		t.Errorf("empty state under a search: %q", v)
	}
	open(t, ctx, s.base+"/#/vulnerabilities?namespace=kube-system", "vulnerabilities")
	if v := eval[string](t, ctx, `document.querySelector('[data-empty]')?.dataset.empty + ': ' + document.querySelector('[data-empty]')?.textContent`); v != "vulnerabilities-none: No vulnerability findings for the images in this scope. Scanning needs -vulnerability-db (docs/vulnerabilities.md)." {
		t.Errorf("empty state of a scope without findings: %q", v)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('ol.funnel').length`); n != 0 {
		t.Errorf("a funnel of nothing is drawn")
	}

	// Images list: each image's findings, the loaded count set apart.
	var imgs struct {
		Items []struct {
			Digest string `json:"digest"`
			Counts struct {
				Total, Critical, High, Loaded int
			} `json:"vulnerability_counts"`
		} `json:"items"`
	}
	apiGet(t, s.base+"/api/v1/images", &imgs)
	open(t, ctx, s.base+"/#/images", "images")
	type cell struct{ Text, Loaded string }
	cells := eval[map[string]cell](t, ctx, `Object.fromEntries([...document.querySelectorAll('table.images tbody tr')].map(r =>
		[r.dataset.digest, {Text: r.querySelector('.vulns-cell').textContent, Loaded: r.querySelector('.vulns-cell [data-vuln-loaded]')?.textContent ?? ''}]))`)
	wantCells := map[string]cell{
		vulnCheckout.digest:   {Text: "2 critical · 1 high 1 loaded", Loaded: "1 loaded"},
		vulnStorefront.digest: {Text: "1 high 1 loaded", Loaded: "1 loaded"},
		vulnCache.digest:      {Text: "—"},
	}
	for _, i := range imgs.Items {
		w, c := wantCells[i.Digest], cells[i.Digest]
		if c != w {
			t.Errorf("image %s's vulnerability cell %+v, want %+v (the API counts %+v)", i.Digest, c, w, i.Counts)
		}
	}
	if len(imgs.Items) != len(wantCells) || len(cells) != len(wantCells) {
		t.Errorf("images: the API lists %d, the page %d, want %d", len(imgs.Items), len(cells), len(wantCells))
	}
	screenshot(t, ctx, "images-vulnerabilities")
	if bg := eval[[]string](t, ctx, `[...document.querySelectorAll('.vulns-cell [data-vuln-loaded]')].map(e => getComputedStyle(e).backgroundColor)`); len(bg) == 0 || bg[0] == "rgba(0, 0, 0, 0)" {
		t.Errorf("the loaded count is not highlighted: background %v", bg)
	}

	// checkout's page: its SBOM, its findings as the API ranks them (no image column), a link to the view.
	var detail struct {
		Vulnerabilities []struct {
			ID string `json:"id"`
		} `json:"vulnerabilities"`
	}
	apiGet(t, s.base+"/api/v1/images/"+vulnCheckout.digest, &detail)
	open(t, ctx, s.base+"/#/images/"+vulnCheckout.digest, "image")
	if v := eval[string](t, ctx, `document.querySelector('[data-sbom]')?.dataset.sbom + ': ' + document.querySelector('[data-sbom]')?.textContent`); !strings.HasPrefix(v, "built: ✓ SBOM built · referrer · spdx-json · debian-12 · 143 packages · 5,021 files · database "+vulnDBVersion+" · updated ") {
		t.Errorf("checkout's SBOM line: %q", v)
	}
	var wantIDs []string
	for _, v := range detail.Vulnerabilities {
		wantIDs = append(wantIDs, v.ID+" "+vulnCheckout.digest)
	}
	if got := eval[[]string](t, ctx, rowsOf); len(got) != 6 || !slices.Equal(got, wantIDs) {
		t.Errorf("checkout's findings:\n%v\nthe API's:\n%v", got, wantIDs)
	}
	if v := eval[string](t, ctx, `[...document.querySelectorAll('table.vulns thead th')].map(th => th.textContent).join('|')`); v != "Advisory|Severity|CVSS|Package → fix|At runtime" {
		t.Errorf("the image's findings columns: %s", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('tr[data-id="CVE-2024-1002"]').textContent`); !strings.Contains(v, "libc6@2.36-9+deb12u4 → no fix") || !strings.Contains(v, "9.1") || !strings.Contains(v, "unknown") {
		t.Errorf("a critical finding without a fix: %q", v)
	}
	screenshot(t, ctx, "image-vulnerabilities")
	redraw(t, ctx, "vulnerabilities", chromedp.Click(chromedp.CSS(`[data-vulns-link]`)))
	if got := eval[[]string](t, ctx, rowsOf); !slices.Equal(got, wantIDs) {
		t.Errorf("the view from checkout's link lists %v", got)
	}
	if v := eval[string](t, ctx, `[...document.querySelectorAll('ol.funnel .step-count')].map(e => e.textContent).join(' → ')`); v != "6 → 3 → 2 → 1" {
		t.Errorf("checkout's funnel: %s", v)
	}
	if !strings.Contains(eval[string](t, ctx, `document.querySelector('[data-csv=link]').href`), "digest=sha256%3A3333") {
		t.Error("the CSV link of one image's findings does not carry its digest")
	}

	// storefront's page: the finding loaded through a library open names who opened it; a truncated SBOM says so.
	open(t, ctx, s.base+"/#/images/"+vulnStorefront.digest, "image")
	if v := eval[string](t, ctx, `document.querySelector('tr[data-id="CVE-2024-1006"] .loaded-by')?.textContent ?? ''`); !strings.HasPrefix(v, "opened /usr/lib/x86_64-linux-gnu/libssl.so.3 by /usr/bin/python3 in container cid-shop-sto… at ") {
		t.Errorf("the open evidence: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('.sbom-notes')?.textContent ?? ''`); !strings.Contains(v, "Truncated") || !strings.Contains(v, "file lists cut at 3,000 files") {
		t.Errorf("the truncated SBOM's notes: %q", v)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('main img').length`); n != 0 || eval[string](t, ctx, `document.title`) == "pwned" {
		t.Errorf("the markup summary ran: %d <img>, title %q", n, eval[string](t, ctx, `document.title`))
	}

	// cache's page: its SBOM failed, and the error says why.
	open(t, ctx, s.base+"/#/images/"+vulnCache.digest, "image")
	screenshot(t, ctx, "image-sbom-failed")
	if v := eval[string](t, ctx, `document.querySelector('[data-sbom]')?.dataset.sbom + ': ' + document.querySelector('[data-sbom]')?.textContent`); !strings.HasPrefix(v, fmt.Sprintf("failed: ⚠ SBOM failed · 1 attempt: %s · updated ", sbomError)) {
		t.Errorf("cache's SBOM line: %q", v)
	}
	if v := eval[string](t, ctx, `document.querySelector('[data-empty=image-vulnerabilities]')?.textContent ?? ''`); v != "No findings: its SBOM could not be built." {
		t.Errorf("cache's findings: %q", v)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-vulns-link]').length`); n != 0 {
		t.Errorf("an image without findings links to its %d findings", n)
	}
}
