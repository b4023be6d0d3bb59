package ui_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
)

// TestBrowserPlacementPolicy: a rule by repository glob allows shop/* in prod/shop only. The same image runs in
// shop and in lab: the image page's Placement section marks shop allowed and lab a violation naming the rule,
// each pod in the tree carries its mark, and the Policy view lists the rule and the one violation, linking to
// the image with the file it came from. A broken edit of the file (reloaded every second) shows a warning with
// the reason above the rules, which stay those loaded before.
func TestBrowserPlacementPolicy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "placement.yaml")
	yaml := "rules:\n- {name: shop-only, match: {repository: 'shop/*'}, allow: [prod/shop]}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startService(t, 1, "-placement-file", file, "-policy-reload-interval", "1s")
	prod := s.enrol(t, 0, "uid-prod", "prod", runtrustv1.Mode_MODE_INTEGRITY, 1)
	d := digestOf('7')
	img := image{ref: "registry.example/shop/web:1", digest: d, expected: d, verdict: records.IntegrityVerified,
		severity: records.SeverityNone, trusted: true, pullPolicy: "IfNotPresent"}
	now := time.Now()
	prod.send(t, append(append([]rec{node(now, "node-a")},
		containers(now, img, workload{"Deployment", "web", "shop", []string{"node-a"}, 1})...),
		containers(now, img, workload{"Deployment", "web", "lab", []string{"node-a"}, 1})...)...)

	ctx := browser(t)
	open(t, ctx, s.base+"/#/images/"+d, "image")
	screenshot(t, ctx, "image-placement")
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll('table.placement tbody tr')].map(r => r.dataset.namespace + ' ' + r.dataset.placement + ' ' + r.textContent)`)
	slices.Sort(rows)
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "lab violation") || !strings.Contains(rows[0], "shop-only") ||
		!strings.Contains(rows[0], "namespace lab of cluster prod is not an allowed place; allowed: prod/shop") ||
		!strings.HasPrefix(rows[1], "shop allowed") {
		t.Fatalf("placement rows: %q", rows)
	}
	marks := eval[[]string](t, ctx, `[...document.querySelectorAll('ul.tree [data-placement]')].map(e => e.dataset.placement)`)
	slices.Sort(marks)
	if !slices.Equal(marks, []string{"allowed", "violation"}) {
		t.Fatalf("pod marks in the tree: %v", marks)
	}

	open(t, ctx, s.base+"/#/policy", "policy")
	screenshot(t, ctx, "policy")
	if r := eval[string](t, ctx, `document.querySelector('table.rules tr[data-rule="shop-only"]')?.textContent ?? ''`); !strings.Contains(r, "shop/*") ||
		!strings.Contains(r, "prod/shop") || !strings.Contains(r, "high") {
		t.Fatalf("rule row: %q", r)
	}
	v := eval[[]string](t, ctx, `[...document.querySelectorAll('table.violations tbody tr')].map(r => r.dataset.placement + ' ' + r.dataset.rule + ' ' + r.dataset.namespace)`)
	if !slices.Equal(v, []string{"violation shop-only lab"}) {
		t.Fatalf("violations: %v", v)
	}
	if href := eval[string](t, ctx, `document.querySelector('table.violations a').getAttribute('href')`); href != "#/images/"+strings.ReplaceAll(d, ":", "%3A") { // encodeURIComponent
		t.Fatalf("violation links to %q", href)
	}
	if l := eval[string](t, ctx, `document.querySelector('[data-policy-file="placement"]')?.textContent ?? ''`); !strings.Contains(l, file) {
		t.Fatalf("the file line: %q", l)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-reload-error]').length`); n != 0 {
		t.Fatalf("%d reload warnings before any edit", n)
	}

	if err := os.WriteFile(file, []byte("rules:\n- {name: shop-only, match: {repository: 'shop/*'}, allow: [a/b/c]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var warning string
	for deadline := time.Now().Add(15 * time.Second); ; {
		open(t, ctx, s.base+"/#/policy", "policy")
		warning = eval[string](t, ctx, `document.querySelector('[data-reload-error="placement"]')?.textContent ?? ''`)
		if warning != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	screenshot(t, ctx, "policy-reload-refused")
	if !strings.Contains(warning, "refused") || !strings.Contains(warning, "placement file "+file) || !strings.Contains(warning, `"a/b/c"`) {
		t.Fatalf("the reload warning: %q", warning)
	}
	if r := eval[string](t, ctx, `document.querySelector('table.rules tr[data-rule="shop-only"]')?.textContent ?? ''`); !strings.Contains(r, "prod/shop") {
		t.Fatalf("the rule in force with a refused edit: %q", r)
	}
}
