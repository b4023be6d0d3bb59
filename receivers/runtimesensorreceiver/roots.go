package runtimesensorreceiver

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// containerRoots remembers, per container, the last few processes the sensor saw exec in it, so that the
// executable of a process that has already exited can be read through the root filesystem of another process
// of the same container. For a container none of whose execs were seen (it started before the sensor), /proc is
// searched for one of its processes, at most once per container every rescanAfter.
type containerRoots struct {
	procPath string

	mu      sync.Mutex
	pids    map[string][]uint32  // container id → most recent first
	scanned map[string]time.Time // container id → last /proc search that found nothing
}

const (
	rootsPerContainer  = 4
	rootsMaxContainers = 16384
	rescanAfter        = 10 * time.Second
)

func newContainerRoots(procPath string) *containerRoots {
	return &containerRoots{procPath: procPath, pids: map[string][]uint32{}, scanned: map[string]time.Time{}}
}

// seen records that pid exec'd in container id.
func (c *containerRoots) seen(id string, pid uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pids) > rootsMaxContainers {
		clear(c.pids)
	}
	list := c.pids[id]
	for i, p := range list {
		if p == pid {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) >= rootsPerContainer {
		list = list[:rootsPerContainer-1]
	}
	c.pids[id] = append([]uint32{pid}, list...)
}

// live returns a live process of container id other than except.
func (c *containerRoots) live(id string, except uint32) (uint32, bool) {
	c.mu.Lock()
	for _, p := range c.pids[id] {
		if p != except && c.alive(p) {
			c.mu.Unlock()
			return p, true
		}
	}
	if t, ok := c.scanned[id]; ok && time.Since(t) < rescanAfter {
		c.mu.Unlock()
		return 0, false
	}
	c.mu.Unlock()

	pid, ok := c.search(id, except)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.pids[id] = append(c.pids[id], pid)
		delete(c.scanned, id)
	} else {
		if len(c.scanned) > rootsMaxContainers {
			clear(c.scanned)
		}
		c.scanned[id] = time.Now()
	}
	return pid, ok
}

// search looks through /proc for a process whose cgroup names container id.
func (c *containerRoots) search(id string, except uint32) (uint32, bool) {
	entries, err := os.ReadDir(c.procPath)
	if err != nil {
		return 0, false
	}
	want := []byte(id)
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || uint32(pid) == except {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.procPath, e.Name(), "cgroup"))
		if err == nil && bytes.Contains(b, want) {
			return uint32(pid), true
		}
	}
	return 0, false
}

// alive: /proc (the configured one, which may be the host's) has the process.
func (c *containerRoots) alive(pid uint32) bool {
	return unix.Access(filepath.Join(c.procPath, strconv.FormatUint(uint64(pid), 10)), unix.F_OK) == nil
}
