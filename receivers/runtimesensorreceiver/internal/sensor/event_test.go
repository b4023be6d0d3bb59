package sensor

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/btf"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/runtrust/runtrust/bpf"
)

// TestHeaderLayout: the Go types the decoder copies headers into have, member for member, the offsets and sizes
// of the C structs in the compiled object's BTF (what the kernel writes), and both headers start with the type.
func TestHeaderLayout(t *testing.T) {
	spec, err := bpf.LoadSensor()
	require.NoError(t, err)
	for _, tc := range []struct {
		c      string
		goType reflect.Type
		size   int
	}{
		{"event_exec", reflect.TypeFor[bpf.SensorEventExec](), execHeaderSize},
		{"event_open", reflect.TypeFor[bpf.SensorEventOpen](), openHeaderSize},
	} {
		t.Run(tc.c, func(t *testing.T) {
			typ, err := spec.Types.AnyTypeByName(tc.c)
			require.NoError(t, err)
			st, ok := typ.(*btf.Struct)
			require.True(t, ok, "%s is a %T", tc.c, typ)
			fields := goFields(tc.goType)
			require.Len(t, fields, len(st.Members), "members of %s", tc.c)
			for i, m := range st.Members {
				f := fields[i]
				assert.Equal(t, strings.ReplaceAll(m.Name, "_", ""), strings.ToLower(f.Name), "member %d", i)
				assert.Equal(t, uintptr(m.Offset.Bytes()), f.Offset, "offset of %s.%s", tc.c, m.Name)
				size, err := btf.Sizeof(m.Type)
				require.NoError(t, err)
				assert.Equal(t, uintptr(size), f.Type.Size(), "size of %s.%s", tc.c, m.Name)
			}
			last := st.Members[len(st.Members)-1]
			assert.Equal(t, "data", last.Name, "the flexible member ends the header")
			assert.Equal(t, int(last.Offset.Bytes()), tc.size, "header size")
			typeField, _ := tc.goType.FieldByName("Type")
			assert.Equal(t, uintptr(typeOffset), typeField.Offset, "the type's offset")
		})
	}
}

// goFields are a generated type's named fields (bpf2go adds a blank HostLayout marker and blank padding arrays).
func goFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		if f := t.Field(i); f.Name != "_" {
			out = append(out, f)
		}
	}
	return out
}

// TestDecodeEveryField: every header field reaches the decoded event. Each field gets a value no other has; a
// field the decoder forgot, or one read from the wrong place, shows as a mismatch, and a field added to the C
// struct fails until it is listed here (and decoded).
func TestDecodeEveryField(t *testing.T) {
	// Fields that are not values of the event: the type, the padding, the lengths of the strings in the data.
	structural := map[string]bool{"Type": true, "Pad": true, "Data": true, "Comm": true,
		"PathLen": true, "CwdLen": true, "ArgsLen": true, "CgLen": true}

	var h bpf.SensorEventExec
	want := fillDistinct(t, reflect.ValueOf(&h).Elem(), structural)
	h.Type = TypeExec
	h.Comm = comm("true")
	ev, err := Decode(withData(&h, execHeaderSize, "\x00\x00\x00"))
	require.NoError(t, err)
	e := ev.(*ExecEvent)
	assert.Equal(t, "true", e.Comm)
	assertDecoded(t, want, map[string]uint64{
		"Flags": uint64(e.Flags), "CgroupId": e.CgroupID, "StartTime": e.StartTime, "Ino": e.Inode, "Size": e.Size,
		"MtimeSec": uint64(e.MtimeSec), "MtimeNsec": uint64(e.MtimeNsec), "Dev": uint64(e.Device),
		"Pid": uint64(e.PID), "Tgid": uint64(e.TGID), "Ppid": uint64(e.PPID), "Uid": uint64(e.UID),
		"Gid": uint64(e.GID), "Argc": uint64(e.Argc),
	})

	var o bpf.SensorEventOpen
	want = fillDistinct(t, reflect.ValueOf(&o).Elem(), structural)
	o.Type = TypeOpen
	o.Comm = comm("cat")
	ev, err = Decode(withData(&o, openHeaderSize, "\x00"))
	require.NoError(t, err)
	oe := ev.(*OpenEvent)
	assert.Equal(t, "cat", oe.Comm)
	assertDecoded(t, want, map[string]uint64{
		"Flags": uint64(oe.EvFlags), "CgroupId": oe.CgroupID, "Ino": oe.Inode, "Dev": uint64(oe.Device),
		"OpenFlags": uint64(oe.Flags), "Pid": uint64(oe.PID), "Tgid": uint64(oe.TGID),
	})
}

// fillDistinct sets every integer field of v but the structural ones to a value of its own, and returns them.
func fillDistinct(t *testing.T, v reflect.Value, structural map[string]bool) map[string]uint64 {
	want := map[string]uint64{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Name == "_" || structural[f.Name] {
			continue
		}
		val := uint64(0x10 + i) // small enough for every width, unique per field
		switch f.Type.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			v.Field(i).SetUint(val)
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.Field(i).SetInt(int64(val))
		default:
			t.Fatalf("field %s of kind %s: teach the test (and the decoder) about it", f.Name, f.Type.Kind())
		}
		want[f.Name] = val
	}
	return want
}

func assertDecoded(t *testing.T, want, got map[string]uint64) {
	t.Helper()
	for name, v := range want {
		g, ok := got[name]
		if assert.True(t, ok, "header field %s is not decoded", name) {
			assert.Equal(t, v, g, "field %s", name)
		}
	}
}

func comm(s string) (c [16]uint8) {
	copy(c[:], s)
	return c
}

// withData is a record: the header's bytes as the kernel lays them out (native order), then data.
func withData[H any](h *H, size int, data string) []byte {
	b := append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(h)), size)...)
	return append(b, data...)
}

func execRecord(path, cwd string, args []byte, cg string) []byte {
	h := bpf.SensorEventExec{
		Type: TypeExec, Flags: FlagArgsTruncated, CgroupId: 42, Pid: 7, Tgid: 7, Ppid: 1, Argc: 2,
		PathLen: uint16(len(path)), CwdLen: uint16(len(cwd)), ArgsLen: uint16(len(args)), CgLen: uint16(len(cg)),
		Comm: comm("true"),
	}
	return withData(&h, execHeaderSize, path+"\x00"+cwd+"\x00"+string(args)+"\x00"+cg)
}

func BenchmarkDecode(b *testing.B) {
	raw := execRecord("/usr/bin/true", "/tmp", []byte("true\x00-x"), "/system.slice/x.scope\x00/mem/a\x00")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
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
