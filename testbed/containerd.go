package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/sbomtest"
)

// Containerd is a containerd daemon of the test's own (Debian's containerd and runc): its own root, state and
// socket, the CRI plugin off (no kubelet talks to it), containers in the "runtrust" namespace. Containers get
// the cgroup a kubelet's containerd gives them with the systemd driver (system.slice/cri-containerd-<id>.scope),
// which is what the sensor reads the container id from.
type Containerd struct {
	Socket string
	dir    string
	proc   *Process
}

// StartContainerd starts the daemon and stops it (after the containers) when the test ends. A machine without
// containerd or runc fails the test with the command that installs them.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	for _, bin := range []string{"containerd", "runc", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install Debian's containerd and runc (apt-get install -y containerd runc; `make e2e` and .ci/run do)", bin)
		}
	}
	// A short path of its own: a unix socket path must stay under 108 bytes, which t.TempDir() can exceed.
	dir, err := os.MkdirTemp("", "rt-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Socket: filepath.Join(dir, "sock"), dir: dir}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket)
	writeFile(t, filepath.Join(dir, "config.toml"), config)
	c.proc = StartProcess(t, "containerd", "containerd", nil, "--config", filepath.Join(dir, "config.toml"))
	// Registered after the process's own cleanup, so it runs first: containerd stops, then its files go.
	t.Cleanup(func() {
		if err := c.proc.Stop(20 * time.Second); err != nil {
			t.Errorf("containerd: %v", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("containerd's directory: %v", err)
		}
	})
	WaitFor(t, 30*time.Second, func() bool {
		if done, err := c.proc.Exited(); done {
			t.Fatalf("containerd exited: %v\n%s", err, c.proc.Output())
		}
		_, err := c.ctr(context.Background(), "version")
		return err == nil
	}, c.proc.Output)
	return c
}

func (c *Containerd) ctr(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.Socket, "--namespace", "runtrust"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Ctr runs ctr against this daemon and fails the test on an error.
func (c *Containerd) Ctr(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.ctr(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Pull pulls ref from a plain-HTTP registry on loopback, as a node pulls it.
func (c *Containerd) Pull(t testing.TB, ref string) {
	t.Helper()
	c.Ctr(t, "image", "pull", "--plain-http", ref)
}

// PodCgroup is the cgroup a kubelet with the systemd cgroup driver gives a BestEffort pod:
// kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid, _ for ->.slice.
func PodCgroup(podUID string) string {
	return "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice"
}

// Run starts a container from ref running argv in the background, in podCgroup (PodCgroup) with the scope
// containerd's CRI plugin would name it by (cri-containerd-<id>.scope), and returns its id (64 hex). The
// container is killed and removed, and the pod's cgroups with it, when the test ends.
func (c *Containerd) Run(t testing.TB, ref, podCgroup string, argv ...string) string {
	t.Helper()
	id := randomHex(32)
	cgroup := podCgroup + "/cri-containerd-" + id + ".scope"
	c.Ctr(t, append([]string{"run", "-d", "--snapshotter", "overlayfs", "--cgroup", cgroup, ref, id}, argv...)...)
	t.Cleanup(func() { removeCgroups(t, podCgroup) })
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = c.ctr(ctx, "task", "kill", "--signal", "SIGKILL", id)
		var err error
		for i := 0; i < 50; i++ {
			if _, err = c.ctr(ctx, "task", "delete", id); err == nil || strings.Contains(err.Error(), "not found") {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("container %s: %v", id, err)
		}
		if _, err := c.ctr(ctx, "container", "delete", id); err != nil {
			t.Errorf("container %s: %v", id, err)
		}
	})
	return id
}

// removeCgroups removes the pod's cgroup directories runc left in every hierarchy (it removes the container's
// own), up to but not including kubepods.slice, which a node keeps. A directory still in use stays, and says so.
func removeCgroups(t testing.TB, podCgroup string) {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		for dir := podCgroup; dir != "/kubepods.slice" && dir != "/"; dir = filepath.Dir(dir) {
			if err := os.Remove(filepath.Join(h, dir)); err != nil && !os.IsNotExist(err) {
				if strings.Contains(err.Error(), "device or resource busy") || strings.Contains(err.Error(), "directory not empty") {
					if dir == podCgroup {
						t.Errorf("cgroup %s: %v", filepath.Join(h, dir), err)
					}
					break
				}
			}
		}
	}
}

// EnsureKubepods creates kubepods.slice in the cgroup v2 hierarchy if the machine has none, as a kubelet does
// when it starts: the sensor allows it at start (containers_only), so a pod's first exec is never missed while
// it rescans.
func EnsureKubepods(t testing.TB) {
	t.Helper()
	root := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		root = "/sys/fs/cgroup"
	}
	dir := filepath.Join(root, "kubepods.slice")
	if _, err := os.Stat(dir); err == nil {
		return
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("kubepods cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
			t.Logf("kubepods cgroup left: %v", err)
		}
	})
}

// Exec runs argv inside the running container id (as `kubectl exec` would through the CRI) and returns its
// output; a failure fails the test.
func (c *Containerd) Exec(t testing.TB, id string, argv ...string) string {
	t.Helper()
	return c.Ctr(t, append([]string{"task", "exec", "--exec-id", "x" + randomHex(4), id}, argv...)...)
}

// ShellImage is a tiny linux/amd64 image built from this machine's own files: /bin/sh (dash) and sleep with the
// C library they link, so a container can run a real shell without any image from the internet.
type ShellImage struct {
	Ref       string // host/repo:tag it was pushed as
	Digest    string // its manifest digest
	ShSHA256  string // SHA-256 of the /bin/sh in it
	ShellPath string // "/bin/sh"
}

// PushShellImage builds the image and pushes it to the plain-HTTP registry at host as repoTag.
func PushShellImage(t testing.TB, host, repoTag string) ShellImage {
	t.Helper()
	spec, shSum := sbomtest.ShellSpec(t)
	ref, digest := sbomtest.Push(t, host, repoTag, sbomtest.Image(t, spec))
	return ShellImage{Ref: ref, Digest: digest, ShSHA256: shSum, ShellPath: "/bin/sh"}
}
