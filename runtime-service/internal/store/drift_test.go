package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestDriftIndexesAndFindings: a running digest whose containers executed something is due for an index until
// one is built; a failed build is due again at its retry; aggregates of an indexed image are due until judged
// under the current rules, and again when seen since; findings rank the image, show per process and list by
// scope, severity and verdict.
func TestDriftIndexesAndFindings(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now})
	prod, lab := enrol(t, s, "prod"), enrol(t, s, "lab")
	d, quiet := digest('d'), digest('q')
	for _, c := range []store.Cluster{prod, lab} {
		if _, err := s.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{
			container("a1", "app", d, records.SeverityNone, records.IntegrityVerified, t0),
			container("b1", "app", quiet, records.SeverityNone, records.IntegrityVerified, t0)}}); err != nil {
			t.Fatal(err)
		}
	}
	execs := func(c store.Cluster, at time.Time, paths ...string) {
		t.Helper()
		var ev []store.ExecEvent
		for _, p := range paths {
			ev = append(ev, store.ExecEvent{Time: at, ContainerID: "cid-a1-app", ImageDigest: d, PID: 1, ExecutablePath: p, SHA256: "ab"})
		}
		if _, err := s.Apply(ctx, c, "", &store.Batch{Execs: ev}); err != nil {
			t.Fatal(err)
		}
	}
	execs(prod, t0, "/bin/sh", "/tmp/x")
	execs(lab, t0, "/tmp/x")

	cands, err := s.DriftIndexCandidates(ctx, 10)
	if err != nil || len(cands) != 1 || cands[0].Digest != d || len(cands[0].Refs) != 1 {
		t.Fatalf("candidates (only the image that executed something): %+v %v", cands, err)
	}
	if err := s.FailDriftIndex(ctx, d, "registry down", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if cands, _ := s.DriftIndexCandidates(ctx, 10); len(cands) != 0 {
		t.Fatalf("failed, due before its retry: %+v", cands)
	}
	clk.Set(t0.Add(2 * time.Minute))
	if cands, _ := s.DriftIndexCandidates(ctx, 10); len(cands) != 1 || cands[0].Attempts != 1 {
		t.Fatalf("failed, past its retry: %+v", cands)
	}
	if rec, ok, err := s.GetDriftIndex(ctx, d); err != nil || !ok || rec.State != "failed" || rec.Error != "registry down" || rec.NextTryAt == nil {
		t.Fatalf("failed record: %+v %v %v", rec, ok, err)
	}
	if due, err := s.DriftDue(ctx, "fp1", 10); err != nil || len(due) != 0 {
		t.Fatalf("due without an index: %+v %v", due, err)
	}
	if err := s.PutDriftIndex(ctx, store.DriftIndex{Digest: d, Encoded: []byte("idx"), Files: 3, Truncated: true,
		Notes: []string{"truncated: limit MaxFiles (3) reached"}, Bytes: 42}); err != nil {
		t.Fatal(err)
	}
	if cands, _ := s.DriftIndexCandidates(ctx, 10); len(cands) != 0 {
		t.Fatalf("built, still a candidate: %+v", cands)
	}
	if b, tr, err := s.LoadDriftIndex(ctx, d); err != nil || string(b) != "idx" || !tr {
		t.Fatalf("load: %q %v %v", b, tr, err)
	}
	rec, ok, err := s.GetDriftIndex(ctx, d)
	if err != nil || !ok || rec.State != "built" || rec.Files != 3 || !rec.Truncated || rec.Bytes != 42 || rec.Error != "" || rec.NextTryAt != nil {
		t.Fatalf("built record: %+v %v %v", rec, ok, err)
	}

	due, err := s.DriftDue(ctx, "fp1", 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("due: %+v %v", due, err)
	}
	var fs []store.DriftFinding
	for _, a := range due {
		f := store.DriftFinding{DriftAggregate: a, Verdict: "in_image", Severity: records.SeverityNone, Fingerprint: "fp1",
			Repositories: []string{"docker.io/library/nginx"}}
		if a.Path == "/tmp/x" {
			f.Verdict, f.Severity = "added", records.SeverityHigh
		}
		fs = append(fs, f)
	}
	if err := s.PutDriftFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DriftDue(ctx, "fp1", 10); len(due) != 0 {
		t.Fatalf("judged, still due: %+v", due)
	}
	if due, _ := s.DriftDue(ctx, "fp2", 10); len(due) != 3 {
		t.Fatalf("other rules: %d due, want 3", len(due))
	}
	execs(prod, t0.Add(time.Hour), "/bin/sh")
	if due, _ := s.DriftDue(ctx, "fp1", 10); len(due) != 1 || due[0].Path != "/bin/sh" {
		t.Fatalf("seen again: %+v", due)
	}

	// The image ranks by its drift; a reader of one cluster sees that cluster's.
	img, err := s.GetImage(ctx, d)
	if err != nil || img.Drift.Findings != 2 || img.Drift.Severity != records.SeverityHigh {
		t.Fatalf("image drift: %+v %v", img.Drift, err)
	}
	page, err := s.ListImages(ctx, store.Filter{Limit: 10})
	if err != nil || len(page.Items) != 2 || page.Items[0].Digest != d || page.Items[0].Drift.Findings != 2 {
		t.Fatalf("ranking: %+v %v", page.Items, err)
	}
	for _, f := range []store.Filter{{Cluster: "prod", Limit: 10}, {Allowed: []string{"prod"}, Limit: 10}} {
		page, err := s.ListImages(ctx, f)
		if err != nil || len(page.Items) != 2 {
			t.Fatalf("%+v: %+v %v", f, page, err)
		}
		for _, i := range page.Items {
			if want := map[string]int{d: 1, quiet: 0}[i.Digest]; i.Drift.Findings != want {
				t.Errorf("%+v: %s has %d drift findings, want %d", f, i.Digest, i.Drift.Findings, want)
			}
		}
	}
	img, err = s.GetImageIn(ctx, d, []string{"lab"})
	if err != nil || img.Drift.Findings != 1 {
		t.Fatalf("lab reader: %+v %v", img.Drift, err)
	}
	procs := map[string]store.ProcessDrift{}
	for _, p := range img.Processes {
		procs[p.Path] = p.Drift
	}
	if len(procs) != 1 || procs["/tmp/x"].Verdict != "added" || procs["/tmp/x"].Severity != records.SeverityHigh {
		t.Fatalf("lab reader's processes: %+v", procs)
	}

	for f, want := range map[*store.DriftFilter]int{
		{Filter: store.Filter{Limit: 10}}:                                         2,
		{Filter: store.Filter{Limit: 10}, WithAllowed: true}:                      3,
		{Filter: store.Filter{Limit: 10, Cluster: "lab"}}:                         1,
		{Filter: store.Filter{Limit: 10, Allowed: []string{"other"}}}:             0,
		{Filter: store.Filter{Limit: 10, Severities: []string{"critical"}}}:       0,
		{Filter: store.Filter{Limit: 10, Digest: d}, Verdicts: []string{"added"}}: 2,
	} {
		page, err := s.ListDriftFindings(ctx, *f)
		if err != nil || page.Total != want {
			t.Errorf("findings %+v: total %d (%v), want %d", *f, page.Total, err, want)
		}
	}
	page2, err := s.ListDriftFindings(ctx, store.DriftFilter{Filter: store.Filter{Limit: 1}})
	if err != nil || len(page2.Items) != 1 || page2.Items[0].ClusterUID == "" || len(page2.Items[0].Repositories) != 1 {
		t.Fatalf("a finding: %+v %v", page2, err)
	}
}
