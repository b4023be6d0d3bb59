// Package correlate lists what each configured registry stores (repositories, tags, and the digest each tag
// points at) on a schedule, keeps it in the store so the API can say where each stored artifact runs and which
// ones nothing runs, and, for Artifactory registries that ask for it, writes back where their artifacts run.
package correlate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runtrust/runtrust/internal/registry"
)

// Registry kinds.
const (
	KindOCI         = "oci"         // any registry with the OCI distribution API (catalog, tag list, manifests)
	KindArtifactory = "artifactory" // JFrog Artifactory: the docker API of each repository key, and properties
)

// Defaults for zero-valued settings.
const (
	DefaultRefreshInterval = 15 * time.Minute
	DefaultTimeout         = 30 * time.Second
	DefaultPageSize        = 1000
	DefaultConcurrency     = 4
	MinRefreshInterval     = 10 * time.Second
	maxRegistriesFile      = 1 << 20
	maxRegistries          = 100
)

// Registry is one configured registry, validated, with its credentials read.
type Registry struct {
	Name string
	Kind string
	// BaseURL: OCI, the registry's root (scheme://host[:port]); Artifactory, its base URL
	// (https://host/artifactory).
	BaseURL *url.URL
	// Host is the host[:port] image references name this registry by (pull_host, else BaseURL's host).
	Host string
	// RepoKeys are the Artifactory repository keys to list.
	RepoKeys []string
	Auth     Credentials
	TLS      registry.TLSConfig
	Limits   registry.LimitsConfig
	Include  []string
	Exclude  []string
	Refresh  time.Duration
	Timeout  time.Duration
	PageSize int
	Feedback bool
}

// Credentials for a registry: a username with a password (or a token used as password), or a token alone
// (sent as a bearer token).
type Credentials struct {
	Username, Password, Token string
}

// fileRegistry is the YAML form of one registry.
type fileRegistry struct {
	Name     string   `yaml:"name"`
	Kind     string   `yaml:"kind"`
	URL      string   `yaml:"url"`
	PullHost string   `yaml:"pull_host"`
	RepoKeys []string `yaml:"repo_keys"`
	Auth     struct {
		Username     string `yaml:"username"`
		Password     string `yaml:"password"`
		PasswordFile string `yaml:"password_file"`
		PasswordEnv  string `yaml:"password_env"`
		TokenFile    string `yaml:"token_file"`
		TokenEnv     string `yaml:"token_env"`
	} `yaml:"auth"`
	TLS struct {
		CAFile             string `yaml:"ca_file"`
		Insecure           bool   `yaml:"insecure"`
		InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	} `yaml:"tls"`
	Repositories struct {
		Include []string `yaml:"include"`
		Exclude []string `yaml:"exclude"`
	} `yaml:"repositories"`
	RefreshInterval string  `yaml:"refresh_interval"`
	Timeout         string  `yaml:"timeout"`
	PageSize        int     `yaml:"page_size"`
	MaxConcurrent   int     `yaml:"max_concurrent"`
	RateLimit       float64 `yaml:"rate_limit"`
	Burst           int     `yaml:"burst"`
	Feedback        bool    `yaml:"feedback"`
}

type file struct {
	Registries []fileRegistry `yaml:"registries"`
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)
	repoKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	envRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// LoadFile reads and validates a registries file.
func LoadFile(name string, getenv func(string) string) ([]Registry, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("registries file: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxRegistriesFile+1)); err != nil {
		return nil, fmt.Errorf("registries file %s: %w", name, err)
	}
	if buf.Len() > maxRegistriesFile {
		return nil, fmt.Errorf("registries file %s: larger than %d bytes", name, maxRegistriesFile)
	}
	regs, err := Parse(buf.Bytes(), getenv)
	if err != nil {
		return nil, fmt.Errorf("registries file %s: %w", name, err)
	}
	return regs, nil
}

// Parse reads a registries file's YAML: a list of registries under "registries". Unknown keys are errors, and
// every error names the field (registries[1].auth.token_env: …). Files the entries name (passwords, tokens,
// CAs) are read now, so a missing one fails at start.
func Parse(data []byte, getenv func(string) string) ([]Registry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty: want a \"registries\" list")
		}
		return nil, fmt.Errorf("not a registries file: %w", err)
	}
	if f.Registries == nil {
		return nil, errors.New("registries: missing; want a list of registries")
	}
	if len(f.Registries) > maxRegistries {
		return nil, fmt.Errorf("registries: %d entries, at most %d", len(f.Registries), maxRegistries)
	}
	var errs []error
	out := make([]Registry, 0, len(f.Registries))
	seen := map[string]int{}
	for i, fr := range f.Registries {
		r, err := fr.validate(getenv)
		if err != nil {
			errs = append(errs, prefixErrs(fmt.Sprintf("registries[%d]", i), err))
			continue
		}
		if j, dup := seen[r.Name]; dup {
			errs = append(errs, fmt.Errorf("registries[%d].name: %q is also registries[%d]'s name", i, r.Name, j))
			continue
		}
		seen[r.Name] = i
		out = append(out, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// prefixErrs puts prefix before each of a joined error's lines.
func prefixErrs(prefix string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s.%w", prefix, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s.%w", prefix, err)
}

func (fr fileRegistry) validate(getenv func(string) string) (Registry, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	r := Registry{Name: fr.Name, Kind: fr.Kind, Feedback: fr.Feedback, PageSize: fr.PageSize,
		Include: fr.Repositories.Include, Exclude: fr.Repositories.Exclude}
	if !nameRE.MatchString(fr.Name) {
		bad("name: %q is not a name (lower-case letters, digits, '.' and '-', 1 to 63, as the API's registry filter takes)", clip(fr.Name))
	}
	switch fr.Kind {
	case KindOCI:
		if len(fr.RepoKeys) > 0 {
			bad("repo_keys: only kind artifactory has repository keys")
		}
		if fr.Feedback {
			bad("feedback: only kind artifactory takes feedback; nothing is ever written to a plain OCI registry")
		}
	case KindArtifactory:
		if len(fr.RepoKeys) == 0 {
			bad("repo_keys: kind artifactory needs the docker repository keys to list")
		}
		for j, k := range fr.RepoKeys {
			if !repoKeyRE.MatchString(k) {
				bad("repo_keys[%d]: %q is not an Artifactory repository key", j, clip(k))
			}
		}
		r.RepoKeys = fr.RepoKeys
	case "":
		bad("kind: missing; want oci or artifactory")
	default:
		bad("kind: %q is not oci or artifactory", clip(fr.Kind))
	}
	if u, err := parseURL(fr.URL, fr.Kind); err != nil {
		bad("url: %v", err)
	} else {
		r.BaseURL, r.Host = u, u.Host
	}
	if fr.PullHost != "" {
		if strings.ContainsAny(fr.PullHost, "/@ ") || !hostRE.MatchString(fr.PullHost) {
			bad("pull_host: %q is not a host[:port]", clip(fr.PullHost))
		} else {
			r.Host = strings.ToLower(fr.PullHost)
		}
	}
	creds, err := fr.credentials(getenv)
	if err != nil {
		errs = append(errs, fmt.Errorf("auth.%w", err))
	}
	r.Auth = creds
	r.TLS = registry.TLSConfig{CAFile: fr.TLS.CAFile, Insecure: fr.TLS.Insecure, InsecureSkipVerify: fr.TLS.InsecureSkipVerify}
	if r.TLS.CAFile != "" {
		if _, err := registry.LoadCAPool(r.TLS.CAFile); err != nil {
			bad("tls.ca_file: %v", err)
		}
	}
	if r.BaseURL != nil && r.BaseURL.Scheme == "http" && !fr.TLS.Insecure {
		bad("url: %s is plain HTTP; set tls.insecure: true to allow it", r.BaseURL)
	}
	r.Limits = registry.LimitsConfig{MaxConcurrent: fr.MaxConcurrent, RateLimit: fr.RateLimit, Burst: fr.Burst}
	if err := r.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if r.Limits.MaxConcurrent == 0 {
		r.Limits.MaxConcurrent = DefaultConcurrency
	}
	if r.Limits.RateLimit == 0 {
		r.Limits.RateLimit = registry.DefaultRateLimit
	}
	if r.Limits.Burst == 0 {
		r.Limits.Burst = registry.DefaultBurst
	}
	for field, globs := range map[string][]string{"repositories.include": r.Include, "repositories.exclude": r.Exclude} {
		for j, g := range globs {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				bad("%s[%d]: %q is not a glob (path.Match: '*' stays within one path segment)", field, j, clip(g))
			}
		}
	}
	r.Refresh = DefaultRefreshInterval
	if fr.RefreshInterval != "" {
		d, err := time.ParseDuration(fr.RefreshInterval)
		switch {
		case err != nil:
			bad("refresh_interval: %q is not a duration (\"15m\", \"1h\")", clip(fr.RefreshInterval))
		case d < MinRefreshInterval || d > 7*24*time.Hour:
			bad("refresh_interval: %s is outside %s to 168h", d, MinRefreshInterval)
		default:
			r.Refresh = d
		}
	}
	r.Timeout = DefaultTimeout
	if fr.Timeout != "" {
		d, err := time.ParseDuration(fr.Timeout)
		switch {
		case err != nil:
			bad("timeout: %q is not a duration (\"30s\")", clip(fr.Timeout))
		case d < 100*time.Millisecond || d > 10*time.Minute:
			bad("timeout: %s is outside 100ms to 10m", d)
		default:
			r.Timeout = d
		}
	}
	switch {
	case r.PageSize == 0:
		r.PageSize = DefaultPageSize
	case r.PageSize < 1 || r.PageSize > 10000:
		bad("page_size: %d is outside 1 to 10000", r.PageSize)
	}
	return r, errors.Join(errs...)
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$`)

// parseURL reads a registry's url. OCI registries may be given as host[:port] (HTTPS); Artifactory needs its
// base URL with scheme, and any path it is served under (/artifactory).
func parseURL(s, kind string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	if kind == KindOCI && !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", clip(s))
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%q: the scheme must be https or http", clip(s))
	case u.Host == "" || !hostRE.MatchString(u.Host):
		return nil, fmt.Errorf("%q has no valid host", clip(s))
	case u.User != nil:
		return nil, fmt.Errorf("%q carries credentials; put them under auth", clip(u.Redacted()))
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q has a query or fragment", clip(s))
	case kind == KindOCI && strings.Trim(u.Path, "/") != "":
		return nil, fmt.Errorf("%q has a path; an OCI registry's API is at its root (/v2/)", clip(s))
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// credentials reads the auth block: a password (inline, file or environment variable) or a token (file or
// environment variable), at most one of them.
func (fr fileRegistry) credentials(getenv func(string) string) (Credentials, error) {
	a := fr.Auth
	c := Credentials{Username: a.Username}
	set := 0
	for _, v := range []string{a.Password, a.PasswordFile, a.PasswordEnv, a.TokenFile, a.TokenEnv} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return c, errors.New("password: set one of password, password_file, password_env, token_file, token_env")
	}
	for field, name := range map[string]string{"password_env": a.PasswordEnv, "token_env": a.TokenEnv} {
		if name != "" && !envRE.MatchString(name) {
			return c, fmt.Errorf("%s: %q is not an environment variable name", field, clip(name))
		}
	}
	switch {
	case a.Password != "":
		c.Password = a.Password
	case a.PasswordFile != "":
		// The collector's registry settings read the same fields; reuse them so the two agree on files.
		ac, err := registry.AuthConfig{Username: a.Username, PasswordFile: a.PasswordFile}.Resolve()
		if err != nil {
			return c, err
		}
		c.Password = ac.Password
	case a.PasswordEnv != "":
		if c.Password = getenv(a.PasswordEnv); c.Password == "" {
			return c, fmt.Errorf("password_env: %s is empty or not set", a.PasswordEnv)
		}
	case a.TokenFile != "":
		b, err := os.ReadFile(a.TokenFile)
		if err != nil {
			return c, fmt.Errorf("token_file: %w", err)
		}
		if c.Token, err = registry.ParseToken(b); err != nil {
			return c, fmt.Errorf("token_file: %s: %w", a.TokenFile, err)
		}
	case a.TokenEnv != "":
		v := getenv(a.TokenEnv)
		if v == "" {
			return c, fmt.Errorf("token_env: %s is empty or not set", a.TokenEnv)
		}
		tok, err := registry.ParseToken([]byte(v))
		if err != nil {
			return c, fmt.Errorf("token_env: %s: %w", a.TokenEnv, err)
		}
		c.Token = tok
	}
	if c.Username != "" && c.Password == "" && c.Token == "" {
		return c, errors.New("password: username is set, but no password or token")
	}
	if c.Username == "" && c.Password != "" {
		return c, errors.New("username: a password needs a username")
	}
	if c.Username != "" && c.Token != "" {
		// Artifactory's docker login: the access token as the user's password.
		c.Password, c.Token = c.Token, ""
	}
	return c, nil
}

// clip shortens a value for an error message.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}
