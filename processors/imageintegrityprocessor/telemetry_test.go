package imageintegrityprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/processors/imageintegrityprocessor/internal/metadatatest"
)

// TestSelfMetrics: lookups, cache hits, errors by kind, requests and verdicts reach the collector's telemetry.
func TestSelfMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/cart:1")
	h := startWith(t, testConfig(), metadatatest.NewSettings(tel))

	h.send(
		container{image: reg.Host + "/shop/cart:1", running: v1},
		container{image: reg.Host + "/shop/cart:1", running: v1},
		container{image: reg.Host + "/shop/cart:gone", running: v1},
	)
	h.one(container{image: reg.Host + "/shop/cart:1", running: v1})

	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualProcessorImageintegrityLookups(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("lookup_target", "tag")), Value: 1},
	}, ignore...)
	metadatatest.AssertEqualProcessorImageintegrityCacheHits(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, ignore...)
	metadatatest.AssertEqualProcessorImageintegrityErrors(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("error_kind", "not_found")), Value: 1},
	}, ignore...)
	metadatatest.AssertEqualProcessorImageintegrityVerdicts(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("verdict", "verified")), Value: 3},
		{Attributes: attribute.NewSet(attribute.String("verdict", "artifact_missing")), Value: 1},
	}, ignore...)
	m, err := tel.GetMetric("otelcol_processor_imageintegrity_registry_requests")
	require.NoError(t, err)
	var heads int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if v, _ := dp.Attributes.Value("http_method"); v.AsString() == "HEAD" {
			heads = dp.Value
		}
	}
	require.Equal(t, int64(2), heads, "one HEAD per tag")
}
