// Package configtest holds the checks every component's config tests make: each section of testdata/config.yaml
// unmarshalled over the factory's default config and validated, and a validation error that names every bad field.
package configtest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

// Case is one section of testdata/config.yaml and what it must give.
type Case struct {
	ID component.ID
	// Want is the config the section unmarshals into, when it is valid.
	Want component.Config
	// WantErr is a substring of the validation error, when it is not; it must name the field.
	WantErr string
}

// LoadConfig checks every case against testdata/config.yaml: the section named by the case's ID, unmarshalled
// over factory's default config, validates to Want or fails with WantErr.
func LoadConfig(t *testing.T, factory component.Factory, cases []Case) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.ID.String(), func(t *testing.T) {
			cfg := factory.CreateDefaultConfig()
			sub, err := cm.Sub(tc.ID.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tc.WantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.WantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.Want, cfg)
		})
	}
}

// NamesEveryField checks a validation error with several mistakes: one line for each of fields, each naming its
// field, and no line naming any of good.
func NamesEveryField(t *testing.T, err error, fields []string, good ...string) {
	t.Helper()
	require.Error(t, err)
	for _, field := range fields {
		assert.Contains(t, err.Error(), field)
	}
	for _, field := range good {
		assert.NotContains(t, err.Error(), field)
	}
	assert.Equal(t, len(fields), strings.Count(err.Error(), "\n")+1, "one line per bad field: %v", err)
}
