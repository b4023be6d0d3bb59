package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/entitlement"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestClusterEntitlementAnswersAsDocumented: prod is entitled to one node and refused a second sensor; the
// cluster list and detail report the entitlement, its use and the refusal as openapi.yaml documents them, and a
// cluster without an entry reports null (unlimited).
func TestClusterEntitlementAnswersAsDocumented(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, store.Options{Entitlement: entitlement.Nodes{Clusters: map[string]int{"prod": 1}}})
	storetest.Enrol(t, st, "uid-dev", "dev")
	storetest.Enrol(t, st, "uid-prod", "prod") // the legacy collector: no node
	enrol := func(id string) error {
		_, _, err := st.EnrolCollector(ctx, store.Enrolment{JoinKey: storetest.JoinKey("uid-prod"), ClusterUID: "uid-prod",
			ClusterName: "prod", CollectorID: id, Mode: "impact"})
		return err
	}
	if err := enrol("node-1"); err != nil {
		t.Fatal(err)
	}
	if err := enrol("node-2"); !errors.Is(err, store.ErrEntitlementExceeded) {
		t.Fatalf("node-2 beyond prod's entitlement: %v", err)
	}
	s := loadSpec(t)
	h := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), auth.New(st, auth.ModeNone))

	body := checkResponse(t, s, h, route("/api/v1/clusters"), "/api/v1/clusters", 200)
	items := list(body["items"])
	if len(items) != 2 || m(items[0])["name"] != "dev" {
		t.Fatalf("clusters: %v", body)
	}
	if e := m(m(items[0])["entitlement"]); e["nodes"] != nil || e["nodes_used"] != 0.0 || e["sensors_refused"] != 0.0 ||
		e["last_refused_sensor"] != nil || e["last_refused_at"] != nil {
		t.Errorf("dev's entitlement: %v", e)
	}
	body = checkResponse(t, s, h, route("/api/v1/clusters/{cluster}"), "/api/v1/clusters/prod", 200)
	if e := m(body["entitlement"]); e["nodes"] != 1.0 || e["nodes_used"] != 1.0 || e["sensors_refused"] != 1.0 ||
		e["last_refused_sensor"] != "node-2" || e["last_refused_at"] == nil {
		t.Errorf("prod's entitlement: %v", e)
	}
}
