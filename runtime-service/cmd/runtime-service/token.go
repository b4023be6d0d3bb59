package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strings"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// token manages API tokens in the service's database: create (the first admin token of a service started with
// -auth tokens can only come from here), list, revoke. Like revoke it talks to PostgreSQL, and every change is
// written to the audit log as cli:<user>.
func token(args []string, getenv func(string) string, out io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		return errors.New("usage: runtime-service token create|list|revoke [flags] (-h for each)")
	}
	verb := args[0]
	fs := flag.NewFlagSet("runtime-service token "+verb, flag.ContinueOnError)
	fs.SetOutput(out)
	dsn := fs.String("database-url", getenv("RUNTRUST_DATABASE_URL"), "the service's Postgres DSN (env RUNTRUST_DATABASE_URL); required")
	name := fs.String("name", "", "the token's name (create, revoke)")
	role := fs.String("role", store.RoleViewer, "create: viewer or admin")
	clusters := fs.String("clusters", "", "create: restrict the token to these clusters (comma-separated uids or names); empty: every cluster")
	expires := fs.String("expires", "", `create: an age after which the token stops working ("90d", "12h"); empty: never`)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *dsn == "" {
		return errors.New("-database-url (or RUNTRUST_DATABASE_URL) is required")
	}
	if verb != "list" && *name == "" {
		return errors.New("-name is required")
	}
	t := store.APIToken{Name: *name, Role: *role, CreatedBy: cliActor()}
	if verb == "create" {
		if *role != store.RoleViewer && *role != store.RoleAdmin {
			return fmt.Errorf("-role %q is not viewer or admin", *role)
		}
		if *clusters != "" {
			for _, c := range strings.Split(*clusters, ",") {
				if c = strings.TrimSpace(c); c != "" {
					t.Clusters = append(t.Clusters, c)
				}
			}
		}
		if *expires != "" {
			d, err := config.ParseDuration(*expires)
			if err != nil || d <= 0 {
				return fmt.Errorf("-expires %q is not a positive age (\"90d\", \"12h\")", *expires)
			}
			at := time.Now().Add(d).UTC()
			t.ExpiresAt = &at
		}
	}
	ctx, st, done, err := openStore(*dsn)
	if err != nil {
		return err
	}
	defer done()
	switch verb {
	case "create":
		secret, err := st.CreateAPIToken(ctx, t)
		if err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditEntry{Actor: t.CreatedBy, ActorKind: "cli", Action: "token.create", Target: t.Name,
			Detail: map[string]any{"role": t.Role, "clusters": t.Clusters, "expires_at": t.ExpiresAt}}); err != nil {
			return err
		}
		// The secret alone on stdout's last line, so a script can take it; it is shown this once.
		_, err = fmt.Fprintf(out, "created API token %q (%s, clusters: %s); its secret, shown once:\n%s\n", t.Name, t.Role, clusterList(t.Clusters), secret)
		return err
	case "revoke":
		if err := st.RevokeAPIToken(ctx, t.Name); err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditEntry{Actor: t.CreatedBy, ActorKind: "cli", Action: "token.revoke", Target: t.Name}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "revoked API token %q: its next use is refused\n", t.Name)
		return err
	}
	ts, err := st.ListAPITokens(ctx)
	if err != nil {
		return err
	}
	for _, x := range ts {
		last := "never used"
		if x.LastUsed != nil {
			last = "last used " + x.LastUsed.UTC().Format(time.RFC3339)
		}
		if _, err := fmt.Fprintf(out, "%s\t%s\tclusters: %s\tby %s\t%s\n", x.Name, x.Role, clusterList(x.Clusters), x.CreatedBy, last); err != nil {
			return err
		}
	}
	return nil
}

func clusterList(cs []string) string {
	if cs == nil {
		return "all"
	}
	return strings.Join(cs, ",")
}

// cliActor names the operator in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli:unknown"
}
