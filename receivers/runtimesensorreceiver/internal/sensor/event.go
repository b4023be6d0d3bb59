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

// Event types, as bpf/sensor.c writes them.
const (
	TypeExec uint32 = 1
	TypeOpen uint32 = 2
)

// Event flags, as bpf/sensor.c writes them.
const (
	FlagPathTruncated uint32 = 1
	FlagArgsTruncated uint32 = 2
	FlagCwdTruncated  uint32 = 4
	// FlagPathDetached: the file is reachable from no directory (a memfd or another pseudo file): the path is "/"
	// and its own name, as /proc/<pid>/exe shows a memfd ("/memfd:<name>", there with " (deleted)").
	FlagPathDetached uint32 = 8
)

// The headers end where their flexible data member starts (Go pads a struct with a trailing zero-size field, so
// Sizeof would be too large).
var (
	execHeaderSize = int(unsafe.Offsetof(bpf.SensorEventExec{}.Data))
	openHeaderSize = int(unsafe.Offsetof(bpf.SensorEventOpen{}.Data))
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
	Comm            string
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
	Comm      string
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
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes", errShort, len(b))
	}
	switch typ := binary.NativeEndian.Uint32(b); typ {
	case TypeExec:
		return decodeExec(b)
	case TypeOpen:
		return decodeOpen(b)
	default:
		return nil, fmt.Errorf("unknown event type %d", typ)
	}
}

func decodeExec(b []byte) (*ExecEvent, error) {
	if len(b) < execHeaderSize {
		return nil, fmt.Errorf("exec: %w: %d of %d bytes", errShort, len(b), execHeaderSize)
	}
	ne := binary.NativeEndian
	e := &ExecEvent{
		Flags:     ne.Uint32(b[4:]),
		CgroupID:  ne.Uint64(b[8:]),
		StartTime: ne.Uint64(b[16:]),
		Inode:     ne.Uint64(b[24:]),
		Size:      ne.Uint64(b[32:]),
		MtimeSec:  int64(ne.Uint64(b[40:])),
		MtimeNsec: ne.Uint32(b[48:]),
		Device:    ne.Uint32(b[52:]),
		PID:       ne.Uint32(b[56:]),
		TGID:      ne.Uint32(b[60:]),
		PPID:      ne.Uint32(b[64:]),
		UID:       ne.Uint32(b[68:]),
		GID:       ne.Uint32(b[72:]),
		Argc:      ne.Uint32(b[76:]),
		Comm:      cstring(b[88:104]),
	}
	pathLen, cwdLen, argsLen, cgLen := int(ne.Uint16(b[80:])), int(ne.Uint16(b[82:])), int(ne.Uint16(b[84:])), int(ne.Uint16(b[86:]))
	d := &reader{b: b[execHeaderSize:]}
	e.Path = d.str(pathLen)
	e.Cwd = d.str(cwdLen)
	if args := d.str(argsLen); argsLen > 0 {
		e.Args = strings.Split(args, "\x00")
	}
	e.CgroupV2, e.CgroupV1 = d.cgroups(cgLen)
	if d.err != nil {
		return nil, fmt.Errorf("exec: %w", d.err)
	}
	return e, nil
}

func decodeOpen(b []byte) (*OpenEvent, error) {
	if len(b) < openHeaderSize {
		return nil, fmt.Errorf("open: %w: %d of %d bytes", errShort, len(b), openHeaderSize)
	}
	ne := binary.NativeEndian
	o := &OpenEvent{
		EvFlags:  ne.Uint32(b[4:]),
		CgroupID: ne.Uint64(b[8:]),
		Inode:    ne.Uint64(b[16:]),
		Device:   ne.Uint32(b[24:]),
		Flags:    ne.Uint32(b[28:]),
		PID:      ne.Uint32(b[32:]),
		TGID:     ne.Uint32(b[36:]),
		Comm:     cstring(b[48:64]),
	}
	pathLen, cgLen := int(ne.Uint16(b[40:])), int(ne.Uint16(b[42:]))
	d := &reader{b: b[openHeaderSize:]}
	o.Path = d.str(pathLen)
	o.CgroupV2, o.CgroupV1 = d.cgroups(cgLen)
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
