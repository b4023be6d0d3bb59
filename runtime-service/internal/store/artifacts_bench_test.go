package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// BenchmarkArtifacts: the artifacts query at 10,000 listed tags and 10,000 running images. The registry lists
// 10,000 tags (500 repositories × 20 tags); 8,000 of their digests run (one container each, 2 clusters, 50
// namespaces), 1,000 ran 60 days ago, 1,000 never ran; 2,000 more images run from an unlisted registry. Seeded
// through store.Apply and store.RecordListing, as ingest and a refresh would.
func BenchmarkArtifacts(b *testing.B) {
	ctx := context.Background()
	s := seedArtifacts(b)
	for _, bc := range []struct {
		name string
		f    store.Filter
		want int
	}{
		{"list", store.Filter{Limit: 50}, 12_000},
		{"cleanup", store.Filter{Limit: 50, Registry: "corp", Usage: []string{store.UsageUnused, store.UsageNeverSeen}, Sort: store.SortOldest}, 2_000},
		{"cluster", store.Filter{Limit: 50, Cluster: "c1", Usage: []string{store.UsageInUse}}, 5_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				page, err := s.ListArtifacts(ctx, bc.f)
				if err != nil {
					b.Fatal(err)
				}
				if page.Total != bc.want || len(page.Items) != 50 {
					b.Fatalf("total %d, %d items; want %d", page.Total, len(page.Items), bc.want)
				}
			}
		})
	}
	b.Run("registries", func(b *testing.B) {
		for b.Loop() {
			regs, err := s.ListRegistries(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(regs) != 1 || regs[0].Artifacts != 10_000 || regs[0].InUse != 8_000 {
				b.Fatalf("%+v", regs)
			}
		}
	})
	b.Run("csv_all", func(b *testing.B) {
		for b.Loop() {
			n := 0
			if err := s.EachArtifact(ctx, store.Filter{}, func(*store.Artifact) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
			if n != 12_000 {
				b.Fatalf("%d rows", n)
			}
		}
	})
}

// seedArtifacts builds the store BenchmarkArtifacts measures.
func seedArtifacts(tb testing.TB) *store.Store {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	s := storetest.Open(tb, store.Options{})
	if err := s.ConfigureRegistries(ctx, []store.RegistryConfig{{Name: "corp", Kind: "oci", URL: "https://reg.example", Host: "reg.example"}}); err != nil {
		tb.Fatal(err)
	}
	var clusters []store.Cluster
	for _, uid := range []string{"c1", "c2"} {
		if err := s.SeedJoinKeys(ctx, []string{"k-" + uid}); err != nil {
			tb.Fatal(err)
		}
		_, c, err := s.Enrol(ctx, "k-"+uid, uid, uid)
		if err != nil {
			tb.Fatal(err)
		}
		clusters = append(clusters, c)
	}
	dig := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
	listing := store.Listing{Started: now, CatalogComplete: true, Repositories: 500}
	var batches [2][]store.Container
	for i := 0; i < 10_000; i++ {
		repo, tag := fmt.Sprintf("team-%d/svc-%d", i%50, i/20), fmt.Sprintf("v%d", i%20)
		listing.Tags = append(listing.Tags, store.ListedTag{Repository: repo, Tag: tag, Digest: dig(i)})
		if i%10 == 9 {
			continue // never ran
		}
		at, deleted := now, false
		if i%10 == 8 {
			at, deleted = now.Add(-60*24*time.Hour), true // ran long ago
		}
		ref := "reg.example/" + repo + ":" + tag
		k := store.Container{PodUID: fmt.Sprintf("p%d", i), Name: "app", ContainerID: fmt.Sprintf("cid%d", i),
			Namespace: fmt.Sprintf("ns-%d", i%50), PodName: fmt.Sprintf("pod-%d", i), NodeName: fmt.Sprintf("node-%d", i%40),
			WorkloadUID: fmt.Sprintf("w%d", i/2), WorkloadKind: "Deployment", WorkloadName: fmt.Sprintf("w%d", i/2),
			ImageName: ref, ImageRef: ref, RunningDigest: dig(i), Integrity: records.IntegrityVerified,
			Severity: records.SeverityNone, Time: at, Deleted: deleted}
		batches[i%2] = append(batches[i%2], k)
	}
	for i := 0; i < 2_000; i++ {
		ref := fmt.Sprintf("other.example/x/y-%d:1", i)
		batches[i%2] = append(batches[i%2], store.Container{PodUID: fmt.Sprintf("q%d", i), Name: "app", ContainerID: fmt.Sprintf("qid%d", i),
			Namespace: "other", PodName: fmt.Sprintf("q-%d", i), NodeName: "node-0", ImageName: ref, ImageRef: ref,
			RunningDigest: dig(100_000 + i), Integrity: records.IntegrityUnverified, Severity: records.SeverityLow, Time: now})
	}
	for ci, ks := range batches {
		for start := 0; start < len(ks); start += 1000 {
			end := min(start+1000, len(ks))
			if _, err := s.Apply(ctx, clusters[ci], "", &store.Batch{Containers: ks[start:end]}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := s.RecordListing(ctx, "corp", listing); err != nil {
		tb.Fatal(err)
	}
	if _, err := storetest.SQL(tb, s).Exec(ctx, "VACUUM ANALYZE"); err != nil {
		tb.Fatal(err)
	}
	return s
}
