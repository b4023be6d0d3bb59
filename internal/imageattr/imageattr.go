// Package imageattr reads the container image a log record names, the one way every runtrust component does:
// container.image.name on the record, else on its resource, completed by the first of container.image.tags when
// the name carries neither tag nor digest (the OpenTelemetry semantic conventions split name and tags).
package imageattr

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/runtrust/runtrust/internal/records"
)

// Named returns the image reference a record names, as written (not yet parsed), or false when it names none.
func Named(attrs, resource pcommon.Map) (string, bool) {
	src := attrs
	name, ok := attrs.Get(records.AttrContainerImageName)
	if !ok {
		if name, ok = resource.Get(records.AttrContainerImageName); !ok {
			return "", false
		}
		src = resource
	}
	s := name.AsString()
	if s == "" {
		return "", false
	}
	if tags, ok := src.Get(records.AttrContainerImageTags); ok && !hasTagOrDigest(s) {
		switch tags.Type() {
		case pcommon.ValueTypeSlice:
			if tags.Slice().Len() > 0 {
				s += ":" + tags.Slice().At(0).AsString()
			}
		case pcommon.ValueTypeStr:
			if tags.Str() != "" {
				s += ":" + tags.Str()
			}
		}
	}
	return s, true
}

// hasTagOrDigest reports whether a reference names a tag or digest: a ':' or '@' after the last '/'.
func hasTagOrDigest(s string) bool {
	return strings.ContainsAny(s[strings.LastIndexByte(s, '/')+1:], ":@")
}
