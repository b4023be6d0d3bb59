package registrytrustprocessor

import (
	"fmt"
	"strings"

	"github.com/runtrust/runtrust/internal/imageref"
)

// mirror rewrites references to a source registry (or repository prefix) onto the mirror nodes pull through.
type mirror struct {
	source, target registryRule
}

func parseMirror(m MirrorConfig) (mirror, error) {
	src, err := parseRegistryRule(m.Source, false)
	if err != nil {
		return mirror{}, fmt.Errorf("source: %w", err)
	}
	dst, err := parseRegistryRule(m.Mirror, false)
	if err != nil {
		return mirror{}, fmt.Errorf("mirror: %w", err)
	}
	if src.registry() == dst.registry() && src.pathPrefix == dst.pathPrefix {
		return mirror{}, fmt.Errorf("source and mirror are both %q", m.Source)
	}
	return mirror{source: src, target: dst}, nil
}

// rewrite returns the reference as pulled through the mirror, or false when the mirror does not cover ref.
func (m mirror) rewrite(ref imageref.Reference, host, port string) (imageref.Reference, bool) {
	if !m.source.matches(host, port, ref.Repository) {
		return ref, false
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(ref.Repository, m.source.pathPrefix), "/")
	repo := m.target.pathPrefix
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
	pulled.Registry = m.target.registry()
	pulled.Repository = repo
	// Re-parse: the mirror's prefix can push a name past the grammar's limits.
	checked, err := imageref.Parse(pulled.String())
	if err != nil {
		return ref, false
	}
	return checked, true
}
