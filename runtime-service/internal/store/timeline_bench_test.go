package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/records"
)

// BenchmarkVerdictChanges: what the timeline adds to an ingest transaction. A cluster runs 1,000 images; each
// op applies one batch of their 1,000 container records ("apply", the whole ingest transaction) and, apart,
// runs the timeline statement alone over the same 1,000 digests in a transaction ("timeline_only"). Verdicts
// alternate between ops, so every op records 1,000 changes: the worst case.
func BenchmarkVerdictChanges(b *testing.B) {
	ctx := context.Background()
	s, cls := openInternal(b, Options{}, "c1")
	c := cls[0]
	digests := make([]string, 1000)
	batch := func(i int) *Batch {
		verdict, severity := records.IntegrityVerified, records.SeverityNone
		if i%2 == 1 {
			verdict, severity = records.IntegrityStaleTag, records.SeverityMedium
		}
		bt := &Batch{}
		for j := range digests {
			digests[j] = fmt.Sprintf("sha256:%064x", j)
			ref := fmt.Sprintf("reg.example/app-%d:1", j)
			bt.Containers = append(bt.Containers, Container{PodUID: fmt.Sprintf("p%d", j), Name: "app", ContainerID: fmt.Sprintf("c%d", j),
				Namespace: "ns", PodName: "pod", NodeName: "n", ImageName: ref, ImageRef: ref, RunningDigest: digests[j],
				Integrity: verdict, Severity: severity, Time: time.Now()})
		}
		return bt
	}
	b.Run("apply", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.Apply(ctx, c, "", batch(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// The same transaction with and without the timeline statement: the difference is its cost.
	for _, withTimeline := range []bool{false, true} {
		name := "update_only"
		if withTimeline {
			name = "update_and_timeline"
		}
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				v := records.IntegrityVerified
				if i%2 == 1 {
					v = records.IntegrityDigestMismatch
				}
				err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, "UPDATE containers SET integrity = $1", v); err != nil {
						return err
					}
					if withTimeline {
						return recordVerdictChanges(ctx, tx, c.ID, digests)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
