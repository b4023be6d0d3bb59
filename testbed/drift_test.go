package testbed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/sbomtest"
)

// memexecC is the fileless loader of the drift scenario: it copies a program into a memfd and executes the
// memfd, as a dropper that never writes its payload to disk does.
const memexecC = `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
	if (argc < 2) { fprintf(stderr, "usage: memexec program [args]\n"); return 2; }
	int in = open(argv[1], O_RDONLY);
	int mem = memfd_create("payload", MFD_CLOEXEC);
	if (in < 0 || mem < 0) { perror("memexec"); return 1; }
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(mem, buf, n) != n) { perror("memexec: write"); return 1; }
	char *env[] = {0};
	argv[1] = "payload";
	syscall(SYS_execveat, mem, "", argv + 1, env, AT_EMPTY_PATH);
	perror("memexec: execveat");
	return 1;
}
`

// driftInContainer: a real container runs (a) a program of its image, (b) one copied into it while it runs,
// (c) an image program overwritten in its writable layer and (d) a program from a memfd; the service reads the
// image's layers from the registry and judges each exec: in_image, added, modified, memory (docs/drift.md).
func driftInContainer(t *testing.T, s *Stack, ui *page) {
	dir := t.TempDir()
	memexec := filepath.Join(dir, "memexec")
	writeFile(t, memexec+".c", memexecC)
	if out, err := exec.Command("gcc", "-O2", "-static", "-o", memexec, memexec+".c").CombinedOutput(); err != nil {
		t.Fatalf("gcc memexec: %v\n%s (apt-get install -y gcc libc6-dev; .ci/run does)", err, out)
	}
	spec, shSum := sbomtest.ShellSpec(t)
	spec.Files = append(spec.Files, sbomtest.File{Path: "/usr/local/bin/memexec", HostPath: memexec})
	ref, digest := sbomtest.Push(t, s.Registry.Host, "shop/drifter:1", sbomtest.Image(t, spec))

	ctd := StartContainerd(t)
	ctd.Pull(t, ref)
	d := s.RunDeployment(t, "shop", "drifter", ref, corev1.PullIfNotPresent, Running{
		ImageID: s.Registry.Ref("shop/drifter@" + digest),
		Start: func(pod *corev1.Pod) string {
			return ctd.Run(t, ref, PodCgroup(string(pod.UID)), "/bin/sleep", "600")
		},
	})
	s.waitImage(t, digest, "the drifter container known", func(i Image) bool { return len(i.Placements) == 1 })

	// The container's root as the host sees it: writing there writes its writable (upper) layer, as `kubectl
	// cp` or a dropper inside it would.
	root := fmt.Sprintf("/proc/%d/root", ctd.TaskPID(t, d.ContainerID))
	dropped, err := os.ReadFile("/usr/bin/true") // links only the C library, which the image has
	if err != nil {
		t.Fatal(err)
	}
	droppedSum := sha256.Sum256(dropped)
	droppedSHA := hex.EncodeToString(droppedSum[:])

	// (a) the image's shell; (b) a program copied in; (c) /bin/sleep replaced with another program (a new file
	// renamed over it: the running sleep keeps its own); (d) the shell run from a memfd.
	ctd.Exec(t, d.ContainerID, "/bin/sh", "-c", ":")
	if err := os.WriteFile(root+"/dropped", dropped, 0o755); err != nil {
		t.Fatal(err)
	}
	ctd.Exec(t, d.ContainerID, "/dropped")
	if err := os.WriteFile(root+"/bin/.sleep.new", dropped, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root+"/bin/.sleep.new", root+"/bin/sleep"); err != nil {
		t.Fatal(err)
	}
	ctd.Exec(t, d.ContainerID, "/bin/sleep", "0")
	ctd.Exec(t, d.ContainerID, "/usr/local/bin/memexec", "/bin/sh", "-c", ":")

	type want struct{ path, sha, verdict, severity string }
	wants := []want{
		{"/bin/sh", shSum, "in_image", records.SeverityNone},
		{"/usr/local/bin/memexec", "", "in_image", records.SeverityNone},
		{"/dropped", droppedSHA, "added", records.SeverityHigh},
		{"/bin/sleep", droppedSHA, "modified", records.SeverityCritical},
		{"/memfd:payload", "", "memory", records.SeverityHigh},
	}
	judged := func(i Image, w want) bool {
		return slices.ContainsFunc(i.Processes, func(p ExecInfo) bool {
			return p.Path == w.path && (w.sha == "" || Str(p.SHA256) == w.sha) && p.Drift != nil &&
				p.Drift.Verdict == w.verdict && p.Drift.Severity == w.severity
		})
	}
	start := time.Now()
	img := s.waitImage(t, digest, "each program judged against the image's layers", func(i Image) bool {
		for _, w := range wants {
			if !judged(i, w) {
				return false
			}
		}
		return true
	})
	t.Logf("judged %s after the execs; index of %d files; processes: %s", time.Since(start).Round(time.Second), img.Drift.Files, js(img.Processes))
	// The program the container started with is still the image's /bin/sleep, under its own SHA-256.
	if !slices.ContainsFunc(img.Processes, func(p ExecInfo) bool {
		return p.Path == "/bin/sleep" && Str(p.SHA256) != droppedSHA && p.Drift != nil && p.Drift.Verdict == "in_image"
	}) {
		t.Errorf("the container's own /bin/sleep is not in_image: %s", js(img.Processes))
	}
	if img.Drift.State != "built" || Str(img.DriftCounts.Severity) != records.SeverityCritical || img.DriftCounts.Findings != 3 {
		t.Errorf("drift %s / counts %s, want a built index and 3 findings, the worst critical", js(img.Drift), js(img.DriftCounts))
	}
	var findings struct {
		Items []struct {
			Path    string `json:"path"`
			Verdict string `json:"verdict"`
		} `json:"items"`
	}
	s.Get(t, "/api/v1/drift/findings?digest="+digest, &findings)
	var listed []string
	for _, f := range findings.Items {
		listed = append(listed, f.Verdict+" "+f.Path)
	}
	if slices.Sort(listed); !slices.Equal(listed, []string{"added /dropped", "memory /memfd:payload", "modified /bin/sleep"}) {
		t.Errorf("drift findings %q, want the added, memory and modified programs", listed)
	}
	// The page: each process row carries its verdict.
	ui.eventually(t, s.API+"/#/images/"+digest, "image", `['modified', 'added', 'memory', 'in_image'].every(v => !!document.querySelector('[data-drift="' + v + '"]'))`+
		` && document.querySelector('[data-drift="modified"]').closest('tr').textContent.includes('/bin/sleep')`)
	ui.screenshot(t, "drift-in-container")
}

// TaskPID is the host pid of container id's first process.
func (c *Containerd) TaskPID(t testing.TB, id string) int {
	t.Helper()
	for _, line := range strings.Split(c.Ctr(t, "task", "ls"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("ctr task ls: %q", line)
			}
			return pid
		}
	}
	t.Fatalf("no task of container %s", id)
	return 0
}
