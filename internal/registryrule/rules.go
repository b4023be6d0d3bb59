// Package registryrule parses and matches registry rules: a registry host, optionally a port and a repository
// path prefix, as trusted_registries entries, mirror mappings and credentials keys write them. The registry trust
// and image integrity processors share it, so both read a mirror mapping the same way.
package registryrule

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/runtrust/runtrust/internal/imageref"
)

// Rule is one entry of trusted_registries, parsed once at start.
//
// A rule names a registry host, optionally a port and a repository path prefix:
//
//	registry.corp             the host on its default port, any repository
//	registry.corp:5000        that host and port only
//	ghcr.io/acme              repositories under ghcr.io/acme/ (path-component boundary: not ghcr.io/acme-evil)
//	*.corp.example            any host below corp.example (not corp.example itself), on its default port
//
// A rule without a port matches only references without a port: an approved registry on 443 says nothing
// about whatever else listens on the same host.
type Rule struct {
	Text       string // as configured, for messages
	Host       string // lowercase; without the leading "*." for a wildcard
	Wildcard   bool
	Port       string // "" for the default port
	PathPrefix string // "" for any repository
}

// Parse parses a rule. allowWildcard is false where the rule must name one registry (a mirror).
func Parse(s string, allowWildcard bool) (Rule, error) {
	r := Rule{Text: s}
	switch {
	case s == "":
		return r, fmt.Errorf("empty entry")
	case strings.TrimSpace(s) != s:
		return r, fmt.Errorf("%q has leading or trailing space", s)
	case strings.Contains(s, "://"):
		return r, fmt.Errorf("%q has a URL scheme: write the registry as host[:port][/path], as in an image reference", s)
	case strings.ContainsAny(s, "@"):
		return r, fmt.Errorf("%q has a digest: a rule names a registry or repository prefix, not an image", s)
	}
	hostPort, path, _ := strings.Cut(s, "/")
	if strings.HasSuffix(s, "/") {
		return r, fmt.Errorf("%q ends with '/': drop it", s)
	}
	if strings.HasPrefix(hostPort, "*.") {
		if !allowWildcard {
			return r, fmt.Errorf("%q: a wildcard is not allowed here; name one registry", s)
		}
		r.Wildcard = true
		hostPort = hostPort[2:]
	} else if strings.Contains(hostPort, "*") {
		return r, fmt.Errorf("%q: a wildcard may only stand as the first label, as in *.example.com", s)
	}
	host, port, err := SplitHostPort(hostPort)
	if err != nil {
		return r, fmt.Errorf("%q: %w", s, err)
	}
	if err := checkHost(host); err != nil {
		return r, fmt.Errorf("%q: %w", s, err)
	}
	if r.Wildcard && !strings.Contains(host, ".") {
		return r, fmt.Errorf("%q: a wildcard needs at least two labels after \"*.\" (as in *.example.com)", s)
	}
	r.Host = strings.ToLower(host)
	r.Port = port
	if !r.Wildcard && port == "" {
		// Docker Hub's aliases are one registry; image references are normalized the same way.
		switch r.Host {
		case "index.docker.io", "registry-1.docker.io":
			r.Host = imageref.DefaultRegistry
		}
	}
	if path != "" {
		if err := checkPath(path); err != nil {
			return r, fmt.Errorf("%q: %w", s, err)
		}
		r.PathPrefix = path
	}
	return r, nil
}

// Matches reports whether the rule covers a repository in a registry given as host and port (from
// SplitHostPort of a normalized imageref registry; the host is lowercase there).
func (r Rule) Matches(host, port, repository string) bool {
	if port != r.Port {
		return false
	}
	if r.Wildcard {
		if len(host) <= len(r.Host) || !strings.HasSuffix(host, r.Host) || host[len(host)-len(r.Host)-1] != '.' {
			return false
		}
	} else if host != r.Host {
		return false
	}
	return r.PathPrefix == "" || repository == r.PathPrefix ||
		(strings.HasPrefix(repository, r.PathPrefix) && repository[len(r.PathPrefix)] == '/')
}

// Registry returns host[:port] as an image reference writes it.
func (r Rule) Registry() string {
	host := r.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if r.Port != "" {
		return host + ":" + r.Port
	}
	return host
}

// SplitHostPort splits "host", "host:port", "[v6]" and "[v6]:port".
func SplitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("IPv6 host without closing ']'")
		}
		host, rest := s[1:end], s[end+1:]
		if host == "" {
			return "", "", fmt.Errorf("empty IPv6 host")
		}
		for _, c := range host {
			if !(c == ':' || c == '.' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')) {
				return "", "", fmt.Errorf("invalid character %q in IPv6 host", c)
			}
		}
		switch {
		case rest == "":
			return host, "", nil
		case rest[0] == ':':
			port, err := checkPort(rest[1:])
			return host, port, err
		default:
			return "", "", fmt.Errorf("unexpected %q after IPv6 host", rest)
		}
	}
	host, port, hasPort := strings.Cut(s, ":")
	if !hasPort {
		return host, "", nil
	}
	port, err = checkPort(port)
	return host, port, err
}

func checkPort(p string) (string, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] == '0' || p[0] == '+' {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return p, nil
}

// checkHost accepts DNS names and IP addresses: labels of letters, digits and inner hyphens.
func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("empty host")
	}
	if strings.Contains(h, ":") { // an unbracketed IPv6 literal came through SplitHostPort only from brackets
		return nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("host %q has an empty label", h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q has a label that starts or ends with '-'", h)
		}
		for _, c := range label {
			if !(c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
				return fmt.Errorf("host %q has invalid character %q", h, c)
			}
		}
	}
	return nil
}

// checkPath accepts repository path prefixes: lowercase components of [a-z0-9._-], no empty component.
func checkPath(p string) error {
	for _, comp := range strings.Split(p, "/") {
		if comp == "" {
			return fmt.Errorf("path %q has an empty component", p)
		}
		for _, c := range comp {
			switch {
			case 'A' <= c && c <= 'Z':
				return fmt.Errorf("path %q must be lowercase, as repository names are", p)
			case !(c == '.' || c == '_' || c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z')):
				return fmt.Errorf("path %q has invalid character %q", p, c)
			}
		}
	}
	return nil
}
