package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clock is a settable clock for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// enrol enrols cluster uid, named "name-"+uid.
func enrol(t *testing.T, s *store.Store, uid string) store.Cluster {
	t.Helper()
	return storetest.Enrol(t, s, uid, "name-"+uid)
}

func digest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

func container(pod, name, digestOf, severity, verdict string, at time.Time) store.Container {
	return store.Container{
		PodUID: pod, Name: name, ContainerID: "cid-" + pod + "-" + name, Namespace: "ns-" + pod[:1],
		PodName: "pod-" + pod, NodeName: "node-1", WorkloadUID: "wl-" + pod[:1], WorkloadKind: "Deployment",
		WorkloadName: "web-" + pod[:1], ImageName: "nginx:1.25", ImageRef: "docker.io/library/nginx:1.25",
		RegistryHost: "docker.io", RunningDigest: digestOf, Integrity: verdict, Severity: severity,
		Reasons: []string{records.ReasonUntrustedRegistry + ": docker.io"}, Time: at,
	}
}

func TestMigrationsApplyOnceAndAgain(t *testing.T) {
	s := storetest.Open(t, store.Options{})
	v, err := s.SchemaVersion(context.Background())
	if err != nil || v < 1 {
		t.Fatalf("schema version %d, %v", v, err)
	}
}

func TestEnrolSpendsTheJoinKeyAndTokensIdentifyTheCluster(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{})
	if err := s.SeedJoinKeys(ctx, []string{"k1", "k2"}); err != nil {
		t.Fatal(err)
	}
	tok, c, err := s.Enrol(ctx, "k1", "uid-a", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, store.TokenPrefix) {
		t.Fatalf("token %q lacks the prefix", tok)
	}
	if _, _, err := s.Enrol(ctx, "k1", "uid-b", "other"); !errors.Is(err, store.ErrJoinKeyInvalid) {
		t.Fatalf("second use of a join key: %v", err)
	}
	if _, _, err := s.Enrol(ctx, "never-seeded", "uid-b", "other"); !errors.Is(err, store.ErrJoinKeyInvalid) {
		t.Fatalf("unknown join key: %v", err)
	}
	// Seeding a spent key again does not re-arm it.
	if err := s.SeedJoinKeys(ctx, []string{"k1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Enrol(ctx, "k1", "uid-b", "other"); !errors.Is(err, store.ErrJoinKeyInvalid) {
		t.Fatalf("re-seeded spent key: %v", err)
	}
	got, err := s.ClusterByToken(ctx, tok)
	if err != nil || got != c {
		t.Fatalf("ClusterByToken = %+v, %v; want %+v", got, err, c)
	}
	// Enrolling the same cluster again replaces its token.
	tok2, c2, err := s.Enrol(ctx, "k2", "uid-a", "prod")
	if err != nil || c2.ID != c.ID {
		t.Fatalf("re-enrol: %+v %v", c2, err)
	}
	if _, err := s.ClusterByToken(ctx, tok); !errors.Is(err, store.ErrTokenUnknown) {
		t.Fatalf("old token still works: %v", err)
	}
	if _, err := s.ClusterByToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := storetest.SQL(t, s).QueryRow(ctx, "SELECT token_hash FROM collectors WHERE id = $1", c2.Collector).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), tok2) || len(stored) != 32 {
		t.Fatalf("token stored as %d bytes; want its SHA-256 only", len(stored))
	}
}

// TestApplyStateRanksImagesAndReplayChangesNothing ingests every state record kind and checks the ranked list,
// the detail view, out-of-order protection and idempotent replay.
func TestApplyStateRanksImagesAndReplayChangesNothing(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now})
	a, b := enrol(t, s, "a"), enrol(t, s, "b")
	bad, good := digest('b'), digest('g')

	batchA := &store.Batch{
		Nodes:     []store.Node{{UID: "n1", Name: "node-1", Time: t0}},
		Workloads: []store.Workload{{UID: "wl-1", Kind: "Deployment", Name: "web-1", Namespace: "ns-1", Time: t0}},
		Pods:      []store.Pod{{UID: "1a", Name: "pod-1a", Namespace: "ns-1", NodeName: "node-1", WorkloadUID: "wl-1", WorkloadKind: "Deployment", WorkloadName: "web-1", Time: t0}},
		Containers: []store.Container{
			container("1a", "app", bad, records.SeverityCritical, records.IntegrityDigestMismatch, t0),
			container("1b", "app", bad, records.SeverityCritical, records.IntegrityDigestMismatch, t0),
			container("2a", "app", good, records.SeverityNone, records.IntegrityVerified, t0),
		},
		SensorHealth: []store.SensorHealth{{NodeName: "node-1", EventsSeen: 10, EventsDropped: 1, Kernel: "6.1", ProgramStatus: "exec,open", Time: t0}},
	}
	res, err := s.Apply(ctx, a, "batch-1", batchA)
	if err != nil || res.Duplicate {
		t.Fatalf("apply: %+v %v", res, err)
	}
	// The good image runs in a second cluster too: wider blast radius, but lower severity ranks it below.
	if _, err := s.Apply(ctx, b, "batch-1", &store.Batch{Containers: []store.Container{
		container("3a", "app", good, records.SeverityNone, records.IntegrityVerified, t0),
	}}); err != nil {
		t.Fatal(err)
	}
	page, err := s.ListImages(ctx, store.Filter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 2 || page.Items[0].Digest != bad || page.Items[1].Digest != good {
		t.Fatalf("ranking: %+v", page)
	}
	top := page.Items[0]
	if top.Severity != records.SeverityCritical || top.Verdict != records.IntegrityDigestMismatch ||
		top.Clusters != 1 || top.Namespaces != 1 || top.Workloads != 1 || top.Pods != 2 {
		t.Fatalf("bad image summary: %+v", top)
	}
	if g := page.Items[1]; g.Clusters != 2 || g.Namespaces != 2 || g.Pods != 2 {
		t.Fatalf("good image blast radius: %+v", g)
	}

	// Replaying batch-1 from cluster a changes nothing (a fresh key would double nothing here either, but the
	// replay must not even touch last_seen).
	clk.Set(t0.Add(time.Hour))
	replay := *batchA
	replay.Containers = slices.Clone(batchA.Containers)
	replay.Containers[0].Time = t0.Add(time.Hour)
	res, err = s.Apply(ctx, a, "batch-1", &replay)
	if err != nil || !res.Duplicate {
		t.Fatalf("replay: %+v %v", res, err)
	}
	d, err := s.GetImage(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if !d.LastSeen.Equal(t0) {
		t.Fatalf("replay moved last_seen to %v", d.LastSeen)
	}
	if d.PlacementsTotal != 2 || d.Placements[0].ClusterUID != "a" || d.Placements[0].ExpectedDigest != "" {
		t.Fatalf("placements: %+v", d.Placements)
	}

	// An older record arriving late does not overwrite the newer state.
	older := container("1a", "app", good, records.SeverityNone, records.IntegrityVerified, t0.Add(-time.Minute))
	if _, err := s.Apply(ctx, a, "", &store.Batch{Containers: []store.Container{older}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.GetImage(ctx, bad); d.Pods != 2 {
		t.Fatalf("a late, older record changed the image: pods=%d", d.Pods)
	}

	// A container that now runs another digest leaves its old image's blast radius.
	moved := container("1a", "app", good, records.SeverityNone, records.IntegrityVerified, t0.Add(time.Minute))
	if _, err := s.Apply(ctx, a, "", &store.Batch{Containers: []store.Container{moved}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.GetImage(ctx, bad); d.Pods != 1 {
		t.Fatalf("old digest still counts the moved container: pods=%d", d.Pods)
	}

	// A deleted pod takes its containers with it.
	if _, err := s.Apply(ctx, a, "", &store.Batch{Pods: []store.Pod{{UID: "1b", Name: "pod-1b", Namespace: "ns-1", Time: t0.Add(2 * time.Minute), Deleted: true}}}); err != nil {
		t.Fatal(err)
	}
	page, _ = s.ListImages(ctx, store.Filter{Limit: 10})
	if page.Total != 1 || page.Items[0].Digest != good {
		t.Fatalf("after the pod's deletion the bad image still runs: %+v", page.Items)
	}

	cl, err := s.GetCluster(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if cl.Nodes != 1 || len(cl.NodeList) != 1 || cl.NodeList[0].Sensor == nil || cl.NodeList[0].Sensor.EventsDropped != 1 {
		t.Fatalf("cluster detail: %+v", cl)
	}
	if _, err := s.GetCluster(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown cluster: %v", err)
	}
}

func TestEventsAreAggregatedPerImageAndKeptRaw(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{Now: func() time.Time { return t0 }})
	c := enrol(t, s, "a")
	dg := digest('e')
	if _, err := s.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{container("1a", "app", dg, "", "", t0)}}); err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ab", 32)
	exec := func(at time.Time, cid string) store.ExecEvent {
		return store.ExecEvent{Time: at, ContainerID: cid, PID: 7, ParentPID: 1, ExecutablePath: "/bin/sh", SHA256: sha, CommandArgs: []string{"sh", "-c", "id"}}
	}
	b := &store.Batch{
		Execs: []store.ExecEvent{exec(t0, "cid-1a-app"), exec(t0.Add(time.Second), "cid-1a-app"), exec(t0, "unknown-container")},
		FileOpens: []store.FileOpenEvent{
			{Time: t0, ContainerID: "cid-1a-app", PID: 7, ExecutablePath: "/bin/sh", FilePath: "/etc/passwd"},
			{Time: t0.Add(-30 * 24 * time.Hour), ImageDigest: dg, ContainerID: "x", FilePath: "/etc/passwd"}, // too old for raw
		},
	}
	res, err := s.Apply(ctx, c, "ev-1", b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unattributed != 1 || res.RawSkipped != 1 {
		t.Fatalf("result %+v; want 1 unattributed, 1 too old for raw", res)
	}
	d, err := s.GetImage(ctx, dg)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Processes) != 1 || d.Processes[0].Count != 2 || d.Processes[0].SHA256 != sha ||
		!d.Processes[0].FirstSeen.Equal(t0) || !d.Processes[0].LastSeen.Equal(t0.Add(time.Second)) ||
		!slices.Equal(d.Processes[0].Containers, []string{"cid-1a-app"}) {
		t.Fatalf("processes: %+v", d.Processes)
	}
	if len(d.Files) != 1 || d.Files[0].Count != 2 || !slices.Equal(d.Files[0].Containers, []string{"cid-1a-app", "x"}) {
		t.Fatalf("files: %+v", d.Files)
	}
	var raw int
	if err := storetest.SQL(t, s).QueryRow(ctx, "SELECT (SELECT count(*) FROM exec_events) + (SELECT count(*) FROM file_events)").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != 4 {
		t.Fatalf("raw events: %d; want 3 execs + 1 file open", raw)
	}
	// Replay: the aggregates' counts do not double.
	if res, err := s.Apply(ctx, c, "ev-1", b); err != nil || !res.Duplicate {
		t.Fatalf("replay: %+v %v", res, err)
	}
	if d, _ := s.GetImage(ctx, dg); d.Processes[0].Count != 2 {
		t.Fatalf("replay doubled the count: %d", d.Processes[0].Count)
	}
}

// TestRetentionDropsWholePartitions: with the clock moved past the retention, the old days' partitions are
// dropped (and their rows with them) while recent ones stay.
func TestRetentionDropsWholePartitions(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now, Retention: 3 * 24 * time.Hour})
	c := enrol(t, s, "a")
	var execs []store.ExecEvent
	for d := 0; d < 3; d++ {
		execs = append(execs, store.ExecEvent{Time: t0.Add(-time.Duration(d) * 24 * time.Hour), ImageDigest: digest('r'), ExecutablePath: "/bin/true"})
	}
	if _, err := s.Apply(ctx, c, "", &store.Batch{Execs: execs}); err != nil {
		t.Fatal(err)
	}
	parts, err := s.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(parts, "exec_events_p20260308") || !slices.Contains(parts, "exec_events_p20260311") {
		t.Fatalf("partitions %v; want the retention window (from 2026-03-07) to tomorrow", parts)
	}
	clk.Set(t0.Add(2 * 24 * time.Hour)) // 2026-03-12 12:00; cutoff 2026-03-09 12:00
	dropped, err := s.DropExpiredPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dropped, "exec_events_p20260308") || slices.Contains(dropped, "exec_events_p20260309") {
		t.Fatalf("dropped %v; want the days that ended before 2026-03-09 12:00", dropped)
	}
	var n int
	if err := storetest.SQL(t, s).QueryRow(ctx, "SELECT count(*) FROM exec_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d raw events left; want the 2 from 03-09 and 03-10", n)
	}
	if err := s.MaintainPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	parts, _ = s.Partitions(ctx)
	if !slices.Contains(parts, "file_events_p20260313") {
		t.Fatalf("maintenance did not create tomorrow's partition: %v", parts)
	}
	// The aggregates outlive the raw events; the image, seen only through its events, has a (minimal) entry.
	if d, err := s.GetImage(ctx, digest('r')); err != nil || !d.EventsOnly || d.ProcessesTotal != 1 || d.Processes[0].Count != 3 {
		t.Fatalf("events-only image: %+v, %v", d, err)
	}
}

func TestListFiltersAndSortOrders(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{Now: func() time.Time { return t0 }})
	a, b := enrol(t, s, "a"), enrol(t, s, "b")
	pay := container("1a", "app", digest('1'), records.SeverityHigh, records.IntegrityArtifactMissing, t0)
	pay.ImageName, pay.ImageRef, pay.RegistryHost = "ghcr.io/acme/pay_ments:2.1", "ghcr.io/acme/pay_ments:2.1", "ghcr.io"
	if _, err := s.Apply(ctx, a, "", &store.Batch{
		Workloads: []store.Workload{{UID: "wl-1", Kind: "Deployment", Name: "web-1", Namespace: "ns-1", Time: t0}, {UID: "wl-2", Kind: "Deployment", Name: "web-2", Namespace: "ns-2", Time: t0}},
		Containers: []store.Container{
			pay,
			container("2a", "app", digest('2'), records.SeverityLow, records.IntegrityUnverified, t0),
		},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, b, "", &store.Batch{Containers: []store.Container{
		container("1b", "app", digest('2'), records.SeverityLow, records.IntegrityUnverified, t0),
	}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		f    store.Filter
		want []string
	}{
		{store.Filter{Limit: 10}, []string{digest('1'), digest('2')}},
		{store.Filter{Limit: 10, Sort: store.SortDigest}, []string{digest('1'), digest('2')}},
		{store.Filter{Limit: 1, Offset: 1}, []string{digest('2')}},
		{store.Filter{Limit: 10, Severities: []string{records.SeverityLow}}, []string{digest('2')}},
		{store.Filter{Limit: 10, Verdicts: []string{records.IntegrityArtifactMissing}}, []string{digest('1')}},
		{store.Filter{Limit: 10, Cluster: "b"}, []string{digest('2')}},
		{store.Filter{Limit: 10, Cluster: "name-a", Namespace: "ns-2"}, []string{digest('2')}},
		{store.Filter{Limit: 10, Namespace: "ns-9"}, nil},
		// Search: a reference's substring, case-insensitive, % and _ literal; or a digest's prefix; in every scope.
		{store.Filter{Limit: 10, Search: "ACME/PAY_m"}, []string{digest('1')}},
		{store.Filter{Limit: 10, Search: "acme/pay%"}, nil},
		{store.Filter{Limit: 10, Search: "acme/payXments"}, nil},
		{store.Filter{Limit: 10, Search: "nginx"}, []string{digest('2')}},
		{store.Filter{Limit: 10, Search: digest('2')[:12]}, []string{digest('2')}},
		{store.Filter{Limit: 10, Search: "nginx", Cluster: "b"}, []string{digest('2')}},
		{store.Filter{Limit: 10, Search: "acme", Cluster: "b"}, nil},
		{store.Filter{Limit: 10, Search: "acme", Cluster: "name-a", Namespace: "ns-1"}, []string{digest('1')}},
		{store.Filter{Limit: 10, Search: "acme", Namespace: "ns-1", Sort: store.SortLastSeen}, []string{digest('1')}},
	}
	for _, c := range cases {
		page, err := s.ListImages(ctx, c.f)
		if err != nil {
			t.Fatalf("%+v: %v", c.f, err)
		}
		var got []string
		for _, i := range page.Items {
			got = append(got, i.Digest)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("ListImages(%+v) = %v; want %v", c.f, got, c.want)
		}
	}
	// Scoped to cluster b, image 2 runs in one cluster; unscoped, in two.
	page, _ := s.ListImages(ctx, store.Filter{Limit: 10, Cluster: "b"})
	if page.Items[0].Clusters != 1 || len(page.Items[0].Reasons) != 1 {
		t.Fatalf("scoped summary: %+v", page.Items[0])
	}
	wl, err := s.ListWorkloads(ctx, store.Filter{Limit: 10, Cluster: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if wl.Total != 2 || wl.Items[0].UID != "wl-1" || wl.Items[0].Severity != records.SeverityHigh || wl.Items[0].Pods != 1 {
		t.Fatalf("workloads: %+v", wl)
	}
	arts, err := s.ListArtifacts(ctx, store.Filter{Limit: 10, Cluster: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if arts.Total != 1 || arts.Items[0].Digest != digest('2') || arts.Items[0].Ref != "docker.io/library/nginx:1.25" {
		t.Fatalf("artifacts: %+v", arts)
	}
	cls, err := s.ListClusters(ctx, store.Filter{Limit: 10})
	if err != nil || cls.Total != 2 || cls.Items[0].UID != "a" {
		t.Fatalf("clusters: %+v %v", cls, err)
	}
	if _, err := s.ListImages(ctx, store.Filter{Sort: "bogus"}); !errors.Is(err, store.ErrBadSort) {
		t.Fatalf("bad sort: %v", err)
	}
}
