// Package service wires the runtime service together: the database (a DSN, or a local PostgreSQL it owns),
// the store, the gRPC ingest, the HTTP API with health, readiness and metrics, periodic maintenance, and a
// shutdown that lets in-flight batches commit.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/runtrust/runtrust/internal/localpg"
	"github.com/runtrust/runtrust/internal/periodic"
	"github.com/runtrust/runtrust/runtime-service/internal/api"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/drift"
	"github.com/runtrust/runtrust/runtime-service/internal/driftcheck"
	"github.com/runtrust/runtrust/runtime-service/internal/entitlement"
	"github.com/runtrust/runtrust/runtime-service/internal/httpmw"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/metadata"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/policywatch"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
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
	svc := New(cfg, log)
	if err := svc.Start(ctx); err != nil {
		return err
	}
	if ready != nil {
		ready <- svc.Addrs()
	}
	err := svc.Wait(ctx)
	_ = svc.Shutdown(context.Background()) // each step that fails says so in the log
	return err
}

// Service is the running service's parts. Start starts them in one order (database, store, listeners,
// background work, serving, maintenance) and Shutdown stops them in the reverse: each part is recorded with what
// stops it as it starts, so a Start that fails half-way stops only what it started.
type Service struct {
	cfg config.Config
	log *slog.Logger

	// The policy files' watchers (policies.go); nil without the file.
	placementWatch  *policywatch.Watcher[*placement.Policy]
	provenanceWatch *policywatch.Watcher[*provenance.Policy]
	driftWatch      *policywatch.Watcher[*drift.Policy]

	addrs    Addrs
	draining atomic.Bool // readiness answers 503 from the start of Shutdown
	failed   chan error  // a listener's error
	stages   []stage     // in start order
}

// stage is one started part and what stops it.
type stage struct {
	name string
	stop func(ctx context.Context) error
}

// New returns the service for cfg; nothing runs until Start.
func New(cfg config.Config, log *slog.Logger) *Service {
	return &Service{cfg: cfg, log: log, failed: make(chan error, 2)}
}

// started records a part Start started and what stops it.
func (s *Service) started(name string, stop func(ctx context.Context) error) {
	s.stages = append(s.stages, stage{name, stop})
}

// Addrs are the listening addresses, once Start returned.
func (s *Service) Addrs() Addrs { return s.addrs }

// Start starts the service; when it returns nil the service accepts calls. On an error what it started is
// stopped again.
func (s *Service) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = s.Shutdown(context.Background())
		}
	}()
	if err := s.loadPolicies(); err != nil { // policies.go
		return err
	}
	dsn, err := s.startDatabase(ctx)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, dsn, store.Options{Retention: s.cfg.Retention, SensorStaleAfter: s.cfg.SensorStaleAfter,
		Entitlement: s.cfg.NodeEntitlement, Placement: s.placementPolicy()})
	if err != nil {
		return err
	}
	s.started("store", func(context.Context) error { st.Close(); return nil })
	// The placement policy as loaded now decides every live container again (and with none, the decisions of
	// an earlier one are removed); from here on ingest decides what it changes.
	if err := st.EvaluatePlacement(ctx, nil); err != nil {
		return err
	}
	if err := st.SeedJoinKeys(ctx, s.cfg.JoinKeys); err != nil {
		return err
	}
	tlsCfg, err := s.cfg.TLS.TLSConfig()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	grpcLis, httpLis, err := s.listen()
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		// The HTTP API and UI take the same certificate; browsers bring no client certificate, so the
		// collectors' mTLS stays on gRPC.
		httpLis = tls.NewListener(httpLis, &tls.Config{Certificates: tlsCfg.Certificates, MinVersion: tls.VersionTLS12})
	}
	grpcSrv := ingest.NewServer(st, s.log, s.cfg.Limits, ingest.NewMetrics(reg)).GRPCServer(tlsCfg)
	// Connection-level errors (TLS handshakes, bad requests) go to the service's log at debug, not stderr.
	drift, err := s.newDrift(st)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: s.routes(st, reg, drift), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	if err := s.startBackground(ctx, st, reg, drift); err != nil {
		return err
	}
	s.serveHTTP(httpSrv, httpLis)
	s.serveGRPC(grpcSrv, grpcLis)
	s.startMaintenance(st, reg)
	s.addrs = Addrs{GRPC: grpcLis.Addr().String(), HTTP: httpLis.Addr().String()}
	s.log.Info("runtime service ready", "grpc", s.addrs.GRPC, "http", s.addrs.HTTP,
		"database", redact(dsn), "retention", s.cfg.Retention.String(), "tls", tlsCfg != nil, "auth", string(s.cfg.AuthMode), "sign_in", s.cfg.OIDC != nil,
		"node_entitlement", entitlementText(s.cfg.NodeEntitlement), "placement_rules", placementRules(st.Placement()),
		"policy_reload_interval", reloadText(s.cfg.PolicyReloadInterval))
	if s.cfg.AuthMode == auth.ModeNone {
		s.log.Warn("HTTP API and UI WITHOUT AUTHENTICATION (development mode: a loopback address and no -auth): " +
			"anyone on this machine can read every cluster's inventory and act as an admin; set -auth tokens to require API tokens (docs/security.md)")
	}
	return nil
}

// Wait blocks until ctx is cancelled (the caller's signal to stop) or a listener fails, and returns the
// listener's error.
func (s *Service) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		s.log.Info("shutting down: draining in-flight batches", "timeout", s.cfg.ShutdownTimeout.String())
		return nil
	case err := <-s.failed:
		s.log.Error("a listener failed; shutting down", "error", err)
		return err
	}
}

// Shutdown stops what Start started, in the reverse order: readiness fails at once, maintenance stops, the gRPC
// ingest drains its in-flight batches (within the configured shutdown timeout), then HTTP, the background work,
// the store and a local PostgreSQL. A step that fails is logged and the others still run.
func (s *Service) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	var errs []error
	for i := len(s.stages) - 1; i >= 0; i-- {
		st := s.stages[i]
		if err := st.stop(ctx); err != nil {
			s.log.Error("stopping "+st.name, "error", err)
			errs = append(errs, fmt.Errorf("stop %s: %w", st.name, err))
		}
	}
	s.stages = nil
	if s.addrs != (Addrs{}) { // it had started
		s.log.Info("runtime service stopped")
	}
	return errors.Join(errs...)
}

// startDatabase returns the configured DSN, or starts the local PostgreSQL when none is configured.
func (s *Service) startDatabase(ctx context.Context) (string, error) {
	if s.cfg.DatabaseURL != "" {
		return s.cfg.DatabaseURL, nil
	}
	pg, dsn, err := startLocalPostgres(ctx, s.cfg, s.log)
	if err != nil {
		return "", err
	}
	s.started("local PostgreSQL", func(ctx context.Context) error {
		stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := pg.Stop(stopCtx); err != nil {
			return err
		}
		s.log.Info("local PostgreSQL stopped")
		return nil
	})
	return dsn, nil
}

func (s *Service) listen() (grpcLis, httpLis net.Listener, err error) {
	grpcLis, err = net.Listen("tcp", s.cfg.GRPCListen)
	if err != nil {
		return nil, nil, fmt.Errorf("gRPC listen on %s: %w", s.cfg.GRPCListen, err)
	}
	httpLis, err = net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		grpcLis.Close()
		return nil, nil, fmt.Errorf("HTTP listen on %s: %w", s.cfg.HTTPListen, err)
	}
	// Until they serve, the listeners are closed with the stages; serving takes them over.
	s.started("listeners", func(context.Context) error {
		grpcLis.Close()
		httpLis.Close()
		return nil
	})
	return grpcLis, httpLis, nil
}

// routes is the HTTP surface: the API, metrics, health and readiness, and the web UI, all behind gzip
// (net/http compresses nothing itself; handlers that encode on their own pass through).
func (s *Service) routes(st *store.Store, reg *prometheus.Registry, drift *driftcheck.Checker) http.Handler {
	mux := http.NewServeMux()
	a := s.withPolicyFiles(api.New(st, s.log, auth.New(st, s.cfg.AuthMode)).WithProvenance(s.provenancePolicy))
	if drift != nil {
		a = a.WithDrift(drift.Building)
	}
	mux.Handle("/api/", a)
	if s.cfg.OIDC != nil {
		auth.NewSignIn(*s.cfg.OIDC, st, s.log).Register(mux)
	} else {
		mux.HandleFunc("/auth/", auth.SignInNotConfigured)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
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
	return httpmw.Gzip(mux)
}

// newDrift returns the exact drift checker (docs/drift.md), nil with -drift off. It is made before the API, which
// asks it which images are being indexed, and started with the background work.
func (s *Service) newDrift(st *store.Store) (*driftcheck.Checker, error) {
	d := s.cfg.Drift
	if !d.Enabled {
		s.log.Info("drift off (-drift off; docs/drift.md)")
		return nil, nil
	}
	// An image index is read for the platform -sbom-platform names, as the SBOM work reads it.
	var platform v1.Platform
	if p := s.cfg.Vulnerabilities.Platform; p != "" {
		pp, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("drift platform: %w", err)
		}
		platform = *pp
	}
	opts := driftcheck.Options{Policy: d.Policy, Registries: s.cfg.Registries, Limits: d.Limits, Interval: d.Interval, Platform: platform}
	if s.driftWatch != nil {
		opts.Current = s.driftWatch.Current // the rules in force, which a reload of -drift-file replaces
	}
	return driftcheck.New(st, opts, s.log)
}

// startBackground starts registry correlation, exact drift and vulnerability scanning.
func (s *Service) startBackground(ctx context.Context, st *store.Store, reg prometheus.Registerer, drift *driftcheck.Checker) error {
	// Registry correlation (issue #8): list each configured registry at start and on its interval, in the
	// background; a registry that is down is recorded as such and retried, it never stops the service.
	// Configuring no registries still runs New, which marks registries dropped from the file as unconfigured.
	cor, err := correlate.New(ctx, st, s.cfg.Registries, s.log, correlate.NewMetrics(reg), nil)
	if err != nil {
		return err
	}
	// Placement rules that select by a label or take their places from one: read the running artifacts'
	// annotations and labels, and Artifactory registries' properties with each listing (docs/placement.md).
	// With a placement file that is reloaded, the reader runs whatever the rules now, idle while the rules in
	// force read no labels, since an edit may add a rule that does.
	cor.ReadProperties(s.readsProperties(st.Placement()))
	if st.Placement().NeedsLabels() || (s.placementWatch != nil && s.reloading()) {
		s.started("artifact labels", runInBackground(metadata.New(st, metadata.Options{Registries: s.cfg.Registries,
			Active: func() bool { return st.Placement().NeedsLabels() }}, s.log).Run))
	}
	if pol := s.provenancePolicy(); pol != nil {
		// Signatures and build provenance of the running digests (docs/provenance.md); Artifactory's build.name and
		// build.number properties, read with each listing, name the build beside them. Each pass takes the
		// policy in force, which a reload of -provenance-file replaces.
		s.started("signatures and provenance", runInBackground(provenance.New(st,
			provenance.Options{Policy: pol, Current: s.provenancePolicy, Registries: s.cfg.Registries}, s.log).Run))
	}
	if drift != nil {
		// Exact drift (docs/drift.md): each running image's layers indexed once from its registry, and every
		// program its containers ran judged against them.
		s.started("drift", runInBackground(drift.Run))
	}
	s.started("registry correlation", runInBackground(cor.Run))
	s.startPolicyReload(st, cor) // policies.go
	sc, err := newScanner(st, s.cfg, s.log, reg)
	if err != nil || sc == nil {
		return err
	}
	s.started("vulnerability scanning", runInBackground(sc.Run))
	return nil
}

// runInBackground runs fn until the returned stop cancels it and waits for it to return.
func runInBackground(fn func(ctx context.Context)) func(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func(context.Context) error { cancel(); <-done; return nil }
}

// newScanner returns the vulnerability work (issue #17) when a database is configured, else nil.
func newScanner(st *store.Store, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*vulnscan.Scanner, error) {
	v := cfg.Vulnerabilities
	if len(v.Databases) == 0 {
		log.Info("vulnerability scanning off: no -vulnerability-db configured (docs/vulnerabilities.md)")
		return nil, nil
	}
	return vulnscan.New(st, vulnscan.Options{Databases: v.Databases, Registries: cfg.Registries, Interval: v.Interval,
		Concurrency: v.Concurrency, Window: v.Window, Platform: v.Platform}, log, vulnscan.NewMetrics(reg))
}

func (s *Service) serveHTTP(srv *http.Server, lis net.Listener) {
	go func() {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			s.failed <- err
		}
	}()
	s.started("HTTP", func(ctx context.Context) error {
		shutCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx) // past the timeout, connections are left to close with the process
		return nil
	})
}

func (s *Service) serveGRPC(srv *grpc.Server, lis net.Listener) {
	go func() { s.failed <- srv.Serve(lis) }()
	s.started("gRPC ingest", func(ctx context.Context) error {
		// GracefulStop stops accepting calls and waits for the running ones: an Export returns only after its
		// transaction committed, so every batch acknowledged is stored. Past the timeout, calls are cut off;
		// their clients get an error and retry.
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		timeout := time.NewTimer(s.cfg.ShutdownTimeout)
		defer timeout.Stop()
		select {
		case <-stopped:
		case <-timeout.C:
			s.log.Warn("shutdown timeout: cutting off in-flight gRPC calls")
			srv.Stop()
		case <-ctx.Done():
			s.log.Warn("shutdown cancelled: cutting off in-flight gRPC calls")
			srv.Stop()
		}
		return nil
	})
}

// startMaintenance runs the store's retention pass every MaintenanceInterval.
func (s *Service) startMaintenance(st *store.Store, reg prometheus.Registerer) {
	dropped := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "runtrust_store_partitions_dropped_total", Help: "Raw event partitions dropped for retention."})
	reg.MustRegister(dropped)
	s.started("maintenance", runInBackground(func(ctx context.Context) {
		periodic.Every(ctx, MaintenanceInterval, func(ctx context.Context) {
			pass, err := st.Retain(ctx, ingest.IdempotencyKeyTTL)
			if err != nil {
				s.log.Error("store retention", "error", err)
			}
			if len(pass.DroppedPartitions) > 0 {
				dropped.Add(float64(len(pass.DroppedPartitions)))
				s.log.Info("dropped expired event partitions", "partitions", pass.DroppedPartitions)
			}
			if pass.ExpiredHosts > 0 {
				s.log.Info("host containers no sensor describes any more marked gone", "count", pass.ExpiredHosts,
					"after", store.HostContainerTTL)
			}
			if pass.ExpiredKeys > 0 {
				s.log.Debug("expired idempotency keys", "count", pass.ExpiredKeys)
			}
		})
	}))
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

// entitlementText is the node entitlement for the start log line.
func entitlementText(n entitlement.Nodes) string {
	if !n.Limited() {
		return "unlimited"
	}
	return n.String()
}

// placementRules says how many placement rules are in force, for the start log line.
func placementRules(p *placement.Policy) int {
	if p == nil {
		return 0
	}
	return len(p.Rules)
}
