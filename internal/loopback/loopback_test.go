package loopback

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortCanBeBound(t *testing.T) {
	p := TestPort(t)
	if p <= 0 || p > 65535 {
		t.Fatalf("port %d out of range", p)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("the free port %d cannot be bound: %v", p, err)
	}
	l.Close()
}
