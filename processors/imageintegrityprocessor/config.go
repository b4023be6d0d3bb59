package imageintegrityprocessor

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/runtrust/runtrust/internal/configerr"
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
// setting stops the collector at start with the field named. It is the compilation the processor runs with.
func (cfg *Config) Validate() error {
	c, err := cfg.compile(clientHooks{})
	if c.client != nil {
		c.client.Close()
	}
	return err
}

// compiled is a Config in the form the processor runs with: mirrors parsed, every registries entry, CA and
// credentials file compiled into a registry client (built, not started).
type compiled struct {
	mirrors []registryrule.Mirror
	client  *registry.Client
}

// clientHooks is what the registry client takes from the collector rather than from the config; Validate passes
// none.
type clientHooks struct {
	observer            registry.Observer
	userAgent           string
	credentialsReloaded func(error)
}

// compile checks every field and builds what the processor runs with. The error joins every problem, each line
// naming its field; the client is nil whenever the error is not.
func (cfg *Config) compile(hooks clientHooks) (compiled, error) {
	var c compiled
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
	cache := cfg.Cache
	if err := cache.Validate(); err != nil {
		errs = append(errs, configerr.Prefix("cache", err))
		// Named above; a valid stand-in lets the client still compile, and name, the registries and credentials.
		cache = registry.DefaultCacheConfig()
	}
	errs = append(errs, configerr.Prefix("default_limits", cfg.DefaultLimits.Validate()))
	for i, mc := range cfg.Mirrors {
		m, err := registryrule.ParseMirror(mc)
		errs = append(errs, configerr.Index("mirrors", i, err))
		c.mirrors = append(c.mirrors, m)
	}
	client, err := registry.New(registry.Options{
		Hosts:               cfg.Registries,
		Defaults:            cfg.DefaultLimits,
		Credentials:         cfg.Credentials,
		Cache:               cache,
		RequestTimeout:      cfg.RequestTimeout,
		SkipUnlisted:        !cfg.CheckUnlistedRegistries,
		Observer:            hooks.observer,
		UserAgent:           hooks.userAgent,
		CredentialsReloaded: hooks.credentialsReloaded,
	})
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		if client != nil {
			client.Close()
		}
		return compiled{}, err
	}
	c.client = client
	return c, nil
}
