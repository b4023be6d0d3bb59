package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestOneJoinKeyEnrolsEveryCollectorOfOneCluster: the controller and each node's sensor enrol with the same key,
// each gets its own token, none revokes another's; another cluster uid is refused; a collector enrolling again
// replaces only its own token.
func TestOneJoinKeyEnrolsEveryCollectorOfOneCluster(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{})
	if err := s.SeedJoinKeys(ctx, []string{"cluster-key"}); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	var clusterID int64
	for _, e := range []store.Enrolment{
		{CollectorID: "controller", Mode: "integrity"},
		{CollectorID: "node-1", Mode: "impact"},
		{CollectorID: "node-2", Mode: "impact"},
	} {
		e.JoinKey, e.ClusterUID, e.ClusterName = "cluster-key", "uid-a", "prod"
		tok, c, err := s.EnrolCollector(ctx, e)
		if err != nil {
			t.Fatalf("enrol %s: %v", e.CollectorID, err)
		}
		if clusterID == 0 {
			clusterID = c.ID
		}
		if c.ID != clusterID || c.CollectorID != e.CollectorID || c.Collector == 0 {
			t.Fatalf("enrol %s: %+v; want cluster %d", e.CollectorID, c, clusterID)
		}
		tokens[e.CollectorID] = tok
	}
	for id, tok := range tokens {
		c, err := s.ClusterByToken(ctx, tok)
		if err != nil || c.ID != clusterID || c.CollectorID != id || c.UID != "uid-a" {
			t.Fatalf("token of %s: %+v, %v", id, c, err)
		}
	}

	_, _, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: "cluster-key", ClusterUID: "uid-b", ClusterName: "other", CollectorID: "node-9"})
	if !errors.Is(err, store.ErrJoinKeyInvalid) || !strings.Contains(err.Error(), "bound to another cluster") {
		t.Fatalf("another cluster with the bound key: %v", err)
	}
	if strings.Contains(err.Error(), "uid-a") {
		t.Fatalf("the refusal names the bound cluster to a caller that did not prove it knows it: %v", err)
	}
	var clusters int
	if err := storetest.SQL(t, s).QueryRow(ctx, "SELECT count(*) FROM clusters").Scan(&clusters); err != nil || clusters != 1 {
		t.Fatalf("clusters after the refusal: %d, %v; want 1 (the refused enrolment rolled back)", clusters, err)
	}

	tok1, c1, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: "cluster-key", ClusterUID: "uid-a", ClusterName: "prod", CollectorID: "node-1", Mode: "impact"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClusterByToken(ctx, tokens["node-1"]); !errors.Is(err, store.ErrTokenUnknown) {
		t.Fatalf("node-1's replaced token: %v; want ErrTokenUnknown", err)
	}
	if c, err := s.ClusterByToken(ctx, tok1); err != nil || c != c1 {
		t.Fatalf("node-1's new token: %+v, %v; want %+v", c, err, c1)
	}
	for _, id := range []string{"controller", "node-2"} {
		if _, err := s.ClusterByToken(ctx, tokens[id]); err != nil {
			t.Fatalf("%s's token after node-1 enrolled again: %v", id, err)
		}
	}
	var rows int
	if err := storetest.SQL(t, s).QueryRow(ctx, "SELECT count(*) FROM collectors WHERE cluster_id = $1", clusterID).Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("collectors: %d, %v; want 3", rows, err)
	}
}

// TestEnrolRefusesUnknownAndOrphanedKeys: an unknown key, and a key whose cluster was deleted, say so.
func TestEnrolRefusesUnknownAndOrphanedKeys(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{})
	_, _, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: "never-seeded", ClusterUID: "u", CollectorID: "controller"})
	if !errors.Is(err, store.ErrJoinKeyInvalid) || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("unknown key: %v", err)
	}
	c := enrol(t, s, "gone")
	if _, err := storetest.SQL(t, s).Exec(ctx, "DELETE FROM clusters WHERE id = $1", c.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.EnrolCollector(ctx, store.Enrolment{JoinKey: "join-gone", ClusterUID: "gone", CollectorID: "controller"})
	if !errors.Is(err, store.ErrJoinKeyInvalid) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("key of a deleted cluster: %v", err)
	}
}

// TestClusterViewDerivesFromItsCollectors: a controller (3 nodes) and two sensors (0) heartbeat; the cluster
// shows 3 nodes, impact, the controller's version; once the sensors go quiet it is integrity again.
func TestClusterViewDerivesFromItsCollectors(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now})
	if err := s.SeedJoinKeys(ctx, []string{"k"}); err != nil {
		t.Fatal(err)
	}
	col := map[string]store.Cluster{}
	for _, id := range []string{"controller", "node-1", "node-2"} {
		_, c, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: "k", ClusterUID: "uid-a", ClusterName: "prod", CollectorID: id})
		if err != nil {
			t.Fatal(err)
		}
		col[id] = c
	}
	d, err := s.GetCluster(ctx, "uid-a")
	if err != nil || d.HeartbeatAt != nil || d.Mode != "" || d.ReportedNodes != 0 || len(d.Collectors) != 3 {
		t.Fatalf("before any heartbeat: %+v, %v", d, err)
	}
	beat := func(id, version, mode string, nodes int) {
		t.Helper()
		if err := s.Heartbeat(ctx, col[id], version, mode, nodes); err != nil {
			t.Fatal(err)
		}
	}
	// The order is the one that made the cluster's view flip when collectors shared a token: a sensor last.
	beat("controller", "v1-controller", "integrity", 3)
	clk.Set(t0.Add(10 * time.Second))
	beat("node-1", "v1-sensor", "impact", 0)
	clk.Set(t0.Add(20 * time.Second))
	beat("node-2", "v1-sensor", "impact", 0)

	check := func(when, mode string, nodes int, version string, live map[string]bool) {
		t.Helper()
		d, err := s.GetCluster(ctx, "uid-a")
		if err != nil {
			t.Fatal(err)
		}
		if d.Mode != mode || d.ReportedNodes != nodes || d.CollectorVersion != version {
			t.Fatalf("%s: mode %q, nodes %d, version %q; want %q, %d, %q", when, d.Mode, d.ReportedNodes, d.CollectorVersion, mode, nodes, version)
		}
		for _, k := range d.Collectors {
			if k.Live != live[k.ID] {
				t.Fatalf("%s: collector %s live = %v; want %v", when, k.ID, k.Live, live[k.ID])
			}
		}
		list, err := s.ListClusters(ctx, store.Filter{Limit: 10})
		if err != nil || len(list.Items) != 1 {
			t.Fatalf("%s: list %+v, %v", when, list.Items, err)
		}
		if l := list.Items[0]; l.Mode != mode || l.ReportedNodes != nodes || l.CollectorVersion != version || !l.HeartbeatAt.Equal(*d.HeartbeatAt) {
			t.Fatalf("%s: the list says %+v; the detail %+v", when, l, d.ClusterSummary)
		}
	}
	check("controller and two sensors", "impact", 3, "v1-controller", map[string]bool{"controller": true, "node-1": true, "node-2": true})
	d, _ = s.GetCluster(ctx, "uid-a")
	if d.HeartbeatAt == nil || !d.HeartbeatAt.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("heartbeat_at %v; want the newest collector's", d.HeartbeatAt)
	}
	if k := d.Collectors[1]; k.ID != "node-1" || k.Mode != "impact" || k.Version != "v1-sensor" || k.NodeCount != 0 {
		t.Fatalf("collector node-1: %+v", k)
	}

	// The sensors stop; the controller keeps going past the live window.
	clk.Set(t0.Add(store.CollectorLiveWindow + time.Minute))
	beat("controller", "v2-controller", "integrity", 4)
	check("sensors quiet", "integrity", 4, "v2-controller", map[string]bool{"controller": true})

	// Everything quiet: the last known view stays (heartbeat_at says how old it is).
	clk.Set(t0.Add(time.Hour))
	check("all quiet", "integrity", 4, "v2-controller", map[string]bool{"controller": true})
}

// TestMigration004KeepsEnrolledClustersWorking: a cluster enrolled under migrations 001–003 (one token on the
// cluster row) keeps its token, and its last heartbeat, as the collector "legacy".
func TestMigration004KeepsEnrolledClustersWorking(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	if err := store.MigrateTo(ctx, dsn, 3); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	token := store.NewSecret(store.TokenPrefix)
	var id int64
	err = conn.QueryRow(ctx, `
		INSERT INTO clusters (uid, name, token_hash, heartbeat_at, collector_version, mode, node_count)
		VALUES ('uid-old', 'old', $1, $2, 'v0.160.0', 'impact', 7) RETURNING id`, store.Hash(token), t0).Scan(&id)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}

	clk := &clock{t: t0.Add(time.Minute)}
	s := storetest.OpenAt(t, dsn, store.Options{Now: clk.Now}) // applies 004 and anything after
	c, err := s.ClusterByToken(ctx, token)
	if err != nil || c.ID != id || c.UID != "uid-old" || c.CollectorID != store.LegacyCollector {
		t.Fatalf("the pre-migration token: %+v, %v", c, err)
	}
	d, err := s.GetCluster(ctx, "uid-old")
	if err != nil || d.Mode != "impact" || d.ReportedNodes != 7 || d.CollectorVersion != "v0.160.0" || d.HeartbeatAt == nil || !d.HeartbeatAt.Equal(t0) {
		t.Fatalf("the pre-migration heartbeat: %+v, %v", d.ClusterSummary, err)
	}
	// An old exporter (no collector id) enrolling again replaces that same token, as before.
	if err := s.SeedJoinKeys(ctx, []string{"new-key"}); err != nil {
		t.Fatal(err)
	}
	tok2, c2, err := s.Enrol(ctx, "new-key", "uid-old", "old")
	if err != nil || c2.Collector != c.Collector {
		t.Fatalf("re-enrol without a collector id: %+v, %v; want the legacy collector %d", c2, err, c.Collector)
	}
	if _, err := s.ClusterByToken(ctx, token); !errors.Is(err, store.ErrTokenUnknown) {
		t.Fatalf("the replaced legacy token: %v", err)
	}
	if _, err := s.ClusterByToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
}

// TestSensorsEnrolAtOnceWithAFreshKey: a DaemonSet's sensors start together and enrol with a key no cluster has
// used yet; the key's row lock queues them, the first binds it, and every one gets its own token in one cluster.
func TestSensorsEnrolAtOnceWithAFreshKey(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{MaxConns: 8})
	if err := s.SeedJoinKeys(ctx, []string{"fresh"}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, _, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: "fresh", ClusterUID: "uid-ds", ClusterName: "ds",
				CollectorID: fmt.Sprintf("node-%d", i), Mode: "impact"})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var clusters, collectors int
	if err := storetest.SQL(t, s).QueryRow(ctx, "SELECT (SELECT count(*) FROM clusters), (SELECT count(*) FROM collectors)").Scan(&clusters, &collectors); err != nil {
		t.Fatal(err)
	}
	if clusters != 1 || collectors != n {
		t.Fatalf("%d clusters, %d collectors; want 1 and %d", clusters, collectors, n)
	}
}
