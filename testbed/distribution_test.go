package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/runtrust/runtrust/internal/records"
)

// TestDistributionRegistryTrust runs the built otelcol-runtrust with otlp → registrytrust → file, sends OTLP
// logs over gRPC with real image references, and checks the findings in the file the exporter wrote.
func TestDistributionRegistryTrust(t *testing.T) {
	col := StartFilePipeline(t, `
  registrytrust:
    trusted_registries: [registry.corp.example, "ghcr.io/acme", "*.artifactory.corp.example", "mirror.corp.example/dockerhub/library"]
    mirrors:
      - source: docker.io
        mirror: mirror.corp.example/dockerhub
    policy:
      untrusted_when:
        - attributes["k8s.namespace.name"] == "payments" and attributes["runtrust.image.tag_mutable"] == true`,
		"registrytrust")

	digest := "sha256:" + strings.Repeat("5e", 32)
	type sent struct {
		image, namespace string
	}
	batch := []sent{
		{"registry.corp.example/shop/green-burrito:1.4.2", "shop"},
		{"registry.corp.example/pay/api:latest", "payments"},
		{"nginx:1.25", "web"},
		{"bitnami/redis:7.2", "cache"},
		{"quay.io/evil/miner", "default"},
		{"eu.artifactory.corp.example/docker/app@" + digest, "shop"},
		{"Registry.corp.example/Shop/App:1", "shop"},
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, "e2e")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, s := range batch {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventK8sContainer)
		lr.Attributes().PutStr(records.AttrContainerImageName, s.image)
		lr.Attributes().PutStr(records.AttrK8sNamespaceName, s.namespace)
	}
	// A record without an image passes untouched.
	node := lrs.AppendEmpty()
	node.SetEventName(records.EventK8sNode)
	node.Attributes().PutStr(records.AttrK8sNodeName, "node-1")

	SendLogs(t, col.Endpoint, ld)
	got := WaitForRecords(t, col.File, len(batch)+1, 30*time.Second)
	if len(got) != len(batch)+1 {
		t.Fatalf("got %d records, want %d", len(got), len(batch)+1)
	}

	type want struct {
		ref, host, pullRef string
		trusted, mutable   bool
		severity, reason   string
	}
	wants := []want{
		{ref: "registry.corp.example/shop/green-burrito:1.4.2", host: "registry.corp.example", trusted: true},
		{ref: "registry.corp.example/pay/api:latest", host: "registry.corp.example", mutable: true, severity: "high", reason: records.ReasonUntrustedByPolicy},
		{ref: "docker.io/library/nginx:1.25", host: "mirror.corp.example", pullRef: "mirror.corp.example/dockerhub/library/nginx:1.25", trusted: true},
		{ref: "docker.io/bitnami/redis:7.2", host: "mirror.corp.example", pullRef: "mirror.corp.example/dockerhub/bitnami/redis:7.2", severity: "high", reason: records.ReasonUntrustedRegistry},
		{ref: "quay.io/evil/miner:latest", host: "quay.io", mutable: true, severity: "high", reason: records.ReasonUntrustedRegistry},
		{ref: "eu.artifactory.corp.example/docker/app@" + digest, host: "eu.artifactory.corp.example", trusted: true},
	}
	for i, w := range wants {
		a := got[i].Attrs
		check := func(key string, wantVal any) {
			t.Helper()
			if a[key] != wantVal {
				t.Errorf("record %d (%s): %s = %v, want %v", i, batch[i].image, key, a[key], wantVal)
			}
		}
		if got[i].Resource[records.AttrK8sClusterName] != "e2e" {
			t.Errorf("record %d lost its resource: %v", i, got[i].Resource)
		}
		check(records.AttrImageRef, w.ref)
		check(records.AttrRegistryHost, w.host)
		check(records.AttrRegistryTrusted, w.trusted)
		check(records.AttrImageTagMutable, w.mutable)
		if w.pullRef != "" {
			check(records.AttrImagePullRef, w.pullRef)
		}
		if w.severity == "" {
			if _, ok := a[records.AttrRiskSeverity]; ok {
				t.Errorf("record %d (%s): unexpected risk %v %v", i, batch[i].image, a[records.AttrRiskSeverity], a[records.AttrRiskReasons])
			}
			continue
		}
		check(records.AttrRiskSeverity, w.severity)
		reasons, _ := a[records.AttrRiskReasons].([]any)
		if len(reasons) != 1 || !strings.HasPrefix(fmt.Sprint(reasons[0]), w.reason+": ") {
			t.Errorf("record %d (%s): reasons = %v, want one %q", i, batch[i].image, reasons, w.reason)
		}
	}
	invalid := got[len(batch)-1].Attrs
	if e, _ := invalid[records.AttrImageRefError].(string); !strings.Contains(e, "lowercase") {
		t.Errorf("invalid reference: %s = %q, want a reason about lowercase", records.AttrImageRefError, e)
	}
	if _, ok := invalid[records.AttrImageRef]; ok {
		t.Errorf("invalid reference got a normalized ref: %v", invalid)
	}
	if len(got[len(batch)].Attrs) != 1 {
		t.Errorf("record without image was changed: %v", got[len(batch)].Attrs)
	}
	if !strings.Contains(col.Output(), "invalid image reference") {
		t.Errorf("the invalid reference was not logged:\n%s", col.Output())
	}
}

// TestDistributionRejectsBadConfig: a typo in the processor's config stops the collector at start, and the
// message names the field.
func TestDistributionRejectsBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, path, `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
processors:
  registrytrust:
    trusted_registries: ["https://registry.corp.example"]
    untrusted_severity: severe
exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [registrytrust]
      exporters: [debug]
`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := RunCollector(ctx, t, "validate", "--config", path)
	if err == nil {
		t.Fatalf("validate accepted a bad config:\n%s", out)
	}
	for _, want := range []string{"trusted_registries[0]", "URL scheme", "untrusted_severity", `"severe"`} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

// shippedConfigEnv is what each shipped config reads from the environment, as make run (local) and the Helm
// chart (controller, sensor; deploy/ checks the chart's own rendering) provide it.
var shippedConfigEnv = map[string]map[string]string{
	"local": {"RUNTRUST_CLUSTER_TOKEN": "validate-only-token-0123456789abcdef"},
	"controller": {
		"RUNTRUST_CLUSTER_NAME":              "prod-eu-1",
		"RUNTRUST_CLUSTER_UID":               "6a0c1f7e-0000-4000-8000-000000000001",
		"RUNTRUST_SERVICE_ENDPOINT":          "runtime-service.runtrust.svc:4319",
		"RUNTRUST_JOIN_KEY":                  "validate-only-join-key-0123456789",
		"RUNTRUST_TRUSTED_REGISTRIES":        `["registry.corp.example","ghcr.io/acme"]`,
		"RUNTRUST_EXCLUDE_NAMESPACES":        `["kube-system"]`,
		"RUNTRUST_MIRRORS":                   `[{"source":"docker.io","mirror":"mirror.corp.example/dockerhub"}]`,
		"RUNTRUST_SERVICE_INSECURE":          "true",
		"RUNTRUST_SNAPSHOT_INTERVAL":         "30m",
		"RUNTRUST_QUEUE_SIZE":                "750000",
		"RUNTRUST_CHECK_UNLISTED_REGISTRIES": "false",
	},
	"sensor": {
		"K8S_NODE_NAME":             "node-1",
		"RUNTRUST_CLUSTER_NAME":     "prod-eu-1",
		"RUNTRUST_SERVICE_ENDPOINT": "runtime-service.runtrust.svc:4319",
		"RUNTRUST_CLUSTER_TOKEN":    "rtc_validate_only_token",
		"RUNTRUST_CONTAINERS_ONLY":  "false",
	},
}

// TestShippedConfigsValidate: every collector config under distributions/ is accepted by the built binary, so a
// config that `make run` or an install uses cannot rot unnoticed.
func TestShippedConfigsValidate(t *testing.T) {
	configs, err := filepath.Glob(filepath.Join(repoRoot(t), "distributions", "*", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(configs) == 0 {
		t.Fatal("no distributions/*/config.yaml found")
	}
	for _, path := range configs {
		mode := filepath.Base(filepath.Dir(path))
		t.Run(mode, func(t *testing.T) {
			env, ok := shippedConfigEnv[mode]
			if !ok {
				t.Fatalf("%s: add what it reads from the environment to shippedConfigEnv", path)
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if out, err := RunCollector(ctx, t, "validate", "--config", path); err != nil {
				t.Fatalf("%s does not validate: %v\n%s", path, err, out)
			}
		})
	}
	// make run merges sensor.yaml (as root with BTF) and inventory.yaml (with KUBECONFIG) over the local config and
	// names their receivers in RUNTRUST_LOCAL_RECEIVERS (runtime-service/scripts/run-local.sh).
	t.Run("local with the sensor and the inventory", func(t *testing.T) {
		for k, v := range shippedConfigEnv["local"] {
			t.Setenv(k, v)
		}
		t.Setenv("RUNTRUST_LOCAL_RECEIVERS", "[otlp, runtimesensor, k8sinventory]")
		t.Setenv("RUNTRUST_NODE_NAME", "laptop")
		t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "kubeconfig"))
		local := filepath.Join(repoRoot(t), "distributions", "local")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := RunCollector(ctx, t, "validate", "--config", filepath.Join(local, "config.yaml"),
			"--config", filepath.Join(local, "sensor.yaml"), "--config", filepath.Join(local, "inventory.yaml"))
		if err != nil {
			t.Fatalf("the local config with both overlays does not validate: %v\n%s", err, out)
		}
	})
}

// TestModeConfigsRejectMistakes: each mode's config with its env set, but a typo or a missing setting, is refused
// by `validate` with the mistake named — what an operator editing the config or the chart's values would see.
func TestModeConfigsRejectMistakes(t *testing.T) {
	for _, c := range []struct {
		name, mode string
		edit       func(string) string
		unsetEnv   string
		want       []string
	}{
		{name: "misspelled receiver", mode: "controller",
			edit: func(s string) string { return strings.Replace(s, "\n  k8sinventory:\n", "\n  k8sinventry:\n", 1) },
			want: []string{"k8sinventry"}},
		{name: "unknown registrytrust field", mode: "controller",
			edit: func(s string) string {
				return strings.Replace(s, "  registrytrust:\n", "  registrytrust:\n    trusted_registry: [registry.corp.example]\n", 1)
			},
			want: []string{"registrytrust", "trusted_registry"}},
		{name: "unknown imageintegrity field", mode: "controller",
			edit: func(s string) string {
				return strings.Replace(s, "  imageintegrity:\n", "  imageintegrity:\n    check_unlisted_registry: true\n", 1)
			},
			want: []string{"imageintegrity", "check_unlisted_registry"}},
		{name: "no trusted registries", mode: "controller", unsetEnv: "RUNTRUST_TRUSTED_REGISTRIES",
			want: []string{"registrytrust", "trusted_registries"}},
		{name: "no cluster name", mode: "controller", unsetEnv: "RUNTRUST_CLUSTER_NAME",
			want: []string{"k8sinventory", "cluster_name: required"}},
		{name: "join key without uid", mode: "controller", unsetEnv: "RUNTRUST_CLUSTER_UID",
			want: []string{"exporters::runtime", "cluster_uid: required with join_key"}},
		{name: "misspelled sensor field", mode: "sensor",
			edit: func(s string) string { return strings.Replace(s, "    containers_only:", "    containers_onyl:", 1) },
			want: []string{"runtimesensor", "containers_onyl"}},
		{name: "no node name", mode: "sensor", unsetEnv: "K8S_NODE_NAME",
			want: []string{"runtimesensor", "node_name: empty"}},
		{name: "no token", mode: "sensor", unsetEnv: "RUNTRUST_CLUSTER_TOKEN",
			want: []string{"exporters::runtime", "join_key or token: one is required"}},
	} {
		t.Run(c.mode+" "+c.name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(repoRoot(t), "distributions", c.mode, "config.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			config := string(src)
			if c.edit != nil {
				if config = c.edit(config); config == string(src) {
					t.Fatal("the edit changed nothing: the shipped config no longer has what it replaces")
				}
			}
			path := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, path, config)
			for k, v := range shippedConfigEnv[c.mode] {
				if k != c.unsetEnv {
					t.Setenv(k, v)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := RunCollector(ctx, t, "validate", "--config", path)
			if err == nil {
				t.Fatalf("validate accepted it:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("validate output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
