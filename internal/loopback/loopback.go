// Package loopback finds free TCP ports on 127.0.0.1 for the servers tests and the local mode start.
package loopback

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// Ports are handed out from below the kernel's ephemeral range (32768–60999 by default), so no outgoing
// connection of any process (a test's client to PostgreSQL, Chromium's to its pages) takes one between the
// moment it is found free and the moment its server binds it: that race failed CI runs with "address already
// in use" when the ports came from port 0.
const (
	firstPort = 20000
	lastPort  = 32767
)

var (
	mu    sync.Mutex
	given = map[int]*os.File{} // ports FreePort returned in this process, with the lock that claims each
)

// lockDir holds one lock file per port claimed: a port is this process's while it holds the file's lock, so
// two test binaries run side by side (go test ./... runs packages in parallel) never get the same port. The
// kernel drops the locks when the process exits, however it exits.
var lockDir = filepath.Join(os.TempDir(), "runtrust-loopback-ports")

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, never one it returned before in this
// process nor one another process using this package holds. Another program can still bind the port before
// the caller does; callers that can should listen on port 0 instead.
func FreePort() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if err := os.MkdirAll(lockDir, 0o777); err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	_ = os.Chmod(lockDir, 0o1777) // shared by every user's tests, as /tmp is; only its owner can change it
	for range 200 {
		port := firstPort + rand.IntN(lastPort-firstPort+1)
		if given[port] != nil {
			continue
		}
		lock, ok, err := claim(port)
		if err != nil {
			return 0, fmt.Errorf("find a free loopback port: %w", err)
		}
		if !ok {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			lock.Close() // in use by a program that does not claim its ports here
			continue
		}
		l.Close()
		given[port] = lock
		return port, nil
	}
	return 0, fmt.Errorf("find a free loopback port: 200 tries in %d–%d found none free (%d taken by this process)",
		firstPort, lastPort, len(given))
}

// claim takes the lock of port; ok is false when another process holds it.
func claim(port int) (*os.File, bool, error) {
	f, err := os.OpenFile(filepath.Join(lockDir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return f, true, nil
}

// TestPort is FreePort for tests: it fails the test when no port can be had.
func TestPort(t testing.TB) int {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
