package registryrule

import (
	"fmt"
	"strings"

	"github.com/runtrust/runtrust/internal/imageref"
)

// MirrorConfig maps references to Source onto the mirror a node really pulls them through. Processors embed it
// in their configuration as the list "mirrors".
type MirrorConfig struct {
	// Source is the registry (and optional repository prefix) as images name it, e.g. docker.io.
	Source string `mapstructure:"source"`
	// Mirror is where the node pulls Source's images from, e.g. mirror.corp/dockerhub.
	Mirror string `mapstructure:"mirror"`
}

// Mirror rewrites references to a source registry (or repository prefix) onto the mirror nodes pull through.
type Mirror struct {
	Source, Target Rule
}

// ParseMirror parses one mirror mapping; errors name the field ("source: ...", "mirror: ...").
func ParseMirror(m MirrorConfig) (Mirror, error) {
	src, err := Parse(m.Source, false)
	if err != nil {
		return Mirror{}, fmt.Errorf("source: %w", err)
	}
	dst, err := Parse(m.Mirror, false)
	if err != nil {
		return Mirror{}, fmt.Errorf("mirror: %w", err)
	}
	if src.Registry() == dst.Registry() && src.PathPrefix == dst.PathPrefix {
		return Mirror{}, fmt.Errorf("source and mirror are both %q", m.Source)
	}
	return Mirror{Source: src, Target: dst}, nil
}

// Rewrite returns the reference as pulled through the mirror, or false when the mirror does not cover ref.
// host and port are ref's registry split by SplitHostPort, host lowercased.
func (m Mirror) Rewrite(ref imageref.Reference, host, port string) (imageref.Reference, bool) {
	if !m.Source.Matches(host, port, ref.Repository) {
		return ref, false
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(ref.Repository, m.Source.PathPrefix), "/")
	repo := m.Target.PathPrefix
	switch {
	case repo == "":
		repo = rest
	case rest != "":
		repo += "/" + rest
	}
	if repo == "" {
		return ref, false
	}
	pulled := ref
	pulled.Registry = m.Target.Registry()
	pulled.Repository = repo
	// Re-parse: the mirror's prefix can push a name past the grammar's limits.
	checked, err := imageref.Parse(pulled.String())
	if err != nil {
		return ref, false
	}
	return checked, true
}

// Apply rewrites ref through the first mirror of mirrors that covers it; false when none does.
func Apply(mirrors []Mirror, ref imageref.Reference) (imageref.Reference, bool) {
	if len(mirrors) == 0 {
		return ref, false
	}
	host, port, _ := SplitHostPort(ref.Registry)
	host = strings.ToLower(host)
	for _, m := range mirrors {
		if pulled, ok := m.Rewrite(ref, host, port); ok {
			return pulled, true
		}
	}
	return ref, false
}
