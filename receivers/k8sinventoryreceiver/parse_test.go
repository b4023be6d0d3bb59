package k8sinventoryreceiver

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/runtrust/runtrust/internal/records"
)

var hex64 = strings.Repeat("ab", 32)

func TestParseContainerID(t *testing.T) {
	tests := []struct {
		in, runtime, id, err string
	}{
		{in: "containerd://" + hex64, runtime: "containerd", id: hex64},
		{in: "cri-o://" + hex64, runtime: "cri-o", id: hex64},
		{in: "docker://" + hex64, runtime: "docker", id: hex64},
		{in: hex64, id: hex64},
		{in: "containerd://abc_1.2-X", runtime: "containerd", id: "abc_1.2-X"},
		{in: "", err: "empty container id"},
		{in: "://" + hex64, err: `empty runtime before "://"`},
		{in: "containerd://", err: `empty id after "://"`},
		{in: "Docker://" + hex64, err: "runtime has invalid character 'D' at offset 0"},
		{in: "containerd://ab cd", err: "invalid character ' ' at offset 15"},
		{in: "containerd://a://b", err: "invalid character ':' at offset 14"},
		{in: "containerd://" + strings.Repeat("a", 300), err: "more than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			rt, id, err := parseContainerID(tt.in)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.runtime, rt)
			assert.Equal(t, tt.id, id)
		})
	}
}

// TestRunningDigest covers every imageID form the runtimes write.
func TestRunningDigest(t *testing.T) {
	tests := []struct {
		name, in, digest, missing string
		err                       bool
	}{
		{name: "docker-pullable repo digest", in: "docker-pullable://nginx@" + sha1, digest: sha1},
		{name: "docker-pullable with registry", in: "docker-pullable://ghcr.io/acme/app@" + sha1, digest: sha1},
		{name: "containerd repo digest", in: "ghcr.io/acme/app@" + sha1, digest: sha1},
		{name: "docker.io repo digest", in: "docker.io/library/nginx@" + sha1, digest: sha1},
		{name: "registry with port", in: "registry.local:5000/team/app@" + sha1, digest: sha1},
		{name: "tag and digest", in: "ghcr.io/acme/app:1.0@" + sha1, digest: sha1},
		{name: "uppercase hex is lowercased", in: "ghcr.io/acme/app@sha256:" + strings.ToUpper(hex64), digest: "sha256:" + hex64},
		{name: "bare image id", in: sha3, missing: records.RunningDigestLocalImageID},
		{name: "docker:// image id", in: "docker://" + sha3, missing: records.RunningDigestLocalImageID},
		{name: "bare hex", in: hex64, missing: records.RunningDigestLocalImageID},
		{name: "not reported", in: "", missing: records.RunningDigestNotReported},
		{name: "tag without digest", in: "nginx:1.25", missing: records.RunningDigestInvalid, err: true},
		{name: "garbage", in: "docker-pullable://", missing: records.RunningDigestInvalid, err: true},
		{name: "space", in: " " + sha1, missing: records.RunningDigestInvalid, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, missing, err := runningDigest(tt.in)
			assert.Equal(t, tt.err, err != nil, "%v", err)
			assert.Equal(t, tt.digest, d)
			assert.Equal(t, tt.missing, missing)
		})
	}
}

func FuzzParseContainerID(f *testing.F) {
	for _, s := range []string{"containerd://" + hex64, "cri-o://x", "docker://", "://", "", hex64, "a://b://c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rt, id, err := parseContainerID(s)
		if err != nil {
			if rt != "" || id != "" {
				t.Fatalf("error with results %q %q", rt, id)
			}
			return
		}
		if id == "" || strings.Contains(id, "://") || strings.ContainsAny(id+rt, " \t\n/:") {
			t.Fatalf("%q → runtime %q id %q", s, rt, id)
		}
		if rt == "" && id != s || rt != "" && rt+"://"+id != s {
			t.Fatalf("%q does not split into runtime %q and id %q", s, rt, id)
		}
	})
}

func FuzzRunningDigest(f *testing.F) {
	for _, s := range []string{"docker-pullable://nginx@" + sha1, "repo@" + sha2, sha3, hex64, "", "nginx", "docker://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, missing, err := runningDigest(s)
		switch {
		case d != "":
			if missing != "" || err != nil || !strings.HasPrefix(d, "sha") && !strings.Contains(d, ":") {
				t.Fatalf("%q → digest %q, missing %q, err %v", s, d, missing, err)
			}
		case missing == records.RunningDigestInvalid:
			if err == nil {
				t.Fatalf("%q: invalid without an error", s)
			}
		case missing == records.RunningDigestLocalImageID || missing == records.RunningDigestNotReported:
			if err != nil {
				t.Fatalf("%q: %s with error %v", s, missing, err)
			}
		default:
			t.Fatalf("%q → no digest and no reason", s)
		}
	})
}
