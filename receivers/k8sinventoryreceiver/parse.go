package k8sinventoryreceiver

import (
	"fmt"
	"strings"

	"github.com/runtrust/runtrust/internal/imageref"
	"github.com/runtrust/runtrust/internal/records"
)

const maxContainerIDLen = 256

// parseContainerID splits a containerStatuses[].containerID, "<runtime>://<id>" as the kubelet writes it
// (containerd://…, cri-o://…, docker://…), into the runtime and the id. An id without a runtime prefix is
// accepted as it is, with an empty runtime.
func parseContainerID(s string) (runtime, id string, err error) {
	if s == "" {
		return "", "", fmt.Errorf("empty container id")
	}
	if len(s) > maxContainerIDLen {
		return "", "", fmt.Errorf("container id is %d bytes long, more than %d", len(s), maxContainerIDLen)
	}
	id = s
	if i := strings.Index(s, "://"); i >= 0 {
		runtime, id = s[:i], s[i+3:]
		if runtime == "" {
			return "", "", fmt.Errorf("container id %q: empty runtime before \"://\"", s)
		}
		for j := 0; j < len(runtime); j++ {
			c := runtime[j]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
				return "", "", fmt.Errorf("container id %q: runtime has invalid character %q at offset %d", s, c, j)
			}
		}
		if id == "" {
			return "", "", fmt.Errorf("container id %q: empty id after \"://\"", s)
		}
	}
	off := len(s) - len(id)
	for j := 0; j < len(id); j++ {
		c := id[j]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", "", fmt.Errorf("container id %q: invalid character %q at offset %d", s, c, off+j)
		}
	}
	return runtime, id, nil
}

// runningDigest reads the digest a container runs from its containerStatuses[].imageID. It returns the digest
// ("sha256:…") when the imageID is a repository digest, in any form the runtimes write
// (docker-pullable://repo@sha256:…, repo@sha256:…). Otherwise it returns why there is none, a
// records.RunningDigest* value: a bare image id (sha256:…, the digest of the image's config, which no registry
// can be asked about), no imageID reported yet, or one that does not parse.
func runningDigest(imageID string) (digest, missing string, err error) {
	if imageID == "" {
		return "", records.RunningDigestNotReported, nil
	}
	ref, err := imageref.ParseImageID(imageID)
	if err != nil {
		return "", records.RunningDigestInvalid, err
	}
	if ref.IsImageID() {
		return "", records.RunningDigestLocalImageID, nil
	}
	return ref.Digest, "", nil
}
