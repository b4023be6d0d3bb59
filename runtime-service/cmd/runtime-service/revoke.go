package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// revoke deletes one collector of a cluster from the service's database, so its token stops working (the node is
// gone, or the token leaked), or retires a join key so it enrols nothing more (it leaked). It talks to
// PostgreSQL, not to the service: it is an operator's command, run where the service's database is reachable.
func revoke(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("runtime-service revoke", flag.ContinueOnError)
	fs.SetOutput(out)
	dsn := fs.String("database-url", getenv("RUNTRUST_DATABASE_URL"), "the service's Postgres DSN (env RUNTRUST_DATABASE_URL); required")
	cluster := fs.String("cluster", "", "the cluster's uid, or its name when no other cluster has it; required")
	collectorID := fs.String("collector-id", "", `the collector to revoke, as the cluster view lists it: "controller", a node name, or "legacy"; required`)
	joinKey := fs.String("join-key", "", "instead: retire this join key, so it enrols no collector any more (the tokens it issued keep working)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case *dsn == "":
		return errors.New("-database-url (or RUNTRUST_DATABASE_URL) is required")
	case *joinKey != "" && (*cluster != "" || *collectorID != ""):
		return errors.New("-join-key retires a key; -cluster with -collector-id revokes a collector: give one or the other")
	case *joinKey == "" && (*cluster == "" || *collectorID == ""):
		return errors.New("-cluster and -collector-id are required (or -join-key)")
	}
	ctx, st, done, err := openStore(*dsn)
	if err != nil {
		return err
	}
	defer done()
	if *joinKey != "" {
		uid, err := st.RetireJoinKey(ctx, *joinKey)
		if err != nil {
			return err
		}
		bound := "it had enrolled no cluster"
		if uid != "" {
			bound = "it was bound to cluster " + uid + ", whose collectors keep their tokens (revoke them one by one if they leaked too)"
		}
		_, err = fmt.Fprintf(out, "retired the join key: it enrols nothing any more; %s. Remove it from the service's -join-key too, "+
			"or the next start adds it again\n", bound)
		return err
	}
	r, err := st.RevokeCollector(ctx, *cluster, *collectorID)
	if err != nil {
		return err
	}
	last := "never"
	if r.HeartbeatAt != nil {
		last = r.HeartbeatAt.UTC().Format(time.RFC3339)
	}
	_, err = fmt.Fprintf(out, "revoked collector %q of cluster %s (%s), last heartbeat %s: its token stops working within 10 s; "+
		"with the cluster's join key it can enrol again\n", r.CollectorID, r.ClusterName, r.ClusterUID, last)
	return err
}
