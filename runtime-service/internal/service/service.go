// Package service wires the runtime service together: the database (a DSN, or a local PostgreSQL it owns),
// the store, the gRPC ingest, the HTTP API with health, readiness and metrics, periodic maintenance, and a
// shutdown that lets in-flight batches commit.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runtrust/runtrust/internal/localpg"
	"github.com/runtrust/runtrust/runtime-service/internal/api"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/ui"
	"github.com/runtrust/runtrust/runtime-service/internal/vulnscan"
)

// DatabaseName is the database the service uses on its local PostgreSQL.
const DatabaseName = "runtrust"

// MaintenanceInterval is how often partitions are created ahead and expired ones dropped.
const MaintenanceInterval = time.Hour

// Addrs are the addresses the service listens on, once it does.
type Addrs struct{ GRPC, HTTP string }

// Run runs the service until ctx is cancelled, then shuts down gracefully. ready, if not nil, receives the
// listening addresses once the service accepts calls.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, ready chan<- Addrs) error {
	dsn := cfg.DatabaseURL
	if dsn == "" {
		pg, localDSN, err := startLocalPostgres(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := pg.Stop(stopCtx); err != nil {
				log.Error("stopping the local PostgreSQL", "error", err)
			} else {
				log.Info("local PostgreSQL stopped")
			}
		}()
		dsn = localDSN
	}
	st, err := store.Open(ctx, dsn, store.Options{Retention: cfg.Retention, SensorStaleAfter: cfg.SensorStaleAfter})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SeedJoinKeys(ctx, cfg.JoinKeys); err != nil {
		return err
	}
	tlsCfg, err := cfg.TLS.TLSConfig()
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := ingest.NewMetrics(reg)
	partitionsDropped := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "runtrust_store_partitions_dropped_total", Help: "Raw event partitions dropped for retention."})
	reg.MustRegister(partitionsDropped)

	grpcLis, err := net.Listen("tcp", cfg.GRPCListen)
	if err != nil {
		return fmt.Errorf("gRPC listen on %s: %w", cfg.GRPCListen, err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("HTTP listen on %s: %w", cfg.HTTPListen, err)
	}
	grpcSrv := ingest.NewServer(st, log, cfg.Limits, metrics).GRPCServer(tlsCfg)

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/api/", api.New(st, log))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		pingCtx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(pingCtx); err != nil {
			http.Error(w, "database unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/", ui.Handler()) // the web UI: "/" and its assets under /ui/
	// gzip for the API's JSON and the UI (net/http compresses nothing itself); handlers that encode on their own pass through.
	httpSrv := &http.Server{Handler: ui.Compress(mux), ReadHeaderTimeout: 10 * time.Second}

	// Registry correlation (issue #8): list each configured registry at start and on its interval, in the
	// background; a registry that is down is recorded as such and retried, it never stops the service.
	// Configuring no registries still runs New, which marks registries dropped from the file as unconfigured.
	cor, err := correlate.New(ctx, st, cfg.Registries, log, correlate.NewMetrics(reg), nil)
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		return err
	}
	corCtx, stopCor := context.WithCancel(context.Background())
	corDone := make(chan struct{})
	go func() {
		defer close(corDone)
		cor.Run(corCtx)
	}()
	defer func() { stopCor(); <-corDone }()

	stopScan, err := startScanner(st, cfg, log, reg)
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		return err
	}
	defer stopScan()

	errs := make(chan error, 2)
	go func() { errs <- grpcSrv.Serve(grpcLis) }()
	go func() {
		if err := httpSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	maintCtx, stopMaint := context.WithCancel(context.Background())
	maintDone := make(chan struct{})
	go func() {
		defer close(maintDone)
		maintain(maintCtx, st, log, partitionsDropped)
	}()
	log.Info("runtime service ready", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"database", redact(dsn), "retention", cfg.Retention.String(), "tls", tlsCfg != nil)
	if ready != nil {
		ready <- Addrs{GRPC: grpcLis.Addr().String(), HTTP: httpLis.Addr().String()}
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight batches", "timeout", cfg.ShutdownTimeout.String())
	case runErr = <-errs:
		log.Error("a listener failed; shutting down", "error", runErr)
	}
	draining.Store(true)
	stopMaint()
	<-maintDone
	// GracefulStop stops accepting calls and waits for the running ones: an Export returns only after its
	// transaction committed, so every batch acknowledged is stored. Past the timeout, calls are cut off; their
	// clients get an error and retry.
	stopped := make(chan struct{})
	go func() { grpcSrv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("shutdown timeout: cutting off in-flight gRPC calls")
		grpcSrv.Stop()
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = httpSrv.Shutdown(shutCtx)
	log.Info("runtime service stopped")
	return runErr
}

// startScanner starts the vulnerability work (issue #17) in the background when a database is configured, and
// returns what stops it.
func startScanner(st *store.Store, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (func(), error) {
	v := cfg.Vulnerabilities
	if len(v.Databases) == 0 {
		log.Info("vulnerability scanning off: no -vulnerability-db configured (docs/vulnerabilities.md)")
		return func() {}, nil
	}
	sc, err := vulnscan.New(st, vulnscan.Options{Databases: v.Databases, Registries: cfg.Registries, Interval: v.Interval,
		Concurrency: v.Concurrency, Window: v.Window, Platform: v.Platform}, log, vulnscan.NewMetrics(reg))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc.Run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}

func maintain(ctx context.Context, st *store.Store, log *slog.Logger, dropped prometheus.Counter) {
	t := time.NewTicker(MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := st.MaintainPartitions(ctx); err != nil {
			log.Error("partition maintenance", "error", err)
		}
		names, err := st.DropExpiredPartitions(ctx)
		if err != nil {
			log.Error("dropping expired partitions", "error", err)
		}
		if len(names) > 0 {
			dropped.Add(float64(len(names)))
			log.Info("dropped expired event partitions", "partitions", names)
		}
		if n, err := st.ExpireIdempotencyKeys(ctx, ingest.IdempotencyKeyTTL); err != nil {
			log.Error("expiring idempotency keys", "error", err)
		} else if n > 0 {
			log.Debug("expired idempotency keys", "count", n)
		}
	}
}

// startLocalPostgres runs the embedded default: a PostgreSQL from the installed binaries in cfg.PGDataDir
// (initdb on first run, fsync on), with the service's database created once.
func startLocalPostgres(ctx context.Context, cfg config.Config, log *slog.Logger) (*localpg.Server, string, error) {
	pg, err := localpg.New(ctx, localpg.Options{Dir: cfg.PGDataDir, BinDir: cfg.PGBinDir, Port: cfg.PGPort, Durable: true})
	if err != nil {
		return nil, "", fmt.Errorf("local PostgreSQL (no -database-url given): %w", err)
	}
	if err := pg.Start(ctx); err != nil {
		return nil, "", fmt.Errorf("local PostgreSQL (no -database-url given): %w", err)
	}
	log.Info("local PostgreSQL started", "dir", pg.Dir(), "port", pg.Port())
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		_ = pg.Stop(context.Background())
		return nil, "", fmt.Errorf("local PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", DatabaseName).Scan(&exists); err != nil {
		_ = pg.Stop(context.Background())
		return nil, "", fmt.Errorf("local PostgreSQL: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+DatabaseName); err != nil {
			_ = pg.Stop(context.Background())
			return nil, "", fmt.Errorf("local PostgreSQL: create database %s: %w", DatabaseName, err)
		}
	}
	return pg, pg.DSN(DatabaseName), nil
}

// redact hides a DSN's password for logs.
func redact(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
