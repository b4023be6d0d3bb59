package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/runtrust/runtrust/internal/registryrule"
)

// Credential is one entry of a credentials file: the registry (and optional repository prefix) it applies to,
// and what to authenticate with.
type Credential struct {
	Rule registryrule.Rule
	Auth authn.AuthConfig
}

// dockerAuth is one entry of "auths" in a docker config.json (and of a .dockercfg).
type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// maxCredentialsFile bounds what is read from a credentials file; real ones are a few KiB.
const maxCredentialsFile = 4 << 20

// ParseCredentials parses a credentials file's content: a docker config.json or a Kubernetes
// .dockerconfigjson ({"auths": {...}}), a legacy .dockercfg ({"registry": {...}}), or a Kubernetes Secret of
// type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg as JSON. Keys are registries as docker writes
// them ("https://index.docker.io/v1/", "registry.corp:5000", "ghcr.io/acme", "*.corp.example"). The result is
// ordered most specific first. Credential helpers (credsStore, credHelpers) are not run: they are programs.
func ParseCredentials(data []byte) ([]Credential, error) {
	if len(data) > maxCredentialsFile {
		return nil, fmt.Errorf("%d bytes: larger than any credentials file (%d bytes at most)", len(data), maxCredentialsFile)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if top == nil {
		return nil, errors.New("not a JSON object: null")
	}
	var auths map[string]dockerAuth
	switch {
	case top["auths"] != nil:
		if err := json.Unmarshal(top["auths"], &auths); err != nil {
			return nil, fmt.Errorf("auths: %w", err)
		}
	case top["kind"] != nil:
		return parseSecret(top)
	default:
		// .dockercfg: the auths map is the whole file. Other docker config keys without "auths" mean a config
		// that has no inline credentials.
		for k := range top {
			switch k {
			case "credsStore", "credHelpers", "HttpHeaders", "psFormat", "imagesFormat", "detachKeys", "currentContext", "plugins", "proxies", "experimental":
				return nil, nil
			}
		}
		if err := json.Unmarshal(data, &auths); err != nil {
			return nil, fmt.Errorf("not a docker config.json (no \"auths\") nor a .dockercfg: %w", err)
		}
	}
	out := make([]Credential, 0, len(auths))
	for key, a := range auths {
		c, err := credential(key, a)
		if err != nil {
			return nil, err
		}
		if c.Auth != (authn.AuthConfig{}) {
			out = append(out, c)
		}
	}
	sortCredentials(out)
	return out, nil
}

// parseSecret reads a Kubernetes Secret object's data[".dockerconfigjson"] or data[".dockercfg"].
func parseSecret(top map[string]json.RawMessage) ([]Credential, error) {
	var kind string
	if err := json.Unmarshal(top["kind"], &kind); err != nil || kind != "Secret" {
		return nil, fmt.Errorf("kind: an object with a kind must be a Kubernetes Secret, not %s", truncate(string(top["kind"])))
	}
	var data map[string]string
	if top["data"] != nil {
		if err := json.Unmarshal(top["data"], &data); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	}
	for _, key := range []string{".dockerconfigjson", ".dockercfg"} {
		enc, ok := data[key]
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("data[%q]: not base64: %w", key, err)
		}
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, fmt.Errorf("data[%q]: not a JSON object: %w", key, err)
		}
		if inner["kind"] != nil {
			return nil, fmt.Errorf("data[%q]: a Secret inside a Secret", key)
		}
		creds, err := ParseCredentials(raw)
		if err != nil {
			return nil, fmt.Errorf("data[%q]: %w", key, err)
		}
		return creds, nil
	}
	return nil, errors.New("data: the Secret has neither .dockerconfigjson nor .dockercfg (is it an image pull secret?)")
}

func credential(key string, a dockerAuth) (Credential, error) {
	rule, err := registryrule.Parse(normalizeCredentialKey(key), true)
	if err != nil {
		return Credential{}, fmt.Errorf("auths[%s]: %w", truncate(key), err)
	}
	c := Credential{Rule: rule, Auth: authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	}}
	if a.Auth != "" {
		user, pass, err := decodeAuth(a.Auth)
		if err != nil {
			return Credential{}, fmt.Errorf("auths[%s].auth: %w", truncate(key), err)
		}
		c.Auth.Username, c.Auth.Password = user, pass
	}
	if (c.Auth.Username == "") != (c.Auth.Password == "") && c.Auth.IdentityToken == "" {
		return Credential{}, fmt.Errorf("auths[%s]: a username needs a password and a password a username", truncate(key))
	}
	return c, nil
}

// decodeAuth decodes docker's "auth": base64 of "user:password".
func decodeAuth(s string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// docker writes padded base64; some tools do not.
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
			return "", "", errors.New("not base64")
		}
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" {
		return "", "", errors.New("decodes to no \"user:password\"")
	}
	return user, pass, nil
}

// normalizeCredentialKey turns the key spellings docker and kubelet accept into a registry rule:
// "https://index.docker.io/v1/" → "docker.io", "http://registry.corp:5000/" → "registry.corp:5000".
func normalizeCredentialKey(k string) string {
	k = strings.TrimSpace(k)
	for _, scheme := range []string{"https://", "http://"} {
		if len(k) >= len(scheme) && strings.EqualFold(k[:len(scheme)], scheme) {
			k = k[len(scheme):]
			break
		}
	}
	k = strings.TrimRight(k, "/")
	host, path, _ := strings.Cut(k, "/")
	if path == "v1" || path == "v2" { // docker's legacy "index.docker.io/v1/" and API-root spellings
		k = host
	}
	switch strings.ToLower(host) {
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		if k == host {
			return "docker.io"
		}
	}
	return k
}

// sortCredentials orders the most specific rules first: exact hosts before wildcards, longer path prefixes
// before shorter ones, so the first match is the best one.
func sortCredentials(cs []Credential) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i].Rule, cs[j].Rule
		if a.Wildcard != b.Wildcard {
			return !a.Wildcard
		}
		if len(a.PathPrefix) != len(b.PathPrefix) {
			return len(a.PathPrefix) > len(b.PathPrefix)
		}
		if len(a.Host) != len(b.Host) {
			return len(a.Host) > len(b.Host)
		}
		return a.Text < b.Text
	})
}

func loadCredentialsFile(path string) ([]Credential, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxCredentialsFile+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	creds, err := ParseCredentials(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return creds, nil
}

// ParseToken reads an access token file: the token alone (surrounding space ignored), or the JSON answer of
// an Artifactory token request ({"access_token": "...", "token_type": "Bearer", ...}).
func ParseToken(data []byte) (string, error) {
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", errors.New("empty token")
	}
	if strings.HasPrefix(s, "{") {
		var resp struct {
			AccessToken *string `json:"access_token"`
			Token       *string `json:"token"`
		}
		if err := json.Unmarshal([]byte(s), &resp); err != nil {
			return "", fmt.Errorf("looks like JSON but is not: %w", err)
		}
		switch {
		case resp.AccessToken != nil:
			s = *resp.AccessToken
		case resp.Token != nil:
			s = *resp.Token
		default:
			return "", errors.New(`JSON without "access_token" (or "token")`)
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return "", errors.New(`"access_token" is empty`)
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("the token has a byte 0x%02x at offset %d: a token is printable ASCII without spaces", c, i)
		}
	}
	return s, nil
}

// Resolve reads the files the settings name and returns the credentials they give, in go-containerregistry's
// form; the error names the field. The runtime service's registry correlation uses it for the same fields.
func (a AuthConfig) Resolve() (authn.AuthConfig, error) { return a.authConfig() }

// authConfig turns per-registry auth settings into go-containerregistry's form; the error names the field.
func (a AuthConfig) authConfig() (authn.AuthConfig, error) {
	var out authn.AuthConfig
	password := a.Password
	if a.PasswordFile != "" {
		if a.Password != "" {
			return out, errors.New("password_file: set password or password_file, not both")
		}
		s, err := readSecretFile("password_file", a.PasswordFile)
		if err != nil {
			return out, err
		}
		password = strings.TrimRight(s, "\r\n")
	}
	if a.TokenFile != "" {
		if password != "" {
			return out, errors.New("token_file: set a password or a token file, not both")
		}
		s, err := readSecretFile("token_file", a.TokenFile)
		if err != nil {
			return out, err
		}
		tok, err := ParseToken([]byte(s))
		if err != nil {
			return out, fmt.Errorf("token_file: %s: %w", a.TokenFile, err)
		}
		if a.Username != "" {
			return authn.AuthConfig{Username: a.Username, Password: tok}, nil
		}
		return authn.AuthConfig{RegistryToken: tok}, nil
	}
	switch {
	case a.Username != "" && password == "":
		return out, errors.New("password: username is set, but no password, password_file or token_file")
	case a.Username == "" && password != "":
		return out, errors.New("username: a password needs a username")
	}
	return authn.AuthConfig{Username: a.Username, Password: password}, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q…", s[:80])
	}
	return fmt.Sprintf("%q", s)
}
