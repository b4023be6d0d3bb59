package auth

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runtrust/runtrust/runtime-service/internal/policyfile"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// OIDCConfig is the sign-in part of the service's configuration: the OpenID Connect provider users sign in at,
// and the bindings that give a signed-in identity its role and clusters (docs/security.md, "Signing in").
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is this service's /auth/callback as the browser reaches it, registered at the provider.
	RedirectURL string
	Scopes      []string
	// GroupsClaim names the ID token or userinfo claim that lists the user's groups (bindings' group).
	GroupsClaim string
	SessionTTL  time.Duration
	// RootCAs verifies the provider's TLS certificate; nil: the system's roots.
	RootCAs  *x509.CertPool
	Bindings []Binding
}

// Binding gives the identities it matches a role, and optionally restricts them to clusters. Exactly one of
// Email, EmailDomain, Subject and Group is set; email matches need the provider to say the email is verified.
type Binding struct {
	Email       string   `yaml:"email"`
	EmailDomain string   `yaml:"email_domain"`
	Subject     string   `yaml:"subject"`
	Group       string   `yaml:"group"`
	Role        string   `yaml:"role"`
	Clusters    []string `yaml:"clusters"`
}

// Identity is what the provider says about a signed-in user.
type Identity struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
}

// Bind returns the first binding, in file order, that matches id; ok is false when none does.
func (c OIDCConfig) Bind(id Identity) (b Binding, ok bool) {
	for _, b := range c.Bindings {
		if b.matches(id) {
			return b, true
		}
	}
	return Binding{}, false
}

func (b Binding) matches(id Identity) bool {
	email := strings.ToLower(id.Email)
	switch {
	case b.Subject != "":
		return id.Subject == b.Subject
	case b.Email != "":
		return id.EmailVerified && email == strings.ToLower(b.Email)
	case b.EmailDomain != "":
		_, domain, ok := strings.Cut(email, "@")
		return id.EmailVerified && ok && domain == strings.ToLower(b.EmailDomain)
	case b.Group != "":
		for _, g := range id.Groups {
			if g == b.Group {
				return true
			}
		}
	}
	return false
}

// Limits of an OIDC file.
const (
	maxOIDCFile       = 1 << 20
	maxBindings       = 10000
	defaultSessionTTL = 12 * time.Hour
	maxSessionTTL     = 30 * 24 * time.Hour
)

type oidcFile struct {
	Issuer           string    `yaml:"issuer"`
	ClientID         string    `yaml:"client_id"`
	ClientSecretFile string    `yaml:"client_secret_file"`
	ClientSecretEnv  string    `yaml:"client_secret_env"`
	RedirectURL      string    `yaml:"redirect_url"`
	Scopes           []string  `yaml:"scopes"`
	GroupsClaim      string    `yaml:"groups_claim"`
	SessionTTL       string    `yaml:"session_ttl"`
	CAFile           string    `yaml:"ca_file"`
	Bindings         []Binding `yaml:"bindings"`
}

// LoadOIDCFile reads and checks an OIDC file (ParseOIDC), naming the file in every error.
func LoadOIDCFile(name string, getenv func(string) string) (OIDCConfig, error) {
	data, err := policyfile.Read(name, maxOIDCFile)
	if err != nil {
		return OIDCConfig{}, fmt.Errorf("OIDC file: %w", err)
	}
	c, err := ParseOIDC(data, getenv)
	if err != nil {
		return OIDCConfig{}, fmt.Errorf("OIDC file %s: %w", name, err)
	}
	return c, nil
}

// ParseOIDC reads an OIDC file's YAML. Unknown keys are errors and every error names its field
// (bindings[2].role: …). The files it names (client secret, CA) are read now, so a missing one fails at start.
func ParseOIDC(data []byte, getenv func(string) string) (OIDCConfig, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f oidcFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return OIDCConfig{}, errors.New("empty: want issuer, client_id, a client secret, redirect_url and bindings")
		}
		return OIDCConfig{}, fmt.Errorf("not an OIDC file: %w", err)
	}
	c := OIDCConfig{Issuer: strings.TrimSpace(f.Issuer), ClientID: strings.TrimSpace(f.ClientID), RedirectURL: strings.TrimSpace(f.RedirectURL),
		Scopes: f.Scopes, GroupsClaim: f.GroupsClaim, SessionTTL: defaultSessionTTL, Bindings: f.Bindings}
	var errs []error
	check := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	check("issuer", checkProviderURL(c.Issuer))
	if c.ClientID == "" {
		check("client_id", errors.New("missing"))
	}
	secret, err := clientSecret(f, getenv)
	check("client secret", err)
	c.ClientSecret = secret
	check("redirect_url", checkRedirectURL(c.RedirectURL))
	if c.Scopes == nil {
		c.Scopes = []string{"openid", "email", "profile"}
	}
	check("scopes", checkScopes(c.Scopes))
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if f.SessionTTL != "" {
		d, err := time.ParseDuration(f.SessionTTL)
		if err == nil && (d < time.Minute || d > maxSessionTTL) {
			err = fmt.Errorf("%s is not from 1m to %s", f.SessionTTL, maxSessionTTL)
		}
		check("session_ttl", err)
		c.SessionTTL = d
	}
	if f.CAFile != "" {
		pool, err := loadCA(f.CAFile)
		check("ca_file", err)
		c.RootCAs = pool
	}
	switch {
	case len(c.Bindings) == 0:
		check("bindings", errors.New("missing: without a binding nobody who signs in gets a role"))
	case len(c.Bindings) > maxBindings:
		check("bindings", fmt.Errorf("%d entries, at most %d", len(c.Bindings), maxBindings))
	}
	for i, b := range c.Bindings {
		check(fmt.Sprintf("bindings[%d]", i), checkBinding(b))
	}
	if len(errs) > 0 {
		return OIDCConfig{}, errors.Join(errs...)
	}
	return c, nil
}

// checkProviderURL wants an absolute https URL, or http on a loopback host (a provider on this machine).
func checkProviderURL(v string) error {
	if v == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL without query or fragment", v)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(hostPort(u))) {
		return fmt.Errorf("%q: the provider must be https (http only on a loopback address)", v)
	}
	return nil
}

// checkRedirectURL wants this service's /auth/callback: https, or http on a loopback host, where browsers
// keep Secure cookies too.
func checkRedirectURL(v string) error {
	if err := checkProviderURL(v); err != nil {
		return err
	}
	if u, _ := url.Parse(v); u.Path != CallbackPath {
		return fmt.Errorf("%q: the path must be %s, where the service takes the provider's answer", v, CallbackPath)
	}
	return nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return u.Host + ":443"
}

func checkScopes(scopes []string) error {
	hasOpenID := false
	for i, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("[%d] %q is not a scope", i, s)
		}
		hasOpenID = hasOpenID || s == "openid"
	}
	if !hasOpenID {
		return errors.New(`must include "openid"`)
	}
	return nil
}

func clientSecret(f oidcFile, getenv func(string) string) (string, error) {
	switch {
	case f.ClientSecretFile != "" && f.ClientSecretEnv != "":
		return "", errors.New("give client_secret_file or client_secret_env, not both")
	case f.ClientSecretFile != "":
		b, err := policyfile.Read(f.ClientSecretFile, 64<<10)
		if err != nil {
			return "", fmt.Errorf("client_secret_file: %w", err)
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("client_secret_file %s is empty", f.ClientSecretFile)
	case f.ClientSecretEnv != "":
		if s := getenv(f.ClientSecretEnv); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("client_secret_env: $%s is empty or unset", f.ClientSecretEnv)
	}
	return "", errors.New("missing: set client_secret_file or client_secret_env (the secret never goes in this file)")
}

func checkBinding(b Binding) error {
	set := 0
	for _, v := range []string{b.Email, b.EmailDomain, b.Subject, b.Group} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return errors.New("give exactly one of email, email_domain, subject and group")
	}
	if b.Email != "" && !strings.Contains(b.Email, "@") {
		return fmt.Errorf("email %q has no @", b.Email)
	}
	if strings.Contains(b.EmailDomain, "@") {
		return fmt.Errorf("email_domain %q: the domain alone, without @", b.EmailDomain)
	}
	if b.Role != store.RoleViewer && b.Role != store.RoleAdmin {
		return fmt.Errorf("role %q is not %s or %s", b.Role, store.RoleViewer, store.RoleAdmin)
	}
	if b.Clusters != nil && len(b.Clusters) == 0 {
		return errors.New("clusters: an empty list would show nothing; leave it out for every cluster")
	}
	for i, c := range b.Clusters {
		if strings.TrimSpace(c) == "" {
			return fmt.Errorf("clusters[%d] is empty", i)
		}
	}
	return nil
}

func loadCA(name string) (*x509.CertPool, error) {
	pem, err := policyfile.Read(name, 1<<20)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", name)
	}
	return pool, nil
}
