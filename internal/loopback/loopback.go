// Package loopback finds free TCP ports on 127.0.0.1 for the servers tests and the local mode start.
package loopback

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[int]bool{} // ports FreePort returned in this process
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, and never one it returned before in
// this process: the kernel hands a just-closed ephemeral port out again readily, and two addresses a caller
// asked for in a row (a service's gRPC and HTTP ports) must differ. Another process can still take the port
// before the caller binds it; callers that can should listen on port 0 instead.
func FreePort() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free loopback port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("find a free loopback port: 100 tries gave only ports handed out before (%d in this process)", len(given))
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
