package vulndb

import (
	"strings"
	"testing"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		typ, a, b string
		want      int
	}{
		{sbom.TypeDeb, "1.0-1", "1.0-2", -1},
		{sbom.TypeDeb, "1:0.9-1", "2.0-1", 1}, // the epoch first
		{sbom.TypeDeb, "1.0~rc1-1", "1.0-1", -1},
		{sbom.TypeDeb, "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", -1},
		{sbom.TypeDeb, "2.36-9+deb12u4", "2.36-9+deb12u3", 1},
		{sbom.TypeDeb, "1.10-1", "1.9-1", 1},
		{sbom.TypeDeb, "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1", 0},
		{sbom.TypeAPK, "1.36.1-r15", "1.36.1-r16", -1},
		{sbom.TypeAPK, "1.2.3_rc1-r0", "1.2.3-r0", -1},
		{sbom.TypeAPK, "1.2.3_p1-r0", "1.2.3-r0", 1},
		{sbom.TypeAPK, "1.10-r0", "1.9-r0", 1},
		{sbom.TypeAPK, "3.1.4-r5", "3.1.4-r5", 0},
		{sbom.TypeRPM, "1.0-1.el9", "1.0-2.el9", -1},
		{sbom.TypeRPM, "1:1.0-1", "2.0-1", 1},
		{sbom.TypeRPM, "1.0~rc1-1", "1.0-1", -1},
		{sbom.TypeRPM, "1:3.0.7-25.el9", "1:3.0.7-27.el9", -1},
		{sbom.TypeRPM, "0:1.2-3", "1.2-3", 0},
		{sbom.TypeRPM, "1.0a-1", "1.0-1", 1},
		{sbom.TypeGoModule, "v1.2.3", "1.2.3", 0},
		{sbom.TypeGoModule, "v1.10.0", "v1.9.0", 1},
		{sbom.TypeGoModule, "go1.22.3", "1.22.4", -1},
		{sbom.TypeGoModule, "go1.22rc1", "go1.22.0", -1},
		{sbom.TypeGoModule, "go1.21beta2", "go1.21rc1", -1},
		{sbom.TypeGoModule, "go1.21", "1.21.0", 0},
		{sbom.TypeGoModule, "go1.22.3 X:boringcrypto", "1.22.3", 0},
		{sbom.TypeGoModule, "1.22.0-0", "go1.22rc1", -1}, // the Go database's "introduced: 1.22.0-0"
		{sbom.TypeGoModule, "v0.0.0-20230101000000-abcdefabcdef", "v0.0.1", -1},
		{sbom.TypeGoModule, "v2.0.0+incompatible", "v2.0.0", 0},
	} {
		got, err := CompareVersions(tc.typ, tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("%s: compare(%q, %q) = %d, %v; want %d", tc.typ, tc.a, tc.b, got, err, tc.want)
		}
		if back, _ := CompareVersions(tc.typ, tc.b, tc.a); back != -tc.want {
			t.Errorf("%s: compare(%q, %q) = %d, not the opposite of the other way", tc.typ, tc.b, tc.a, back)
		}
	}
}

func TestCompareVersionsErrors(t *testing.T) {
	for _, tc := range []struct{ typ, bad string }{
		{sbom.TypeDeb, ""},
		{sbom.TypeDeb, "abc"},
		{sbom.TypeDeb, "a:1.0"},
		{sbom.TypeDeb, "1.0 1"},
		{sbom.TypeDeb, "1:"},
		{sbom.TypeAPK, "abc"},
		{sbom.TypeAPK, "-r1"},
		{sbom.TypeAPK, "1.0ab"},
		{sbom.TypeAPK, "1.0_foo"},
		{sbom.TypeRPM, ""},
		{sbom.TypeRPM, "x:1.0"},
		{sbom.TypeRPM, "1.0 -1"},
		{sbom.TypeRPM, "-1"},
		{sbom.TypeRPM, "1.0/2"},
		{sbom.TypeRPM, "..."},
		{sbom.TypeGoModule, "latest"},
		{sbom.TypeGoModule, "(devel)"},
		{sbom.TypeGoModule, "v1.2.3.4"},
		{sbom.TypeGoModule, "1.x"},
		{sbom.TypeGoModule, strings.Repeat("1", maxVersionLen+1)},
	} {
		if _, err := CompareVersions(tc.typ, tc.bad, "1.0"); err == nil {
			t.Errorf("%s: %q compared", tc.typ, tc.bad)
		}
		if _, err := CompareVersions(tc.typ, "1.0", tc.bad); err == nil {
			t.Errorf("%s: %q compared (second)", tc.typ, tc.bad)
		}
	}
	if _, err := CompareVersions("npm", "1.0.0", "1.0.1"); err == nil {
		t.Error("a type without an ordering compared")
	}
}
