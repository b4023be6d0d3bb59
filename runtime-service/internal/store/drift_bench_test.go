package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// BenchmarkDriftDue: the drift checker's judging query (DriftDue, every -drift-interval) over 100,000 exec
// aggregates (1,000 indexed images × 100 programs, one cluster), all judged under fingerprint "fp". "steady":
// nothing is due, the usual pass; "rules changed": every aggregate is due under new rules, a page of 2,000.
// Seeded in SQL: the shape is what matters, not how ingest wrote it.
func BenchmarkDriftDue(b *testing.B) {
	ctx := context.Background()
	s := storetest.Open(b, store.Options{})
	c := storetest.Enrol(b, s, "bench-uid", "bench")
	db := storetest.SQL(b, s)
	for _, q := range []string{
		`INSERT INTO drift_indexes (digest, state, index, files, built_at)
			SELECT 'sha256:' || lpad(to_hex(g), 64, '0'), 'built', '\x00', 100, now() FROM generate_series(1, 1000) g`,
		`INSERT INTO exec_aggregates (image_digest, executable_path, executable_sha256, cluster_id, first_seen, last_seen, count, containers)
			SELECT 'sha256:' || lpad(to_hex(g), 64, '0'), '/usr/bin/p' || p, lpad(to_hex(p), 64, '0'), ` + strconv.FormatInt(c.ID, 10) + `, now(), now(), 1, '{}'
			FROM generate_series(1, 1000) g, generate_series(1, 100) p`,
		`INSERT INTO drift_findings (image_digest, executable_path, executable_sha256, cluster_id, verdict, severity,
				severity_rank, repositories, fingerprint, first_seen, last_seen, judged_at)
			SELECT image_digest, executable_path, executable_sha256, cluster_id, 'in_image', 'none', 1, '{}', 'fp', first_seen, last_seen, now()
			FROM exec_aggregates`,
		`ANALYZE`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name, fingerprint string
		want              int
	}{{"steady", "fp", 0}, {"rules changed", "fp2", 2000}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				due, err := s.DriftDue(ctx, bc.fingerprint, 2000)
				if err != nil {
					b.Fatal(err)
				}
				if len(due) != bc.want {
					b.Fatalf("%d due, want %d", len(due), bc.want)
				}
			}
		})
	}
}
