package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallDisk mounts a fresh ext4 file system of size bytes (a sparse image file on a loop device) and returns
// its mount point; it is unmounted when the test ends. A real file system, not tmpfs: tmpfs has no blocks to
// run out of for a file that was only extended (bbolt grows its file with ftruncate and maps it), so a full
// tmpfs kills a reader with SIGBUS where a full disk answers writes with ENOSPC, which is the fault to test.
// It needs root, a loop device and mkfs.ext4 (e2fsprogs); a missing one is named.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("SmallDisk: mounting a file system needs root")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Fatal("SmallDisk: mkfs.ext4 not found (Debian package e2fsprogs)")
	}
	// Not t.TempDir: its directories are private to root, and the disk may be PostgreSQL's, which runs as its
	// own user and must reach the mount point.
	dir, err := os.MkdirTemp("", "runtrust-disk-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// -m 0: no blocks reserved for root, so the disk is full for root (the filler) and everyone else alike.
	if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", "-E", "nodiscard", img).CombinedOutput(); err != nil {
		t.Fatalf("SmallDisk: mkfs.ext4: %v\n%s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("SmallDisk: mount -o loop %s (needs a loop device, /dev/loop-control): %v\n%s", img, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			// Lazily, so a process still holding a file there does not leave the mount behind.
			if out2, err2 := exec.Command("umount", "-l", mnt).CombinedOutput(); err2 != nil {
				t.Errorf("SmallDisk: umount %s: %v\n%s%s", mnt, err, out, out2)
				return
			}
		}
		os.RemoveAll(dir)
	})
	return mnt
}

// FillDisk fills the file system holding dir to its last block with a file of its own and returns a function
// that removes it (the space returns). It writes until ENOSPC: preallocating the free space the file system
// reports leaves its rounding, and a write the filler gets in is one the part under test does not.
func FillDisk(t testing.TB, dir string) (release func()) {
	t.Helper()
	path := filepath.Join(dir, "runtrust-filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	free, err := freeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if free > 1<<20 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, free-1<<20); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("FillDisk: fallocate %d bytes in %s: %v", free, dir, err)
		}
	}
	if _, err := f.Seek(0, 2); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("FillDisk: %v", err)
			}
			break
		}
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("FillDisk: sync: %v", err)
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Errorf("FillDisk: release %s: %v", path, err)
		}
	}
}

// freeBytes is the space left for anyone on the file system holding dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}
