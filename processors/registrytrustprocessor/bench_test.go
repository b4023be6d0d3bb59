package registrytrustprocessor

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/runtrust/runtrust/internal/logstest"
	"github.com/runtrust/runtrust/internal/records"
)

const benchBatch = 1000

// benchLogs builds a batch of container records like the inventory receiver's: a mix of trusted, mirrored,
// untrusted, mutable and pinned images over 50 distinct references.
func benchLogs() plog.Logs {
	images := []string{
		"registry.corp.example/shop/green-burrito:1.4.%d",
		"registry.corp.example/shop/cart:latest",
		"ghcr.io/acme/api-%d:2.0",
		"nginx:1.%d",
		"quay.io/evil/miner%d",
		"eu.artifactory.corp.example/docker/team/app@sha256:" + repeat("ab", 32),
		"localhost:5000/app:%d",
		"gcr.io/distroless/static:nonroot",
		"bitnami/redis:7.%d",
		"registry.corp.example:5000/x/y:%d",
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, "prod-eu-1")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < benchBatch; i++ {
		img := images[i%len(images)]
		if containsVerb(img) {
			img = fmt.Sprintf(img, (i/len(images))%5)
		}
		a := logstest.AppendInventoryContainer(lrs, i, img)
		a.PutStr(records.AttrContainerID, repeat("0f", 32))
		a.PutStr(records.AttrImageRunningDigest, "sha256:"+repeat("cd", 32))
	}
	return ld
}

func containsVerb(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && s[i+1] == 'd' {
			return true
		}
	}
	return false
}

func benchConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.TrustedRegistries = []string{
		"registry.corp.example", "registry.corp.example:5000", "ghcr.io/acme", "*.artifactory.corp.example",
		"localhost:5000", "mirror.corp.example/dockerhub/library", "gcr.io/distroless", "registry.k8s.io",
		"public.ecr.aws/eks", "mcr.microsoft.com/dotnet",
	}
	cfg.Mirrors = []MirrorConfig{{Source: "docker.io", Mirror: "mirror.corp.example/dockerhub"}}
	return cfg
}

func benchmarkProcessor(b *testing.B, cfg *Config) {
	p, err := newTrustProcessor(cfg, componenttest.NewNopTelemetrySettings())
	if err != nil {
		b.Fatal(err)
	}
	logstest.BenchBatches(b, benchLogs(), p.processLogs)
}

// BenchmarkListRules: 10 trusted_registries entries and one mirror, no OTTL.
func BenchmarkListRules(b *testing.B) {
	benchmarkProcessor(b, benchConfig())
}

// BenchmarkOTTLConditions: the same lists plus 5 OTTL conditions, all evaluated on every record (none matches,
// the worst case for an OR sequence).
func BenchmarkOTTLConditions(b *testing.B) {
	cfg := benchConfig()
	cfg.Policy = PolicyConfig{
		TrustedWhen: []string{
			`resource.attributes["k8s.cluster.name"] == "sandbox"`,
			`attributes["k8s.namespace.name"] == "ci-scratch"`,
			`IsMatch(attributes["runtrust.image.ref"], "^registry\\.k8s\\.io/")`,
		},
		UntrustedWhen: []string{
			`attributes["k8s.namespace.name"] == "payments" and attributes["runtrust.image.tag_mutable"] == true`,
			`attributes["runtrust.registry.host"] == "docker.io"`,
		},
	}
	benchmarkProcessor(b, cfg)
}
