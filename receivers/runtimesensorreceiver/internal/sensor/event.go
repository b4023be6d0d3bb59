// Package sensor loads the runtime sensor's eBPF programs (package bpf), attaches them, and decodes the events
// they send through the ring buffer.
package sensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/runtrust/runtrust/bpf"
)

// Event types and flags: bpf/sensor.c's enums, as bpf2go emits them.
const (
	TypeExec = uint32(bpf.SensorEventTypeEVENT_EXEC)
	TypeOpen = uint32(bpf.SensorEventTypeEVENT_OPEN)

	FlagPathTruncated = uint32(bpf.SensorEventFlagFLAG_PATH_TRUNCATED)
	FlagArgsTruncated = uint32(bpf.SensorEventFlagFLAG_ARGS_TRUNCATED)
	FlagCwdTruncated  = uint32(bpf.SensorEventFlagFLAG_CWD_TRUNCATED)
	// FlagPathDetached: the file is reachable from no directory (a memfd or another pseudo file): the path is "/"
	// and its own name, as /proc/<pid>/exe shows a memfd ("/memfd:<name>", there with " (deleted)").
	FlagPathDetached = uint32(bpf.SensorEventFlagFLAG_PATH_DETACHED)
)

// The headers end where their flexible data member starts (Go pads a struct with a trailing zero-size field, so
// Sizeof would be too large). Both headers start with the type, at typeOffset (TestHeaderLayout checks).
const (
	execHeaderSize = int(unsafe.Offsetof(bpf.SensorEventExec{}.Data))
	openHeaderSize = int(unsafe.Offsetof(bpf.SensorEventOpen{}.Data))
	typeOffset     = int(unsafe.Offsetof(bpf.SensorEventExec{}.Type))
)

// ExecEvent is one successful execve/execveat.
type ExecEvent struct {
	PID, TGID, PPID uint32
	UID, GID        uint32
	CgroupID        uint64
	StartTime       uint64 // ns since boot (CLOCK_MONOTONIC)
	Inode           uint64
	Device          uint32 // kernel encoding: major<<20 | minor
	Size            uint64
	MtimeSec        int64
	MtimeNsec       uint32
	Argc            uint32
	Flags           uint32
	Comm            string   // the process's name (/proc/<pid>/comm): the executable's base name, cut to 15 bytes
	Path            string   // absolute, as the process sees it
	Cwd             string   // absolute, as the process sees it
	Args            []string // the first arguments; Flags&FlagArgsTruncated when more were given
	CgroupV2        string   // the last levels of the cgroup v2 path, "/a/b/c"
	CgroupV1        string   // the same for the v1 memory hierarchy, empty on a pure v2 host
}

// OpenEvent is one successful open of a file, deduplicated in the kernel.
type OpenEvent struct {
	PID, TGID uint32
	CgroupID  uint64
	Inode     uint64
	Device    uint32
	Flags     uint32 // the open flags (f_flags)
	EvFlags   uint32
	Comm      string // the opening process's name (its leader's comm, /proc/<tgid>/comm)
	Path      string
	CgroupV2  string
	CgroupV1  string
}

// DeviceString renders a kernel dev_t (major<<20 | minor) as "major:minor".
func DeviceString(dev uint32) string {
	return fmt.Sprintf("%d:%d", dev>>20, dev&(1<<20-1))
}

var errShort = errors.New("event shorter than its header")

// Decode decodes one ring-buffer record into an *ExecEvent or an *OpenEvent. It never panics on malformed input.
func Decode(b []byte) (any, error) {
	if len(b) < typeOffset+4 {
		return nil, fmt.Errorf("%w: %d bytes", errShort, len(b))
	}
	switch typ := binary.NativeEndian.Uint32(b[typeOffset:]); typ {
	case TypeExec:
		return decodeExec(b)
	case TypeOpen:
		return decodeOpen(b)
	default:
		return nil, fmt.Errorf("unknown event type %d", typ)
	}
}

// header copies the fixed part of a record into the generated type H, whose layout is the C struct's: the kernel
// wrote it in this machine's byte order, so the bytes are the value. Its size is the offset of H's flexible data
// member; the rest of b is the data. The copy stays on the stack (no allocation).
func header[H any](b []byte, size int, what string) (h H, data []byte, err error) {
	if len(b) < size {
		return h, nil, fmt.Errorf("%s: %w: %d of %d bytes", what, errShort, len(b), size)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), size), b)
	return h, b[size:], nil
}

func decodeExec(b []byte) (*ExecEvent, error) {
	h, data, err := header[bpf.SensorEventExec](b, execHeaderSize, "exec")
	if err != nil {
		return nil, err
	}
	e := &ExecEvent{
		Flags: h.Flags, CgroupID: h.CgroupId, StartTime: h.StartTime,
		Inode: h.Ino, Size: h.Size, MtimeSec: h.MtimeSec, MtimeNsec: h.MtimeNsec, Device: h.Dev,
		PID: h.Pid, TGID: h.Tgid, PPID: h.Ppid, UID: h.Uid, GID: h.Gid, Argc: h.Argc,
		Comm: cstring(h.Comm[:]),
	}
	d := &reader{b: data}
	e.Path = d.str(int(h.PathLen))
	e.Cwd = d.str(int(h.CwdLen))
	if args := d.str(int(h.ArgsLen)); h.ArgsLen > 0 {
		e.Args = strings.Split(args, "\x00")
	}
	e.CgroupV2, e.CgroupV1 = d.cgroups(int(h.CgLen))
	if d.err != nil {
		return nil, fmt.Errorf("exec: %w", d.err)
	}
	return e, nil
}

func decodeOpen(b []byte) (*OpenEvent, error) {
	h, data, err := header[bpf.SensorEventOpen](b, openHeaderSize, "open")
	if err != nil {
		return nil, err
	}
	o := &OpenEvent{
		EvFlags: h.Flags, CgroupID: h.CgroupId, Inode: h.Ino, Device: h.Dev, Flags: h.OpenFlags,
		PID: h.Pid, TGID: h.Tgid, Comm: cstring(h.Comm[:]),
	}
	d := &reader{b: data}
	o.Path = d.str(int(h.PathLen))
	o.CgroupV2, o.CgroupV1 = d.cgroups(int(h.CgLen))
	if d.err != nil {
		return nil, fmt.Errorf("open: %w", d.err)
	}
	return o, nil
}

// reader takes NUL-terminated strings of announced lengths off the event's data.
type reader struct {
	b   []byte
	err error
}

func (r *reader) str(n int) string {
	if r.err != nil {
		return ""
	}
	if n+1 > len(r.b) {
		r.err = fmt.Errorf("string of %d bytes past the end of the event (%d left)", n, len(r.b))
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n+1:]
	return s
}

// cgroups splits the cgroup block: v2 tail NUL v1 tail NUL.
func (r *reader) cgroups(n int) (v2, v1 string) {
	if r.err != nil || n == 0 {
		return "", ""
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("cgroup block of %d bytes past the end of the event (%d left)", n, len(r.b))
		return "", ""
	}
	parts := strings.SplitN(string(r.b[:n]), "\x00", 3)
	v2 = parts[0]
	if len(parts) > 1 {
		v1 = parts[1]
	}
	return v2, v1
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
