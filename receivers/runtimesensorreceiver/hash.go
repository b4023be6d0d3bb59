package runtimesensorreceiver

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sync"
	"syscall"

	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/sensor"
)

// fileKey identifies one version of a file: an executable rewritten in place changes mtime or size.
type fileKey struct {
	dev, ino, size uint64
	mtimeSec       int64
	mtimeNsec      uint32
}

// hasher computes executables' SHA-256 through /proc/<pid>/root (so a container's file is read from its own root
// filesystem), cached by fileKey with a bounded FIFO.
type hasher struct {
	procPath string
	maxSize  int64
	max      int

	mu    sync.Mutex
	cache map[fileKey]string
	order []fileKey
	next  int
}

func newHasher(procPath string, maxSize int64, entries int) *hasher {
	return &hasher{procPath: procPath, maxSize: maxSize, max: entries, cache: make(map[fileKey]string, entries)}
}

func (h *hasher) lookup(k fileKey) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.cache[k]
	return s, ok
}

func (h *hasher) store(k fileKey, sum string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.cache[k]; ok {
		return
	}
	if len(h.order) < h.max {
		h.order = append(h.order, k)
	} else {
		delete(h.cache, h.order[h.next])
		h.order[h.next] = k
		h.next = (h.next + 1) % h.max
	}
	h.cache[k] = sum
}

var errNotSameFile = errors.New("the file at that path is not the one executed")

// sum returns the executable's SHA-256, read through the first of paths that shows the executed file (the inode
// is checked). paths is only walked on a cache miss, and only as far as needed: see sensorReceiver.hashPaths.
func (h *hasher) sum(ev *sensor.ExecEvent, paths iter.Seq[string]) (string, error) {
	k := fileKey{dev: uint64(ev.Device), ino: ev.Inode, size: ev.Size, mtimeSec: ev.MtimeSec, mtimeNsec: ev.MtimeNsec}
	if s, ok := h.lookup(k); ok {
		return s, nil
	}
	if int64(ev.Size) > h.maxSize {
		return "", fmt.Errorf("%s is %d bytes, over hash.max_file_size", ev.Path, ev.Size)
	}
	var errs []error
	for path := range paths {
		s, err := h.hashAt(path, ev.Inode)
		if err == nil {
			h.store(k, s)
			return s, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

func (h *hasher) hashAt(path string, ino uint64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Ino != ino {
		return "", fmt.Errorf("%s: %w", path, errNotSameFile)
	}
	d := sha256.New()
	if _, err := io.Copy(d, io.LimitReader(f, h.maxSize+1)); err != nil {
		return "", err
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}
