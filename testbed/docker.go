package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Docker is a Docker Engine of the test's own (Debian's docker.io): its own data root, state and socket, no
// bridge and no iptables rules, so it touches nothing of the machine's and leaves nothing behind.
type Docker struct {
	Socket string
	dir    string
	proc   *Process
}

// StartDocker starts dockerd and waits until it answers. It starts its own containerd (dockerd's managed one,
// under the state directory), beside any other containerd on the machine.
func StartDocker(t testing.TB) *Docker {
	t.Helper()
	for _, bin := range []string{"dockerd", "docker", "containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install Debian's docker.io (apt-get install -y docker.io; .ci/run does)", bin)
		}
	}
	// A short path: the engine's sockets (its own, its containerd's) must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "rt-dk-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Docker{Socket: filepath.Join(dir, "docker.sock"), dir: dir}
	d.proc = StartProcess(t, "dockerd", "dockerd", nil,
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "x"),
		"--pidfile", filepath.Join(dir, "pid"), "-H", "unix://"+d.Socket,
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--userland-proxy=false")
	t.Cleanup(func() {
		if err := d.proc.Stop(30 * time.Second); err != nil {
			t.Errorf("dockerd: %v", err)
		}
		// Overlay mounts of containers the engine did not unmount (it unmounts what it removed) keep the
		// directory busy; unmount what is left under it first.
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("dockerd's directory: %v", err)
		}
	})
	WaitFor(t, 60*time.Second, func() bool {
		if done, err := d.proc.Exited(); done {
			t.Fatalf("dockerd exited: %v\n%s", err, d.proc.Output())
		}
		_, err := d.docker(context.Background(), "version")
		return err == nil
	}, d.proc.Output)
	return d
}

// unmountUnder detaches every mount below dir, deepest first: the overlay mounts an engine keeps of its own
// storage, and of containers it did not unmount before it stopped.
func unmountUnder(t testing.TB, dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Errorf("reading the mount table: %v", err)
		return
	}
	var under []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 1 && (f[1] == dir || strings.HasPrefix(f[1], dir+"/")) {
			under = append(under, f[1])
		}
	}
	slices.SortFunc(under, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, m := range under {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("unmounting %s: %v", m, err)
		}
	}
}

func (d *Docker) docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", append([]string{"-H", "unix://" + d.Socket}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Docker runs the docker CLI against this engine and fails the test on an error.
func (d *Docker) Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.docker(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Pull pulls ref; Docker pulls from a registry on 127.0.0.1 over plain HTTP without being told.
func (d *Docker) Pull(t testing.TB, ref string) { d.Docker(t, "pull", "-q", ref) }

// Run starts a container from ref running argv, with no network, and returns its id (64 hex). Its cgroup is
// the cgroupfs driver's /docker/<id>, or docker-<id>.scope with the systemd driver. It is removed when the test
// ends, unless the test removed it.
func (d *Docker) Run(t testing.TB, ref string, argv ...string) string {
	t.Helper()
	id := d.Docker(t, append([]string{"run", "-d", "--network", "none", ref}, argv...)...)
	t.Cleanup(func() {
		if out, err := d.docker(context.Background(), "rm", "-f", id); err != nil && !strings.Contains(out, "No such container") {
			t.Errorf("container %s: %v", id, err)
		}
	})
	return id
}

// Exec runs argv inside the running container id and returns its output.
func (d *Docker) Exec(t testing.TB, id string, argv ...string) string {
	t.Helper()
	return d.Docker(t, append([]string{"exec", id}, argv...)...)
}
