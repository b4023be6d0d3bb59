// Package cgrouptest makes real cgroups named as container runtimes name them, for the tests that check the
// runtime sensor's attribution (the receiver's own and the chart's capped-sensor test).
package cgrouptest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Containerd makes a cgroup named as containerd names a container's (systemd driver) in the v2 hierarchy, removed
// at the end of the test, and returns its directory and the container id.
func Containerd(t testing.TB) (dir, id string) {
	t.Helper()
	root := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		root = "/sys/fs/cgroup"
	}
	id = hex.EncodeToString([]byte(rand.Text() + rand.Text()))[:64]
	dir = filepath.Join(root, "system.slice", "cri-containerd-"+id+".scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The cgroup empties once its process exits; rmdir can race that by a moment.
		for i := 0; i < 100; i++ {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("cgroup %s could not be removed", dir)
	})
	return dir, id
}
