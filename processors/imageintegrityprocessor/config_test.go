package imageintegrityprocessor

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/runtrust/runtrust/internal/configtest"
	"github.com/runtrust/runtrust/internal/registry"
	"github.com/runtrust/runtrust/internal/registryrule"
	"github.com/runtrust/runtrust/processors/imageintegrityprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	configtest.LoadConfig(t, NewFactory(), []configtest.Case{
		{
			ID: component.NewID(metadata.Type),
			Want: &Config{
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
		{ID: component.NewIDWithName(metadata.Type, "defaults"), Want: createDefaultConfig().(*Config)},
		{ID: component.NewIDWithName(metadata.Type, "bad_deadline"), WantErr: "batch_deadline: 0s must be positive"},
		{ID: component.NewIDWithName(metadata.Type, "bad_timeouts"), WantErr: "request_timeout: 1s is shorter than batch_deadline 5s"},
		{ID: component.NewIDWithName(metadata.Type, "bad_cache"), WantErr: "cache.negative_ttl: 1m0s is longer than ttl 10s"},
		{ID: component.NewIDWithName(metadata.Type, "bad_host"), WantErr: `registries[0].host: "https://registry.corp.example" has a URL scheme`},
		{ID: component.NewIDWithName(metadata.Type, "bad_host_path"), WantErr: `registries[0].host: "registry.corp.example/team" names a repository path`},
		{ID: component.NewIDWithName(metadata.Type, "missing_ca"), WantErr: "registries[0].tls.ca_file: open testdata/no-such-ca.pem: no such file"},
		{ID: component.NewIDWithName(metadata.Type, "bad_auth"), WantErr: "registries[0].auth.password: username is set, but no password"},
		{ID: component.NewIDWithName(metadata.Type, "bad_limits"), WantErr: "default_limits.max_concurrent: -1 must not be negative"},
		{ID: component.NewIDWithName(metadata.Type, "bad_credentials"), WantErr: "credentials.docker_config_files[0]: testdata/password: not a JSON object"},
		{ID: component.NewIDWithName(metadata.Type, "bad_mirror"), WantErr: `mirrors[0].source: "*.docker.io": a wildcard is not allowed here`},
	})
}

func TestValidateNamesEveryBadField(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.BatchDeadline = -time.Second
	cfg.Cache.MaxEntries = 0
	cfg.Cache.NegativeTTL = 2 * cfg.Cache.TTL // the registry client would stop at this; the registries are still named
	cfg.Registries = []registry.HostConfig{
		{Host: "ok.example"},
		{Host: "", Limits: registry.LimitsConfig{RateLimit: -1}},
		{Host: "x.example", Auth: registry.AuthConfig{Password: "p"}},
	}
	cfg.Credentials.PullSecretFiles = []string{"testdata/none.json"}
	cfg.Mirrors = []registryrule.MirrorConfig{{Source: "docker.io", Mirror: "docker.io"}}
	configtest.NamesEveryField(t, cfg.Validate(),
		[]string{"batch_deadline", "cache.max_entries", "cache.negative_ttl", "registries[1].host", "registries[1].rate_limit",
			"registries[2].auth.username", "credentials.pull_secret_files[0]", "mirrors[0]"},
		"registries[0]")
}
