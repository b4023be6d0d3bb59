package api

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
	pt "github.com/runtrust/runtrust/runtime-service/internal/provenance/provenancetest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestProvenanceAnswersAsDocumented: a signed image with SLSA provenance and an unsigned one run from a loopback
// registry; the checker checks both under the policy, and the image detail, the findings list (with its
// filters) and the policy answer as openapi.yaml documents them: the build facts from the provenance, the
// unsigned image a finding.
func TestProvenanceAnswersAsDocumented(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.WithReferrers())
	signed, unsigned := reg.PushImage(t, "shop/web:1"), reg.PushImage(t, "shop/api:1")
	dir := t.TempDir()
	key := pt.NewKey(t)
	key.WritePublic(t, dir, "release.pub")
	d, err := name.NewDigest(reg.Ref("shop/web") + "@" + signed)
	if err != nil {
		t.Fatal(err)
	}
	b := pt.Build{BuilderID: "https://github.com/actions/runner", Repository: "https://github.com/corp/shop", Ref: "refs/heads/main",
		Commit: "0123abcd", InvocationID: "https://github.com/corp/shop/actions/runs/7/attempts/1"}
	pt.SignImage(t, d, key, pt.Referrer, pt.Options{})
	pt.AttestProvenance(t, d, key, b, pt.Tag, pt.Options{})
	file := filepath.Join(dir, "provenance.yaml")
	if err := os.WriteFile(file, []byte("rules:\n  - {name: shop, match: {repository: 'shop/*'}, keys: [release.pub], require: [signature, provenance], severity: critical}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := provenance.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	st := storetest.Open(t, store.Options{MaxConns: 4})
	c := storetest.Enrol(t, st, "uid-prod", "prod")
	now := time.Now().UTC().Truncate(time.Second)
	k := func(pod, ref, digest string) store.Container {
		return store.Container{PodUID: "uid-" + pod, Name: "app", ContainerID: "cid-" + pod, Namespace: "shop", PodName: pod,
			NodeName: "node-a", WorkloadUID: "w-" + pod, WorkloadKind: "Deployment", WorkloadName: pod, ImageName: ref, ImageRef: ref,
			RunningDigest: digest, Integrity: records.IntegrityVerified, Severity: records.SeverityNone, Time: now}
	}
	if _, err := st.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{
		k("web", reg.Ref("shop/web:1"), signed), k("api", reg.Ref("shop/api:1"), unsigned)}}); err != nil {
		t.Fatal(err)
	}
	s := loadSpec(t)
	h := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(st, auth.ModeNone)).WithProvenance(func() *provenance.Policy { return pol })

	// Before the checker ran: pending.
	body := checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+signed, 200)
	if p := m(body["provenance"]); p["state"] != "pending" || p["status"] != nil {
		t.Fatalf("before a check: %v", p)
	}
	provenance.New(st, provenance.Options{Policy: pol}, slog.New(slog.NewTextHandler(io.Discard, nil))).Pass(ctx)

	body = checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+signed, 200)
	p := m(body["provenance"])
	if p["state"] != "checked" || p["status"] != "verified" || p["rule"] != "shop" || len(list(p["findings"])) != 0 {
		t.Fatalf("signed image: %v", p)
	}
	sigs, atts := list(p["signatures"]), list(p["provenance"])
	if len(sigs) != 1 || m(sigs[0])["verified"] != true || m(sigs[0])["source"] != "referrer" {
		t.Errorf("signatures %v", sigs)
	}
	if len(atts) != 1 {
		t.Fatalf("provenance %v", atts)
	}
	a := m(atts[0])
	for field, want := range map[string]string{"builder_id": b.BuilderID, "source_repo": b.Repository, "commit": b.Commit,
		"build_id": b.InvocationID, "ci_url": b.InvocationID, "source": "att_tag"} {
		if a[field] != want {
			t.Errorf("provenance %s = %v, want %s", field, a[field], want)
		}
	}

	body = checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+unsigned, 200)
	if p := m(body["provenance"]); p["status"] != "finding" || p["severity"] != "critical" {
		t.Errorf("unsigned image: %v", p)
	}

	body = checkResponse(t, s, h, route("/api/v1/provenance/findings"), "/api/v1/provenance/findings", 200)
	items := list(body["items"])
	if len(items) != 1 || m(items[0])["digest"] != unsigned {
		t.Fatalf("findings %v", items)
	}
	f := list(m(items[0])["findings"])
	if len(f) != 2 || m(f[0])["code"] != "unsigned" || m(f[1])["code"] != "provenance_missing" {
		t.Errorf("finding codes %v", f)
	}
	for q, want := range map[string]float64{"?finding=unsigned": 1, "?finding=signature_invalid": 0, "?rule=shop": 1, "?rule=other": 0,
		"?severity=critical": 1, "?severity=high": 0, "?cluster=prod&namespace=shop": 1, "?namespace=lab": 0} {
		if b := checkResponse(t, s, h, route("/api/v1/provenance/findings"), "/api/v1/provenance/findings"+q, 200); b["total"] != want {
			t.Errorf("%s: total %v, want %v", q, b["total"], want)
		}
	}
	for _, q := range []string{"?finding=bogus", "?rule=a%20b", "?digest=" + signed} {
		checkResponse(t, s, h, route("/api/v1/provenance/findings"), "/api/v1/provenance/findings"+q, 400)
	}

	body = checkResponse(t, s, h, route("/api/v1/provenance/policy"), "/api/v1/provenance/policy", 200)
	rules := list(body["rules"])
	if body["configured"] != true || len(rules) != 1 || m(rules[0])["name"] != "shop" ||
		!strings.HasSuffix(m(list(m(rules[0])["keys"])[0])["file"].(string), "release.pub") {
		t.Errorf("policy %v", body)
	}

	// Without a policy: off, and the policy says so.
	h = New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(st, auth.ModeNone))
	if p := m(checkResponse(t, s, h, route("/api/v1/images/{digest}"), "/api/v1/images/"+signed, 200)["provenance"]); p["state"] != "off" {
		t.Errorf("no policy: %v", p)
	}
	if b := checkResponse(t, s, h, route("/api/v1/provenance/policy"), "/api/v1/provenance/policy", 200); b["configured"] != false || b["file"] != nil {
		t.Errorf("no policy: %v", b)
	}
}
