package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

func usages(t *testing.T, s *store.Store, f store.Filter) map[string]string {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = 500
	}
	page, err := s.ListArtifacts(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range page.Items {
		reg := "-"
		if a.Registry != nil {
			reg = *a.Registry
		}
		out[reg+" "+a.Ref] = a.Usage
	}
	return out
}

// TestListingAndUsage: a listing's tags are stored, deleted when a later complete listing lacks them, kept when
// their repository failed or the registry was down; their usage follows what runs and when it last ran.
func TestListingAndUsage(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now})
	if err := s.ConfigureRegistries(ctx, []store.RegistryConfig{{Name: "corp", Kind: "oci", URL: "https://reg.example", Host: "reg.example"}}); err != nil {
		t.Fatal(err)
	}
	c := enrol(t, s, "c1")
	web1, web2, old, never := digest('1'), digest('2'), digest('3'), digest('4')
	plat := digest('5')
	listing := store.Listing{Repositories: 3, CatalogComplete: true, Started: t0, Duration: time.Second, Tags: []store.ListedTag{
		{Repository: "acme/web", Tag: "1", Digest: web1},
		{Repository: "acme/web", Tag: "2", Digest: web2, Manifests: []string{plat}},
		{Repository: "acme/old", Tag: "v0", Digest: old},
		{Repository: "acme/never", Tag: "latest", Digest: never},
	}}
	if err := s.RecordListing(ctx, "corp", listing); err != nil {
		t.Fatal(err)
	}
	run := func(pod, ref, d string, at time.Time, deleted bool) {
		k := container(pod, "app", d, records.SeverityNone, records.IntegrityVerified, at)
		k.ImageName, k.ImageRef, k.Deleted = ref, ref, deleted
		if _, err := s.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{k}}); err != nil {
			t.Fatal(err)
		}
	}
	run("a1", "reg.example/acme/web:1", web1, t0, false)
	run("b1", "mirror.example/acme/web:2", plat, t0, false) // the index's platform manifest, through a mirror
	run("c1", "reg.example/acme/old:v0", old, t0.Add(-60*24*time.Hour), false)
	run("c1", "reg.example/acme/old:v0", old, t0.Add(-59*24*time.Hour), true)
	run("d1", "other.example/acme/other:1", digest('6'), t0, false) // stored in no configured registry
	run("e1", "reg.example/acme/web:1", digest('7'), t0.Add(-24*time.Hour), false)
	run("e1", "reg.example/acme/web:1", digest('7'), t0.Add(-23*time.Hour), true) // ran recently, not listed

	got := usages(t, s, store.Filter{})
	want := map[string]string{
		"corp reg.example/acme/web:1":          store.UsageInUse,
		"corp reg.example/acme/web:2":          store.UsageInUse,
		"corp reg.example/acme/old:v0":         store.UsageUnused,
		"corp reg.example/acme/never:latest":   store.UsageNeverSeen,
		"- other.example/acme/other:1":         store.UsageInUse,
		"- reg.example/acme/web:1":             store.UsageRecentlyUsed,
		"- mirror.example/acme/web:2":          "",
		"- reg.example/acme/old:v0":            "",
		"- docker.io/library/nginx:1.25":       "",
		"corp reg.example/acme/does-not-exist": "",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: usage %q; want %q (all: %v)", k, got[k], w, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d artifacts; want 6: %v", len(got), got)
	}
	// A cutoff before the old artifact's last run makes it recently used.
	if u := usages(t, s, store.Filter{Since: t0.Add(-90 * 24 * time.Hour), Usage: []string{store.UsageRecentlyUsed}}); len(u) != 2 || u["corp reg.example/acme/old:v0"] == "" {
		t.Errorf("since: %v", u)
	}
	if u := usages(t, s, store.Filter{Registry: "corp", Usage: []string{store.UsageUnused, store.UsageNeverSeen}}); len(u) != 2 {
		t.Errorf("cleanup candidates: %v", u)
	}
	page, err := s.ListArtifacts(ctx, store.Filter{Limit: 10, Registry: "corp", Usage: []string{store.UsageInUse}, Sort: store.SortRegistry})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Items[0].Tag != "1" || page.Items[0].Clusters != 1 || page.Items[0].Nodes != 1 ||
		len(page.Items[0].Where) != 1 || page.Items[0].Where[0].WorkloadName != "web-a" || page.Items[1].Where[0].Namespace != "ns-b" {
		t.Fatalf("in use: %+v", page.Items)
	}
	var n int
	if err := s.EachArtifact(ctx, store.Filter{}, func(*store.Artifact) error { n++; return nil }); err != nil || n != 6 {
		t.Fatalf("each: %d %v", n, err)
	}
	inUse, err := s.InUseArtifacts(ctx, "corp")
	if err != nil || len(inUse) != 2 || !slices.Equal(inUse[0].Clusters, []string{"name-c1"}) || inUse[0].Nodes != 1 {
		t.Fatalf("in use for feedback: %+v %v", inUse, err)
	}

	// The next listing: acme/web:2 gone, acme/old failed to list, acme/never left the catalog.
	clk.Set(t0.Add(time.Hour))
	next := store.Listing{Repositories: 2, CatalogComplete: true, Started: t0.Add(time.Hour), Failed: map[string]bool{"acme/old": true},
		Tags: []store.ListedTag{{Repository: "acme/web", Tag: "1", Digest: web1}}}
	if err := s.RecordListing(ctx, "corp", next); err != nil {
		t.Fatal(err)
	}
	got = usages(t, s, store.Filter{Registry: "corp"})
	if len(got) != 2 || got["corp reg.example/acme/web:1"] == "" || got["corp reg.example/acme/old:v0"] == "" {
		t.Fatalf("after deletions: %v", got)
	}
	regs, err := s.ListRegistries(ctx)
	if err != nil || len(regs) != 1 || regs[0].Status != store.RegistryPartial || regs[0].Artifacts != 2 || regs[0].InUse != 1 {
		t.Fatalf("registries: %+v %v", regs, err)
	}
	// The registry is down: the status says so and the listing stays.
	if err := s.RecordListing(ctx, "corp", store.Listing{Started: t0.Add(2 * time.Hour), Err: errors.New("connection refused")}); err != nil {
		t.Fatal(err)
	}
	regs, _ = s.ListRegistries(ctx)
	if regs[0].Status != store.RegistryError || regs[0].Error != "connection refused" || regs[0].Artifacts != 2 ||
		!regs[0].LastSuccessAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("down: %+v", regs[0])
	}
	// A deleted tag that comes back is listed again.
	if err := s.RecordListing(ctx, "corp", store.Listing{Started: t0.Add(3 * time.Hour), CatalogComplete: true, Tags: listing.Tags}); err != nil {
		t.Fatal(err)
	}
	if got = usages(t, s, store.Filter{Registry: "corp"}); len(got) != 4 {
		t.Fatalf("back: %v", got)
	}
}

// TestVerdictTimeline: an image verified, then found stale, has two timeline entries, newest first; the image
// detail carries the pull policy, the registry's digest for the tag and the pinned reference.
func TestVerdictTimeline(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{})
	c := enrol(t, s, "c1")
	d, fresh := digest('1'), digest('2')
	k := container("a1", "app", d, records.SeverityNone, records.IntegrityVerified, t0)
	k.ImageName, k.ImageRef, k.PullPolicy = "reg.example/acme/web:1", "reg.example/acme/web:1", "IfNotPresent"
	for i, step := range []struct{ verdict, severity string }{
		{records.IntegrityVerified, records.SeverityNone},
		{records.IntegrityVerified, records.SeverityNone}, // no change: no entry
		{records.IntegrityStaleTag, records.SeverityMedium},
	} {
		k.Integrity, k.Severity, k.Time = step.verdict, step.severity, t0.Add(time.Duration(i)*time.Minute)
		if step.verdict == records.IntegrityStaleTag {
			k.ExpectedDigest, k.Reasons = fresh, []string{"stale_tag: the tag moved"}
		}
		if _, err := s.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{k}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ConfigureRegistries(ctx, []store.RegistryConfig{{Name: "corp", Kind: "oci", URL: "https://reg.example", Host: "reg.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordListing(ctx, "corp", store.Listing{Started: t0, CatalogComplete: true,
		Tags: []store.ListedTag{{Repository: "acme/web", Tag: "1", Digest: fresh}}}); err != nil {
		t.Fatal(err)
	}
	img, err := s.GetImage(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	tl := img.Timeline
	if len(tl) != 2 || tl[0].NewVerdict != records.IntegrityStaleTag || *tl[0].OldVerdict != records.IntegrityVerified ||
		tl[0].NewSeverity != records.SeverityMedium || tl[1].OldVerdict != nil || tl[1].NewVerdict != records.IntegrityVerified ||
		!tl[0].Time.Equal(t0.Add(2*time.Minute)) || len(tl[0].Reasons) != 1 || tl[0].ClusterName != "name-c1" {
		t.Fatalf("timeline: %+v", tl)
	}
	r := img.Remediation
	if len(r) != 1 || r[0].Tag != "1" || !slices.Equal(r[0].PullPolicies, []string{"IfNotPresent"}) || r[0].Registry != "corp" ||
		r[0].RegistryDigest != fresh || r[0].PinnedRef != "reg.example/acme/web@"+fresh || r[0].RunningPinnedRef != "reg.example/acme/web@"+d {
		t.Fatalf("remediation: %+v", r)
	}
	if img.Placements[0].PullPolicy != "IfNotPresent" {
		t.Fatalf("placement pull policy: %+v", img.Placements[0])
	}
}

// TestVerdictTimelineMergesContainers: one entry per (cluster, digest, reference) carries the worst verdict and
// severity of its live containers and the sorted, distinct union of their reasons; a container without reasons
// adds none.
func TestVerdictTimelineMergesContainers(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{})
	c := enrol(t, s, "c1")
	d := digest('3')
	a := container("a1", "app", d, records.SeverityLow, records.IntegrityVerified, t0)
	a.Reasons = []string{"b: second", "a: first"}
	b := container("b1", "app", d, records.SeverityHigh, records.IntegrityStaleTag, t0.Add(time.Minute))
	b.Reasons = []string{"a: first", "c: third"}
	n := container("c1", "app", d, records.SeverityNone, records.IntegrityVerified, t0)
	n.Reasons = nil
	if _, err := s.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{a, b, n}}); err != nil {
		t.Fatal(err)
	}
	img, err := s.GetImage(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	tl := img.Timeline
	if len(tl) != 1 || tl[0].OldVerdict != nil || tl[0].NewVerdict != records.IntegrityStaleTag ||
		tl[0].NewSeverity != records.SeverityHigh || !slices.Equal(tl[0].Reasons, []string{"a: first", "b: second", "c: third"}) ||
		!tl[0].Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("timeline: %+v", tl)
	}
}

// TestSensorRatesAndStaleness: events/s comes from the last two health records; a sensor is stale after three
// of its intervals without a record, or after the configured threshold.
func TestSensorRatesAndStaleness(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now})
	c := enrol(t, s, "c1")
	b := &store.Batch{Nodes: []store.Node{{UID: "n1", Name: "node-1", Time: t0}, {UID: "n2", Name: "node-2", Time: t0}}}
	if _, err := s.Apply(ctx, c, "", b); err != nil {
		t.Fatal(err)
	}
	health := func(node string, seen, dropped int64, at time.Time) {
		b := &store.Batch{SensorHealth: []store.SensorHealth{{NodeName: node, EventsSeen: seen, EventsDropped: dropped,
			Kernel: "6.1", ProgramStatus: "exec:tp_btf/sched_process_exec,open:syscalls/sys_exit_openat",
			OpenHook: "tracepoint", HooksRefused: "lsm/file_open: refused; fexit/do_filp_open: refused", Time: at}}}
		if _, err := s.Apply(ctx, c, "", b); err != nil {
			t.Fatal(err)
		}
	}
	health("node-1", 1000, 10, t0)
	health("node-1", 4000, 40, t0.Add(30*time.Second))
	health("node-1", 3000, 30, t0.Add(20*time.Second)) // older: ignored
	health("node-2", 50, 0, t0)
	clk.Set(t0.Add(100 * time.Second))
	d, err := s.GetCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := d.NodeList[0].Sensor, d.NodeList[1].Sensor
	if n1.EventsPerSecond == nil || *n1.EventsPerSecond != 100 || *n1.DropsPerSecond != 1 || n1.Interval != 30*time.Second ||
		n1.Stale || len(n1.Programs()) != 2 || n2.EventsPerSecond != nil || n2.Stale || n1.OpenHook != "tracepoint" ||
		n1.HooksRefused != "lsm/file_open: refused; fexit/do_filp_open: refused" {
		t.Fatalf("at 100 s: %+v %+v", n1, n2)
	}
	clk.Set(t0.Add(121 * time.Second)) // node-1: 91 s > 3 × 30 s
	d, _ = s.GetCluster(ctx, "c1")
	if !d.NodeList[0].Sensor.Stale || d.NodeList[1].Sensor.Stale || d.SensorsStale != 1 || d.SensorsReporting != 1 {
		t.Fatalf("at 121 s: %+v", d)
	}
	s2 := storetest.Open(t, store.Options{Now: clk.Now, SensorStaleAfter: time.Minute})
	c2 := enrol(t, s2, "c2")
	if _, err := s2.Apply(ctx, c2, "", &store.Batch{Nodes: []store.Node{{UID: "n1", Name: "node-1", Time: t0}},
		SensorHealth: []store.SensorHealth{{NodeName: "node-1", Time: t0}}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s2.GetCluster(ctx, "c2"); !d.NodeList[0].Sensor.Stale || d.SensorsStale != 1 {
		t.Fatalf("configured threshold: %+v", d)
	}
}
