package imageintegrityprocessor

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/runtrust/runtrust/internal/registry"
	"github.com/runtrust/runtrust/internal/registryrule"
)

// Config is the imageintegrity processor's configuration.
type Config struct {
	// BatchDeadline is how long one batch may wait for registry answers. Records still waiting then go on as
	// unverified (reason timeout) while their lookups complete into the cache.
	BatchDeadline time.Duration `mapstructure:"batch_deadline"`
	// RequestTimeout bounds one registry lookup, which goes on after its batch has gone.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	// Cache says how long answers are kept, and whether the tags in use are refreshed in the background.
	Cache registry.CacheConfig `mapstructure:"cache"`
	// Registries holds per-registry TLS, credentials and limits; the first entry whose host matches applies.
	Registries []registry.HostConfig `mapstructure:"registries"`
	// CheckUnlistedRegistries asks registries that no registries entry names (anonymously or with the
	// credentials files, default limits). Off: their records are unverified with reason not_configured.
	CheckUnlistedRegistries bool `mapstructure:"check_unlisted_registries"`
	// DefaultLimits are the limits of registries without their own.
	DefaultLimits registry.LimitsConfig `mapstructure:"default_limits"`
	// Credentials names docker config.json and Kubernetes pull-secret files.
	Credentials registry.CredentialsConfig `mapstructure:"credentials"`
	// Mirrors maps references onto the mirror nodes pull through, as the registrytrust processor's mirrors do.
	// A record's runtrust.image.pull_ref (set by that processor) wins over this list.
	Mirrors []registryrule.MirrorConfig `mapstructure:"mirrors"`
}

var _ confmap.Validator = (*Config)(nil)

const (
	defaultBatchDeadline  = 2 * time.Second
	defaultRequestTimeout = registry.DefaultRequestTimeout
)

func createDefaultConfig() component.Config {
	return &Config{
		BatchDeadline:           defaultBatchDeadline,
		RequestTimeout:          defaultRequestTimeout,
		Cache:                   registry.DefaultCacheConfig(),
		CheckUnlistedRegistries: true,
		DefaultLimits:           registry.DefaultLimits(),
	}
}

// Validate checks every field, reading the CA, password, token and credentials files it names, so that a bad
// setting stops the collector at start with the field named.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.BatchDeadline <= 0 {
		errs = append(errs, fmt.Errorf("batch_deadline: %s must be positive", cfg.BatchDeadline))
	}
	if cfg.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request_timeout: %s must be positive", cfg.RequestTimeout))
	} else if cfg.RequestTimeout < cfg.BatchDeadline {
		errs = append(errs, fmt.Errorf("request_timeout: %s is shorter than batch_deadline %s; a lookup must be able to outlive its batch",
			cfg.RequestTimeout, cfg.BatchDeadline))
	}
	if err := cfg.Cache.Validate(); err != nil {
		errs = append(errs, prefix("cache", err))
	}
	for i, h := range cfg.Registries {
		if err := h.Validate(); err != nil {
			errs = append(errs, prefix(fmt.Sprintf("registries[%d]", i), err))
		}
	}
	if err := cfg.DefaultLimits.Validate(); err != nil {
		errs = append(errs, prefix("default_limits", err))
	}
	if err := cfg.Credentials.Validate(); err != nil {
		errs = append(errs, prefix("credentials", err))
	}
	for i, m := range cfg.Mirrors {
		if _, err := registryrule.ParseMirror(m); err != nil {
			errs = append(errs, fmt.Errorf("mirrors[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// prefix puts "field." before each line of a joined error, so that every line names its full field.
func prefix(field string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefix(field, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s.%w", field, err)
}
