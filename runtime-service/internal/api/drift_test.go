package api

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestDriftAnswersAsDocumented: an image runs in two clusters with drift findings in each; the image detail
// (index status, per-process verdicts), the images list (drift counts) and the findings list (filters, paging,
// a reader of one cluster) answer as openapi.yaml documents them.
func TestDriftAnswersAsDocumented(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, store.Options{MaxConns: 4})
	prod, lab := storetest.Enrol(t, st, "uid-prod", "prod"), storetest.Enrol(t, st, "uid-lab", "lab")
	d := "sha256:" + "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"
	now := time.Now().UTC().Truncate(time.Second)
	for _, c := range []store.Cluster{prod, lab} {
		if _, err := st.Apply(ctx, c, "", &store.Batch{
			Containers: []store.Container{{PodUID: "uid-web", Name: "app", ContainerID: "cid-web", Namespace: "shop", PodName: "web",
				NodeName: "node-a", ImageName: "reg.example/shop/web:1", ImageRef: "reg.example/shop/web:1", RunningDigest: d,
				Integrity: records.IntegrityVerified, Severity: records.SeverityNone, Time: now}},
			Execs: []store.ExecEvent{{Time: now, ContainerID: "cid-web", ImageDigest: d, PID: 1, ExecutablePath: "/tmp/dropper", SHA256: "aa"},
				{Time: now, ContainerID: "cid-web", ImageDigest: d, PID: 1, ExecutablePath: "/bin/sh", SHA256: "bb"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	s := loadSpec(t)
	building := false
	h := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(st, auth.ModeNone)).WithDrift(func(string) bool { return building })
	body := checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+d, 200)
	if x := m(body["drift"]); x["state"] != "pending" || m(list(body["processes"])[0])["drift"] != nil {
		t.Fatalf("before an index: %v", x)
	}
	building = true
	if x := m(checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+d, 200)["drift"]); x["state"] != "building" {
		t.Fatalf("being read: %v", x)
	}
	building = false

	if err := st.PutDriftIndex(ctx, store.DriftIndex{Digest: d, Encoded: []byte("x"), Files: 120, Bytes: 4096}); err != nil {
		t.Fatal(err)
	}
	due, err := st.DriftDue(ctx, "fp", 10)
	if err != nil || len(due) != 4 {
		t.Fatalf("due %v %v", due, err)
	}
	var fs []store.DriftFinding
	for _, a := range due {
		f := store.DriftFinding{DriftAggregate: a, Verdict: "in_image", Severity: "none", Fingerprint: "fp", Repositories: []string{"reg.example/shop/web"}}
		if a.Path == "/tmp/dropper" {
			f.Verdict, f.Severity = "added", "high"
		}
		fs = append(fs, f)
	}
	if err := st.PutDriftFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}

	body = checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+d, 200)
	if x := m(body["drift"]); x["state"] != "built" || x["files"] != float64(120) || x["truncated"] != false {
		t.Fatalf("built: %v", x)
	}
	verdicts := map[string]any{}
	for _, p := range list(body["processes"]) {
		verdicts[m(p)["path"].(string)] = m(m(p)["drift"])["verdict"]
	}
	if verdicts["/tmp/dropper"] != "added" || verdicts["/bin/sh"] != "in_image" {
		t.Errorf("processes: %v", verdicts)
	}
	if dc := m(body["drift_counts"]); dc["findings"] != float64(2) || dc["severity"] != "high" {
		t.Errorf("drift counts: %v", dc)
	}
	body = checkResponse(t, s, h, route("/api/v1/images"), "/api/v1/images", 200)
	if dc := m(m(list(body["items"])[0])["drift_counts"]); dc["findings"] != float64(2) {
		t.Errorf("images list drift counts: %v", dc)
	}

	for q, want := range map[string]float64{"": 2, "?allowed=true": 4, "?cluster=lab": 1, "?severity=critical": 0,
		"?drift=added,modified": 2, "?drift=in_image&allowed=true": 2, "?digest=" + d: 2, "?limit=1": 2} {
		if b := checkResponse(t, s, h, route("/api/v1/drift/findings"), "/api/v1/drift/findings"+q, 200); b["total"] != want {
			t.Errorf("%s: total %v, want %v", q, b["total"], want)
		}
	}
	for _, q := range []string{"?drift=bogus", "?allowed=yes", "?namespace=shop", "?verdict=verified"} {
		checkResponse(t, s, h, route("/api/v1/drift/findings"), "/api/v1/drift/findings"+q, 400)
	}

	// A reader of one cluster sees that cluster's findings only.
	th := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(st, auth.ModeTokens))
	tok := mustToken(t, st, "lab-only", store.RoleViewer, []string{"lab"})
	var page List[DriftFinding]
	getJSON(t, th, "/api/v1/drift/findings", tok, &page)
	if page.Total != 1 || page.Items[0].Cluster.Name != "lab" {
		t.Errorf("lab reader: %+v", page)
	}
	var img ImageDetail
	getJSON(t, th, "/api/v1/images/"+d, tok, &img)
	if img.DriftCounts.Findings != 1 {
		t.Errorf("lab reader's image: %+v", img.DriftCounts)
	}

	// Drift off: the image says so.
	h = New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(st, auth.ModeNone))
	if x := m(checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+d, 200)["drift"]); x["state"] != "off" {
		t.Errorf("off: %v", x)
	}
}
