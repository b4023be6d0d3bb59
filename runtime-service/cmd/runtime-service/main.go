// Command runtime-service is the runtrust runtime service: every cluster's collector reports to it over gRPC
// (OTLP logs plus runtrust.v1 enrolment and heartbeats), it keeps the picture in Postgres, and serves it as JSON.
// With no database configured it runs its own PostgreSQL. `runtime-service -h` lists every setting.
//
// `runtime-service enrol` is the client side of enrolment, for scripts (make run uses it): it enrols one collector
// of a cluster (-collector-id) with a join key and writes its token to a file, or keeps the file when the token in
// it still works. `runtime-service revoke` deletes one collector of a cluster from the database (a node that is
// gone, a token that leaked), so its token stops working. `runtime-service token create|list|revoke` manages
// the API tokens of the HTTP API (docs/security.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/service"
)

// subcommands run instead of the service; each parses its own flags. enrol reports on stderr (its output is the
// token file), revoke on stdout.
var subcommands = map[string]struct {
	run func(args []string, getenv func(string) string, out io.Writer) error
	out io.Writer
}{
	"enrol":  {enrol, os.Stderr},
	"revoke": {revoke, os.Stdout},
	"token":  {token, os.Stdout},
}

func main() {
	if len(os.Args) > 1 {
		if sc, ok := subcommands[os.Args[1]]; ok {
			if err := sc.run(os.Args[2:], os.Getenv, sc.out); err != nil {
				if errors.Is(err, config.ErrHelp) {
					os.Exit(0)
				}
				fmt.Fprintf(os.Stderr, "runtime-service %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	cfg, err := config.Parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, config.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runtime-service:", err)
		os.Exit(2)
	}
	log := newLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, service.New(cfg, log)); err != nil {
		log.Error("runtime service failed", "error", err)
		os.Exit(1)
	}
}

// run starts svc, waits for SIGINT or SIGTERM (ctx) or a listener's failure, and shuts svc down gracefully.
func run(ctx context.Context, svc *service.Service) error {
	if err := svc.Start(ctx); err != nil {
		return err
	}
	err := svc.Wait(ctx)
	_ = svc.Shutdown(context.Background()) // each step that fails says so in the log
	return err
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
