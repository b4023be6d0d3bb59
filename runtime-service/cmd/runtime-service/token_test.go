package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestTokenSubcommand: `runtime-service token create` issues a working token (the bootstrap of a service run
// with -auth tokens), list shows it without its secret, revoke stops it, and each change is audited.
func TestTokenSubcommand(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.DSN(t)
	st := storetest.OpenAt(t, dsn, store.Options{})
	env := func(k string) string {
		if k == "RUNTRUST_DATABASE_URL" {
			return dsn
		}
		return ""
	}
	var out bytes.Buffer
	if err := token([]string{"create", "-name", "first-admin", "-role", "admin", "-clusters", "prod, stage", "-expires", "30d"}, env, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	secret := lines[len(lines)-1]
	tok, err := st.APITokenBySecret(ctx, secret)
	if err != nil || tok.Role != store.RoleAdmin || strings.Join(tok.Clusters, ",") != "prod,stage" || tok.ExpiresAt == nil {
		t.Fatalf("created token %+v, %v (output %q)", tok, err, out.String())
	}
	out.Reset()
	if err := token([]string{"list"}, env, &out); err != nil || !strings.Contains(out.String(), "first-admin\tadmin\tclusters: prod,stage") || strings.Contains(out.String(), secret) {
		t.Fatalf("list: %v %q", err, out.String())
	}
	if err := token([]string{"revoke", "-name", "first-admin"}, env, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := st.APITokenBySecret(ctx, secret); err == nil {
		t.Fatal("a revoked token still works")
	}
	page, err := st.ListAudit(ctx, 10, 0)
	if err != nil || page.Total != 2 || page.Items[0].Action != "token.revoke" || !strings.HasPrefix(page.Items[1].Actor, "cli:") {
		t.Fatalf("audit %+v, %v", page, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "usage: runtime-service token create|list|revoke"},
		{[]string{"create"}, "-name is required"},
		{[]string{"create", "-name", "x", "-role", "root"}, `-role "root" is not viewer or admin`},
		{[]string{"create", "-name", "x", "-expires", "soon"}, `-expires "soon"`},
		{[]string{"revoke", "-name", "nobody"}, `no API token is named "nobody"`},
	} {
		if err := token(c.args, env, &out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("token %q: %v, want %q", c.args, err, c.want)
		}
	}
}
