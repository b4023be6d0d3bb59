package store_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// fromContainers is the assessment computed straight from the live containers in a scope, as the scoped list
// did before the rollups: the oracle the maintained rollups must agree with.
const fromContainers = `
	WITH scoped AS (SELECT k.* FROM containers k WHERE k.deleted_at IS NULL AND k.running_digest <> '' AND %s),
	agg AS (
		SELECT running_digest AS digest,
			(array_agg(severity ORDER BY severity_rank DESC))[1] AS severity,
			(array_agg(integrity ORDER BY verdict_rank DESC))[1] AS verdict,
			coalesce(array_agg(DISTINCT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END)
				FILTER (WHERE image_ref <> '' OR image_name <> ''), '{}') AS refs,
			coalesce(array_agg(DISTINCT expected_digest) FILTER (WHERE expected_digest <> ''), '{}') AS expected,
			count(DISTINCT cluster_id)::int AS clusters,
			count(DISTINCT (cluster_id, namespace))::int AS namespaces,
			count(DISTINCT (cluster_id, workload_uid)) FILTER (WHERE workload_uid <> '')::int AS workloads,
			count(DISTINCT (cluster_id, pod_uid))::int AS pods,
			count(*)::int AS containers
		FROM scoped GROUP BY running_digest),
	rs AS (SELECT running_digest AS digest, array_agg(DISTINCT r ORDER BY r) AS reasons
		FROM scoped, unnest(reasons) r GROUP BY running_digest)
	SELECT agg.digest, severity, verdict, coalesce(rs.reasons, '{}'), refs, expected, clusters, namespaces,
		workloads, pods, containers
	FROM agg LEFT JOIN rs USING (digest) ORDER BY digest`

type assessment struct {
	Digest, Severity, Verdict                       string
	Reasons, Refs, Expected                         []string
	Clusters, Namespaces, Workloads, Pods, Contains int
}

func oracle(t *testing.T, s *store.Store, cond string, args ...any) map[string]assessment {
	t.Helper()
	rows, err := storetest.SQL(t, s).Query(context.Background(), fmt.Sprintf(fromContainers, cond), args...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]assessment{}
	var a assessment
	_, err = pgx.ForEachRow(rows, []any{&a.Digest, &a.Severity, &a.Verdict, &a.Reasons, &a.Refs, &a.Expected,
		&a.Clusters, &a.Namespaces, &a.Workloads, &a.Pods, &a.Contains}, func() error {
		out[a.Digest] = a
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func summaries(items []store.ImageSummary) map[string]assessment {
	out := map[string]assessment{}
	for _, i := range items {
		out[i.Digest] = assessment{i.Digest, i.Severity, i.Verdict, i.Reasons, i.Refs, i.ExpectedDigests,
			i.Clusters, i.Namespaces, i.Workloads, i.Pods, i.Containers}
	}
	return out
}

// TestScopeRollupsMatchContainers: random batches from three clusters add containers, change their digest,
// severity, namespace and findings, and delete containers and pods; after each batch the images assessment
// and every scoped list (each cluster, each namespace, both) equal what the live containers say.
func TestScopeRollupsMatchContainers(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{Now: func() time.Time { return t0 }})
	clusters := []store.Cluster{enrol(t, s, "a"), enrol(t, s, "b"), enrol(t, s, "c")}
	rng := rand.New(rand.NewPCG(1, 2))
	severities := []string{"", records.SeverityNone, records.SeverityLow, records.SeverityMedium, records.SeverityHigh, records.SeverityCritical}
	verdicts := []string{"", records.IntegrityVerified, records.IntegrityUnverified, records.IntegrityStaleTag, records.IntegrityArtifactMissing, records.IntegrityDigestMismatch}
	namespaces := []string{"ns-0", "ns-1", "ns-2", "ns-3"}
	at := t0
	for round := 0; round < 40; round++ {
		c := clusters[rng.IntN(len(clusters))]
		var b store.Batch
		for i := 0; i < 1+rng.IntN(30); i++ {
			at = at.Add(time.Second)
			pod := fmt.Sprintf("pod-%d", rng.IntN(25))
			if rng.IntN(12) == 0 {
				b.Pods = append(b.Pods, store.Pod{UID: pod, Name: pod, Namespace: "ns-0", Time: at, Deleted: true})
				continue
			}
			sev := rng.IntN(len(severities))
			k := store.Container{
				PodUID: pod, Name: fmt.Sprintf("c%d", rng.IntN(2)), ContainerID: "cid-" + pod,
				Namespace: namespaces[rng.IntN(len(namespaces))], PodName: pod,
				WorkloadUID: fmt.Sprintf("wl-%d", rng.IntN(6)), WorkloadKind: "Deployment",
				ImageName: fmt.Sprintf("app%d:1", rng.IntN(3)), RunningDigest: digest("0123456"[rng.IntN(7)]),
				Integrity: verdicts[sev], Severity: severities[sev], Time: at, Deleted: rng.IntN(10) == 0,
			}
			if rng.IntN(2) == 0 {
				k.ImageRef = "registry.example/" + k.ImageName
				k.ExpectedDigest = digest("89"[rng.IntN(2)])
			}
			for r := 0; r < rng.IntN(3); r++ {
				k.Reasons = append(k.Reasons, fmt.Sprintf("reason-%d", rng.IntN(5)))
			}
			if rng.IntN(8) == 0 {
				k.WorkloadUID = ""
			}
			b.Containers = append(b.Containers, k)
		}
		if _, err := s.Apply(ctx, c, "", &b); err != nil {
			t.Fatal(err)
		}

		// The maintained images rows: every digest ever seen, live or not.
		want := oracle(t, s, "true")
		rows, err := storetest.SQL(t, s).Query(ctx, `SELECT digest, severity, verdict, reasons, refs, expected_digests, clusters,
			namespaces, workloads, pods, containers FROM images`)
		if err != nil {
			t.Fatal(err)
		}
		var a assessment
		_, err = pgx.ForEachRow(rows, []any{&a.Digest, &a.Severity, &a.Verdict, &a.Reasons, &a.Refs, &a.Expected,
			&a.Clusters, &a.Namespaces, &a.Workloads, &a.Pods, &a.Contains}, func() error {
			w, ok := want[a.Digest]
			if !ok { // no live container: an empty assessment
				w = assessment{Digest: a.Digest, Reasons: []string{}, Refs: []string{}, Expected: []string{}}
			}
			if !reflect.DeepEqual(a, w) {
				return fmt.Errorf("round %d, images row %+v\nfrom containers  %+v", round, a, w)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		scopes := []store.Filter{}
		for _, cl := range clusters {
			scopes = append(scopes, store.Filter{Cluster: cl.UID})
			for _, ns := range namespaces[:2] {
				scopes = append(scopes, store.Filter{Cluster: cl.Name, Namespace: ns})
			}
		}
		for _, ns := range namespaces {
			scopes = append(scopes, store.Filter{Namespace: ns})
		}
		// Readers restricted to some clusters (a restricted API token or user), alone and with filters.
		two := []string{clusters[0].Name, clusters[2].UID}
		scopes = append(scopes, store.Filter{Allowed: two}, store.Filter{Allowed: []string{clusters[1].UID}},
			store.Filter{Allowed: two, Namespace: "ns-1"}, store.Filter{Allowed: two, Cluster: clusters[1].UID},
			store.Filter{Allowed: []string{}}, store.Filter{Allowed: two, Sort: store.SortLastSeen})
		for _, f := range scopes {
			cond, args := "true", []any{}
			if f.Cluster != "" {
				cond += " AND k.cluster_id = (SELECT id FROM clusters WHERE uid = $1 OR name = $1)"
				args = append(args, f.Cluster)
			}
			if f.Namespace != "" {
				args = append(args, f.Namespace)
				cond += fmt.Sprintf(" AND k.namespace = $%d", len(args))
			}
			if f.Allowed != nil {
				args = append(args, f.Allowed)
				cond += fmt.Sprintf(" AND k.cluster_id IN (SELECT id FROM clusters WHERE uid = ANY($%d) OR name = ANY($%d))", len(args), len(args))
			}
			want := oracle(t, s, cond, args...)
			f.Limit = 100
			page, err := s.ListImages(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if got := summaries(page.Items); page.Total != len(want) || !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, %+v: list (total %d)\n%+v\nfrom containers\n%+v", round, f, page.Total, got, want)
			}
			if f.Sort == "" && !slices.IsSortedFunc(page.Items, byRisk) {
				t.Fatalf("round %d, %+v: not ranked: %+v", round, f, page.Items)
			}
			// The same scope, worst two severities only, one page of 3.
			f.Severities, f.Limit = []string{records.SeverityCritical, records.SeverityHigh}, 3
			page, err = s.ListImages(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, a := range want {
				if a.Severity == records.SeverityCritical || a.Severity == records.SeverityHigh {
					n++
				}
			}
			if page.Total != n || len(page.Items) != min(n, 3) || (f.Sort == "" && !slices.IsSortedFunc(page.Items, byRisk)) {
				t.Fatalf("round %d, %+v: %d of %d (want %d), %+v", round, f, len(page.Items), page.Total, n, page.Items)
			}
			for _, i := range page.Items {
				if w := want[i.Digest]; !reflect.DeepEqual(summaries([]store.ImageSummary{i})[i.Digest], w) || (w.Severity != records.SeverityCritical && w.Severity != records.SeverityHigh) {
					t.Fatalf("round %d, %+v: %+v; from containers %+v", round, f, i, w)
				}
			}
		}
	}
}

// byRisk is the default ranking: severity, then blast radius, then digest.
func byRisk(a, b store.ImageSummary) int {
	return cmp.Or(-cmp.Compare(store.SeverityRank(a.Severity), store.SeverityRank(b.Severity)),
		-cmp.Compare(a.Clusters, b.Clusters), -cmp.Compare(a.Namespaces, b.Namespaces),
		-cmp.Compare(a.Workloads, b.Workloads), -cmp.Compare(a.Pods, b.Pods), cmp.Compare(a.Digest, b.Digest))
}

// TestImagesSeenOnlyThroughEvents: an exec event naming a digest no container record named gives the image an
// entry, listed while its events come; a container record later fills it in without losing its first sighting,
// and later events never overwrite the assessment.
func TestImagesSeenOnlyThroughEvents(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now})
	c := enrol(t, s, "a")
	img := digest('e')
	exec := func(at time.Time) *store.Batch {
		return &store.Batch{Execs: []store.ExecEvent{{Time: at, ContainerID: "cid-x", ImageDigest: img, ExecutablePath: "/bin/sh"}}}
	}
	if _, err := s.Apply(ctx, c, "", exec(t0.Add(-10*time.Minute))); err != nil {
		t.Fatal(err)
	}
	page, err := s.ListImages(ctx, store.Filter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 1 || page.Items[0].Digest != img || !page.Items[0].EventsOnly || page.Items[0].Containers != 0 {
		t.Fatalf("events-only image not listed: %+v", page)
	}
	if d, err := s.GetImage(ctx, img); err != nil || d.ProcessesTotal != 1 {
		t.Fatalf("events-only image detail: %+v, %v", d, err)
	}
	if page, _ := s.ListImages(ctx, store.Filter{Cluster: "a", Limit: 10}); page.Total != 0 {
		t.Fatalf("an events-only image has no scope, yet the cluster list shows it: %+v", page)
	}

	// Events a few seconds apart do not touch the row (no lock for every event batch); a minute on, they do.
	if _, err := s.Apply(ctx, c, "", exec(t0.Add(-10*time.Minute+time.Second))); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.GetImage(ctx, img); !d.LastSeen.Equal(t0.Add(-10 * time.Minute)) {
		t.Fatalf("last_seen moved for an event 1 s later: %v", d.LastSeen)
	}
	if _, err := s.Apply(ctx, c, "", exec(t0.Add(-5*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.GetImage(ctx, img); !d.LastSeen.Equal(t0.Add(-5*time.Minute)) || !d.FirstSeen.Equal(t0.Add(-10*time.Minute)) {
		t.Fatalf("first/last seen %v / %v", d.FirstSeen, d.LastSeen)
	}

	// No events for longer than EventImagesListedFor: no longer listed, still there.
	clk.Set(t0.Add(store.EventImagesListedFor))
	if page, _ := s.ListImages(ctx, store.Filter{Limit: 10}); page.Total != 0 {
		t.Fatalf("an events-only image is listed an hour after its last event: %+v", page)
	}
	clk.Set(t0)

	// A container record names it: the state fills the entry in, the first sighting stays.
	k := container("1a", "app", img, records.SeverityHigh, records.IntegrityStaleTag, t0)
	if _, err := s.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{k}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetImage(ctx, img)
	if err != nil || d.EventsOnly || d.Severity != records.SeverityHigh || d.Containers != 1 || !d.FirstSeen.Equal(t0.Add(-10*time.Minute)) {
		t.Fatalf("after the container record: %+v, %v", d.ImageSummary, err)
	}
	// Later events leave the assessment alone, and once the container is gone the image is not listed.
	if _, err := s.Apply(ctx, c, "", exec(t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.GetImage(ctx, img); d.EventsOnly || d.Severity != records.SeverityHigh || !d.LastSeen.Equal(t0) {
		t.Fatalf("an event overwrote the state's entry: %+v", d.ImageSummary)
	}
	k.Deleted, k.Time = true, t0.Add(time.Minute)
	if _, err := s.Apply(ctx, c, "", &store.Batch{Containers: []store.Container{k}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, c, "", exec(t0.Add(2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if page, _ := s.ListImages(ctx, store.Filter{Limit: 10}); page.Total != 0 {
		t.Fatalf("an image whose containers are gone is listed again by an event: %+v", page)
	}
}

// TestImageScopesMigrationBackfillsExistingContainers: 003_image_scopes.sql, applied to a store that already
// holds containers, fills the rollups as ingest would have.
func TestImageScopesMigrationBackfillsExistingContainers(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	if err := store.MigrateTo(ctx, dsn, 2); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Two clusters; containers over three namespaces, some deleted, some without a digest, one pod's
	// containers in two namespaces (bad data must not double-count the cluster's pods).
	if _, err := conn.Exec(ctx, `
		INSERT INTO clusters (uid, name) VALUES ('a', 'a'), ('b', 'b');
		INSERT INTO containers
		SELECT 1 + i % 2, 'pod-' || (i / 3), 'c' || (i % 3), 'cid-' || i, 'ns-' || (i % 3), 'pod-' || (i / 3), 'node',
			'wl-' || (i % 4), 'Deployment', 'wl', 'app:' || (i % 2), CASE WHEN i % 5 = 0 THEN '' ELSE 'reg/app:' || (i % 2) END,
			'reg', NULL, NULL, CASE WHEN i % 11 = 0 THEN '' ELSE 'sha256:' || repeat(((i % 3)::text), 64) END, '',
			(ARRAY['verified', 'stale_tag', 'digest_mismatch'])[1 + i % 3], 1 + i % 3, '',
			(ARRAY['none', 'medium', 'critical'])[1 + i % 3], 1 + i % 3, ARRAY['reason-' || (i % 4)],
			now(), now(), CASE WHEN i % 7 = 0 THEN now() END
		FROM generate_series(0, 199) i;
		INSERT INTO images (digest, first_seen, last_seen)
		SELECT DISTINCT running_digest, now(), now() FROM containers WHERE running_digest <> ''`); err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateTo(ctx, dsn, 3); err != nil {
		t.Fatal(err)
	}
	s := storetest.OpenAt(t, dsn, store.Options{})
	for _, f := range []store.Filter{{Cluster: "a"}, {Cluster: "b"}, {Namespace: "ns-1"}, {Cluster: "b", Namespace: "ns-2"}} {
		cond, args := "true", []any{}
		if f.Cluster != "" {
			cond += " AND k.cluster_id = (SELECT id FROM clusters WHERE uid = $1)"
			args = append(args, f.Cluster)
		}
		if f.Namespace != "" {
			args = append(args, f.Namespace)
			cond += fmt.Sprintf(" AND k.namespace = $%d", len(args))
		}
		want := oracle(t, s, cond, args...)
		f.Limit = 100
		page, err := s.ListImages(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if got := summaries(page.Items); len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%+v after the migration:\n%+v\nfrom containers\n%+v", f, got, want)
		}
	}
}
