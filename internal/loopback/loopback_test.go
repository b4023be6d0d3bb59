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

// TestFreePortNeverRepeats: the kernel readily hands a just-closed port out again; FreePort must not, or a
// service asked for two ports gets one twice (a CI run failed so: "bind: address already in use").
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		p := TestPort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestPortsComeFromBelowTheEphemeralRange: no outgoing connection can take a port between FreePort and the bind.
func TestPortsComeFromBelowTheEphemeralRange(t *testing.T) {
	for range 50 {
		if p := TestPort(t); p < firstPort || p > lastPort {
			t.Fatalf("port %d outside %d–%d", p, firstPort, lastPort)
		}
	}
}

// TestClaimedPortIsAnotherProcesssToo: a port's lock, once held, is refused to any other holder (flock locks
// conflict between open files, so a second open in this process stands for another test binary).
func TestClaimedPortIsAnotherProcesssToo(t *testing.T) {
	p := TestPort(t)
	if _, ok, err := claim(p); err != nil || ok {
		t.Fatalf("claim of a port FreePort handed out: ok=%v err=%v; want refused", ok, err)
	}
}
