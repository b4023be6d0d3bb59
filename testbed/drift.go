package testbed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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

// PushDriftImage builds the shell image (PushShellImage) with memexec at /usr/local/bin/memexec, compiled here
// with gcc -static, and pushes it to the plain-HTTP registry at host as repoTag.
func PushDriftImage(t testing.TB, host, repoTag string) ShellImage {
	t.Helper()
	memexec := filepath.Join(t.TempDir(), "memexec")
	writeFile(t, memexec+".c", memexecC)
	if out, err := exec.Command("gcc", "-O2", "-static", "-o", memexec, memexec+".c").CombinedOutput(); err != nil {
		t.Fatalf("gcc memexec: %v\n%s (apt-get install -y gcc libc6-dev; .ci/run does)", err, out)
	}
	spec, shSum := sbomtest.ShellSpec(t)
	spec.Files = append(spec.Files, sbomtest.File{Path: "/usr/local/bin/memexec", HostPath: memexec})
	ref, digest := sbomtest.Push(t, host, repoTag, sbomtest.Image(t, spec))
	return ShellImage{Ref: ref, Digest: digest, ShSHA256: shSum, ShellPath: "/bin/sh"}
}

// Drift makes each kind of drift in container id, a PushDriftImage container: (a) the image's shell runs
// (in_image); (b) /usr/bin/true is written into the container's root from the host (/proc/<pid>/root: its
// writable layer, as `kubectl cp` or a dropper inside it would) and run as /dropped (added); (c) /bin/sleep is
// replaced there by the same program, a new file renamed over it so a running sleep keeps its own, and run
// (modified); (d) memexec runs the shell from a memfd (memory, /memfd:payload). It returns the SHA-256 of the
// dropped program.
func Drift(t testing.TB, ctd *Containerd, id string) (droppedSHA string) {
	t.Helper()
	root := fmt.Sprintf("/proc/%d/root", ctd.TaskPID(t, id))
	dropped, err := os.ReadFile("/usr/bin/true") // links only the C library, which the image has
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(dropped)
	ctd.Exec(t, id, "/bin/sh", "-c", ":")
	if err := os.WriteFile(root+"/dropped", dropped, 0o755); err != nil {
		t.Fatal(err)
	}
	ctd.Exec(t, id, "/dropped")
	if err := os.WriteFile(root+"/bin/.sleep.new", dropped, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root+"/bin/.sleep.new", root+"/bin/sleep"); err != nil {
		t.Fatal(err)
	}
	ctd.Exec(t, id, "/bin/sleep", "0")
	ctd.Exec(t, id, "/usr/local/bin/memexec", "/bin/sh", "-c", ":")
	return hex.EncodeToString(sum[:])
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
