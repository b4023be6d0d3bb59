package registrytrustprocessor

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/runtrust/runtrust/processors/registrytrustprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string // substring of the validation error; the field must be named
	}{
		{
			id: component.NewID(metadata.Type),
			want: &Config{
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
			id: component.NewIDWithName(metadata.Type, "defaults"),
			want: &Config{
				TrustedRegistries: []string{"registry.corp.example"},
				MutableTags:       defaultMutableTags,
				UntrustedSeverity: "high",
			},
		},
		{id: component.NewIDWithName(metadata.Type, "empty"), wantErr: "trusted_registries: empty"},
		{id: component.NewIDWithName(metadata.Type, "bad_rule"), wantErr: "trusted_registries[0]: \"https://registry.corp.example\" has a URL scheme"},
		{id: component.NewIDWithName(metadata.Type, "bad_wildcard"), wantErr: "trusted_registries[0]: \"registry.*.example\": a wildcard may only stand as the first label"},
		{id: component.NewIDWithName(metadata.Type, "bad_mirror"), wantErr: "mirrors[0]: source: \"*.docker.io\": a wildcard is not allowed here"},
		{id: component.NewIDWithName(metadata.Type, "bad_tag"), wantErr: "mutable_tags[0]: tag \"-latest\" has invalid character '-'"},
		{id: component.NewIDWithName(metadata.Type, "bad_severity"), wantErr: "untrusted_severity: \"severe\" is not one of none, low, medium, high, critical"},
		{id: component.NewIDWithName(metadata.Type, "bad_ottl"), wantErr: "policy.untrusted_when[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	cfg := &Config{
		TrustedRegistries: []string{"ok.example", "", "Bad Host"},
		Mirrors:           []MirrorConfig{{Source: "docker.io", Mirror: "docker.io"}},
		MutableTags:       []string{"latest", ""},
		UntrustedSeverity: "",
	}
	err := cfg.Validate()
	require.Error(t, err)
	for _, field := range []string{"trusted_registries[1]", "trusted_registries[2]", "mirrors[0]", "mutable_tags[1]", "untrusted_severity"} {
		assert.Contains(t, err.Error(), field)
	}
	assert.NotContains(t, err.Error(), "trusted_registries[0]")
	assert.Equal(t, 5, strings.Count(err.Error(), "\n")+1, "one line per bad field: %v", err)
}
