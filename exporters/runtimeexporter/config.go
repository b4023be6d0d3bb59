package runtimeexporter // import "github.com/runtrust/runtrust/exporters/runtimeexporter"

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/runtrust/runtrust/internal/wire"
)

// Modes the heartbeat reports.
const (
	ModeAuto      = "auto"      // impact once a sensor record was seen, else integrity
	ModeIntegrity = "integrity" // controller only
	ModeImpact    = "impact"    // controller and per-node sensors
)

// minHeartbeat is the shortest heartbeat_interval. The bounds the service puts on what the exporter sends are
// internal/wire's.
const minHeartbeat = time.Second

// Config is the runtime exporter's configuration. The exporterhelper and configgrpc parts are the collector's own
// (`sending_queue`, `retry_on_failure`, `timeout`, `endpoint`, `tls`, `compression`, `keepalive`, …).
type Config struct {
	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig   configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
	ClientConfig  configgrpc.ClientConfig                                  `mapstructure:",squash"`

	// JoinKey is a join key the service was started with. The exporter enrols with it on its first start and
	// keeps the issued token in Storage, so later starts do not enrol again. The key binds to the first cluster
	// it enrols and then enrols every collector of that cluster (the controller, each node's sensor).
	JoinKey configopaque.String `mapstructure:"join_key"`
	// Token is a cluster token obtained otherwise (`runtime-service enrol`); instead of JoinKey.
	Token configopaque.String `mapstructure:"token"`
	// ClusterUID and ClusterName identify the cluster at enrolment (k8s.cluster.uid, k8s.cluster.name).
	ClusterUID  string `mapstructure:"cluster_uid"`
	ClusterName string `mapstructure:"cluster_name"`
	// CollectorID names this collector within its cluster at enrolment, so each collector gets its own token
	// and heartbeat: stable across restarts and unique in the cluster (a sensor's node name; "controller" for
	// the controller). Default: the host name, which the chart overrides (a pod's host name changes with
	// every pod).
	CollectorID string `mapstructure:"collector_id"`
	// Storage is the storage extension that keeps the cluster token; default: the sending queue's storage.
	Storage *component.ID `mapstructure:"storage"`
	// HeartbeatInterval is how often the exporter tells the service its version, mode and node count.
	HeartbeatInterval time.Duration `mapstructure:"heartbeat_interval"`
	// Mode is what the heartbeat reports: auto, integrity or impact.
	Mode string `mapstructure:"mode"`
	// MaxRecordsPerRequest splits a larger queued batch into several requests (each with its own derived key).
	MaxRecordsPerRequest int `mapstructure:"max_records_per_request"`

	_ struct{}
}

var _ component.Config = (*Config)(nil)

// tokenStorage is the storage extension that keeps the token, or nil.
func (c *Config) tokenStorage() *component.ID {
	if c.Storage != nil {
		return c.Storage
	}
	if c.QueueConfig.HasValue() {
		return c.QueueConfig.Get().StorageID
	}
	return nil
}

// Validate checks the configuration; each error names the field.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.ClientConfig.Endpoint) == "" {
		errs = append(errs, errors.New(`endpoint: required (the runtime service's gRPC address, e.g. "runtime.example:4319")`))
	}
	switch {
	case c.JoinKey == "" && c.Token == "":
		errs = append(errs, errors.New("join_key or token: one is required (join_key enrols the cluster on first start)"))
	case c.JoinKey != "" && c.Token != "":
		errs = append(errs, errors.New("join_key and token: set one, not both"))
	}
	if c.JoinKey != "" {
		if err := wire.CheckJoinKey(string(c.JoinKey)); err != nil {
			errs = append(errs, fmt.Errorf("join_key: %w", err))
		}
		if c.ClusterUID == "" {
			errs = append(errs, errors.New("cluster_uid: required with join_key (by convention the uid of the cluster's kube-system namespace)"))
		}
		if err := checkCollectorID(c.CollectorID); err != nil {
			errs = append(errs, fmt.Errorf(`collector_id: %w (this collector's id in its cluster: the node name for a sensor, "controller" for the controller)`, err))
		}
		if c.tokenStorage() == nil {
			errs = append(errs, errors.New("storage: required with join_key, or set sending_queue.storage: the join key works once, so the issued token must survive a restart"))
		}
	}
	if c.Token != "" {
		if err := checkPrintable(string(c.Token), 1, 512); err != nil {
			errs = append(errs, fmt.Errorf("token: %w", err))
		}
	}
	if c.ClusterUID != "" {
		if err := checkPrintable(c.ClusterUID, 1, 256); err != nil {
			errs = append(errs, fmt.Errorf("cluster_uid: %w", err))
		}
	}
	if len(c.ClusterName) > 256 {
		errs = append(errs, errors.New("cluster_name: longer than 256 bytes"))
	}
	if c.HeartbeatInterval < minHeartbeat {
		errs = append(errs, fmt.Errorf("heartbeat_interval: %s is below the minimum of %s", c.HeartbeatInterval, minHeartbeat))
	}
	switch c.Mode {
	case ModeAuto, ModeIntegrity, ModeImpact:
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not one of auto, integrity, impact", c.Mode))
	}
	if c.MaxRecordsPerRequest < 1 || c.MaxRecordsPerRequest > wire.MaxRecordsPerRequest {
		errs = append(errs, fmt.Errorf("max_records_per_request: %d is not within 1 to %d", c.MaxRecordsPerRequest, wire.MaxRecordsPerRequest))
	}
	switch c.ClientConfig.Compression {
	case "", configcompression.TypeGzip, "none":
	default:
		errs = append(errs, fmt.Errorf("compression: %q is not accepted by the runtime service (use gzip or none)", c.ClientConfig.Compression))
	}
	for k := range c.ClientConfig.Headers.Iter {
		switch strings.ToLower(k) {
		case wire.AuthorizationHeader, wire.IdempotencyKeyHeader:
			errs = append(errs, fmt.Errorf("headers: %q is set by the exporter itself", k))
		}
	}
	if c.QueueConfig.HasValue() && c.QueueConfig.Get().Batch.HasValue() {
		errs = append(errs, errors.New("sending_queue.batch: not supported: merging queued batches after they were stamped would give a replay a new idempotency key; batch before the exporter (batch processor)"))
	}
	if c.QueueConfig.HasValue() && c.QueueConfig.Get().Sizer == exporterhelper.RequestSizerTypeBytes && c.QueueConfig.Get().StorageID != nil {
		errs = append(errs, errors.New("sending_queue.sizer: use requests or items with a persistent queue"))
	}
	return errors.Join(errs...)
}

// checkCollectorID is the service's check, and an exporter that enrols must name itself.
func checkCollectorID(id string) error {
	if id == "" {
		return errors.New("required with join_key")
	}
	return wire.CheckCollectorID(id)
}

// checkPrintable bounds a value the exporter sends in metadata or at enrolment.
func checkPrintable(s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		return fmt.Errorf("must be %d to %d characters, got %d", minLen, maxLen, len(s))
	}
	return wire.CheckPrintable(s)
}
