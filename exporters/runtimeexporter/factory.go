package runtimeexporter // import "github.com/runtrust/runtrust/exporters/runtimeexporter"

import (
	"context"
	"os"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"

	"github.com/runtrust/runtrust/exporters/runtimeexporter/internal/metadata"
)

// NewFactory returns the runtime exporter's factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	client := configgrpc.NewDefaultClientConfig()
	client.Compression = configcompression.TypeGzip
	client.WriteBufferSize = 512 * 1024

	queue := exporterhelper.NewDefaultQueueConfig()
	queue.Batch = configoptional.None[exporterhelper.BatchConfig]() // see Config.Validate

	retry := configretry.NewDefaultBackOffConfig()
	retry.MaxElapsedTime = 0 // never give a batch up: a retryable failure keeps it queued

	return &Config{
		TimeoutConfig:        exporterhelper.TimeoutConfig{Timeout: 30 * time.Second},
		QueueConfig:          configoptional.Some(queue),
		RetryConfig:          retry,
		ClientConfig:         client,
		HeartbeatInterval:    time.Minute,
		Mode:                 ModeAuto,
		CollectorID:          defaultCollectorID(),
		MaxRecordsPerRequest: 10000,
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	return xexporterhelper.NewLogsRequest(ctx, set, e.convert, e.push,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.RetryConfig),
		xexporterhelper.WithQueueBatch(c.QueueConfig, xexporterhelper.QueueBatchSettings{Encoding: encoding{}}),
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
	)
}

// defaultCollectorID is the host name: unique per node for a DaemonSet pod with hostNetwork, per pod otherwise.
// Empty when it cannot be read; Validate then asks for collector_id.
func defaultCollectorID() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
