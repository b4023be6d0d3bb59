package runtimesensorreceiver

import (
	"strings"
)

// Container is what a cgroup path says about the container a process runs in.
type Container struct {
	// ID is the container's id without the runtime prefix: 64 lowercase hex digits.
	ID string
	// Runtime is the runtime the path pattern belongs to: containerd, cri-o, docker, podman, or "" when only the
	// bare id says it is a container (the cgroupfs driver under kubepods).
	Runtime string
	// PodUID is the Kubernetes pod's uid when the path carries it (kubepods…pod<uid>).
	PodUID string
}

// scopePrefixes are the leaf names container runtimes give a container's cgroup with the systemd driver (and
// CRI-O with cgroupfs: crio-<id>), mapped to the runtime.
var scopePrefixes = []struct{ prefix, runtime string }{
	{"cri-containerd-", "containerd"},
	{"crio-", "cri-o"},
	{"docker-", "docker"},
	{"libpod-", "podman"},
}

// ParseCgroupPath finds the container in a cgroup path (or the tail of one, as the sensor sends it):
//
//	containerd, systemd driver   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
//	containerd, cgroupfs driver  /kubepods/burstable/pod<uid>/<id>
//	CRI-O                        …/kubepods-pod<uid_>.slice/crio-<id>.scope, /kubepods/pod<uid>/crio-<id>
//	Docker                       /system.slice/docker-<id>.scope, /docker/<id>
//	Podman                       /machine.slice/libpod-<id>.scope
//
// The innermost container wins (a cgroup a container made for itself below its own, like …/<id>.scope/init.scope,
// still belongs to it). ok is false when no segment names a container: a host process.
func ParseCgroupPath(path string) (c Container, ok bool) {
	segs := strings.Split(path, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		id, runtime, found := containerSegment(segs[i])
		if !found {
			continue
		}
		if runtime == "" && i > 0 && segs[i-1] == "docker" {
			runtime = "docker"
		}
		c = Container{ID: id, Runtime: runtime}
		for j := i - 1; j >= 0; j-- {
			if uid, ok := podSegment(segs[j]); ok {
				c.PodUID = uid
				break
			}
		}
		return c, true
	}
	return Container{}, false
}

func containerSegment(s string) (id, runtime string, ok bool) {
	if isContainerID(s) {
		return s, "", true
	}
	name := strings.TrimSuffix(s, ".scope")
	for _, p := range scopePrefixes {
		if rest, found := strings.CutPrefix(name, p.prefix); found && isContainerID(rest) {
			return rest, p.runtime, true
		}
	}
	return "", "", false
}

// podSegment reads a pod uid from "pod<uid>" (cgroupfs) or "kubepods[-<qos>]-pod<uid with _ for ->.slice" (systemd).
func podSegment(s string) (string, bool) {
	if rest, ok := strings.CutPrefix(s, "pod"); ok && isUID(rest) {
		return rest, true
	}
	if strings.HasPrefix(s, "kubepods") && strings.HasSuffix(s, ".slice") {
		name := strings.TrimSuffix(s, ".slice")
		if i := strings.LastIndex(name, "-pod"); i >= 0 {
			uid := strings.ReplaceAll(name[i+len("-pod"):], "_", "-")
			if isUID(uid) {
				return uid, true
			}
		}
	}
	return "", false
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isUID accepts the 8-4-4-4-12 hex form Kubernetes gives pods.
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}
