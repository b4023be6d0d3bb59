package registrytrustprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/processors/registrytrustprocessor/internal/metadatatest"
)

// TestSelfMetrics: every judged record is counted by its outcome and what decided it, invalid references on their
// own, records without an image not at all.
func TestSelfMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := testConfig()
	cfg.Policy = PolicyConfig{
		TrustedWhen:   []string{`resource.attributes["k8s.cluster.name"] == "sandbox"`},
		UntrustedWhen: []string{`attributes["k8s.namespace.name"] == "payments"`},
	}
	got := runWith(t, metadatatest.NewSettings(tel), cfg, func(ld plog.Logs) {
		containerRecord(ld, "registry.corp.example/shop/cart:1", nil)
		containerRecord(ld, "ghcr.io/acme/api:2", nil)
		containerRecord(ld, "quay.io/evil/miner:1", nil)
		containerRecord(ld, "registry.corp.example/pay/api:1", map[string]any{records.AttrK8sNamespaceName: "payments"})
		containerRecord(ld, "Not A Reference", nil)
		ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes().PutStr("other", "x")
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, "sandbox")
		rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes().PutStr(records.AttrContainerImageName, "quay.io/someone/tool:1")
	})
	require.Len(t, got, 7)

	judged := func(trust, decidedBy string, n int64) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{
			Attributes: attribute.NewSet(attribute.String("trust", trust), attribute.String("decided_by", decidedBy)),
			Value:      n,
		}
	}
	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualProcessorRegistrytrustJudged(t, tel, []metricdata.DataPoint[int64]{
		judged("trusted", "list", 2), judged("untrusted", "list", 1),
		judged("trusted", "policy", 1), judged("untrusted", "policy", 1),
	}, ignore...)
	metadatatest.AssertEqualProcessorRegistrytrustInvalidReferences(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, ignore...)
}
