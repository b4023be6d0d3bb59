package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/entitlement"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// entitledServer serves ingest over a store with the node entitlement n and a clock the test moves (offset from
// the real one); joinKey and otherKey are seeded.
func entitledServer(t *testing.T, n entitlement.Nodes, offset *atomic.Int64) *harness {
	t.Helper()
	s := storetest.OpenAt(t, migratedDB(t), store.Options{Entitlement: n,
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	if err := s.SeedJoinKeys(context.Background(), []string{joinKey, otherKey}); err != nil {
		t.Fatal(err)
	}
	return startServer(t, s, ingest.DefaultLimits, nil, nil)
}

const otherKey = "test-join-key-other-cluster"

func (h *harness) enrolAs(key, uid, name, id string, mode runtrustv1.Mode) (string, error) {
	resp, err := h.admin.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: key, ClusterUid: uid, ClusterName: name,
		CollectorId: id, Mode: mode})
	return resp.GetToken(), err
}

// TestNodeEntitlement is the entitlement over real gRPC and PostgreSQL: cluster prod-eu is entitled to 2 nodes;
// its controller and two sensors enrol, a third sensor is refused with FailedPrecondition saying exactly why,
// while the two keep ingesting and heartbeating, a sensor enrolling again is accepted, the controller is no node
// even in impact mode, nothing stored before is lost, and a cluster without an entry is unlimited. Once the two
// sensors went stale the third gets their place; when they come back they are not cut off, and the cluster
// shows more nodes used than entitled.
func TestNodeEntitlement(t *testing.T) {
	var offset atomic.Int64
	h := entitledServer(t, entitlement.Nodes{Clusters: map[string]int{"prod-eu": 2}}, &offset)
	ctx := context.Background()
	enrol := func(id string, mode runtrustv1.Mode) string {
		t.Helper()
		tok, err := h.enrolAs(joinKey, "c1", "prod-eu", id, mode)
		if err != nil {
			t.Fatalf("enrol %s: %v", id, err)
		}
		return tok
	}
	tokens := map[string]string{
		"controller": enrol("controller", runtrustv1.Mode_MODE_INTEGRITY),
		"node-1":     enrol("node-1", runtrustv1.Mode_MODE_IMPACT),
		"node-2":     enrol("node-2", runtrustv1.Mode_MODE_IMPACT),
	}
	req := plogotlp.NewExportRequestFromLogs(everyKind())
	export := func(id string) {
		t.Helper()
		if _, err := h.logs.Export(withToken(ctx, tokens[id]), req); err != nil {
			t.Fatalf("%s: Export: %v", id, err)
		}
	}
	heartbeat := func(id string) {
		t.Helper()
		hb := &runtrustv1.HeartbeatRequest{CollectorVersion: "v0.161.0", Mode: runtrustv1.Mode_MODE_IMPACT}
		if id == "controller" {
			hb.Mode, hb.NodeCount = runtrustv1.Mode_MODE_INTEGRITY, 3
		}
		if _, err := h.admin.Heartbeat(withToken(ctx, tokens[id]), hb); err != nil {
			t.Fatalf("%s: Heartbeat: %v", id, err)
		}
	}
	for _, id := range []string{"controller", "node-1", "node-2"} {
		export(id)
		heartbeat(id)
	}
	tables := []string{"exec_events", "file_events", "nodes", "pods", "containers", "sensor_health", "exec_aggregates", "collectors", "join_keys"}
	snapshot := func() map[string]int {
		out := map[string]int{}
		for _, table := range tables {
			out[table] = count(t, h.store, "SELECT count(*) FROM "+table)
		}
		out["exec_count"] = count(t, h.store, "SELECT sum(count)::int FROM exec_aggregates")
		return out
	}
	before := snapshot()
	if before["exec_events"] != 3 || before["collectors"] != 3 {
		t.Fatalf("before the refusal: %v", before)
	}

	_, err := h.enrolAs(joinKey, "c1", "prod-eu", "node-3", runtrustv1.Mode_MODE_IMPACT)
	const want = `cluster "prod-eu" is entitled to 2 nodes and 2 sensors are enrolled: sensor "node-3" refused (raise the entitlement, ` +
		`or remove a node's sensor: runtime-service revoke -cluster c1 -collector-id <node>; a sensor without a heartbeat for 5m0s stops counting)`
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || st.Message() != want {
		t.Fatalf("the third sensor: %v\nwant FailedPrecondition %q", err, want)
	}
	if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the refusal changed stored rows: before %v, after %v", before, after)
	}
	// Refused again a minute later: still one sensor refused, its attempts counted.
	offset.Store(int64(time.Minute))
	if _, err := h.enrolAs(joinKey, "c1", "prod-eu", "node-3", runtrustv1.Mode_MODE_IMPACT); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("node-3 again: %v", err)
	}
	if n := count(t, h.store, "SELECT attempts::int FROM sensor_refusals WHERE collector_id = 'node-3'"); n != 2 {
		t.Fatalf("node-3's refused attempts: %d; want 2", n)
	}

	// The enrolled keep working: ingest, heartbeat; the controller is no node even when it declares impact.
	for _, id := range []string{"controller", "node-1", "node-2"} {
		export(id)
		heartbeat(id)
	}
	tokens["controller"] = enrol("controller", runtrustv1.Mode_MODE_IMPACT)
	heartbeat("controller")
	// A sensor enrolling again is the node it was, not a new one.
	tokens["node-1"] = enrol("node-1", runtrustv1.Mode_MODE_IMPACT)
	export("node-1")
	heartbeat("node-1")
	if n := count(t, h.store, "SELECT count(*) FROM exec_events"); n != before["exec_events"]+4 {
		t.Fatalf("%d raw exec events; want the %d stored before and the 4 sent since", n, before["exec_events"])
	}

	d, err := h.store.GetCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if d.EntitledNodes != 2 || d.NodesUsed != 2 || d.SensorsRefused != 1 || d.LastRefusedSensor != "node-3" || d.LastRefusedAt == nil {
		t.Fatalf("the cluster's entitlement: %+v", d.ClusterSummary)
	}

	// No entry for cluster c2 and no default: unlimited.
	for i := range 5 {
		tok, err := h.enrolAs(otherKey, "c2", "other", fmt.Sprintf("node-%d", i), runtrustv1.Mode_MODE_IMPACT)
		if err != nil {
			t.Fatalf("cluster other's sensor %d: %v", i, err)
		}
		if _, err := h.logs.Export(withToken(ctx, tok), plogotlp.NewExportRequestFromLogs(everyKindOf("c2"))); err != nil {
			t.Fatal(err)
		}
	}
	if o, err := h.store.GetCluster(ctx, "c2"); err != nil || o.EntitledNodes != 0 || o.NodesUsed != 5 || o.SensorsRefused != 0 {
		t.Fatalf("the unlimited cluster: %+v, %v", o.ClusterSummary, err)
	}

	// Six minutes without a heartbeat from node-1 and node-2: stale, they count no more, and node-3 enrols in
	// their place. Its refusals are cleared.
	offset.Store(int64(7 * time.Minute))
	tokens["node-3"] = enrol("node-3", runtrustv1.Mode_MODE_IMPACT)
	export("node-3")
	// node-1 and node-2 come back: their tokens still work; the cluster is over its entitlement, and a fourth
	// sensor is refused.
	heartbeat("node-1")
	heartbeat("node-2")
	export("node-2")
	if _, err := h.enrolAs(joinKey, "c1", "prod-eu", "node-4", runtrustv1.Mode_MODE_IMPACT); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), `entitled to 2 nodes and 3 sensors are enrolled: sensor "node-4" refused`) {
		t.Fatalf("node-4 over the entitlement: %v", err)
	}
	d, err = h.store.GetCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if d.EntitledNodes != 2 || d.NodesUsed != 3 || d.SensorsRefused != 1 || d.LastRefusedSensor != "node-4" {
		t.Fatalf("after the stale sensors came back: %+v", d.ClusterSummary)
	}
	if n := count(t, h.store, "SELECT count(*) FROM exec_events"); n != before["exec_events"]+4+5+2 {
		t.Fatalf("%d raw exec events; want every one sent", n)
	}
}

// TestNodeEntitlementUnderConcurrentEnrolments: 24 sensors of a cluster entitled to 5 nodes enrol at once, half
// with each of two join keys bound to the cluster (so the join key's lock does not order them; the cluster row's
// does): exactly 5 are accepted, every other one is refused, and the cluster counts 5.
func TestNodeEntitlementUnderConcurrentEnrolments(t *testing.T) {
	var offset atomic.Int64
	h := entitledServer(t, entitlement.Nodes{Default: 5}, &offset)
	for _, key := range []string{joinKey, otherKey} {
		if _, err := h.enrolAs(key, "c1", "prod", "controller", runtrustv1.Mode_MODE_INTEGRITY); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var accepted, refused atomic.Int32
	errs := make(chan error, 24)
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{joinKey, otherKey}[i%2]
			_, err := h.enrolAs(key, "c1", "prod", fmt.Sprintf("node-%02d", i), runtrustv1.Mode_MODE_IMPACT)
			switch status.Code(err) {
			case codes.OK:
				accepted.Add(1)
			case codes.FailedPrecondition:
				refused.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("an enrolment neither accepted nor refused: %v", err)
	}
	if accepted.Load() != 5 || refused.Load() != 19 {
		t.Fatalf("%d accepted, %d refused; want 5 and 19", accepted.Load(), refused.Load())
	}
	if n := count(t, h.store, "SELECT count(*) FROM collectors WHERE mode = 'impact'"); n != 5 {
		t.Fatalf("%d sensors enrolled; want 5", n)
	}
	d, err := h.store.GetCluster(context.Background(), "c1")
	if err != nil || d.NodesUsed != 5 || d.EntitledNodes != 5 || d.SensorsRefused != 19 {
		t.Fatalf("cluster: %+v, %v", d.ClusterSummary, err)
	}
}
