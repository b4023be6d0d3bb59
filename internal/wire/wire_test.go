package wire

import (
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		check   func(string) error
		in      string
		wantErr string
	}{
		{"collector id: empty, the legacy collector", CheckCollectorID, "", ""},
		{"collector id: controller", CheckCollectorID, "controller", ""},
		{"collector id: node name", CheckCollectorID, "ip-10-0-1-17.eu-west-1.compute.internal", ""},
		{"collector id: longest", CheckCollectorID, strings.Repeat("n", MaxCollectorIDLen), ""},
		{"collector id: too long", CheckCollectorID, strings.Repeat("n", MaxCollectorIDLen+1), "is 254 bytes long; at most 253"},
		{"collector id: space", CheckCollectorID, "node 1", "byte 4 is 0x20"},
		{"collector id: tab", CheckCollectorID, "node\t1", "byte 4 is 0x09"},
		{"collector id: NUL", CheckCollectorID, "node\x00", "byte 4 is 0x00"},
		{"collector id: UTF-8", CheckCollectorID, "nöde", "byte 1 is 0xc3"},
		{"collector id: DEL", CheckCollectorID, "\x7f", "byte 0 is 0x7f"},
		{"join key: shortest", CheckJoinKey, strings.Repeat("k", MinJoinKeyLen), ""},
		{"join key: longest", CheckJoinKey, strings.Repeat("k", MaxJoinKeyLen), ""},
		{"join key: short", CheckJoinKey, "short", "must be 16 to 256 characters, got 5"},
		{"join key: long", CheckJoinKey, strings.Repeat("k", MaxJoinKeyLen+1), "must be 16 to 256 characters, got 257"},
		{"join key: control byte", CheckJoinKey, "0123456789abcdef\x01", "printable ASCII without spaces (byte 16 is 0x01)"},
		{"idempotency key: split", CheckIdempotencyKey, "0123abcd.2", ""},
		{"idempotency key: empty", CheckIdempotencyKey, "", "must be 1 to 128 characters, got 0"},
		{"idempotency key: long", CheckIdempotencyKey, strings.Repeat("k", MaxIdempotencyKeyLen+1), "got 129"},
		{"idempotency key: space", CheckIdempotencyKey, "a b", "byte 1 is 0x20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check(tc.in)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("%q: %v; want %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

// FuzzCheckCollectorID: whatever a client sends, an accepted id is printable ASCII of at most 253 bytes.
func FuzzCheckCollectorID(f *testing.F) {
	for _, s := range []string{"", "controller", "node-1", "node 1", "\x00", "nöde", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if CheckCollectorID(id) != nil {
			return
		}
		if len(id) > MaxCollectorIDLen {
			t.Fatalf("accepted %d bytes", len(id))
		}
		for i := 0; i < len(id); i++ {
			if id[i] <= ' ' || id[i] > '~' {
				t.Fatalf("accepted %q with byte 0x%02x", id, id[i])
			}
		}
	})
}

func TestBearer(t *testing.T) {
	if tok, ok := TokenFromBearer(Bearer("rtc_x")); !ok || tok != "rtc_x" {
		t.Fatalf("round trip: %q %v", tok, ok)
	}
	for _, bad := range []string{"", "Bearer ", "bearer rtc_x", "Basic rtc_x", "rtc_x"} {
		if tok, ok := TokenFromBearer(bad); ok {
			t.Errorf("%q gave token %q", bad, tok)
		}
	}
}
