package sensor

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/runtrust/runtrust/bpf"
)

// The decoder reads fixed offsets; they must be the C layout bpf2go generated.
func TestHeaderLayout(t *testing.T) {
	var e bpf.SensorEventExec
	assert.Equal(t, 104, execHeaderSize)
	assert.Equal(t, uintptr(80), unsafe.Offsetof(e.PathLen))
	assert.Equal(t, uintptr(88), unsafe.Offsetof(e.Comm))
	var o bpf.SensorEventOpen
	assert.Equal(t, 64, openHeaderSize)
	assert.Equal(t, uintptr(40), unsafe.Offsetof(o.PathLen))
	assert.Equal(t, uintptr(48), unsafe.Offsetof(o.Comm))
}

func execRecord(path, cwd string, args []byte, cg string) []byte {
	b := make([]byte, execHeaderSize)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], TypeExec)
	ne.PutUint32(b[4:], FlagArgsTruncated)
	ne.PutUint64(b[8:], 42)
	ne.PutUint32(b[56:], 7)
	ne.PutUint32(b[60:], 7)
	ne.PutUint32(b[64:], 1)
	ne.PutUint32(b[76:], 2)
	ne.PutUint16(b[80:], uint16(len(path)))
	ne.PutUint16(b[82:], uint16(len(cwd)))
	ne.PutUint16(b[84:], uint16(len(args)))
	ne.PutUint16(b[86:], uint16(len(cg)))
	copy(b[88:], "true")
	b = append(b, path...)
	b = append(b, 0)
	b = append(b, cwd...)
	b = append(b, 0)
	b = append(b, args...)
	b = append(b, 0)
	return append(b, cg...)
}

func TestDecode(t *testing.T) {
	cg := "/system.slice/x.scope\x00/mem/a\x00"
	ev, err := Decode(execRecord("/usr/bin/true", "/tmp", []byte("true\x00-x"), cg))
	require.NoError(t, err)
	e := ev.(*ExecEvent)
	assert.Equal(t, "/usr/bin/true", e.Path)
	assert.Equal(t, "/tmp", e.Cwd)
	assert.Equal(t, []string{"true", "-x"}, e.Args)
	assert.Equal(t, "/system.slice/x.scope", e.CgroupV2)
	assert.Equal(t, "/mem/a", e.CgroupV1)
	assert.Equal(t, "true", e.Comm)
	assert.Equal(t, uint64(42), e.CgroupID)
	assert.Equal(t, uint32(2), e.Argc)

	bad := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", make([]byte, 7)},
		{"unknown type", []byte{9, 0, 0, 0, 0, 0, 0, 0}},
		{"exec header cut", execRecord("/a", "", nil, "")[:50]},
		{"path past end", execRecord("/a", "", nil, "")[:execHeaderSize+1]},
		{"open header cut", append([]byte{2, 0, 0, 0}, make([]byte, 20)...)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.b)
			assert.Error(t, err)
		})
	}
}

func TestDeviceString(t *testing.T) {
	assert.Equal(t, "254:1", DeviceString(254<<20|1))
}

func TestVersionLess(t *testing.T) {
	assert.True(t, versionLess("5.10.0-foo", "5.17"))
	assert.True(t, versionLess("4.19.1", "5.17"))
	assert.False(t, versionLess("5.17.0", "5.17"))
	assert.False(t, versionLess("6.18.44-fc-v769", "5.17"))
}

func FuzzDecode(f *testing.F) {
	f.Add(execRecord("/usr/bin/true", "/", []byte("a\x00b"), "/x\x00\x00"))
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err == nil && ev == nil {
			t.Fatal("nil event without error")
		}
	})
}
