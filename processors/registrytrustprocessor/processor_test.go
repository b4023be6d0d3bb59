package registrytrustprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/runtrust/runtrust/internal/logstest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/processors/registrytrustprocessor/internal/metadata"
)

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.TrustedRegistries = []string{"registry.corp.example", "ghcr.io/acme", "*.artifactory.corp.example", "localhost:5000"}
	cfg.Mirrors = []MirrorConfig{{Source: "docker.io", Mirror: "mirror.corp.example/dockerhub"}}
	cfg.TrustedRegistries = append(cfg.TrustedRegistries, "mirror.corp.example/dockerhub/library")
	return cfg
}

// run sends the records build makes through a processor built by the factory and returns the records' attributes.
func run(t *testing.T, cfg *Config, build func(plog.Logs)) []map[string]any {
	t.Helper()
	return runWith(t, processortest.NewNopSettings(metadata.Type), cfg, build)
}

// runWith is run with the processor's settings given (its telemetry, say).
func runWith(t *testing.T, set processor.Settings, cfg *Config, build func(plog.Logs)) []map[string]any {
	t.Helper()
	p, sink := logstest.StartProcessor(t, NewFactory(), set, cfg)
	ld := plog.NewLogs()
	build(ld)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	return logstest.Attributes(sink.AllLogs()...)
}

func containerRecord(ld plog.Logs, image string, extra map[string]any) {
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(records.EventK8sContainer)
	lr.Attributes().PutStr(records.AttrContainerImageName, image)
	_ = lr.Attributes().FromRaw(merge(lr.Attributes().AsRaw(), extra))
}

func merge(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func TestAnnotatesImages(t *testing.T) {
	digest := "sha256:" + repeat("ab", 32)
	tests := []struct {
		image       string
		ref         string
		host        string
		pullRef     string // "" when no mirror applies
		trusted     bool
		mutable     bool
		wantUntrust bool
	}{
		{image: "registry.corp.example/shop/green-burrito:1.4.2", ref: "registry.corp.example/shop/green-burrito:1.4.2", host: "registry.corp.example", trusted: true},
		{image: "registry.corp.example/shop/green-burrito:latest", ref: "registry.corp.example/shop/green-burrito:latest", host: "registry.corp.example", trusted: true, mutable: true},
		{image: "registry.corp.example/shop/green-burrito", ref: "registry.corp.example/shop/green-burrito:latest", host: "registry.corp.example", trusted: true, mutable: true},
		{image: "registry.corp.example/shop/green-burrito:latest@" + digest, ref: "registry.corp.example/shop/green-burrito:latest@" + digest, host: "registry.corp.example", trusted: true},
		{image: "ghcr.io/acme/api:2", ref: "ghcr.io/acme/api:2", host: "ghcr.io", trusted: true},
		{image: "ghcr.io/acme-evil/api:2", ref: "ghcr.io/acme-evil/api:2", host: "ghcr.io", wantUntrust: true},
		{image: "eu.artifactory.corp.example/docker/x:stable", ref: "eu.artifactory.corp.example/docker/x:stable", host: "eu.artifactory.corp.example", trusted: true, mutable: true},
		{image: "localhost:5000/app:1", ref: "localhost:5000/app:1", host: "localhost:5000", trusted: true},
		{image: "localhost:5001/app:1", ref: "localhost:5001/app:1", host: "localhost:5001", wantUntrust: true},
		{image: "nginx:1.25", ref: "docker.io/library/nginx:1.25", host: "mirror.corp.example", pullRef: "mirror.corp.example/dockerhub/library/nginx:1.25", trusted: true},
		{image: "bitnami/redis:7", ref: "docker.io/bitnami/redis:7", host: "mirror.corp.example", pullRef: "mirror.corp.example/dockerhub/bitnami/redis:7", wantUntrust: true},
		{image: "quay.io/evil/miner", ref: "quay.io/evil/miner:latest", host: "quay.io", mutable: true, wantUntrust: true},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			got := run(t, testConfig(), func(ld plog.Logs) { containerRecord(ld, tt.image, nil) })
			require.Len(t, got, 1)
			a := got[0]
			assert.Equal(t, tt.ref, a[records.AttrImageRef])
			assert.Equal(t, tt.host, a[records.AttrRegistryHost])
			assert.Equal(t, tt.trusted, a[records.AttrRegistryTrusted])
			assert.Equal(t, tt.mutable, a[records.AttrImageTagMutable])
			if tt.pullRef != "" {
				assert.Equal(t, tt.pullRef, a[records.AttrImagePullRef])
			} else {
				assert.NotContains(t, a, records.AttrImagePullRef)
			}
			if tt.wantUntrust {
				assert.Equal(t, records.SeverityHigh, a[records.AttrRiskSeverity])
				reasons, _ := a[records.AttrRiskReasons].([]any)
				require.Len(t, reasons, 1)
				assert.Contains(t, reasons[0], records.ReasonUntrustedRegistry+": registry \""+tt.host+"\"")
			} else {
				assert.NotContains(t, a, records.AttrRiskSeverity)
				assert.NotContains(t, a, records.AttrRiskReasons)
			}
		})
	}
}

func TestRecordsWithoutImagePassUntouched(t *testing.T) {
	got := run(t, testConfig(), func(ld plog.Logs) {
		lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName(records.EventK8sNode)
		lr.Attributes().PutStr(records.AttrK8sNodeName, "node-1")
		lr2 := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
		lr2.Attributes().PutStr(records.AttrContainerImageName, "")
	})
	require.Len(t, got, 2)
	assert.Equal(t, map[string]any{records.AttrK8sNodeName: "node-1"}, got[0])
	assert.Equal(t, map[string]any{records.AttrContainerImageName: ""}, got[1])
}

func TestInvalidReferenceIsMarkedNotDropped(t *testing.T) {
	got := run(t, testConfig(), func(ld plog.Logs) {
		containerRecord(ld, "Registry.corp.example/Shop/App:1", nil)
		containerRecord(ld, "registry.corp.example/shop/app:1", nil)
	})
	require.Len(t, got, 2)
	assert.Contains(t, got[0][records.AttrImageRefError], "lowercase")
	assert.NotContains(t, got[0], records.AttrImageRef)
	assert.NotContains(t, got[0], records.AttrRegistryTrusted)
	assert.Equal(t, true, got[1][records.AttrRegistryTrusted])
}

func TestImageFromTagsAndResource(t *testing.T) {
	got := run(t, testConfig(), func(ld plog.Logs) {
		// Semantic-convention style: name without tag, tags beside it.
		lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Attributes().PutStr(records.AttrContainerImageName, "ghcr.io/acme/api")
		lr.Attributes().PutEmptySlice(records.AttrContainerImageTags).AppendEmpty().SetStr("3.1")
		// The image on the resource, as a k8sattributes processor would put it.
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(records.AttrContainerImageName, "localhost:5000/app")
		rl.Resource().Attributes().PutEmptySlice(records.AttrContainerImageTags).AppendEmpty().SetStr("latest")
		rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetEventName(records.EventProcessExec)
	})
	require.Len(t, got, 2)
	assert.Equal(t, "ghcr.io/acme/api:3.1", got[0][records.AttrImageRef])
	assert.Equal(t, false, got[0][records.AttrImageTagMutable])
	assert.Equal(t, "localhost:5000/app:latest", got[1][records.AttrImageRef])
	assert.Equal(t, true, got[1][records.AttrImageTagMutable])
	assert.Equal(t, true, got[1][records.AttrRegistryTrusted])
}

func TestSeverityOnlyRises(t *testing.T) {
	got := run(t, testConfig(), func(ld plog.Logs) {
		containerRecord(ld, "quay.io/evil/miner:1", map[string]any{
			records.AttrRiskSeverity: records.SeverityCritical,
			records.AttrRiskReasons:  []any{"digest_mismatch: earlier finding"},
		})
	})
	assert.Equal(t, records.SeverityCritical, got[0][records.AttrRiskSeverity])
	assert.Len(t, got[0][records.AttrRiskReasons], 2)
}

func TestPolicy(t *testing.T) {
	cfg := testConfig()
	cfg.Policy = PolicyConfig{
		TrustedWhen:   []string{`resource.attributes["k8s.cluster.name"] == "sandbox"`},
		UntrustedWhen: []string{`attributes["k8s.namespace.name"] == "payments" and attributes["runtrust.image.tag_mutable"] == true`},
	}
	got := run(t, cfg, func(ld plog.Logs) {
		// 0: untrusted registry, but the sandbox cluster is trusted by policy.
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, "sandbox")
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Attributes().PutStr(records.AttrContainerImageName, "quay.io/someone/tool:1")
		// 1: trusted registry, but a moving tag in payments is untrusted by policy.
		containerRecord(ld, "registry.corp.example/pay/api:latest", map[string]any{records.AttrK8sNamespaceName: "payments"})
		// 2: the same image pinned in payments: the policy does not match.
		containerRecord(ld, "registry.corp.example/pay/api:1.0", map[string]any{records.AttrK8sNamespaceName: "payments"})
		// 3: untrusted wins over trusted: sandbox cluster, payments namespace, moving tag.
		rl = ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, "sandbox")
		lr = rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Attributes().PutStr(records.AttrContainerImageName, "quay.io/someone/tool")
		lr.Attributes().PutStr(records.AttrK8sNamespaceName, "payments")
	})
	require.Len(t, got, 4)
	assert.Equal(t, true, got[0][records.AttrRegistryTrusted])
	assert.NotContains(t, got[0], records.AttrRiskSeverity)

	assert.Equal(t, false, got[1][records.AttrRegistryTrusted])
	assert.Equal(t, records.SeverityHigh, got[1][records.AttrRiskSeverity])
	assert.Contains(t, got[1][records.AttrRiskReasons].([]any)[0], records.ReasonUntrustedByPolicy)

	assert.Equal(t, true, got[2][records.AttrRegistryTrusted])
	assert.NotContains(t, got[2], records.AttrRiskSeverity)

	assert.Equal(t, false, got[3][records.AttrRegistryTrusted])
	assert.Contains(t, got[3][records.AttrRiskReasons].([]any)[0], records.ReasonUntrustedByPolicy)
}

func TestPolicyEvalErrorCountsAsNoMatch(t *testing.T) {
	cfg := testConfig()
	// Comparing a string attribute with > on an int is an evaluation error on records that carry it.
	cfg.Policy.TrustedWhen = []string{`Int(attributes["k8s.namespace.name"]) > 3`}
	got := run(t, cfg, func(ld plog.Logs) {
		containerRecord(ld, "quay.io/evil/miner:1", map[string]any{records.AttrK8sNamespaceName: "not-a-number"})
	})
	require.Len(t, got, 1)
	assert.Equal(t, false, got[0][records.AttrRegistryTrusted])
}

func TestMirrorRewrite(t *testing.T) {
	cfg := testConfig()
	cfg.Mirrors = []MirrorConfig{
		{Source: "docker.io/library", Mirror: "mirror.corp.example:5000"},
		{Source: "quay.io", Mirror: "mirror.corp.example/quay"},
	}
	got := run(t, cfg, func(ld plog.Logs) {
		containerRecord(ld, "nginx:1", nil)
		containerRecord(ld, "quay.io/prometheus/node-exporter:v1", nil)
		containerRecord(ld, "gcr.io/x/y:1", nil)
	})
	assert.Equal(t, "mirror.corp.example:5000/nginx:1", got[0][records.AttrImagePullRef])
	assert.Equal(t, "mirror.corp.example:5000", got[0][records.AttrRegistryHost])
	assert.Equal(t, "mirror.corp.example/quay/prometheus/node-exporter:v1", got[1][records.AttrImagePullRef])
	assert.NotContains(t, got[2], records.AttrImagePullRef)
}

func repeat(s string, n int) string {
	out := make([]byte, 0, len(s)*n)
	for i := 0; i < n; i++ {
		out = append(out, s...)
	}
	return string(out)
}

var _ = pcommon.NewMap
