package imageintegrityprocessor

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/runtrust/runtrust/internal/registry"
	"github.com/runtrust/runtrust/internal/registryrule"
	"github.com/runtrust/runtrust/processors/imageintegrityprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string // substring of the validation error; the field must be named
	}{
		{
			id: component.NewID(metadata.Type),
			want: &Config{
				BatchDeadline:  500 * time.Millisecond,
				RequestTimeout: 20 * time.Second,
				Cache:          registry.CacheConfig{TTL: 10 * time.Minute, NegativeTTL: time.Minute, MaxEntries: 5000, Refresh: false},
				Registries: []registry.HostConfig{
					{
						Host:   "registry.corp.example:5000",
						TLS:    registry.TLSConfig{CAFile: "testdata/ca.pem"},
						Auth:   registry.AuthConfig{Username: "ci", PasswordFile: "testdata/password"},
						Limits: registry.LimitsConfig{MaxConcurrent: 8, RateLimit: 50, Burst: 20},
					},
					{Host: "*.artifactory.corp.example", Auth: registry.AuthConfig{TokenFile: "testdata/artifactory-token.json"}},
					{Host: "localhost:5000", TLS: registry.TLSConfig{Insecure: true}},
				},
				CheckUnlistedRegistries: false,
				DefaultLimits:           registry.LimitsConfig{MaxConcurrent: 2, RateLimit: 5, Burst: 5},
				Credentials: registry.CredentialsConfig{
					DockerConfigFiles: []string{"testdata/dockerconfig.json"},
					PullSecretFiles:   []string{"testdata/pull-secret.json"},
				},
				Mirrors: []registryrule.MirrorConfig{{Source: "docker.io", Mirror: "mirror.corp.example/dockerhub"}},
			},
		},
		{id: component.NewIDWithName(metadata.Type, "defaults"), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "bad_deadline"), wantErr: "batch_deadline: 0s must be positive"},
		{id: component.NewIDWithName(metadata.Type, "bad_timeouts"), wantErr: "request_timeout: 1s is shorter than batch_deadline 5s"},
		{id: component.NewIDWithName(metadata.Type, "bad_cache"), wantErr: "cache.negative_ttl: 1m0s is longer than ttl 10s"},
		{id: component.NewIDWithName(metadata.Type, "bad_host"), wantErr: `registries[0].host: "https://registry.corp.example" has a URL scheme`},
		{id: component.NewIDWithName(metadata.Type, "bad_host_path"), wantErr: `registries[0].host: "registry.corp.example/team" names a repository path`},
		{id: component.NewIDWithName(metadata.Type, "missing_ca"), wantErr: "registries[0].tls.ca_file: open testdata/no-such-ca.pem: no such file"},
		{id: component.NewIDWithName(metadata.Type, "bad_auth"), wantErr: "registries[0].auth.password: username is set, but no password"},
		{id: component.NewIDWithName(metadata.Type, "bad_limits"), wantErr: "default_limits.max_concurrent: -1 must not be negative"},
		{id: component.NewIDWithName(metadata.Type, "bad_credentials"), wantErr: "credentials.docker_config_files[0]: testdata/password: not a JSON object"},
		{id: component.NewIDWithName(metadata.Type, "bad_mirror"), wantErr: `mirrors[0]: source: "*.docker.io": a wildcard is not allowed here`},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.BatchDeadline = -time.Second
	cfg.Cache.MaxEntries = 0
	cfg.Registries = []registry.HostConfig{
		{Host: "ok.example"},
		{Host: "", Limits: registry.LimitsConfig{RateLimit: -1}},
		{Host: "x.example", Auth: registry.AuthConfig{Password: "p"}},
	}
	cfg.Credentials.PullSecretFiles = []string{"testdata/none.json"}
	cfg.Mirrors = []registryrule.MirrorConfig{{Source: "docker.io", Mirror: "docker.io"}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, field := range []string{"batch_deadline", "cache.max_entries", "registries[1].host", "registries[1].rate_limit",
		"registries[2].auth.username", "credentials.pull_secret_files[0]", "mirrors[0]"} {
		assert.Contains(t, err.Error(), field)
	}
	assert.NotContains(t, err.Error(), "registries[0]")
	assert.Equal(t, 7, strings.Count(err.Error(), "\n")+1, "one line per bad field: %v", err)
}
