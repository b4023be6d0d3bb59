package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestRevokeSubcommand: `runtime-service revoke` on real Postgres stops one collector's token and says so; run
// again it names the collectors there are; missing flags are named.
func TestRevokeSubcommand(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.DSN(t)
	st := storetest.OpenAt(t, dsn, store.Options{})
	if err := st.SeedJoinKeys(ctx, []string{"revoke-test-key"}); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, id := range []string{"controller", "node-7"} {
		tok, _, err := st.EnrolCollector(ctx, store.Enrolment{JoinKey: "revoke-test-key", ClusterUID: "uid-r", ClusterName: "edge", CollectorID: id})
		if err != nil {
			t.Fatal(err)
		}
		tokens[id] = tok
	}
	env := func(k string) string {
		if k == "RUNTRUST_DATABASE_URL" {
			return dsn
		}
		return ""
	}

	var out bytes.Buffer
	if err := revoke([]string{"-cluster", "edge", "-collector-id", "node-7"}, env, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, `revoked collector "node-7" of cluster edge (uid-r), last heartbeat never`) {
		t.Fatalf("output %q", s)
	}
	if _, err := st.ClusterByToken(ctx, tokens["node-7"]); !errors.Is(err, store.ErrTokenUnknown) {
		t.Fatalf("node-7's token after revoke: %v, want %v", err, store.ErrTokenUnknown)
	}
	if _, err := st.ClusterByToken(ctx, tokens["controller"]); err != nil {
		t.Fatalf("the controller's token stopped working: %v", err)
	}

	err := revoke([]string{"-database-url", dsn, "-cluster", "uid-r", "-collector-id", "node-7"}, func(string) string { return "" }, &out)
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "it has: controller") {
		t.Fatalf("revoking it again: %v", err)
	}
	if err := revoke([]string{"-cluster", "edge"}, env, &out); err == nil || !strings.Contains(err.Error(), "-collector-id") {
		t.Fatalf("without -collector-id: %v", err)
	}
	if err := revoke([]string{"-join-key", "revoke-test-key", "-cluster", "edge"}, env, &out); err == nil || !strings.Contains(err.Error(), "one or the other") {
		t.Fatalf("-join-key with -cluster: %v", err)
	}

	out.Reset()
	if err := revoke([]string{"-join-key", "revoke-test-key"}, env, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "retired the join key") || !strings.Contains(s, "bound to cluster uid-r") {
		t.Fatalf("output %q", s)
	}
	if _, _, err := st.EnrolCollector(ctx, store.Enrolment{JoinKey: "revoke-test-key", ClusterUID: "uid-r", ClusterName: "edge", CollectorID: "node-8"}); !errors.Is(err, store.ErrJoinKeyInvalid) {
		t.Fatalf("enrolling with the retired key: %v", err)
	}
}
