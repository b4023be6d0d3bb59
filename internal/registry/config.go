package registry

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/runtrust/runtrust/internal/configerr"
	"github.com/runtrust/runtrust/internal/registryrule"
)

// HostConfig holds the settings for the registries a host rule matches. It is meant to be embedded in a
// component's configuration as one entry of a "registries" list.
type HostConfig struct {
	// Host is the registry: host, host:port or *.domain (any host below domain). No repository path.
	Host string `mapstructure:"host"`
	// TLS settings for this registry.
	TLS TLSConfig `mapstructure:"tls"`
	// Auth holds credentials for this registry; they win over the credentials files.
	Auth AuthConfig `mapstructure:"auth"`
	// Limits for requests to this registry; zero values take the defaults.
	Limits LimitsConfig `mapstructure:",squash"`
}

// TLSConfig is per-registry TLS.
type TLSConfig struct {
	// CAFile is a PEM file of certificate authorities to trust for this registry, beside the system's.
	CAFile string `mapstructure:"ca_file"`
	// Insecure allows plain HTTP to this registry (HTTPS is still tried first).
	Insecure bool `mapstructure:"insecure"`
	// InsecureSkipVerify accepts any certificate from this registry.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// AuthConfig is per-registry credentials: a username with a password (or password file), or a token file.
type AuthConfig struct {
	Username string `mapstructure:"username"`
	// Password for Username. Prefer PasswordFile or ${env:VAR}.
	Password string `mapstructure:"password"`
	// PasswordFile holds the password (trailing newline ignored).
	PasswordFile string `mapstructure:"password_file"`
	// TokenFile holds an access token: the token alone, or the JSON an Artifactory token request answers
	// ({"access_token": ...}). With Username it is sent as that user's password (Artifactory's docker login);
	// without, as a bearer token.
	TokenFile string `mapstructure:"token_file"`
}

// LimitsConfig bounds the requests to one registry.
type LimitsConfig struct {
	// MaxConcurrent is how many requests may be open to the registry at once.
	MaxConcurrent int `mapstructure:"max_concurrent"`
	// RateLimit is the sustained requests per second to the registry.
	RateLimit float64 `mapstructure:"rate_limit"`
	// Burst is how many requests may go at once above the rate.
	Burst int `mapstructure:"burst"`
}

// CredentialsConfig names credentials files that apply to every registry they have an entry for.
type CredentialsConfig struct {
	// DockerConfigFiles are docker config.json files ("auths"; credential helpers are not run).
	DockerConfigFiles []string `mapstructure:"docker_config_files"`
	// PullSecretFiles are Kubernetes image pull secrets as mounted (.dockerconfigjson or .dockercfg), or the
	// Secret object as JSON (kubectl get secret -o json).
	PullSecretFiles []string `mapstructure:"pull_secret_files"`
}

// CacheConfig says how long answers are kept.
type CacheConfig struct {
	// TTL is how long a tag's answer is used before the registry is asked again.
	TTL time.Duration `mapstructure:"ttl"`
	// NegativeTTL is how long an error (not found, unauthorized, unreachable) is kept.
	NegativeTTL time.Duration `mapstructure:"negative_ttl"`
	// MaxEntries bounds the cache; the least recently used entries go first.
	MaxEntries int `mapstructure:"max_entries"`
	// Refresh re-resolves the tags in use in the background before they expire.
	Refresh bool `mapstructure:"refresh"`
}

// Defaults for zero-valued settings.
const (
	DefaultTTL            = 5 * time.Minute
	DefaultNegativeTTL    = 30 * time.Second
	DefaultMaxEntries     = 10000
	DefaultMaxConcurrent  = 4
	DefaultRateLimit      = 10
	DefaultBurst          = 10
	DefaultRequestTimeout = 30 * time.Second
)

// DefaultCacheConfig returns the cache defaults.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{TTL: DefaultTTL, NegativeTTL: DefaultNegativeTTL, MaxEntries: DefaultMaxEntries, Refresh: true}
}

// DefaultLimits returns the per-registry limits used where none are configured.
func DefaultLimits() LimitsConfig {
	return LimitsConfig{MaxConcurrent: DefaultMaxConcurrent, RateLimit: DefaultRateLimit, Burst: DefaultBurst}
}

// Validate checks a cache configuration; errors name the field.
func (c CacheConfig) Validate() error {
	var errs []error
	if c.TTL <= 0 {
		errs = append(errs, fmt.Errorf("ttl: %s must be positive", c.TTL))
	}
	if c.NegativeTTL <= 0 {
		errs = append(errs, fmt.Errorf("negative_ttl: %s must be positive", c.NegativeTTL))
	} else if c.TTL > 0 && c.NegativeTTL > c.TTL {
		errs = append(errs, fmt.Errorf("negative_ttl: %s is longer than ttl %s; errors should be retried sooner than answers", c.NegativeTTL, c.TTL))
	}
	if c.MaxEntries < 1 {
		errs = append(errs, fmt.Errorf("max_entries: %d must be at least 1", c.MaxEntries))
	}
	return errors.Join(errs...)
}

// Validate checks limits; zero means the default, negative is an error.
func (l LimitsConfig) Validate() error {
	var errs []error
	if l.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("max_concurrent: %d must not be negative", l.MaxConcurrent))
	}
	if l.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("rate_limit: %g must not be negative", l.RateLimit))
	}
	if l.Burst < 0 {
		errs = append(errs, fmt.Errorf("burst: %d must not be negative", l.Burst))
	}
	return errors.Join(errs...)
}

// WithDefaults returns l with its zero fields taken from d.
func (l LimitsConfig) WithDefaults(d LimitsConfig) LimitsConfig {
	if l.MaxConcurrent == 0 {
		l.MaxConcurrent = d.MaxConcurrent
	}
	if l.RateLimit == 0 {
		l.RateLimit = d.RateLimit
	}
	if l.Burst == 0 {
		l.Burst = d.Burst
	}
	return l
}

// Validate checks one registries entry, reading the files it names so that a missing file fails at start. It is
// the compilation New does, so Validate accepts exactly what New accepts.
func (h HostConfig) Validate() error {
	_, err := h.compile()
	return err
}

// compiledHost is one registries entry as New compiles it, once: its host rule, its TLS settings with the CA file
// read, and its credentials with their files read.
type compiledHost struct {
	HostConfig
	rule registryrule.Rule
	tls  *tls.Config
	auth authn.AuthConfig
}

// compile turns a registries entry into its compiled form; the error joins every problem, each naming its field.
func (h HostConfig) compile() (compiledHost, error) {
	c := compiledHost{HostConfig: h}
	var errs []error
	rule, err := registryrule.Parse(h.Host, true)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("host: %w", err))
	case rule.PathPrefix != "":
		errs = append(errs, fmt.Errorf("host: %q names a repository path; settings apply to a whole registry", h.Host))
	}
	c.rule = rule
	if c.tls, err = h.TLS.ClientConfig(); err != nil {
		errs = append(errs, configerr.Prefix("tls", err))
	}
	if c.auth, err = h.Auth.authConfig(); err != nil {
		errs = append(errs, configerr.Prefix("auth", err))
	}
	errs = append(errs, h.Limits.Validate())
	return c, errors.Join(errs...)
}

// Validate reads every credentials file, so that a missing or malformed one fails at start.
func (c CredentialsConfig) Validate() error {
	var errs []error
	for i, f := range c.DockerConfigFiles {
		if _, err := loadCredentialsFile(f); err != nil {
			errs = append(errs, fmt.Errorf("docker_config_files[%d]: %w", i, err))
		}
	}
	for i, f := range c.PullSecretFiles {
		if _, err := loadCredentialsFile(f); err != nil {
			errs = append(errs, fmt.Errorf("pull_secret_files[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func readSecretFile(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return string(b), nil
}
