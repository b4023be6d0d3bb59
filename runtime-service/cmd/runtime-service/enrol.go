package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
)

// enrol spends a join key for a collector's token and writes it to a file. A token already in the file that the
// service still accepts is kept, so running it again (every `make run`) is harmless.
func enrol(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("runtime-service enrol", flag.ContinueOnError)
	fs.SetOutput(out)
	server := fs.String("server", envOr(getenv, "RUNTRUST_SERVER", "localhost:4319"), "the service's gRPC address (env RUNTRUST_SERVER)")
	joinKey := fs.String("join-key", getenv("RUNTRUST_JOIN_KEY"), "a join key the service accepts for this cluster (env RUNTRUST_JOIN_KEY)")
	uid := fs.String("cluster-uid", envOr(getenv, "RUNTRUST_CLUSTER_UID", ""), "the cluster's uid (env RUNTRUST_CLUSTER_UID)")
	name := fs.String("cluster-name", envOr(getenv, "RUNTRUST_CLUSTER_NAME", ""), "the cluster's name (env RUNTRUST_CLUSTER_NAME)")
	collectorID := fs.String("collector-id", envOr(getenv, "RUNTRUST_COLLECTOR_ID", ""),
		`which collector of the cluster the token is for, e.g. "controller" or a node name (env RUNTRUST_COLLECTOR_ID); empty: "legacy", the one token a cluster had before per-collector tokens`)
	tokenFile := fs.String("token-file", "", "where to write the token (mode 0600); required")
	caFile := fs.String("tls-ca", "", "PEM CA of the service's certificate; empty: plaintext")
	wait := fs.Duration("wait", 60*time.Second, "how long to wait for the service to come up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tokenFile == "" || *uid == "" {
		return errors.New("-token-file and -cluster-uid are required")
	}
	creds := insecure.NewCredentials()
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", *caFile)
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *wait)
	defer cancel()

	if b, err := os.ReadFile(*tokenFile); err == nil {
		token := strings.TrimSpace(string(b))
		// An empty export checks the token without storing anything.
		err := retryUnavailable(ctx, func() error {
			_, err := plogotlp.NewGRPCClient(conn).Export(
				metadata.AppendToOutgoingContext(ctx, ingest.AuthorizationHeader, "Bearer "+token), plogotlp.NewExportRequest())
			return err
		})
		if err == nil {
			fmt.Fprintf(out, "the token in %s is still valid\n", *tokenFile)
			return nil
		}
		if status.Code(err) != codes.Unauthenticated {
			return fmt.Errorf("checking the token in %s: %w", *tokenFile, err)
		}
		fmt.Fprintf(out, "the token in %s is no longer valid; enrolling again\n", *tokenFile)
	}
	if *joinKey == "" {
		return errors.New("-join-key is required to enrol")
	}
	var resp *runtrustv1.EnrolResponse
	err = retryUnavailable(ctx, func() error {
		var err error
		resp, err = runtrustv1.NewClusterServiceClient(conn).Enrol(ctx, &runtrustv1.EnrolRequest{
			JoinKey: *joinKey, ClusterUid: *uid, ClusterName: *name, CollectorId: *collectorID})
		return err
	})
	if err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(*tokenFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(*tokenFile, []byte(resp.GetToken()+"\n"), 0o600); err != nil {
		return err
	}
	who := *collectorID
	if who == "" {
		who = "legacy"
	}
	fmt.Fprintf(out, "cluster %s collector %s enrolled; token written to %s\n", *uid, who, *tokenFile)
	return nil
}

// retryUnavailable retries f while the service is not up yet.
func retryUnavailable(ctx context.Context, f func() error) error {
	for {
		err := f()
		if status.Code(err) != codes.Unavailable {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}
