package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestProvenanceChecks: a running digest is due until checked; checked, it is due again at its next check or
// under another policy; a failed check keeps the result from before; findings list running images only, by
// finding code.
func TestProvenanceChecks(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now})
	c := enrol(t, s, "prod")
	d := digest('p')
	if _, err := s.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{{PodUID: "uid-web", Name: "app", ContainerID: "cid-web",
		Namespace: "shop", PodName: "web", NodeName: "node-a", ImageName: "reg.example/shop/web:1", ImageRef: "reg.example/shop/web:1",
		RunningDigest: d, Integrity: records.IntegrityVerified, Severity: records.SeverityNone, Time: t0}}}); err != nil {
		t.Fatal(err)
	}
	due := func(fp string) []store.ProvenanceCandidate {
		t.Helper()
		cs, err := s.ProvenanceCandidates(ctx, fp, 10)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	if cs := due("fp1"); len(cs) != 1 || cs[0].Digest != d || len(cs[0].Refs) != 1 {
		t.Fatalf("never checked: %+v", cs)
	}
	result := []byte(`{"ref":"reg.example/shop/web@` + d + `","findings":[{"code":"unsigned","reason":"r"}]}`)
	if err := s.PutProvenance(ctx, store.ProvenanceCheck{Digest: d, Fingerprint: "fp1", Status: "finding", Rule: "shop",
		Findings: []string{"unsigned"}, Severity: "high", Result: result, Next: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if cs := due("fp1"); len(cs) != 0 {
		t.Fatalf("just checked, still due: %+v", cs)
	}
	if cs := due("fp2"); len(cs) != 1 {
		t.Fatalf("another policy: not due: %+v", cs)
	}
	clk.Set(t0.Add(2 * time.Hour))
	if cs := due("fp1"); len(cs) != 1 {
		t.Fatalf("past its next check: not due: %+v", cs)
	}
	if err := s.FailProvenance(ctx, d, "fp1", "registry down", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := s.GetProvenance(ctx, d)
	if err != nil || !ok || rec.State != "failed" || rec.Error != "registry down" || rec.Status != "finding" || string(rec.Result) == "" ||
		rec.Attempts != 1 || len(rec.Refs) != 1 {
		t.Fatalf("after a failure: %+v %v %v", rec, ok, err)
	}
	if cs := due("fp1"); len(cs) != 0 {
		t.Fatalf("failed, due before its retry: %+v", cs)
	}
	for code, want := range map[string]int{"": 1, "unsigned": 1, "signature_invalid": 0} {
		page, err := s.ListProvenanceFindings(ctx, store.ProvenanceFilter{Filter: store.Filter{Limit: 10}, Code: code})
		if err != nil || page.Total != want {
			t.Errorf("findings %q: %+v %v, want %d", code, page, err, want)
		}
	}
	page, err := s.ListProvenanceFindings(ctx, store.ProvenanceFilter{Filter: store.Filter{Limit: 10, Allowed: []string{"other"}}})
	if err != nil || page.Total != 0 {
		t.Errorf("a reader of another cluster sees %+v %v", page, err)
	}
	// Artifactory's build.name and build.number properties of the tag that holds the digest name its build.
	if err := s.ConfigureRegistries(ctx, []store.RegistryConfig{{Name: "art", Kind: "artifactory", URL: "https://art.example/artifactory",
		Host: "art.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordListing(ctx, "art", store.Listing{Tags: []store.ListedTag{{Repository: "docker-local/shop/web", Tag: "1", Digest: d,
		MediaType: "application/vnd.oci.image.manifest.v1+json"}}, Repositories: 1, CatalogComplete: true, Started: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutProperties(ctx, "art", []store.ItemProperties{{Repository: "docker-local/shop/web", Tag: "1",
		Properties: map[string][]string{"build.name": {"shop-web"}, "build.number": {"42"}, "other": {"x"}}}}); err != nil {
		t.Fatal(err)
	}
	if rec, _, err := s.GetProvenance(ctx, d); err != nil || rec.BuildName != "shop-web" || rec.BuildNumber != "42" {
		t.Errorf("Artifactory build: %q #%q, %v", rec.BuildName, rec.BuildNumber, err)
	}
	if _, ok, err := s.GetProvenance(ctx, digest('x')); ok || err != nil {
		t.Errorf("unchecked digest: %v %v", ok, err)
	}
}
