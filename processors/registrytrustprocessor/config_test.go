package registrytrustprocessor

import (
	"testing"

	"go.opentelemetry.io/collector/component"

	"github.com/runtrust/runtrust/internal/configtest"
	"github.com/runtrust/runtrust/processors/registrytrustprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	configtest.LoadConfig(t, NewFactory(), []configtest.Case{
		{
			ID: component.NewID(metadata.Type),
			Want: &Config{
				TrustedRegistries: []string{"registry.corp.example", "registry.corp.example:5000", "ghcr.io/acme",
					"*.artifactory.corp.example", "docker.io/library"},
				Mirrors:           []MirrorConfig{{Source: "docker.io", Mirror: "mirror.corp.example/dockerhub"}},
				MutableTags:       []string{"latest", "stable", "prod"},
				UntrustedSeverity: "critical",
				Policy: PolicyConfig{
					TrustedWhen: []string{`resource.attributes["k8s.cluster.name"] == "sandbox"`},
					UntrustedWhen: []string{`attributes["k8s.namespace.name"] == "payments" and ` +
						`attributes["runtrust.image.tag_mutable"] == true`},
				},
			},
		},
		{
			ID: component.NewIDWithName(metadata.Type, "defaults"),
			Want: &Config{
				TrustedRegistries: []string{"registry.corp.example"},
				MutableTags:       defaultMutableTags,
				UntrustedSeverity: "high",
			},
		},
		{ID: component.NewIDWithName(metadata.Type, "empty"), WantErr: "trusted_registries: empty"},
		{ID: component.NewIDWithName(metadata.Type, "bad_rule"), WantErr: "trusted_registries[0]: \"https://registry.corp.example\" has a URL scheme"},
		{ID: component.NewIDWithName(metadata.Type, "bad_wildcard"), WantErr: "trusted_registries[0]: \"registry.*.example\": a wildcard may only stand as the first label"},
		{ID: component.NewIDWithName(metadata.Type, "bad_mirror"), WantErr: "mirrors[0].source: \"*.docker.io\": a wildcard is not allowed here"},
		{ID: component.NewIDWithName(metadata.Type, "bad_tag"), WantErr: "mutable_tags[0]: tag \"-latest\" has invalid character '-'"},
		{ID: component.NewIDWithName(metadata.Type, "bad_severity"), WantErr: "untrusted_severity: \"severe\" is not one of none, low, medium, high, critical"},
		{ID: component.NewIDWithName(metadata.Type, "bad_ottl"), WantErr: "policy.untrusted_when[0]"},
	})
}

func TestValidateNamesEveryBadField(t *testing.T) {
	cfg := &Config{
		TrustedRegistries: []string{"ok.example", "", "Bad Host"},
		Mirrors:           []MirrorConfig{{Source: "docker.io", Mirror: "docker.io"}},
		MutableTags:       []string{"latest", ""},
		UntrustedSeverity: "",
		Policy: PolicyConfig{
			TrustedWhen:   []string{`attributes["a"] == "b"`, `attributes["a"] ==`},
			UntrustedWhen: []string{`NoSuchFunction(attributes["a"])`},
		},
	}
	configtest.NamesEveryField(t, cfg.Validate(),
		[]string{"trusted_registries[1]", "trusted_registries[2]", "mirrors[0]", "mutable_tags[1]", "untrusted_severity",
			"policy.trusted_when[1]", "policy.untrusted_when[0]"},
		"trusted_registries[0]", "policy.trusted_when[0]")
}
