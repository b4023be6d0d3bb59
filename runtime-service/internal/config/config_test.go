package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/drift"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance/provenancetest"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCListen != "localhost:4319" || c.HTTPListen != "localhost:8080" || c.DatabaseURL != "" || c.PGDataDir != ".run/pg" ||
		c.Retention != 10*24*time.Hour || c.Limits.MaxRequestBytes != 8<<20 || c.Limits.RecordsPerSecond != 20000 ||
		c.Limits.Burst != 100000 || c.LogFormat != "json" || c.ShutdownTimeout != 30*time.Second || len(c.JoinKeys) != 0 ||
		c.NodeEntitlement.Limited() || c.PolicyReloadInterval != 10*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if d := c.Drift; !d.Enabled || d.Policy == nil || d.File != "" || d.Interval != 30*time.Second ||
		d.Limits.MaxBytes != drift.DefaultLimits().MaxBytes || d.Limits.MaxFiles != drift.DefaultLimits().MaxFiles {
		t.Fatalf("drift defaults: %+v", d)
	}
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	c, err := Parse([]string{"-retention", "36h"}, env(map[string]string{
		"RUNTRUST_RETENTION": "3d", "RUNTRUST_HTTP_LISTEN": ":9090", "RUNTRUST_AUTH": "tokens", "RUNTRUST_JOIN_KEYS": "0123456789abcdef, fedcba9876543210,",
		"RUNTRUST_MAX_REQUEST_BYTES": "512KiB", "RUNTRUST_NODE_ENTITLEMENT": "50,prod-eu=3",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention != 36*time.Hour || c.HTTPListen != ":9090" || len(c.JoinKeys) != 2 || c.JoinKeys[1] != "fedcba9876543210" || c.Limits.MaxRequestBytes != 512<<10 ||
		c.NodeEntitlement.For("u1", "prod-eu") != 3 || c.NodeEntitlement.For("u2", "dev") != 50 {
		t.Fatalf("%+v", c)
	}
	c, err = Parse([]string{"-node-entitlement", "lab=2"}, env(map[string]string{"RUNTRUST_NODE_ENTITLEMENT": "50,prod-eu=3"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeEntitlement.For("u", "lab") != 2 || c.NodeEntitlement.For("u", "prod-eu") != 0 {
		t.Fatalf("the flag's entitlement replaces the variable's: %+v", c.NodeEntitlement)
	}
}

func TestErrorsNameTheSettingAndItsSource(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-retention", "forever"}, nil, `-retention: retention: "forever" is not a duration`},
		{nil, map[string]string{"RUNTRUST_RETENTION": "10m"}, "RUNTRUST_RETENTION: retention 10m is outside 1h to 3650d"},
		{[]string{"-grpc-listen", "4319"}, nil, `grpc-listen "4319" is not host:port`},
		{[]string{"-database-url", "mysql:x"}, nil, "neither a postgres:// URL"},
		{[]string{"-pg-port", "70000"}, nil, "pg-port"},
		{[]string{"-join-key", "short"}, nil, "16 to 256 characters"},
		{[]string{"-join-key", "0123456789abcdef\x01"}, nil, "printable ASCII"},
		{[]string{"-max-request-bytes", "8MB"}, nil, `"8MB" is not a size`},
		{[]string{"-max-request-bytes", "1B"}, nil, "outside 1KiB to 256MiB"},
		{[]string{"-rate", "0"}, nil, "rate"},
		{[]string{"-rate", "NaN"}, nil, "rate"},
		{[]string{"-burst", "-1"}, nil, "burst"},
		{[]string{"-log-level", "loud"}, nil, "log-level"},
		{[]string{"-log-format", "xml"}, nil, "log-format"},
		{[]string{"-tls-cert", "c.pem"}, nil, "TLS needs both"},
		{[]string{"-tls-client-ca", "ca.pem"}, nil, "needs -tls-cert"},
		{[]string{"stray"}, nil, `unexpected argument "stray"`},
		{[]string{"-nope"}, nil, "flag provided but not defined"},
		{[]string{"-registries-file", "/nonexistent/registries.yaml"}, nil, "registries file: open /nonexistent/registries.yaml"},
		{[]string{"-sensor-stale-after", "0s"}, nil, "sensor-stale-after"},
		{[]string{"-oidc-file", "/nonexistent/oidc.yaml"}, nil, "needs -auth tokens"},
		{[]string{"-auth", "tokens", "-oidc-file", "/nonexistent/oidc.yaml"}, nil, "OIDC file: open /nonexistent/oidc.yaml"},
		{[]string{"-node-entitlement", "50,prod-eu=three"}, nil, `-node-entitlement: node-entitlement entry "prod-eu=three": "three" is not a whole number of nodes`},
		{nil, map[string]string{"RUNTRUST_NODE_ENTITLEMENT": "prod=1,prod=2"}, `RUNTRUST_NODE_ENTITLEMENT: node-entitlement entry "prod=2": cluster "prod" is given twice`},
		{nil, map[string]string{"RUNTRUST_SENSOR_STALE_AFTER": "soon"}, "RUNTRUST_SENSOR_STALE_AFTER: sensor-stale-after \"soon\""},
		{[]string{"-drift", "maybe"}, nil, `-drift: drift "maybe" is not on or off`},
		{[]string{"-policy-reload-interval", "500ms"}, nil, `-policy-reload-interval: policy-reload-interval "500ms" is not 0 or a duration from 1s to 24h`},
		{nil, map[string]string{"RUNTRUST_POLICY_RELOAD_INTERVAL": "often"}, `RUNTRUST_POLICY_RELOAD_INTERVAL: policy-reload-interval "often" is not 0 or a duration`},
		{[]string{"-policy-reload-interval", "25h"}, nil, `policy-reload-interval "25h" is not 0 or a duration from 1s to 24h`},
		{nil, map[string]string{"RUNTRUST_DRIFT_INTERVAL": "10ms"}, `RUNTRUST_DRIFT_INTERVAL: drift-interval "10ms" is not a duration from 1s to 24h`},
		{[]string{"-drift-max-bytes", "1KiB"}, nil, "drift-max-bytes 1KiB is below 1MiB"},
		{[]string{"-drift-max-bytes", "lots"}, nil, `drift-max-bytes: "lots" is not a size`},
		{[]string{"-drift-max-files", "0"}, nil, `drift-max-files "0" is not a number of files`},
		{[]string{"-drift", "off", "-drift-file", "/etc/drift.yaml"}, nil, "-drift-file needs -drift on"},
		{[]string{"-drift-file", "/nonexistent/drift.yaml"}, nil, "drift file: open /nonexistent/drift.yaml"},
	}
	for _, c := range cases {
		_, err := Parse(c.args, env(c.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, %v) = %v; want an error containing %q", c.args, c.env, err, c.want)
		}
	}
}

func TestRegistriesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(p, []byte("registries:\n- {name: corp, kind: oci, url: reg.example, auth: {username: u, password_env: PW}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]string{"-sensor-stale-after", "2m"}, env(map[string]string{"RUNTRUST_REGISTRIES_FILE": p, "PW": "pw"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Registries) != 1 || c.Registries[0].Auth.Password != "pw" || c.SensorStaleAfter != 2*time.Minute {
		t.Fatalf("%+v", c)
	}
	if err := os.WriteFile(p, []byte("registries:\n- {name: corp, kind: oci}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(nil, env(map[string]string{"RUNTRUST_REGISTRIES_FILE": p}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "registries[0].url: missing") {
		t.Fatalf("bad file: %v", err)
	}
}

func TestPolicyReloadInterval(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want time.Duration
	}{
		{nil, nil, 10 * time.Second},
		{[]string{"-policy-reload-interval", "1s"}, nil, time.Second},
		{nil, map[string]string{"RUNTRUST_POLICY_RELOAD_INTERVAL": "2m"}, 2 * time.Minute},
		{[]string{"-policy-reload-interval", "30s"}, map[string]string{"RUNTRUST_POLICY_RELOAD_INTERVAL": "2m"}, 30 * time.Second},
		// 0 turns reloading off: the files are read at start only.
		{[]string{"-policy-reload-interval", "0"}, nil, 0},
		{nil, map[string]string{"RUNTRUST_POLICY_RELOAD_INTERVAL": "0s"}, 0},
		{[]string{"-policy-reload-interval", "24h"}, nil, 24 * time.Hour},
	} {
		got, err := Parse(c.args, env(c.env), io.Discard)
		if err != nil || got.PolicyReloadInterval != c.want {
			t.Errorf("Parse(%q, %v): %v, %v; want %v", c.args, c.env, got.PolicyReloadInterval, err, c.want)
		}
	}
}

func TestPlacementFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "placement.yaml")
	if err := os.WriteFile(p, []byte("rules:\n- {name: shop, match: {repository: 'shop/*'}, allow: [prod/shop]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(nil, env(map[string]string{"RUNTRUST_PLACEMENT_FILE": p}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.PlacementFile != p || c.Placement == nil || len(c.Placement.Rules) != 1 || c.Placement.Rules[0].Name != "shop" {
		t.Fatalf("%+v", c.Placement)
	}
	if err := os.WriteFile(p, []byte("rules:\n- {name: shop, allow: [a/b/c]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]string{"-placement-file", p}, env(nil), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "placement file "+p+": rules[0] (shop).allow[0]: \"a/b/c\"") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := Parse([]string{"-placement-file", "/nonexistent/placement.yaml"}, env(nil), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "placement file: open /nonexistent/placement.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestProvenanceFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "provenance.yaml")
	if err := os.WriteFile(p, []byte("rules:\n- {name: shop, match: {repository: 'shop/*'}, keys: [release.pub]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The key file is read relative to the policy file; missing, the error names the rule, the field and the file.
	if _, err := Parse(nil, env(map[string]string{"RUNTRUST_PROVENANCE_FILE": p}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "provenance file "+p+": rules[0] (shop).keys[0]: open "+filepath.Join(dir, "release.pub")) {
		t.Fatalf("missing key: %v", err)
	}
	provenancetest.NewKey(t).WritePublic(t, dir, "release.pub")
	c, err := Parse([]string{"-provenance-file", p}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProvenanceFile != p || c.Provenance == nil || len(c.Provenance.Rules) != 1 || len(c.Provenance.Rules[0].Keys) != 1 {
		t.Fatalf("%+v", c.Provenance)
	}
}

func TestDriftSettings(t *testing.T) {
	p := filepath.Join(t.TempDir(), "drift.yaml")
	if err := os.WriteFile(p, []byte("rules:\n  - {image: 'reg.example/ci/*'}\nseverity: {added: medium}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]string{"-drift-file", p, "-drift-max-bytes", "512MiB"}, env(map[string]string{"RUNTRUST_DRIFT_INTERVAL": "2m",
		"RUNTRUST_DRIFT_MAX_FILES": "5000"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Drift
	if !d.Enabled || d.Interval != 2*time.Minute || d.Limits.MaxBytes != 512<<20 || d.Limits.MaxFiles != 5000 {
		t.Fatalf("%+v", d)
	}
	if j := d.Policy.Judge(drift.Added, []string{"reg.example/ci/runner"}, "/tmp/x"); j.AllowedBy != "image reg.example/ci/*" {
		t.Errorf("rules not loaded: %+v", j)
	}
	if j := d.Policy.Judge(drift.Added, nil, "/tmp/x"); j.Severity != "medium" {
		t.Errorf("severity not loaded: %+v", j)
	}
	if c, err := Parse([]string{"-drift", "off"}, env(nil), io.Discard); err != nil || c.Drift.Enabled || c.Drift.Policy != nil {
		t.Fatalf("off: %+v %v", c.Drift, err)
	}
	if err := os.WriteFile(p, []byte("rules:\n  - {image: a, path: b}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(nil, env(map[string]string{"RUNTRUST_DRIFT_FILE": p}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "drift file "+p+": rules[0]: want exactly one of image") {
		t.Fatalf("bad file: %v", err)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var out strings.Builder
	_, err := Parse([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), s.env) || !strings.Contains(out.String(), "-"+s.flag) {
			t.Errorf("-h does not mention -%s / %s", s.flag, s.env)
		}
	}
}

func TestParseDurationAndSize(t *testing.T) {
	for in, want := range map[string]time.Duration{"10d": 240 * time.Hour, "0d": 0, "90m": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1.5d", "10 d", "1e9d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int64{"1024": 1024, "8MiB": 8 << 20, "1GiB": 1 << 30, "0B": 0} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1TiB", "99999999999GiB", "8 MiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

// FuzzParse: any flag value and any environment value either parse into a config within its bounds or give an
// error; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range settings {
		f.Add(s.flag, s.def, s.env, s.def)
	}
	f.Add("retention", "99999999d", "RUNTRUST_RATE", "1e308")
	f.Add("max-request-bytes", "9223372036854775807B", "RUNTRUST_PG_PORT", "-0")
	f.Fuzz(func(t *testing.T, flagName, flagValue, envName, envValue string) {
		c, err := Parse([]string{"-" + flagName + "=" + flagValue}, env(map[string]string{envName: envValue}), io.Discard)
		if err != nil {
			return
		}
		if c.Retention < time.Hour || c.Limits.MaxRequestBytes < 1<<10 || c.Limits.RecordsPerSecond <= 0 || c.Limits.Burst < 1 ||
			c.PGPort < 0 || c.PGPort > 65535 || c.ShutdownTimeout < 0 || c.SensorStaleAfter < 0 ||
			c.Drift.Interval < time.Second || c.Drift.Limits.MaxBytes < 1<<20 || c.Drift.Limits.MaxFiles < 1 || (c.Drift.Enabled && c.Drift.Policy == nil) {
			t.Fatalf("out of bounds: %+v", c)
		}
		for _, k := range c.JoinKeys {
			if len(k) < 16 {
				t.Fatalf("short join key %q", k)
			}
		}
	})
}
