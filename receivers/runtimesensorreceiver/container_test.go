package runtimesensorreceiver

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

const (
	cid  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	puid = "8f3c2a1e-7b6d-4c5e-9a8b-1234567890ab"
)

func TestParseCgroupPath(t *testing.T) {
	puidU := strings.ReplaceAll(puid, "-", "_")
	tests := []struct {
		name, path string
		want       Container
		ok         bool
	}{
		{"containerd systemd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + puidU + ".slice/cri-containerd-" + cid + ".scope", Container{cid, "containerd", puid}, true},
		{"containerd systemd besteffort tail", "/kubepods-besteffort-pod" + puidU + ".slice/cri-containerd-" + cid + ".scope", Container{cid, "containerd", puid}, true},
		{"guaranteed pod systemd", "/kubepods.slice/kubepods-pod" + puidU + ".slice/cri-containerd-" + cid + ".scope", Container{cid, "containerd", puid}, true},
		{"containerd cgroupfs", "/kubepods/burstable/pod" + puid + "/" + cid, Container{cid, "", puid}, true},
		{"crio systemd", "/kubepods.slice/kubepods-pod" + puidU + ".slice/crio-" + cid + ".scope", Container{cid, "cri-o", puid}, true},
		{"crio cgroupfs", "/kubepods/pod" + puid + "/crio-" + cid, Container{cid, "cri-o", puid}, true},
		{"docker systemd", "/system.slice/docker-" + cid + ".scope", Container{cid, "docker", ""}, true},
		{"docker cgroupfs", "/docker/" + cid, Container{cid, "docker", ""}, true},
		{"podman", "/machine.slice/libpod-" + cid + ".scope", Container{cid, "podman", ""}, true},
		{"containerd outside k8s", "/system.slice/cri-containerd-" + cid + ".scope", Container{cid, "containerd", ""}, true},
		{"nested cgroup inside container", "/system.slice/docker-" + cid + ".scope/init.scope", Container{cid, "docker", ""}, true},
		{"crio conmon is not the container", "/kubepods.slice/crio-conmon-" + cid + ".scope", Container{}, false},
		{"host service", "/system.slice/containerd.service", Container{}, false},
		{"root", "/", Container{}, false},
		{"empty", "", Container{}, false},
		{"pod slice only", "/kubepods.slice/kubepods-pod" + puidU + ".slice", Container{}, false},
		{"short id", "/docker/0123456789ab", Container{}, false},
		{"uppercase id", "/docker/" + strings.ToUpper(cid), Container{}, false},
		{"32 hex (not a container)", "/process_api/edd5a2e144b77a21a43087b8d6fbdd2e", Container{}, false},
		{"bad pod uid", "/kubepods/podnot-a-uid/" + cid, Container{cid, "", ""}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseCgroupPath(tt.path)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseCgroupPath(f *testing.F) {
	f.Add("/kubepods.slice/kubepods-burstable-pod" + strings.ReplaceAll(puid, "-", "_") + ".slice/cri-containerd-" + cid + ".scope")
	f.Add("/kubepods/burstable/pod" + puid + "/" + cid)
	f.Add("/docker/" + cid)
	f.Add("/")
	f.Fuzz(func(t *testing.T, path string) {
		c, ok := ParseCgroupPath(path)
		if !ok {
			if c != (Container{}) {
				t.Fatalf("not ok but %+v", c)
			}
			return
		}
		if !isContainerID(c.ID) || !strings.Contains(path, c.ID) {
			t.Fatalf("id %q not a container id from %q", c.ID, path)
		}
		if c.PodUID != "" && !isUID(c.PodUID) {
			t.Fatalf("pod uid %q", c.PodUID)
		}
	})
}
