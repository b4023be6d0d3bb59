// Package correlate lists what each configured registry stores (repositories, tags, and the digest each tag
// points at) on a schedule, keeps it in the store so the API can say where each stored artifact runs and which
// ones nothing runs, and, for Artifactory registries that ask for it, writes back where their artifacts run.
package correlate

import (
	"bytes"
	"crypto/tls"
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

	"github.com/runtrust/runtrust/internal/configerr"
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

// Registry is one configured registry in its compiled form, as Parse returns it: validated, defaults applied,
// its URL parsed, its credentials and CA file read. New and RemoteOptions take it as it is, so nothing is read
// twice and nothing Parse accepted is refused later.
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
	// TLS is the compiled TLS settings (the CA file read); nil for the system's defaults.
	TLS      *tls.Config
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
		r, err := fr.compile(getenv)
		if err != nil {
			errs = append(errs, configerr.Index("registries", i, err))
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

// compile turns one registries entry into its compiled form; the error joins every problem, each naming its
// field.
func (fr fileRegistry) compile(getenv func(string) string) (Registry, error) {
	r := Registry{Name: fr.Name, Kind: fr.Kind, Feedback: fr.Feedback,
		Include: fr.Repositories.Include, Exclude: fr.Repositories.Exclude}
	var errs []error
	if !nameRE.MatchString(fr.Name) {
		errs = append(errs, fmt.Errorf("name: %q is not a name (lower-case letters, digits, '.' and '-', 1 to 63, as the API's registry filter takes)", clip(fr.Name)))
	}
	errs = append(errs, fr.checkKind())
	if fr.Kind == KindArtifactory {
		r.RepoKeys = fr.RepoKeys
	}
	var err error
	r.BaseURL, r.Host, r.TLS, err = fr.endpoint()
	errs = append(errs, err)
	r.Auth, err = fr.credentials(getenv)
	errs = append(errs, configerr.Prefix("auth", err))
	r.Limits, err = fr.limits()
	errs = append(errs, err, checkGlobs(r.Include, r.Exclude))
	r.Refresh, err = refreshRule.parse(fr.RefreshInterval)
	errs = append(errs, err)
	r.Timeout, err = timeoutRule.parse(fr.Timeout)
	errs = append(errs, err)
	r.PageSize = fr.PageSize
	switch {
	case r.PageSize == 0:
		r.PageSize = DefaultPageSize
	case r.PageSize < 1 || r.PageSize > 10000:
		errs = append(errs, fmt.Errorf("page_size: %d is outside 1 to 10000", r.PageSize))
	}
	return r, errors.Join(errs...)
}

// checkKind checks the kind and the settings only one kind takes.
func (fr fileRegistry) checkKind() error {
	var errs []error
	switch fr.Kind {
	case KindOCI:
		if len(fr.RepoKeys) > 0 {
			errs = append(errs, errors.New("repo_keys: only kind artifactory has repository keys"))
		}
		if fr.Feedback {
			errs = append(errs, errors.New("feedback: only kind artifactory takes feedback; nothing is ever written to a plain OCI registry"))
		}
	case KindArtifactory:
		if len(fr.RepoKeys) == 0 {
			errs = append(errs, errors.New("repo_keys: kind artifactory needs the docker repository keys to list"))
		}
		for j, k := range fr.RepoKeys {
			if !repoKeyRE.MatchString(k) {
				errs = append(errs, fmt.Errorf("repo_keys[%d]: %q is not an Artifactory repository key", j, clip(k)))
			}
		}
	case "":
		errs = append(errs, errors.New("kind: missing; want oci or artifactory"))
	default:
		errs = append(errs, fmt.Errorf("kind: %q is not oci or artifactory", clip(fr.Kind)))
	}
	return errors.Join(errs...)
}

// endpoint reads where the registry is and how to reach it: its URL, the host image references name it by, and
// its TLS settings with the CA file read.
func (fr fileRegistry) endpoint() (base *url.URL, host string, tc *tls.Config, err error) {
	var errs []error
	if base, err = parseURL(fr.URL, fr.Kind); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	} else {
		host = base.Host
		if base.Scheme == "http" && !fr.TLS.Insecure {
			errs = append(errs, fmt.Errorf("url: %s is plain HTTP; set tls.insecure: true to allow it", base))
		}
	}
	if fr.PullHost != "" {
		if strings.ContainsAny(fr.PullHost, "/@ ") || !hostRE.MatchString(fr.PullHost) {
			errs = append(errs, fmt.Errorf("pull_host: %q is not a host[:port]", clip(fr.PullHost)))
		} else {
			host = strings.ToLower(fr.PullHost)
		}
	}
	tc, err = registry.TLSConfig{CAFile: fr.TLS.CAFile, Insecure: fr.TLS.Insecure,
		InsecureSkipVerify: fr.TLS.InsecureSkipVerify}.ClientConfig()
	errs = append(errs, configerr.Prefix("tls", err))
	return base, host, tc, errors.Join(errs...)
}

// limits reads the request limits, the zero ones defaulted.
func (fr fileRegistry) limits() (registry.LimitsConfig, error) {
	l := registry.LimitsConfig{MaxConcurrent: fr.MaxConcurrent, RateLimit: fr.RateLimit, Burst: fr.Burst}
	return l.WithDefaults(registry.LimitsConfig{MaxConcurrent: DefaultConcurrency, RateLimit: registry.DefaultRateLimit,
		Burst: registry.DefaultBurst}), l.Validate()
}

// checkGlobs checks the repositories' include and exclude globs.
func checkGlobs(include, exclude []string) error {
	var errs []error
	for _, list := range []struct {
		field string
		globs []string
	}{{"repositories.include", include}, {"repositories.exclude", exclude}} {
		for j, g := range list.globs {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				errs = append(errs, fmt.Errorf("%s[%d]: %q is not a glob (path.Match: '*' stays within one path segment)", list.field, j, clip(g)))
			}
		}
	}
	return errors.Join(errs...)
}

// durationRule is a duration setting: its field, an example for the error, its default and its range.
type durationRule struct {
	field, example string
	def, min, max  time.Duration
}

var (
	refreshRule = durationRule{field: "refresh_interval", example: `"15m", "1h"`, def: DefaultRefreshInterval,
		min: MinRefreshInterval, max: 7 * 24 * time.Hour}
	timeoutRule = durationRule{field: "timeout", example: `"30s"`, def: DefaultTimeout,
		min: 100 * time.Millisecond, max: 10 * time.Minute}
)

// parse reads the setting ("" is the default).
func (d durationRule) parse(s string) (time.Duration, error) {
	if s == "" {
		return d.def, nil
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return d.def, fmt.Errorf("%s: %q is not a duration (%s)", d.field, clip(s), d.example)
	case v < d.min || v > d.max:
		return d.def, fmt.Errorf("%s: %s is outside %s to %s", d.field, v, shortDuration(d.min), shortDuration(d.max))
	}
	return v, nil
}

// shortDuration writes a round duration as a person would: 168h, 10m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
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
