// Package storm generates the exec and open storms the sensor's benchmarks and the peer comparison
// (testbed's BenchmarkPeers) measure: the same driver, so every tool is measured on the same work.
package storm

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// TinyELF is a complete static x86-64 program of 129 bytes: exit(0). One ELF header, one PT_LOAD segment.
func TinyELF() []byte {
	code := []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax, 60; xor edi, edi; syscall
	const base, hdr = 0x400000, 64 + 56
	b := make([]byte, hdr, hdr+len(code))
	le := binary.LittleEndian
	copy(b, "\x7fELF\x02\x01\x01") // 64-bit, little endian, version 1
	le.PutUint16(b[16:], 2)        // ET_EXEC
	le.PutUint16(b[18:], 62)       // EM_X86_64
	le.PutUint32(b[20:], 1)        // EV_CURRENT
	le.PutUint64(b[24:], base+hdr) // entry
	le.PutUint64(b[32:], 64)       // program headers at 64
	le.PutUint16(b[52:], 64)       // ELF header size
	le.PutUint16(b[54:], 56)       // program header size
	le.PutUint16(b[56:], 1)        // one program header
	ph := b[64:]
	le.PutUint32(ph[0:], 1)                      // PT_LOAD
	le.PutUint32(ph[4:], 5)                      // R+X
	le.PutUint64(ph[16:], base)                  // vaddr
	le.PutUint64(ph[24:], base)                  // paddr
	le.PutUint64(ph[32:], uint64(hdr+len(code))) // filesz
	le.PutUint64(ph[40:], uint64(hdr+len(code))) // memsz
	le.PutUint64(ph[48:], 0x1000)                // align
	return append(b, code...)
}

// StaticBinary writes a do-nothing static binary to exec into dir: the 129-byte ELF on amd64, else a Go program
// built with CGO off (whose runtime start-up then dominates each exec).
func StaticBinary(dir string) (string, error) {
	if runtime.GOARCH == "amd64" {
		p := filepath.Join(dir, "exit0")
		return p, os.WriteFile(p, TinyELF(), 0o755)
	}
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "nop")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", out, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	cmd.Dir = dir
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build of the do-nothing binary: %v\n%s", err, o)
	}
	return out, nil
}

// ForkDriverC is the exec storm's driver: P worker processes between them fork+exec the binary N times in total,
// each waiting for its child, so the exec rate is bounded by the kernel rather than by forking a Go process.
// The workers use vfork (as posix_spawn and Go's os/exec do): on the measuring VM a plain fork of even this
// small static process costs ~1 ms (copying the address space), vfork ~50 µs, so vfork leaves exec itself as
// the bound. Usage: driver BIN N P. It prints the number of execs, all of which exited 0.
const ForkDriverC = `#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
	if (argc != 4) return 2;
	char *bin = argv[1];
	long n = atol(argv[2]), p = atol(argv[3]);
	char *cargv[] = {bin, "storm", NULL};
	char *cenv[] = {NULL};
	for (long w = 0; w < p; w++) {
		long share = n / p + (w < n % p);
		pid_t wp = fork();
		if (wp < 0) { perror("fork"); return 1; }
		if (wp == 0) {
			for (long i = 0; i < share; i++) {
				pid_t c = vfork();
				if (c < 0) { perror("vfork"); _exit(1); }
				if (c == 0) { execve(bin, cargv, cenv); _exit(127); }
				int st;
				if (waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(1);
			}
			_exit(0);
		}
	}
	long ok = 0;
	for (long w = 0; w < p; w++) {
		int st;
		if (wait(&st) < 0) { perror("wait"); return 1; }
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
	}
	if (ok != p) { fprintf(stderr, "%ld of %ld workers failed\n", p - ok, p); return 1; }
	printf("%ld\n", n);
	return 0;
}
`

// ForkDriver compiles ForkDriverC with gcc -O2 -static into dir.
func ForkDriver(dir string) (string, error) { return compileC(dir, "forkdriver", ForkDriverC) }

// compileC compiles a storm driver's C source with gcc -O2 -static into dir/name.
func compileC(dir, name, src string) (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", fmt.Errorf("the storms need gcc to build their C drivers: apt-get install gcc (%v)", err)
	}
	file := filepath.Join(dir, name+".c")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	if o, err := exec.Command(gcc, "-O2", "-static", "-o", out, file).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc -O2 -static %s.c: %v\n%s", name, err, o)
	}
	return out, nil
}

// Execs runs the driver once: workers processes fork+exec bin n times in total.
func Execs(driver, bin string, n, workers int) error {
	out, err := exec.Command(driver, bin, strconv.Itoa(n), strconv.Itoa(workers)).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return fmt.Errorf("fork driver: %v: %s", err, stderr)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(n) {
		return fmt.Errorf("fork driver reported %q execs, want %d", got, n)
	}
	return nil
}

// Files creates n empty files in dir for Opens.
func Files(dir string, n int) ([]string, error) {
	files := make([]string, n)
	for i := range files {
		files[i] = filepath.Join(dir, fmt.Sprintf("f%04d", i))
		if err := os.WriteFile(files[i], nil, 0o644); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// Opens opens and closes files round-robin, n opens in all, from the calling goroutine.
func Opens(files []string, n int) error {
	for i := 0; i < n; i++ {
		fd, err := syscall.Open(files[i%len(files)], syscall.O_RDONLY, 0)
		if err != nil {
			return err
		}
		_ = syscall.Close(fd)
	}
	return nil
}

// OpenDriverC opens and closes DIR/f0000 … DIR/f<FILES-1> round-robin, N opens in all, and prints N: the open
// storm in a process of its own. The storm runs in a process started after the tool under test, not in the
// test's: the kernel gives a process an audit context only if auditing had ever been enabled when it was
// forked, so on a machine's first auditd since boot, a test process started before it goes unaudited.
const OpenDriverC = `#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 4) { fprintf(stderr, "usage: opendriver DIR FILES N\n"); return 2; }
	long files = atol(argv[2]), n = atol(argv[3]);
	if (files <= 0 || n < 0) { fprintf(stderr, "FILES must be positive and N not negative\n"); return 2; }
	char path[4096];
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/f%04ld", argv[1], i % files);
		int fd = open(path, O_RDONLY);
		if (fd < 0) { perror(path); return 1; }
		close(fd);
	}
	printf("%ld\n", n);
	return 0;
}
`

// OpenDriver compiles OpenDriverC with gcc -O2 -static into dir.
func OpenDriver(dir string) (string, error) { return compileC(dir, "opendriver", OpenDriverC) }

// OpensIn runs the open driver once over the files Files made in dir (files of them), n opens in all, and
// returns the pid of the process that opened them.
func OpensIn(driver, dir string, files, n int) (int, error) {
	cmd := exec.Command(driver, dir, strconv.Itoa(files), strconv.Itoa(n))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("open driver: %v: %s", err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != strconv.Itoa(n) {
		return 0, fmt.Errorf("open driver reported %q opens, want %d", got, n)
	}
	return cmd.Process.Pid, nil
}
