package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// revoke deletes one collector of a cluster from the service's database, so its token stops working: the node is
// gone, or the token leaked. It talks to PostgreSQL, not to the service: it is an operator's command, run where
// the service's database is reachable.
func revoke(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("runtime-service revoke", flag.ContinueOnError)
	fs.SetOutput(out)
	dsn := fs.String("database-url", getenv("RUNTRUST_DATABASE_URL"), "the service's Postgres DSN (env RUNTRUST_DATABASE_URL); required")
	cluster := fs.String("cluster", "", "the cluster's uid, or its name when no other cluster has it; required")
	collectorID := fs.String("collector-id", "", `the collector to revoke, as the cluster view lists it: "controller", a node name, or "legacy"; required`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *dsn == "" || *cluster == "" || *collectorID == "" {
		return errors.New("-database-url, -cluster and -collector-id are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, *dsn, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
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
