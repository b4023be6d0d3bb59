package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestRevokeCollector: revoking one collector stops its token and only its token; the cluster can be named by
// uid or by a name no other cluster has; an unknown cluster or collector, or a shared name, is refused with what
// there is.
func TestRevokeCollector(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{})
	if err := s.SeedJoinKeys(ctx, []string{"k1", "k2", "k3"}); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, e := range []store.Enrolment{
		{JoinKey: "k1", ClusterUID: "uid-1", ClusterName: "prod", CollectorID: "controller"},
		{JoinKey: "k1", ClusterUID: "uid-1", ClusterName: "prod", CollectorID: "node-a"},
		{JoinKey: "k1", ClusterUID: "uid-1", ClusterName: "prod", CollectorID: "node-b"},
		{JoinKey: "k2", ClusterUID: "uid-2", ClusterName: "twin", CollectorID: "controller"},
		{JoinKey: "k3", ClusterUID: "uid-3", ClusterName: "twin", CollectorID: "controller"},
	} {
		tok, _, err := s.EnrolCollector(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		tokens[e.ClusterUID+"/"+e.CollectorID] = tok
	}

	got, err := s.RevokeCollector(ctx, "prod", "node-b")
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterUID != "uid-1" || got.ClusterName != "prod" || got.CollectorID != "node-b" || got.HeartbeatAt != nil {
		t.Fatalf("revoked %+v", got)
	}
	if _, err := s.ClusterByToken(ctx, tokens["uid-1/node-b"]); !errors.Is(err, store.ErrTokenUnknown) {
		t.Fatalf("the revoked collector's token: %v, want %v", err, store.ErrTokenUnknown)
	}
	for _, k := range []string{"uid-1/controller", "uid-1/node-a", "uid-2/controller"} {
		if _, err := s.ClusterByToken(ctx, tokens[k]); err != nil {
			t.Fatalf("%s's token stopped working: %v", k, err)
		}
	}

	for _, tc := range []struct {
		cluster, collector string
		is                 error
		says               []string
	}{
		{"prod", "node-b", store.ErrNotFound, []string{`has no collector "node-b"`, "it has: controller, node-a"}},
		{"nope", "controller", store.ErrNotFound, []string{`no cluster has the uid or name "nope"`}},
		{"twin", "controller", store.ErrAmbiguousCluster, []string{"uid-2, uid-3", "give the uid"}},
	} {
		_, err := s.RevokeCollector(ctx, tc.cluster, tc.collector)
		if !errors.Is(err, tc.is) {
			t.Fatalf("%s/%s: %v, want %v", tc.cluster, tc.collector, err, tc.is)
		}
		for _, w := range tc.says {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s/%s: %q does not say %q", tc.cluster, tc.collector, err, w)
			}
		}
	}
	// By uid, a shared name is no obstacle.
	if _, err := s.RevokeCollector(ctx, "uid-3", "controller"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClusterByToken(ctx, tokens["uid-2/controller"]); err != nil {
		t.Fatalf("the other twin's token stopped working: %v", err)
	}
}

// TestRetireJoinKey: a retired key enrols nothing, not even its own cluster's collectors; the tokens it issued
// keep working; retiring it again, or a key never seen, says so.
func TestRetireJoinKey(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{})
	if err := s.SeedJoinKeys(ctx, []string{"leaked", "unused"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: "leaked", ClusterUID: "uid-1", ClusterName: "prod", CollectorID: "controller"})
	if err != nil {
		t.Fatal(err)
	}
	if uid, err := s.RetireJoinKey(ctx, "leaked"); err != nil || uid != "uid-1" {
		t.Fatalf("retire: %q, %v", uid, err)
	}
	if _, _, err := s.EnrolCollector(ctx, store.Enrolment{JoinKey: "leaked", ClusterUID: "uid-1", ClusterName: "prod", CollectorID: "node-a"}); !errors.Is(err, store.ErrJoinKeyInvalid) {
		t.Fatalf("enrolling with the retired key: %v, want %v", err, store.ErrJoinKeyInvalid)
	}
	if _, err := s.ClusterByToken(ctx, tok); err != nil {
		t.Fatalf("a token the key issued stopped working: %v", err)
	}
	if uid, err := s.RetireJoinKey(ctx, "unused"); err != nil || uid != "" {
		t.Fatalf("retiring an unused key: %q, %v", uid, err)
	}
	for _, k := range []string{"leaked", "never-seen"} {
		if _, err := s.RetireJoinKey(ctx, k); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "no such join key") {
			t.Fatalf("retiring %q: %v", k, err)
		}
	}
}
