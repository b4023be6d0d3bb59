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
)

// Podman is Podman's API service of the test's own (Debian's podman: `podman system service`), with its own
// storage, state and socket, the cgroupfs manager (no systemd needed) and no network for its containers.
type Podman struct {
	Socket string
	dir    string
	proc   *Process
}

// StartPodman starts the service and waits until it answers.
func StartPodman(t testing.TB) *Podman {
	t.Helper()
	for _, bin := range []string{"podman", "conmon"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install Debian's podman (apt-get install -y podman; .ci/run does)", bin)
		}
	}
	dir, err := os.MkdirTemp("", "rt-pm-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Podman{Socket: filepath.Join(dir, "podman.sock"), dir: dir}
	writeFile(t, filepath.Join(dir, "storage.conf"), fmt.Sprintf("[storage]\ndriver = \"overlay\"\nrunroot = %q\ngraphroot = %q\n",
		filepath.Join(dir, "run"), filepath.Join(dir, "root")))
	writeFile(t, filepath.Join(dir, "containers.conf"), "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n")
	env := append(os.Environ(), "CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"),
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"))
	p.proc = StartProcess(t, "podman", "podman", env, "--tmpdir", filepath.Join(dir, "tmp"),
		"system", "service", "--time=0", "unix://"+p.Socket)
	t.Cleanup(func() {
		if err := p.proc.Stop(30 * time.Second); err != nil {
			t.Errorf("podman: %v", err)
		}
		// conmon runs `podman container cleanup` when a container exits, which can mount the storage again
		// after the service has stopped: unmount and remove until nothing is left, for a while.
		var err error
		for end := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			unmountUnder(t, dir)
			if err = os.RemoveAll(dir); err == nil || time.Now().After(end) {
				break
			}
		}
		if err != nil {
			t.Errorf("podman's directory: %v", err)
		}
	})
	WaitFor(t, 60*time.Second, func() bool {
		if done, err := p.proc.Exited(); done {
			t.Fatalf("podman exited: %v\n%s", err, p.proc.Output())
		}
		_, err := p.podman(context.Background(), "version")
		return err == nil
	}, p.proc.Output)
	return p
}

// podman runs the podman CLI as a client of this service.
func (p *Podman) podman(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "podman", append([]string{"--remote", "--url", "unix://" + p.Socket}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Podman runs the podman CLI against this service and fails the test on an error.
func (p *Podman) Podman(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.podman(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Pull pulls ref from a plain-HTTP registry on loopback.
func (p *Podman) Pull(t testing.TB, ref string) { p.Podman(t, "pull", "-q", "--tls-verify=false", ref) }

// Run starts a container from ref running argv, with no network, and returns its id (64 hex). Its cgroup is
// libpod-<id>(.scope). It is removed when the test ends, unless the test removed it.
func (p *Podman) Run(t testing.TB, ref string, argv ...string) string {
	t.Helper()
	// podman raises nofile and nproc to 1048576 and 4194304 by default, above what this sandbox allows.
	id := p.Podman(t, append([]string{"run", "-d", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", ref}, argv...)...)
	t.Cleanup(func() {
		if out, err := p.podman(context.Background(), "rm", "-f", "-t", "0", id); err != nil && !strings.Contains(out, "no such container") {
			t.Errorf("container %s: %v", id, err)
		}
	})
	return id
}
