package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// BenchmarkCollectors: the per-collector credential paths. 20 clusters of 101 collectors (a controller and 100
// sensors), all heartbeating.
//   - token_lookup: ClusterByToken, the ingest's lookup on a token-cache miss (a probe of collectors' unique token
//     index joined to clusters by primary key);
//   - pk_probe: the floor to compare with, a one-table primary-key probe of clusters (what the single-table token
//     lookup before migration 004 cost, an index probe of one table);
//   - heartbeat: one collector's heartbeat (an update of its own row);
//   - list_clusters: ListClusters of the 20, each cluster's view derived from its 101 collectors;
//   - get_cluster: GetCluster of one, with its collector list.
func BenchmarkCollectors(b *testing.B) {
	ctx := context.Background()
	s := storetest.Open(b, store.Options{})
	var tokens []string
	var cols []store.Cluster
	for c := 0; c < 20; c++ {
		key := fmt.Sprintf("bench-key-%d", c)
		if err := s.SeedJoinKeys(ctx, []string{key}); err != nil {
			b.Fatal(err)
		}
		for k := 0; k <= 100; k++ {
			id, mode := fmt.Sprintf("node-%d", k), "impact"
			if k == 0 {
				id, mode = "controller", "integrity"
			}
			tok, col, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: key, ClusterUID: fmt.Sprintf("uid-%d", c),
				ClusterName: fmt.Sprintf("c%02d", c), CollectorID: id, Mode: mode})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Heartbeat(ctx, col, "v0.161.0", mode, 100*btoi(k == 0)); err != nil {
				b.Fatal(err)
			}
			tokens, cols = append(tokens, tok), append(cols, col)
		}
	}
	b.Run("token_lookup", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := s.ClusterByToken(ctx, tokens[i%len(tokens)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pk_probe", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var uid, name string
			if err := storetest.SQL(b, s).QueryRow(ctx, "SELECT uid, name FROM clusters WHERE id = $1", cols[i%len(cols)].ID).Scan(&uid, &name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("heartbeat", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			k := cols[i%len(cols)]
			mode, nodes := "impact", 0
			if k.CollectorID == "controller" {
				mode, nodes = "integrity", 100
			}
			if err := s.Heartbeat(ctx, k, "v0.161.0", mode, nodes); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("list_clusters", func(b *testing.B) {
		for b.Loop() {
			page, err := s.ListClusters(ctx, store.Filter{Limit: 50})
			if err != nil || len(page.Items) != 20 || page.Items[0].ReportedNodes != 100 || page.Items[0].Mode != "impact" {
				b.Fatalf("%+v %v", page.Items, err)
			}
		}
	})
	b.Run("get_cluster", func(b *testing.B) {
		for b.Loop() {
			d, err := s.GetCluster(ctx, "uid-7")
			if err != nil || len(d.Collectors) != 101 {
				b.Fatalf("%d collectors, %v", len(d.Collectors), err)
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
