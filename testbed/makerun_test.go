package testbed

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// TestMakeRunWatchesHostContainers runs `make run` as a user would on this machine (as root, with BTF): it must
// start the runtime sensor with the local pipeline, and a container started on the host afterwards (containerd,
// as a host's own containerd would run it: not in any pod) has its exec in the findings file and reaches the
// service. Ctrl-C (SIGINT to make's process group) stops everything.
func TestMakeRunWatchesHostContainers(t *testing.T) {
	// Not t.TempDir(): its parent is private to root, and the local PostgreSQL runs as the postgres user.
	runDir, err := os.MkdirTemp("", "rt-makerun-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	if err := os.Chmod(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The host's containerd (the test's own, at its own socket; make run is told where, as a host with a
	// non-default socket would tell it).
	reg := registrytest.Start(t)
	img := PushShellImage(t, reg.Host, "host/toolbox:1")
	ctd := StartContainerd(t)
	ctd.Pull(t, img.Ref)
	// And its Docker Engine (the test's own): a `docker run` container of the same image, which runs nothing
	// after its start, is found by the cgroup scan and described too.
	dk := StartDocker(t)
	dk.Pull(t, img.Ref)
	// And its Podman (API service), for a `podman run` one.
	pm := StartPodman(t)
	pm.Pull(t, img.Ref)

	httpAddr, health := FreeAddr(t), FreeAddr(t)
	env := map[string]string{
		"RUNTRUST_CONTAINERD_SOCKET": ctd.Socket, "RUNTRUST_DOCKER_SOCKET": dk.Socket, "RUNTRUST_PODMAN_SOCKET": pm.Socket,
		"RUNTRUST_RUN_DIR": runDir, "RUNTRUST_HTTP_LISTEN": httpAddr, "RUNTRUST_SERVICE_GRPC": FreeAddr(t),
		"RUNTRUST_OTLP_GRPC": FreeAddr(t), "RUNTRUST_OTLP_HTTP": FreeAddr(t), "RUNTRUST_HEALTH": health,
		"RUNTRUST_METRICS_PORT": fmt.Sprint(FreePort(t)), "RUNTRUST_DEBUG_VERBOSITY": "basic",
	}
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") { // the machine's cluster, if any, is not this test's
			environ = append(environ, kv)
		}
	}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	m := startMake(t, environ, "-s", "run")
	out := m.out
	WaitFor(t, 5*time.Minute, func() bool {
		if m.exited() {
			t.Fatalf("make run exited (%v):\n%s", m.err, tail(out.String()))
		}
		resp, err := http.Get("http://" + health + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}, func() string { return "make run's collector not healthy:\n" + tail(out.String()) })
	if !strings.Contains(out.String(), "receivers: otlp, runtimesensor") {
		t.Fatalf("make run did not start the runtime sensor as root with BTF:\n%s", tail(out.String()))
	}

	// A host container: the shell image from the loopback registry, in a cgroup of its own as a host's runtime
	// makes one (…/cri-containerd-<id>.scope outside kubepods).
	id := ctd.Run(t, img.Ref, "/rt-makerun-"+randomHex(4)+".slice", "/bin/sleep", "600")
	findings := filepath.Join(runDir, "findings.jsonl")
	WaitFor(t, 90*time.Second, func() bool {
		ctd.Exec(t, id, img.ShellPath, "-c", "true")
		b, _ := os.ReadFile(findings)
		return strings.Contains(string(b), id) && strings.Contains(string(b), records.EventProcessExec)
	}, func() string { return "no exec of container " + id + " in " + findings + ":\n" + tail(out.String()) })
	// Its image, from containerd: the name it was created from and the digest that name was pulled as, on the
	// exec records that follow the first (the lookup runs beside the event path).
	WaitFor(t, 30*time.Second, func() bool {
		ctd.Exec(t, id, img.ShellPath, "-c", "true")
		b, _ := os.ReadFile(findings)
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, id) && strings.Contains(line, records.EventProcessExec) &&
				strings.Contains(line, img.Ref) && strings.Contains(line, img.Digest) {
				return true
			}
		}
		return false
	}, func() string {
		return "no exec of container " + id + " names its image " + img.Ref + "@" + img.Digest + " in " + findings + ":\n" + tail(out.String())
	})

	// All three containers in the UI's API, under the image they run: not in a pod, on this host, and judged
	// against the registry that holds the image (verified; the loopback registry is not a trusted one).
	dockerID := dk.Run(t, img.Ref, "/bin/sleep", "600")
	podmanID := pm.Run(t, img.Ref, "/bin/sleep", "600")
	api := &Stack{API: "http://" + httpAddr}
	hostPlacements := func() map[string]Placement {
		d, ok := api.ImageDetail(t, img.Digest)
		if !ok {
			return nil
		}
		out := map[string]Placement{}
		for _, p := range d.Placements {
			out[p.Container] = p
		}
		return out
	}
	WaitFor(t, 60*time.Second, func() bool {
		ps := hostPlacements()
		return len(ps) == 3 && ps[id].Container != "" && ps[dockerID].Container != "" && ps[podmanID].Container != ""
	}, func() string {
		return "the API does not list the containerd, Docker and Podman containers under " + img.Digest + ": " + js(hostPlacements())
	})
	d, _ := api.ImageDetail(t, img.Digest)
	if Str(d.Verdict) != records.IntegrityVerified || !HasReason(d.Reasons, records.ReasonUntrustedRegistry) {
		t.Errorf("host containers' image: verdict %q, reasons %v; want verified and untrusted_registry", Str(d.Verdict), d.Reasons)
	}
	for _, p := range d.Placements {
		if p.Pod != "" || p.Namespace != "" || p.Node == "" || Str(p.Verdict) != records.IntegrityVerified {
			t.Errorf("host container placement %s", js(p))
		}
	}
	// And in the UI: the image's row in the images view, and the three containers under "not in a pod" on its page.
	ui := startBrowser(t)
	ui.eventually(t, api.API+"/#/images", "images", fmt.Sprintf(`document.querySelector('tr[data-digest=%q]')?.dataset.verdict === %q`,
		img.Digest, records.IntegrityVerified))
	ui.eventually(t, api.API+"/#/images/"+img.Digest, "image", fmt.Sprintf(
		`!!document.querySelector('[data-host-containers] [data-host-container=%q]') && !!document.querySelector('[data-host-container=%q]') && !!document.querySelector('[data-host-container=%q]')`,
		id, dockerID, podmanID))
	// A container that goes is gone from the API at the next scan.
	dk.Docker(t, "rm", "-f", dockerID)
	WaitFor(t, 60*time.Second, func() bool { ps := hostPlacements(); return len(ps) == 2 && ps[dockerID].Container == "" },
		func() string { return "the removed docker container is still listed: " + js(hostPlacements()) })

	stopping := time.Now()
	if err := m.interrupt(time.Minute); err != nil {
		t.Fatalf("make run: %v", err)
	}
	t.Logf("stopped in %s", time.Since(stopping).Round(100*time.Millisecond))
	// The service and its PostgreSQL name runDir on their command lines; the collector holds the health port.
	if pids, _ := exec.Command("pgrep", "-f", runDir).Output(); len(pids) > 0 {
		t.Errorf("processes left running after Ctrl-C: pids %s", pids)
	}
	if resp, err := http.Get("http://" + health + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("the collector still answers on %s after Ctrl-C", health)
	}
}
