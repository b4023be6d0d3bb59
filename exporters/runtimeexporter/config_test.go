package runtimeexporter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/runtrust/runtrust/exporters/runtimeexporter/internal/metadata"
	"github.com/runtrust/runtrust/internal/wire"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "", check: func(t *testing.T, c *Config) {
			if c.Token != "rtc_0123456789abcdef" || c.HeartbeatInterval != time.Minute || c.Mode != ModeAuto {
				t.Errorf("defaults: %+v", c)
			}
			if host, _ := os.Hostname(); c.CollectorID != host || host == "" {
				t.Errorf("collector_id default %q; want the host name %q", c.CollectorID, host)
			}
			if c.RetryConfig.MaxElapsedTime != 0 || c.QueueConfig.Get().Batch.HasValue() {
				t.Errorf("retry must not give up and the queue must not batch: %+v", c)
			}
		}},
		{name: "enrol", check: func(t *testing.T, c *Config) {
			if c.tokenStorage() == nil || c.tokenStorage().String() != "file_storage" {
				t.Errorf("token storage: %v", c.tokenStorage())
			}
			if c.Mode != ModeImpact || c.MaxRecordsPerRequest != 5000 || c.QueueConfig.Get().QueueSize != 2000000 || c.CollectorID != "ip-10-0-1-17.eu-west-1.compute.internal" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "batching", wantErr: "sending_queue.batch"},
		{name: "no_storage", wantErr: "storage: required with join_key"},
		{name: "bad_collector_id", wantErr: "collector_id: must be printable ASCII without spaces (byte 4 is 0x20)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(t, tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestValidate(t *testing.T) {
	storage := component.MustNewID("file_storage")
	valid := func() *Config {
		c := createDefaultConfig().(*Config)
		c.ClientConfig.Endpoint = "127.0.0.1:4319"
		c.JoinKey = "0123456789abcdef0123"
		c.ClusterUID = "uid"
		c.CollectorID = "controller"
		c.Storage = &storage
		return c
	}
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string // "" means valid; else the field named in the error
	}{
		{"valid", func(*Config) {}, ""},
		{"token instead", func(c *Config) { c.JoinKey, c.Storage, c.Token = "", nil, "rtc_abc" }, ""},
		{"no endpoint", func(c *Config) { c.ClientConfig.Endpoint = " " }, "endpoint:"},
		{"neither", func(c *Config) { c.JoinKey = "" }, "join_key or token"},
		{"both", func(c *Config) { c.Token = "rtc_x" }, "join_key and token"},
		{"short join key", func(c *Config) { c.JoinKey = "short" }, "join_key: must be 16 to 256"},
		{"join key with space", func(c *Config) { c.JoinKey = "0123456789 abcdef0123" }, "join_key: must be printable"},
		{"token with newline", func(c *Config) { c.JoinKey, c.Token = "", configopaque.String("rtc\n") }, "token: must be printable"},
		{"no cluster uid", func(c *Config) { c.ClusterUID = "" }, "cluster_uid: required"},
		{"no storage", func(c *Config) { c.Storage = nil }, "storage: required"},
		{"no collector id", func(c *Config) { c.CollectorID = "" }, "collector_id: required with join_key"},
		{"collector id too long", func(c *Config) { c.CollectorID = strings.Repeat("n", 254) }, "collector_id: is 254 bytes long; at most 253"},
		{"collector id with newline", func(c *Config) { c.CollectorID = "node\n" }, "collector_id: must be printable"},
		{"node name as collector id", func(c *Config) { c.CollectorID = "ip-10-0-1-17.eu-west-1.compute.internal" }, ""},
		{"token needs no collector id", func(c *Config) { c.JoinKey, c.Storage, c.Token, c.CollectorID = "", nil, "rtc_abc", "" }, ""},
		{"queue storage is enough", func(c *Config) { c.Storage = nil; c.QueueConfig.Get().StorageID = &storage }, ""},
		{"long name", func(c *Config) { c.ClusterName = strings.Repeat("n", 257) }, "cluster_name:"},
		{"heartbeat", func(c *Config) { c.HeartbeatInterval = time.Millisecond }, "heartbeat_interval:"},
		{"mode", func(c *Config) { c.Mode = "full" }, "mode:"},
		{"records 0", func(c *Config) { c.MaxRecordsPerRequest = 0 }, "max_records_per_request:"},
		{"records too many", func(c *Config) { c.MaxRecordsPerRequest = 100001 }, "max_records_per_request:"},
		{"zstd", func(c *Config) { c.ClientConfig.Compression = "zstd" }, "compression:"},
		{"authorization header", func(c *Config) { c.ClientConfig.Headers.Set("Authorization", "x") }, "headers:"},
		{"key header", func(c *Config) { c.ClientConfig.Headers.Set("runtrust-idempotency-key", "x") }, "headers:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzConfig: any YAML-ish map either fails to unmarshal or validate with an error, or gives a config that
// validates; it never panics.
func FuzzConfig(f *testing.F) {
	f.Add("runtime.example:4319", "0123456789abcdef0123", "", "uid", "auto", int64(1000), "30s", "controller")
	f.Add("", "", "rtc_x", "", "impact", int64(0), "1ms", "")
	f.Add("h:1", "k", "t", "\x00", "x", int64(-1), "bogus", "node 1")
	f.Fuzz(func(t *testing.T, endpoint, joinKey, token, uid, mode string, maxRecords int64, heartbeat, collectorID string) {
		cfg := createDefaultConfig().(*Config)
		conf := confmap.NewFromStringMap(map[string]any{
			"endpoint": endpoint, "join_key": joinKey, "token": token, "cluster_uid": uid, "mode": mode, "collector_id": collectorID,
			"max_records_per_request": maxRecords, "heartbeat_interval": heartbeat,
			"sending_queue": map[string]any{"storage": "file_storage"},
		})
		if err := conf.Unmarshal(cfg); err != nil {
			return
		}
		if err := confmap.Validate(cfg); err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		if cfg.ClientConfig.Endpoint == "" || (cfg.JoinKey == "") == (cfg.Token == "") || cfg.MaxRecordsPerRequest < 1 ||
			cfg.JoinKey != "" && (cfg.CollectorID == "" || len(cfg.CollectorID) > wire.MaxCollectorIDLen || strings.ContainsAny(cfg.CollectorID, " \t\n\x00")) {
			t.Fatalf("an invalid config validated: %+v", cfg)
		}
	})
}
