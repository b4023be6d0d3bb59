// Package loopback finds free TCP ports on 127.0.0.1 for the servers tests and the local mode start.
package loopback

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process can take it before the
// caller binds it; callers that can should listen on port 0 instead.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
