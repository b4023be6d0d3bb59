package ingest

import (
	"strings"
	"testing"
)

func TestCheckCollectorID(t *testing.T) {
	for _, tc := range []struct {
		id, wantErr string
	}{
		{"", ""}, // the legacy collector
		{"controller", ""},
		{"ip-10-0-1-17.eu-west-1.compute.internal", ""},
		{"runtrust-controller", ""},
		{strings.Repeat("n", maxCollectorID), ""},
		{strings.Repeat("n", maxCollectorID+1), "254 bytes long; at most 253"},
		{"node 1", "byte 4 is 0x20"},
		{"node\t1", "byte 4 is 0x09"},
		{"node\x00", "byte 4 is 0x00"},
		{"nöde", "byte 1 is 0xc3"},
		{"\x7f", "byte 0 is 0x7f"},
	} {
		got := checkCollectorID(tc.id)
		if tc.wantErr == "" && got != "" || tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
			t.Errorf("checkCollectorID(%q) = %q; want %q", tc.id, got, tc.wantErr)
		}
		if got != "" && !strings.HasPrefix(got, "collector_id ") {
			t.Errorf("checkCollectorID(%q) = %q does not name the field", tc.id, got)
		}
	}
}

// FuzzCheckCollectorID: whatever a client sends, an accepted id is printable ASCII of at most 253 bytes, and a
// refusal names the field.
func FuzzCheckCollectorID(f *testing.F) {
	for _, s := range []string{"", "controller", "node-1", "node 1", "\x00", "nöde", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		msg := checkCollectorID(id)
		if msg != "" {
			if !strings.HasPrefix(msg, "collector_id ") {
				t.Fatalf("refusal %q does not name the field", msg)
			}
			return
		}
		if len(id) > maxCollectorID {
			t.Fatalf("accepted %d bytes", len(id))
		}
		for i := 0; i < len(id); i++ {
			if id[i] <= ' ' || id[i] > '~' {
				t.Fatalf("accepted %q with byte 0x%02x", id, id[i])
			}
		}
	})
}
