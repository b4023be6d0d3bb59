package ingest_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
)

func (h *harness) enrolCollector(t *testing.T, uid, id string, mode runtrustv1.Mode) string {
	t.Helper()
	resp, err := h.admin.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: uid, ClusterName: "test",
		CollectorId: id, Mode: mode})
	if err != nil {
		t.Fatalf("enrol %s/%s: %v", uid, id, err)
	}
	return resp.GetToken()
}

// TestOneJoinKeyEnrolsTheControllerAndEverySensor is Impact mode over real gRPC: a controller and two sensors
// of one cluster enrol with the one join key, all ingest and heartbeat with their own tokens, another cluster
// is refused, and a sensor enrolling again revokes only its own old token, at once on this replica even though
// the token was cached.
func TestOneJoinKeyEnrolsTheControllerAndEverySensor(t *testing.T) {
	h := startServer(t, openStore(t, migratedDB(t)), ingest.DefaultLimits, nil, nil)
	ctx := context.Background()
	tokens := map[string]string{
		"controller": h.enrolCollector(t, "c1", "controller", runtrustv1.Mode_MODE_INTEGRITY),
		"node-1":     h.enrolCollector(t, "c1", "node-1", runtrustv1.Mode_MODE_IMPACT),
		"node-2":     h.enrolCollector(t, "c1", "node-2", runtrustv1.Mode_MODE_IMPACT),
	}
	req := plogotlp.NewExportRequestFromLogs(everyKind())
	for id, tok := range tokens {
		if _, err := h.logs.Export(withToken(ctx, tok), req); err != nil {
			t.Fatalf("%s: Export: %v", id, err)
		}
	}
	for id, hb := range map[string]*runtrustv1.HeartbeatRequest{
		"controller": {CollectorVersion: "0.161.0-runtrust", Mode: runtrustv1.Mode_MODE_INTEGRITY, NodeCount: 3},
		"node-1":     {CollectorVersion: "0.161.0-sensor", Mode: runtrustv1.Mode_MODE_IMPACT},
		"node-2":     {CollectorVersion: "0.161.0-sensor", Mode: runtrustv1.Mode_MODE_IMPACT},
	} {
		if _, err := h.admin.Heartbeat(withToken(ctx, tokens[id]), hb); err != nil {
			t.Fatalf("%s: Heartbeat: %v", id, err)
		}
	}
	d, err := h.store.GetCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Mode != "impact" || d.ReportedNodes != 3 || d.CollectorVersion != "0.161.0-runtrust" || len(d.Collectors) != 3 {
		t.Fatalf("cluster view: %+v, collectors %+v", d.ClusterSummary, d.Collectors)
	}
	if n := count(t, h.store, "SELECT count(*) FROM clusters"); n != 1 {
		t.Fatalf("%d clusters; want the one all three collectors belong to", n)
	}

	_, err = h.admin.Enrol(ctx, &runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: "c2", CollectorId: "controller"})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "bound to another cluster") {
		t.Fatalf("another cluster with the same key: %v", err)
	}

	newTok := h.enrolCollector(t, "c1", "node-1", runtrustv1.Mode_MODE_IMPACT)
	if _, err := h.logs.Export(withToken(ctx, tokens["node-1"]), req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("node-1's replaced (and cached) token: %v; want Unauthenticated", err)
	}
	for _, tok := range []string{newTok, tokens["controller"], tokens["node-2"]} {
		if _, err := h.logs.Export(withToken(ctx, tok), req); err != nil {
			t.Fatalf("a token that should still work: %v", err)
		}
	}
}

func TestEnrolRefusesBadCollectorFields(t *testing.T) {
	h := startServer(t, openStore(t, migratedDB(t)), ingest.DefaultLimits, nil, nil)
	for _, tc := range []struct {
		req  *runtrustv1.EnrolRequest
		want string
	}{
		{&runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: "c1", CollectorId: "node 1"}, "collector_id must be printable ASCII"},
		{&runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: "c1", CollectorId: strings.Repeat("n", 300)}, "collector_id is 300 bytes long"},
		{&runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: "c1", CollectorId: "node-1", Mode: 7}, "mode 7 is not a runtrust.v1.Mode"},
	} {
		_, err := h.admin.Enrol(context.Background(), tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want InvalidArgument %q", tc.req, err, tc.want)
		}
	}
	if n := count(t, h.store, "SELECT count(*) FROM join_keys WHERE used_at IS NOT NULL"); n != 0 {
		t.Fatalf("a refused enrolment bound the join key")
	}
}

// TestEnrolLimitsFailuresOnly: a rollout's many enrolments with the right key are not throttled (a 500-node
// DaemonSet enrols its sensors at once), while wrong keys are: after a burst of 20 failures every enrolment is
// refused for a while, the right key's too.
func TestEnrolLimitsFailuresOnly(t *testing.T) {
	h := startServer(t, openStore(t, migratedDB(t)), ingest.DefaultLimits, nil, nil)
	ctx := context.Background()
	for i := range 100 {
		h.enrolCollector(t, "c1", fmt.Sprintf("node-%d", i), runtrustv1.Mode_MODE_IMPACT)
	}
	refused, failed := false, 0
	for range 40 {
		_, err := h.admin.Enrol(ctx, &runtrustv1.EnrolRequest{JoinKey: "guess-" + rand.Text(), ClusterUid: "c1", CollectorId: "x"})
		if status.Code(err) == codes.ResourceExhausted {
			refused = true
			break
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("a wrong key: %v", err)
		}
		failed++
	}
	if !refused || failed < 20 {
		t.Fatalf("after %d failed enrolments refused=%v; want the limit after the burst of 20", failed, refused)
	}
	_, err := h.admin.Enrol(ctx, &runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: "c1", CollectorId: "node-late"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "failed enrolments") {
		t.Fatalf("the right key right after the guesses: %v; want ResourceExhausted until the limit refills", err)
	}
}
