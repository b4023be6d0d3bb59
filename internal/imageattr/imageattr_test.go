package imageattr

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/runtrust/runtrust/internal/records"
)

func TestNamed(t *testing.T) {
	tests := []struct {
		name     string
		attrs    map[string]any
		resource map[string]any
		want     string
		wantOK   bool
	}{
		{"full reference", map[string]any{records.AttrContainerImageName: "nginx:1.25"}, nil, "nginx:1.25", true},
		{"name + tags slice", map[string]any{records.AttrContainerImageName: "ghcr.io/a/b", records.AttrContainerImageTags: []any{"3", "latest"}}, nil, "ghcr.io/a/b:3", true},
		{"name + tag string", map[string]any{records.AttrContainerImageName: "ghcr.io/a/b", records.AttrContainerImageTags: "3"}, nil, "ghcr.io/a/b:3", true},
		{"tag already there", map[string]any{records.AttrContainerImageName: "b:1", records.AttrContainerImageTags: []any{"2"}}, nil, "b:1", true},
		{"digest already there", map[string]any{records.AttrContainerImageName: "b@sha256:00", records.AttrContainerImageTags: []any{"2"}}, nil, "b@sha256:00", true},
		{"port is not a tag", map[string]any{records.AttrContainerImageName: "localhost:5000/app", records.AttrContainerImageTags: []any{"2"}}, nil, "localhost:5000/app:2", true},
		{"empty tags", map[string]any{records.AttrContainerImageName: "b", records.AttrContainerImageTags: []any{}}, nil, "b", true},
		{"from the resource", nil, map[string]any{records.AttrContainerImageName: "r", records.AttrContainerImageTags: []any{"9"}}, "r:9", true},
		{"record wins over resource", map[string]any{records.AttrContainerImageName: "rec:1"}, map[string]any{records.AttrContainerImageName: "res:1"}, "rec:1", true},
		{"tags only beside their name", map[string]any{records.AttrContainerImageTags: []any{"9"}}, map[string]any{records.AttrContainerImageName: "r"}, "r", true},
		{"empty name", map[string]any{records.AttrContainerImageName: ""}, nil, "", false},
		{"no image", map[string]any{records.AttrK8sNodeName: "n"}, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs, res := pcommon.NewMap(), pcommon.NewMap()
			_ = attrs.FromRaw(tt.attrs)
			_ = res.FromRaw(tt.resource)
			got, ok := Named(attrs, res)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("Named = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
