package api

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestPlacementAnswersAsDocumented: one artifact labelled runtrust.allowed_clusters=prod/shop runs in shop and
// in lab of prod; the policy, the findings list (with its filters) and the image's placements answer as
// openapi.yaml documents them: lab a finding of the label rule, shop allowed, an unselected image null.
func TestPlacementAnswersAsDocumented(t *testing.T) {
	ctx := context.Background()
	pol, err := placement.Parse([]byte(`rules:
  - {name: by-label, match: {label: runtrust.allowed_clusters}, allow_from_label: runtrust.allowed_clusters}
  - {name: tools, match: {registry: "reg.example", repository: "tools/*"}, allow: [prod/ops], severity: medium}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.Open(t, store.Options{MaxConns: 4, Placement: pol})
	c := storetest.Enrol(t, st, "uid-prod", "prod")
	now := time.Now().UTC().Truncate(time.Second)
	shopDigest, toolDigest := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	k := func(pod, ns, ref, d string) store.Container {
		return store.Container{PodUID: "uid-" + pod, Name: "app", ContainerID: "cid-" + pod, Namespace: ns, PodName: pod,
			NodeName: "node-a", WorkloadUID: "w-" + pod, WorkloadKind: "Deployment", WorkloadName: pod, ImageName: ref, ImageRef: ref,
			RunningDigest: d, Integrity: records.IntegrityVerified, Severity: records.SeverityNone, Time: now}
	}
	if _, err := st.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{
		k("web-shop", "shop", "reg.example/shop/web:1", shopDigest), k("web-lab", "lab", "reg.example/shop/web:1", shopDigest),
		k("tool", "shop", "reg.example/tools/dig:1", toolDigest),
	}}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutLabels(ctx, shopDigest, map[string]string{"runtrust.allowed_clusters": "prod/shop"}, "test"); err != nil {
		t.Fatal(err)
	}
	// The tool image has no labels; until that is known the label rule, tried first, cannot say it does not
	// select it: pending, not a finding.
	if b, err := st.ListPlacementFindings(ctx, store.PlacementFilter{Filter: store.Filter{Limit: 10}}); err != nil || b.Total != 1 {
		t.Fatalf("before the tool's labels: %+v %v", b, err)
	}
	if err := st.PutLabels(ctx, toolDigest, nil, "test"); err != nil {
		t.Fatal(err)
	}
	s := loadSpec(t)
	h := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(st, auth.ModeNone))

	body := checkResponse(t, s, h, route("/api/v1/placement/policy"), "/api/v1/placement/policy", 200)
	rules := list(body["rules"])
	if body["configured"] != true || len(rules) != 2 || m(rules[1])["name"] != "tools" || list(m(rules[1])["allow"])[0] != "prod/ops" ||
		m(m(rules[0])["match"])["label"] != "runtrust.allowed_clusters" || m(rules[0])["severity"] != "high" {
		t.Fatalf("policy: %v", body)
	}
	body = checkResponse(t, s, h, route("/api/v1/placement/findings"), "/api/v1/placement/findings", 200)
	items := list(body["items"])
	if body["total"] != 2.0 || len(items) != 2 {
		t.Fatalf("findings: %v", body)
	}
	// high first.
	if f := m(items[0]); f["namespace"] != "lab" || f["rule"] != "by-label" || f["severity"] != "high" || f["pod"] != "web-lab" ||
		!strings.Contains(f["reason"].(string), "namespace lab of cluster prod is not an allowed place; allowed: prod/shop") {
		t.Errorf("first finding: %v", f)
	}
	if f := m(items[1]); f["rule"] != "tools" || f["severity"] != "medium" || f["digest"] != toolDigest {
		t.Errorf("second finding: %v", f)
	}
	for q, want := range map[string]float64{"?rule=tools": 1, "?severity=high": 1, "?namespace=lab": 1, "?namespace=shop": 1,
		"?digest=" + shopDigest: 1, "?cluster=other": 0, "?rule=by-label&severity=medium": 0} {
		if b := checkResponse(t, s, h, route("/api/v1/placement/findings"), "/api/v1/placement/findings"+q, 200); b["total"] != want {
			t.Errorf("%s: %v findings, want %v", q, b["total"], want)
		}
	}
	for _, q := range []string{"?rule=a%20b", "?sort=risk", "?severity=urgent", "?digest=x"} {
		checkResponse(t, s, h, route("/api/v1/placement/findings"), "/api/v1/placement/findings"+q, 400)
	}
	body = checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+shopDigest, 200)
	got := map[string]string{}
	for _, p := range list(body["placements"]) {
		pv := m(m(p)["placement"])
		got[m(p)["namespace"].(string)] = pv["status"].(string) + " " + pv["rule"].(string)
		if pv["status"] == "allowed" && pv["severity"] != nil {
			t.Errorf("an allowed placement with a severity: %v", pv)
		}
	}
	if got["shop"] != "allowed by-label" || got["lab"] != "violation by-label" {
		t.Errorf("image placements: %v", got)
	}
	// The tool image is judged by the repository rule; an image no rule selects has a null placement.
	other := "sha256:" + strings.Repeat("3", 64)
	if _, err := st.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{k("x", "lab", "docker.io/library/busybox:1", other)}}); err != nil {
		t.Fatal(err)
	}
	body = checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+other, 200)
	if p := m(m(list(body["placements"])[0])["placement"]); p["status"] != "pending" || p["rule"] != "by-label" {
		t.Errorf("before its labels are read: %v", p)
	}
	if err := st.PutLabels(ctx, other, map[string]string{"org.opencontainers.image.title": "busybox"}, "test"); err != nil {
		t.Fatal(err)
	}
	body = checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+other, 200)
	if p := m(list(body["placements"])[0]); p["placement"] != nil {
		t.Errorf("unselected image: %v", p["placement"])
	}
}
