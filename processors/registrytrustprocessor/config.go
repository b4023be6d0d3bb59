package registrytrustprocessor

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/runtrust/runtrust/internal/configerr"
	"github.com/runtrust/runtrust/internal/registryrule"
	"github.com/runtrust/runtrust/internal/risk"
)

// Config is the registrytrust processor's configuration.
type Config struct {
	// TrustedRegistries lists the approved registries: host, host:port, host/path-prefix or *.domain entries.
	TrustedRegistries []string `mapstructure:"trusted_registries"`
	// Mirrors says which registries nodes pull through a mirror; trust is judged on the mirror the bytes came from.
	Mirrors []MirrorConfig `mapstructure:"mirrors"`
	// MutableTags are tags that move by convention; an image referenced by one of them (or by no tag) is marked
	// runtrust.image.tag_mutable, unless it is pinned by digest.
	MutableTags []string `mapstructure:"mutable_tags"`
	// UntrustedSeverity is the risk an untrusted registry raises a record to.
	UntrustedSeverity string `mapstructure:"untrusted_severity"`
	// Policy holds OTTL conditions (log context) that decide beyond the lists.
	Policy PolicyConfig `mapstructure:"policy"`
}

// MirrorConfig maps references to Source onto the mirror a node really pulls them through
// (internal/registryrule, shared with the image integrity processor).
type MirrorConfig = registryrule.MirrorConfig

// PolicyConfig holds OTTL conditions in the log context. They run after the list rules, so they can read the
// findings (attributes["runtrust.registry.host"], ...) as well as anything else on the record and its resource.
type PolicyConfig struct {
	// TrustedWhen marks a record trusted when any condition is true (unless an untrusted_when condition is too).
	TrustedWhen []string `mapstructure:"trusted_when"`
	// UntrustedWhen marks a record untrusted when any condition is true; it wins over everything else.
	UntrustedWhen []string `mapstructure:"untrusted_when"`
}

var _ confmap.Validator = (*Config)(nil)

// defaultMutableTags are the tags teams commonly move to the newest build.
var defaultMutableTags = []string{
	"latest", "stable", "main", "master", "edge", "nightly", "dev", "develop", "prod", "production", "release", "current",
}

func createDefaultConfig() component.Config {
	return &Config{
		MutableTags:       append([]string(nil), defaultMutableTags...),
		UntrustedSeverity: "high",
	}
}

// Validate checks every field that can be checked without building the processor; OTTL conditions are parsed
// here too, so a typo fails at start with the condition named. It is the compilation the processor runs with.
func (cfg *Config) Validate() error {
	_, err := cfg.compile(component.TelemetrySettings{})
	return err
}

// compiled is a Config in the form the processor runs with: rules, mirrors and OTTL conditions parsed.
type compiled struct {
	rules             []registryrule.Rule
	mirrors           []registryrule.Mirror
	mutableTags       map[string]struct{}
	untrustedSeverity string
	policy            policy
}

// compile checks every field and parses what the processor runs with. The error joins every problem, each line
// naming its field. set is what the OTTL conditions log through when they fail on a record.
func (cfg *Config) compile(set component.TelemetrySettings) (compiled, error) {
	c := compiled{mutableTags: make(map[string]struct{}, len(cfg.MutableTags)), untrustedSeverity: cfg.UntrustedSeverity}
	var errs []error
	if len(cfg.TrustedRegistries) == 0 && len(cfg.Policy.TrustedWhen) == 0 {
		errs = append(errs, errors.New("trusted_registries: empty, and no policy.trusted_when either: every image "+
			"would be flagged untrusted; list the registries you approve"))
	}
	for i, s := range cfg.TrustedRegistries {
		r, err := registryrule.Parse(s, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("trusted_registries[%d]: %w", i, err))
		}
		c.rules = append(c.rules, r)
	}
	for i, mc := range cfg.Mirrors {
		m, err := registryrule.ParseMirror(mc)
		errs = append(errs, configerr.Index("mirrors", i, err))
		c.mirrors = append(c.mirrors, m)
	}
	for i, tag := range cfg.MutableTags {
		if err := checkTag(tag); err != nil {
			errs = append(errs, fmt.Errorf("mutable_tags[%d]: %w", i, err))
		}
		c.mutableTags[tag] = struct{}{}
	}
	if !risk.Valid(cfg.UntrustedSeverity) {
		errs = append(errs, fmt.Errorf("untrusted_severity: %q is not one of %s",
			cfg.UntrustedSeverity, strings.Join(risk.Severities(), ", ")))
	}
	var err error
	c.policy, err = newPolicy(cfg.Policy, set)
	errs = append(errs, configerr.Prefix("policy", err))
	if err := errors.Join(errs...); err != nil {
		return compiled{}, err
	}
	return c, nil
}

// checkTag applies the reference grammar's tag rule: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func checkTag(tag string) error {
	if tag == "" || len(tag) > 128 {
		return fmt.Errorf("tag %q must be 1 to 128 characters", tag)
	}
	for i, c := range tag {
		word := c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !word && (i == 0 || (c != '.' && c != '-')) {
			return fmt.Errorf("tag %q has invalid character %q at offset %d", tag, c, i)
		}
	}
	return nil
}
