// Package config reads the runtime service's configuration from flags and environment variables (a flag wins
// over its variable, the variable over the default). -h prints every setting with its variable and default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/runtrust/runtrust/internal/wire"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/drift"
	"github.com/runtrust/runtrust/runtime-service/internal/entitlement"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/vulndb"
)

// Config is the runtime service's configuration.
type Config struct {
	GRPCListen string
	HTTPListen string

	// DatabaseURL is a Postgres DSN. Empty: the service runs its own PostgreSQL in PGDataDir.
	DatabaseURL string
	PGDataDir   string
	PGBinDir    string
	PGPort      int

	JoinKeys  []string
	Retention time.Duration
	TLS       ingest.TLSFiles
	Limits    ingest.Limits

	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration

	// RegistriesFile names the registries to correlate with (internal/correlate); Registries is its content,
	// read and validated by Parse.
	RegistriesFile string
	// Auth is how HTTP calls are authenticated: "tokens", "none", or "" (none on a loopback address; auth.ModeFor).
	Auth string
	// AuthMode is what Auth decides for HTTPListen.
	AuthMode auth.Mode
	// OIDCFile configures sign-in for the UI (auth.LoadOIDCFile); OIDC is its content, read by Parse. Nil: no
	// sign-in, API tokens only.
	OIDCFile   string
	OIDC       *auth.OIDCConfig
	Registries []correlate.Registry
	// PlacementFile is the placement policy (internal/placement; docs/placement.md); Placement is its content,
	// read and checked by Parse. Nil: no policy.
	PlacementFile string
	Placement     *placement.Policy
	// ProvenanceFile is the signature and provenance policy (internal/provenance; docs/provenance.md);
	// Provenance is its content, read and checked by Parse. Nil: signatures and provenance are not checked.
	ProvenanceFile string
	Provenance     *provenance.Policy
	// PolicyReloadInterval is how often the placement, provenance and drift files are polled and, when their
	// content changed and loads, put in force while the service runs (internal/policywatch). Zero: read at
	// start only.
	PolicyReloadInterval time.Duration
	// SensorStaleAfter: a sensor without a health record this long is stale. Zero: three of its intervals.
	SensorStaleAfter time.Duration
	// NodeEntitlement is each cluster's licensed node count: how many nodes' sensors it may enrol
	// (internal/entitlement; docs/runtime-service.md, "Entitlement"). The zero value is unlimited.
	NodeEntitlement entitlement.Nodes

	// Vulnerabilities configures vulnerability scanning of the running images (internal/vulnscan); no
	// database: off.
	Vulnerabilities VulnerabilityConfig

	// Drift configures exact drift (internal/driftcheck; docs/drift.md).
	Drift DriftConfig
}

// DriftConfig is the exact drift part of Config.
type DriftConfig struct {
	Enabled bool
	// File is the allow rules file (drift.LoadFile); Policy is the rules compiled by Parse, the builtin ones
	// only without a file. Nil when drift is off.
	File     string
	Policy   *drift.Policy
	Interval time.Duration
	Limits   drift.Limits
}

// VulnerabilityConfig is the vulnerability scanning part of Config.
type VulnerabilityConfig struct {
	Databases   []vulndb.Config
	Window      time.Duration
	Concurrency int
	Platform    string
	Interval    time.Duration
}

// setInt sets *dst to v, an integer from lo to hi; else the error says name and v are not what.
func setInt(dst *int, name, v string, lo, hi int, what string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("%s %q is not %s", name, v, what)
	}
	*dst = n
	return nil
}

// setDuration sets *dst to v, a duration (ParseDuration) from lo to hi; else the error says name and v are
// not what.
func setDuration(dst *time.Duration, name, v string, lo, hi time.Duration, what string) error {
	d, err := ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return fmt.Errorf("%s %q is not %s", name, v, what)
	}
	*dst = d
	return nil
}

// setting is one flag with its environment variable.
type setting struct {
	flag, env, def, usage string
	apply                 func(c *Config, v string) error
}

var settings = []setting{
	{"grpc-listen", "RUNTRUST_GRPC_LISTEN", "localhost:4319", "address for gRPC: OTLP LogsService and runtrust.v1.ClusterService", func(c *Config, v string) error {
		return setAddr(&c.GRPCListen, "grpc-listen", v)
	}},
	{"http-listen", "RUNTRUST_HTTP_LISTEN", "localhost:8080", "address for HTTP: the JSON API, /healthz, /readyz, /metrics", func(c *Config, v string) error {
		return setAddr(&c.HTTPListen, "http-listen", v)
	}},
	{"auth", "RUNTRUST_AUTH", "", "who may call the HTTP API: tokens (API tokens from `runtime-service token create`, docs/security.md) or none (no authentication; only on a loopback http-listen); empty: none on loopback, else refused", func(c *Config, v string) error {
		if v != "" && v != "none" && v != "tokens" {
			return fmt.Errorf("auth %q is not tokens or none", v)
		}
		c.Auth = v
		return nil
	}},
	{"database-url", "RUNTRUST_DATABASE_URL", "", "Postgres DSN (postgres://user:pass@host:5432/db); empty: run a local PostgreSQL in -pg-data-dir", func(c *Config, v string) error {
		if v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") && !strings.Contains(v, "=") {
			return errors.New("database-url is neither a postgres:// URL nor a key=value DSN")
		}
		c.DatabaseURL = v
		return nil
	}},
	{"pg-data-dir", "RUNTRUST_PG_DATA_DIR", ".run/pg", "directory of the local PostgreSQL (initdb on first run); used without -database-url", func(c *Config, v string) error {
		if v == "" {
			return errors.New("pg-data-dir is empty")
		}
		c.PGDataDir = v
		return nil
	}},
	{"pg-bin-dir", "RUNTRUST_PG_BIN", "", "directory of initdb and pg_ctl; empty: the newest /usr/lib/postgresql/*/bin, else $PATH", func(c *Config, v string) error {
		c.PGBinDir = v
		return nil
	}},
	{"pg-port", "RUNTRUST_PG_PORT", "0", "loopback port of the local PostgreSQL; 0: a free one", func(c *Config, v string) error {
		return setInt(&c.PGPort, "pg-port", v, 0, 65535, "a port number")
	}},
	{"join-key", "RUNTRUST_JOIN_KEYS", "", "join key(s) collectors enrol with, comma-separated (each binds to the first cluster it enrols, then enrols that cluster's collectors only; stored hashed)", func(c *Config, v string) error {
		c.JoinKeys = nil
		for _, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			if err := wire.CheckJoinKey(k); err != nil {
				return fmt.Errorf("a join key %w", err)
			}
			c.JoinKeys = append(c.JoinKeys, k)
		}
		return nil
	}},
	{"retention", "RUNTRUST_RETENTION", "10d", "how long raw events are kept (\"10d\", \"36h\"); whole days of partitions are dropped", func(c *Config, v string) error {
		d, err := ParseDuration(v)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		if d < time.Hour || d > 3650*24*time.Hour {
			return fmt.Errorf("retention %s is outside 1h to 3650d", v)
		}
		c.Retention = d
		return nil
	}},
	{"tls-cert", "RUNTRUST_TLS_CERT", "", "PEM certificate for TLS on gRPC and on the HTTP API and UI", func(c *Config, v string) error { c.TLS.Cert = v; return nil }},
	{"tls-key", "RUNTRUST_TLS_KEY", "", "PEM key of -tls-cert", func(c *Config, v string) error { c.TLS.Key = v; return nil }},
	{"tls-client-ca", "RUNTRUST_TLS_CLIENT_CA", "", "PEM CA that client certificates must chain to (mTLS; needs -tls-cert)", func(c *Config, v string) error { c.TLS.ClientCA = v; return nil }},
	{"max-request-bytes", "RUNTRUST_MAX_REQUEST_BYTES", "8MiB", "largest request a cluster may send, decompressed (\"8MiB\", \"512KiB\")", func(c *Config, v string) error {
		n, err := ParseSize(v)
		if err != nil {
			return fmt.Errorf("max-request-bytes: %w", err)
		}
		if n < 1<<10 || n > 256<<20 {
			return fmt.Errorf("max-request-bytes %s is outside 1KiB to 256MiB", v)
		}
		c.Limits.MaxRequestBytes = int(n)
		return nil
	}},
	{"rate", "RUNTRUST_RATE", "20000", "records per second each cluster may send, sustained", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= 1e9) {
			return fmt.Errorf("rate %q is not a number of records per second above 0", v)
		}
		c.Limits.RecordsPerSecond = f
		return nil
	}},
	{"burst", "RUNTRUST_BURST", "100000", "records a cluster may send at once above its rate", func(c *Config, v string) error {
		return setInt(&c.Limits.Burst, "burst", v, 1, 1e9, "a positive number of records")
	}},
	{"log-level", "RUNTRUST_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return fmt.Errorf("log-level %q is not debug, info, warn or error", v)
	}},
	{"log-format", "RUNTRUST_LOG_FORMAT", "json", "json or text", func(c *Config, v string) error {
		if v != "json" && v != "text" {
			return fmt.Errorf("log-format %q is not json or text", v)
		}
		c.LogFormat = v
		return nil
	}},
	{"oidc-file", "RUNTRUST_OIDC_FILE", "", "YAML file of the OpenID Connect provider users sign in to the UI at and the bindings that give them roles (docs/security.md); needs -auth tokens; empty: API tokens only", func(c *Config, v string) error {
		c.OIDCFile = v
		return nil
	}},
	{"registries-file", "RUNTRUST_REGISTRIES_FILE", "", "YAML file of the registries to list and link to what runs (docs/runtime-service.md); empty: none", func(c *Config, v string) error {
		c.RegistriesFile = v
		return nil
	}},
	{"placement-file", "RUNTRUST_PLACEMENT_FILE", "", "YAML or JSON file of placement rules: where artifacts may run, by registry, repository or registry label (docs/placement.md); empty: none", func(c *Config, v string) error {
		c.PlacementFile = v
		return nil
	}},
	{"provenance-file", "RUNTRUST_PROVENANCE_FILE", "", "YAML or JSON file of the signature and provenance policy: the keys and keyless identities trusted per repository, and whether SLSA provenance is required (docs/provenance.md); empty: not checked", func(c *Config, v string) error {
		c.ProvenanceFile = v
		return nil
	}},
	{"policy-reload-interval", "RUNTRUST_POLICY_RELOAD_INTERVAL", "10s", "how often -placement-file, -provenance-file and -drift-file are read again: a changed file that loads takes effect, one that does not is refused (logged, shown with the policy) and the policy before it stays; 0: read at start only", func(c *Config, v string) error {
		if d, err := ParseDuration(v); err == nil && d == 0 { // "0", "0s": off
			c.PolicyReloadInterval = 0
			return nil
		}
		return setDuration(&c.PolicyReloadInterval, "policy-reload-interval", v, time.Second, 24*time.Hour, "0 or a duration from 1s to 24h")
	}},
	{"sensor-stale-after", "RUNTRUST_SENSOR_STALE_AFTER", "auto", "how long a sensor may send no health record before it is stale; auto: 3 of its own intervals (5m until known)", func(c *Config, v string) error {
		if v == "auto" {
			c.SensorStaleAfter = 0
			return nil
		}
		return setDuration(&c.SensorStaleAfter, "sensor-stale-after", v, time.Second, 30*24*time.Hour, "auto or a duration from 1s to 30d")
	}},
	{"node-entitlement", "RUNTRUST_NODE_ENTITLEMENT", "", "licensed nodes per cluster, comma-separated: a count for every cluster and cluster=count for the cluster of that name or uid (\"50,prod-eu=3\"); a sensor enrolling beyond its cluster's count is refused; 0 or none: unlimited", func(c *Config, v string) error {
		n, err := entitlement.Parse(v)
		c.NodeEntitlement = n
		return err
	}},
	{"vulnerability-db", "RUNTRUST_VULNERABILITY_DB", "", "offline vulnerability database mirror(s) to match running images against, comma-separated kind:path (osv:/mirror/osv for OSV JSON files or all.zip files, trivy:/mirror/trivy.db); empty: no vulnerability scanning", func(c *Config, v string) error {
		dbs, err := parseDatabases(v)
		c.Vulnerabilities.Databases = dbs
		return err
	}},
	{"reachability-window", "RUNTRUST_REACHABILITY_WINDOW", "15m", "how long a sensor must watch an image's container, seeing none of a package's files used, before its findings are not_loaded", func(c *Config, v string) error {
		return setDuration(&c.Vulnerabilities.Window, "reachability-window", v, time.Second, 365*24*time.Hour, "a duration from 1s to 365d")
	}},
	{"sbom-concurrency", "RUNTRUST_SBOM_CONCURRENCY", "2", "SBOMs fetched or generated at once", func(c *Config, v string) error {
		return setInt(&c.Vulnerabilities.Concurrency, "sbom-concurrency", v, 1, 64, "a number from 1 to 64")
	}},
	{"sbom-platform", "RUNTRUST_SBOM_PLATFORM", "linux/amd64", "the platform whose manifest is read when a running digest is a multi-platform index (os/arch[/variant])", func(c *Config, v string) error {
		if parts := strings.Split(v, "/"); len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return fmt.Errorf("sbom-platform %q is not os/arch[/variant]", v)
		}
		c.Vulnerabilities.Platform = v
		return nil
	}},
	{"scan-interval", "RUNTRUST_SCAN_INTERVAL", "15s", "how often the vulnerability work looks for new images, database updates and runtime evidence", func(c *Config, v string) error {
		return setDuration(&c.Vulnerabilities.Interval, "scan-interval", v, 100*time.Millisecond, 24*time.Hour, "a duration from 100ms to 24h")
	}},
	{"drift", "RUNTRUST_DRIFT", "on", "exact drift: index the layers of each running image that executed something, from its registry, and judge every program its containers ran (in_image, modified, added, memory; docs/drift.md); on or off", func(c *Config, v string) error {
		if v != "on" && v != "off" {
			return fmt.Errorf("drift %q is not on or off", v)
		}
		c.Drift.Enabled = v == "on"
		return nil
	}},
	{"drift-file", "RUNTRUST_DRIFT_FILE", "", "YAML or JSON file of drift allow rules: image repository globs and executable path globs whose drift is expected, and optional severities per verdict (docs/drift.md); empty: only runc's own memfd is allowed", func(c *Config, v string) error {
		c.Drift.File = v
		return nil
	}},
	{"drift-interval", "RUNTRUST_DRIFT_INTERVAL", "30s", "how often drift looks for images to index and programs to judge", func(c *Config, v string) error {
		return setDuration(&c.Drift.Interval, "drift-interval", v, time.Second, 24*time.Hour, "a duration from 1s to 24h")
	}},
	{"drift-max-bytes", "RUNTRUST_DRIFT_MAX_BYTES", sizeText(drift.DefaultLimits().MaxBytes), "file content read and hashed per image index, all layers together; past it the index is kept truncated and programs it lacks are unknown", func(c *Config, v string) error {
		n, err := ParseSize(v)
		if err != nil {
			return fmt.Errorf("drift-max-bytes: %w", err)
		}
		if n < 1<<20 {
			return fmt.Errorf("drift-max-bytes %s is below 1MiB", v)
		}
		c.Drift.Limits.MaxBytes = n
		return nil
	}},
	{"drift-max-files", "RUNTRUST_DRIFT_MAX_FILES", strconv.Itoa(drift.DefaultLimits().MaxFiles), "regular files indexed per image; past it the index is kept truncated", func(c *Config, v string) error {
		return setInt(&c.Drift.Limits.MaxFiles, "drift-max-files", v, 1, 100_000_000, "a number of files from 1 to 100000000")
	}},
	{"shutdown-timeout", "RUNTRUST_SHUTDOWN_TIMEOUT", "30s", "how long shutdown waits for in-flight batches to commit", func(c *Config, v string) error {
		return setDuration(&c.ShutdownTimeout, "shutdown-timeout", v, 0, math.MaxInt64, "a duration")
	}},
}

// ErrHelp is returned for -h; the usage has been written.
var ErrHelp = flag.ErrHelp

// Parse reads args (without the program name) and the environment through getenv.
func Parse(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("runtime-service", flag.ContinueOnError)
	fs.SetOutput(usage)
	values := make([]*string, len(settings))
	for i, s := range settings {
		values[i] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
	}
	fs.Usage = func() {
		fmt.Fprintln(usage, "runtime-service: the runtrust runtime service. Every flag can also be set by its environment variable.")
		fmt.Fprintln(usage, "\nUsage: runtime-service [flags]\n       runtime-service enrol [flags]   (enrol a cluster, write its token; -h for its flags)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var c Config
	for i, s := range settings {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if set[s.flag] {
			v = *values[i]
		}
		if err := s.apply(&c, v); err != nil {
			source := "default"
			switch {
			case set[s.flag]:
				source = "-" + s.flag
			case getenv(s.env) != "":
				source = s.env
			}
			return Config{}, fmt.Errorf("%s: %w", source, err)
		}
	}
	if err := checkTLS(c.TLS); err != nil {
		return Config{}, err
	}
	mode, err := auth.ModeFor(c.Auth, c.HTTPListen)
	if err != nil {
		return Config{}, err
	}
	c.AuthMode = mode
	if c.OIDCFile != "" {
		if mode != auth.ModeTokens {
			return Config{}, errors.New("-oidc-file (sign-in) needs -auth tokens: in the no-auth development mode there is nobody to sign in as")
		}
		o, err := auth.LoadOIDCFile(c.OIDCFile, getenv)
		if err != nil {
			return Config{}, err
		}
		c.OIDC = &o
	}
	if c.Retention == 0 {
		c.Retention = store.DefaultRetention
	}
	if c.RegistriesFile != "" {
		regs, err := correlate.LoadFile(c.RegistriesFile, getenv)
		if err != nil {
			return Config{}, err
		}
		c.Registries = regs
	}
	if c.PlacementFile != "" {
		p, err := placement.LoadFile(c.PlacementFile)
		if err != nil {
			return Config{}, err
		}
		c.Placement = p
	}
	if c.ProvenanceFile != "" {
		p, err := provenance.LoadFile(c.ProvenanceFile)
		if err != nil {
			return Config{}, err
		}
		c.Provenance = p
	}
	if err := loadDrift(&c.Drift); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadDrift compiles the drift rules when drift is on.
func loadDrift(d *DriftConfig) error {
	switch {
	case !d.Enabled && d.File != "":
		return errors.New("-drift-file needs -drift on: with drift off no rules apply")
	case !d.Enabled:
		return nil
	case d.File != "":
		p, err := drift.LoadFile(d.File)
		d.Policy = p
		return err
	}
	p, err := drift.Compile(drift.Rules{})
	d.Policy = p
	return err
}

// sizeText writes n as ParseSize reads it, in the largest unit that divides it.
func sizeText(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func setAddr(dst *string, name, v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return fmt.Errorf("%s %q is not host:port", name, v)
	}
	*dst = v
	return nil
}

// ParseDuration reads a Go duration or a whole number of days ("10d").
func ParseDuration(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100000 {
			return 0, fmt.Errorf("%q is not a number of days", v)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (\"36h\", \"10d\")", v)
	}
	return d, nil
}

// ParseSize reads a byte size: a number with an optional B, KiB, MiB or GiB suffix.
func ParseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	num := v
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size (\"8MiB\", \"512KiB\", \"1048576\")", v)
	}
	return n * mult, nil
}

// parseDatabases reads the -vulnerability-db list: kind:path entries, comma-separated.
func parseDatabases(v string) ([]vulndb.Config, error) {
	var out []vulndb.Config
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		kind, path, ok := strings.Cut(e, ":")
		if !ok || path == "" {
			return nil, fmt.Errorf("vulnerability-db entry %q is not kind:path (osv:/mirror/osv, trivy:/mirror/trivy.db)", e)
		}
		if kind != "osv" && kind != "trivy" {
			return nil, fmt.Errorf("vulnerability-db entry %q: kind %q is not osv or trivy", e, kind)
		}
		out = append(out, vulndb.Config{Kind: kind, Path: path})
	}
	return out, nil
}

// checkTLS catches incomplete TLS settings at start; the files themselves are read when the server starts.
func checkTLS(f ingest.TLSFiles) error {
	switch {
	case (f.Cert == "") != (f.Key == ""):
		return errors.New("TLS needs both -tls-cert and -tls-key")
	case f.ClientCA != "" && f.Cert == "":
		return errors.New("-tls-client-ca (mTLS) needs -tls-cert and -tls-key too")
	}
	return nil
}
