package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/entitlement"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestEntitlementCountsSensorsUntilRevokedOrStale: what stops a node's sensor counting against its cluster's
// entitlement. A revoked sensor frees its place at once; one without a heartbeat for -sensor-stale-after (here
// 2 minutes) frees it then, and not before; a collector that reports nodes (a controller under another id) or
// declares no mode is no sensor. A refusal names the threshold.
func TestEntitlementCountsSensorsUntilRevokedOrStale(t *testing.T) {
	ctx := context.Background()
	var offset atomic.Int64
	s := storetest.Open(t, store.Options{Entitlement: entitlement.Nodes{Default: 2}, SensorStaleAfter: 2 * time.Minute,
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	if err := s.SeedJoinKeys(ctx, []string{"cluster-key"}); err != nil {
		t.Fatal(err)
	}
	enrol := func(id, mode string) (store.Cluster, error) {
		_, c, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: "cluster-key", ClusterUID: "uid-a", ClusterName: "prod",
			CollectorID: id, Mode: mode})
		return c, err
	}
	used := func() int {
		t.Helper()
		d, err := s.GetCluster(ctx, "uid-a")
		if err != nil {
			t.Fatal(err)
		}
		return d.NodesUsed
	}
	// A controller under its own id that counts nodes, and an auto-mode collector that declares none: no nodes.
	inv, err := enrol("inventory", "impact")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, inv, "v1", "impact", 12); err != nil {
		t.Fatal(err)
	}
	if _, err := enrol("auto-1", ""); err != nil {
		t.Fatal(err)
	}
	if n := used(); n != 0 {
		t.Fatalf("%d nodes used by a collector counting nodes and one declaring no mode; want 0", n)
	}
	for _, id := range []string{"node-1", "node-2"} {
		if _, err := enrol(id, "impact"); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	_, err = enrol("node-3", "impact")
	var ent *store.EntitlementError
	if !errors.As(err, &ent) || ent.Entitled != 2 || ent.Enrolled != 2 || ent.StaleAfter != 2*time.Minute || ent.CollectorID != "node-3" {
		t.Fatalf("node-3: %v (%+v)", err, ent)
	}
	// Revoking node-1 frees its place at once.
	if _, err := s.RevokeCollector(ctx, "prod", "node-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := enrol("node-3", "impact"); err != nil {
		t.Fatalf("node-3 after node-1 was revoked: %v", err)
	}
	// A minute and a half on, node-2 and node-3 (no heartbeat since they enrolled) still count.
	offset.Store(int64(90 * time.Second))
	if _, err := enrol("node-4", "impact"); !errors.Is(err, store.ErrEntitlementExceeded) {
		t.Fatalf("node-4 within the stale threshold of the others: %v", err)
	}
	// node-3 heartbeats; past 2 minutes node-2 is stale and node-4 takes its place.
	c3, err := enrol("node-3", "impact") // enrolling again: the node it was
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, c3, "v1", "impact", 0); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(150 * time.Second))
	if n := used(); n != 1 {
		t.Fatalf("%d nodes used with node-2 stale; want node-3's 1", n)
	}
	if _, err := enrol("node-4", "impact"); err != nil {
		t.Fatalf("node-4 after node-2 went stale: %v", err)
	}
	if d, err := s.GetCluster(ctx, "uid-a"); err != nil || d.NodesUsed != 2 || d.SensorsRefused != 0 {
		t.Fatalf("after node-4 enrolled (its refusal cleared): %+v, %v", d.ClusterSummary, err)
	}
}
