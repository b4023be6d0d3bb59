package sensor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/runtrust/runtrust/bpf"
)

// Options configure the programs before they are loaded.
type Options struct {
	RingBufferBytes  uint32 // power of two, ≥ page size
	DedupEntries     uint32
	DedupTTLNanos    uint64 // 0: report an open once per (cgroup, inode, device, access mode) while it stays in the map
	FilterContainers bool   // capture only cgroups below an entry of the filter map (see AllowCgroup)
	CaptureOpens     bool
	OpenHook         OpenHook // where the open program runs; "" or OpenHookAuto: the cheapest the kernel allows
	// Polled: the kernel never wakes the reader; it calls Drain on a timer instead of blocking in Read. A
	// wake-up per event costs an epoll round trip and a thread hand-off each, which in an exec storm was most of
	// the receiver's CPU; a timed drain costs one non-blocking epoll_wait per tick, however many events wait.
	Polled bool
}

// Hierarchies of the filter map: bpf/sensor.c's enum filter_hierarchy.
const (
	HierarchyV2       = uint32(bpf.SensorFilterHierarchyHIERARCHY_V2)
	HierarchyV1Memory = uint32(bpf.SensorFilterHierarchyHIERARCHY_V1MEMORY)
)

// Stats are the kernel-side counters, summed over CPUs.
type Stats struct {
	Exec, Open, Dropped, DedupHits, Filtered uint64
}

// Sensor is the loaded and attached set of programs.
type Sensor struct {
	maps     bpf.SensorMaps
	progs    *ebpf.Collection // the programs loaded: exec's and the chosen hook's open program
	links    []link.Link
	reader   *ringbuf.Reader
	rec      ringbuf.Record // Drain's, reused
	attached []string
	openHook OpenHook  // "" when opens are not captured
	refused  []Refusal // the hooks tried before openHook, and why the kernel refused them
}

// MinKernel is the oldest kernel the programs load on: BTF tracepoints (5.5), ring buffer (5.8), bpf_loop (5.17).
const MinKernel = "5.17"

// TracefsPath is where the syscall tracepoints are looked up.
const TracefsPath = "/sys/kernel/tracing"

// Preflight checks what loading needs, and says what is missing and how to fix it. It mounts tracefs at
// TracefsPath when it is absent and the mount is allowed (it only is with CAP_SYS_ADMIN).
func Preflight(needTracefs bool) error {
	var errs []error
	if err := checkCaps(); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		errs = append(errs, fmt.Errorf("no kernel BTF at /sys/kernel/btf/vmlinux (%v): the kernel needs CONFIG_DEBUG_INFO_BTF=y", err))
	}
	if rel, ok := kernelOlder(MinKernel); ok {
		errs = append(errs, fmt.Errorf("kernel %s is too old: the sensor needs %s or newer (BTF tracepoints, BPF ring buffer, bpf_loop)", rel, MinKernel))
	}
	if needTracefs {
		if err := ensureTracefs(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkCaps() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(uint(c)%32)) != 0 }
	if has(unix.CAP_SYS_ADMIN) {
		return nil
	}
	var missing []string
	if !has(unix.CAP_BPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(unix.CAP_PERFMON) {
		missing = append(missing, "CAP_PERFMON")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("not privileged: the sensor needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (missing %s; uid %d)",
		strings.Join(missing, ", "), os.Geteuid())
}

func ensureTracefs() error {
	if _, err := os.Stat(TracefsPath + "/events/syscalls"); err == nil {
		return nil
	}
	if err := unix.Mount("tracefs", TracefsPath, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("tracefs is not mounted at %s and mounting it failed (%v): run `mount -t tracefs tracefs %s`, "+
			"or mount the host's /sys/kernel/tracing into the collector's container", TracefsPath, err, TracefsPath)
	}
	if _, err := os.Stat(TracefsPath + "/events/syscalls"); err != nil {
		return fmt.Errorf("tracefs is mounted at %s but has no syscall tracepoints (events/syscalls): the kernel needs CONFIG_FTRACE_SYSCALLS=y", TracefsPath)
	}
	return nil
}

// KernelRelease is uname -r.
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func kernelOlder(min string) (string, bool) {
	rel := KernelRelease()
	return rel, versionLess(rel, min)
}

// versionLess compares the leading "major.minor" of two kernel releases.
func versionLess(rel, min string) bool {
	parse := func(s string) (int, int) {
		f := strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' })
		var a, b int
		if len(f) > 0 {
			a, _ = strconv.Atoi(f[0])
		}
		if len(f) > 1 {
			b, _ = strconv.Atoi(f[1])
		}
		return a, b
	}
	ra, rb := parse(rel)
	ma, mb := parse(min)
	return ra < ma || (ra == ma && rb < mb)
}

// openSyscalls are the syscalls whose exit the open program attaches to; the ones the kernel lacks are skipped.
var openSyscalls = []string{"openat", "openat2", "open", "creat", "open_by_handle_at"}

// Open loads and attaches the programs. The open program goes on the first hook of OpenHookOrder the kernel
// allows (or the one opts.OpenHook names); OpenHook and Refused say which, and why not the others.
func Open(opts Options) (*Sensor, error) {
	want := opts.OpenHook
	if want == "" {
		want = OpenHookAuto
	}
	if _, err := ParseOpenHook(string(want)); err != nil {
		return nil, err
	}
	// Tracefs is only needed for the syscall tracepoints, but which hook the kernel allows is known only
	// after trying, and mounting it costs nothing.
	if err := Preflight(opts.CaptureOpens); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK: %w", err)
	}
	spec, err := loadSpec(opts)
	if err != nil {
		return nil, err
	}
	s := &Sensor{}
	if !opts.CaptureOpens {
		if err := s.load(spec, ""); err != nil {
			return nil, err
		}
	} else {
		try := func(h OpenHook) error {
			if h == OpenHookLSM {
				if err := bpfLSMActive(); err != nil {
					return err
				}
			}
			return s.load(spec, h)
		}
		s.openHook, s.refused, err = chooseOpenHook(want, try)
		if err != nil {
			return nil, err
		}
	}
	s.reader, err = ringbuf.NewReader(s.maps.Events)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	return s, nil
}

// loadSpec is the programs' spec with the options set.
func loadSpec(opts Options) (*ebpf.CollectionSpec, error) {
	spec, err := bpf.LoadSensor()
	if err != nil {
		return nil, err
	}
	if opts.RingBufferBytes != 0 {
		spec.Maps[bpf.SensorMapEvents].MaxEntries = opts.RingBufferBytes
	}
	if opts.DedupEntries != 0 {
		spec.Maps[bpf.SensorMapDedup].MaxEntries = opts.DedupEntries
	}
	flag := func(b bool) uint8 {
		if b {
			return 1
		}
		return 0
	}
	for name, v := range map[string]any{
		bpf.SensorVarDedupTtlNs:       opts.DedupTTLNanos,
		bpf.SensorVarNoWakeup:         flag(opts.Polled),
		bpf.SensorVarFilterContainers: flag(opts.FilterContainers),
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	return spec, nil
}

// load loads the maps, the exec program and, unless open is "", the open program for that hook, and attaches
// them. On an error nothing of it stays loaded.
func (s *Sensor) load(spec *ebpf.CollectionSpec, open OpenHook) error {
	sp := spec.Copy()
	for name := range sp.Programs {
		if name != bpf.SensorProgProcessExec && (open == "" || name != open.program()) {
			delete(sp.Programs, name) // the other hooks' programs: a kernel that refuses them refuses the lot
		}
	}
	coll, err := ebpf.NewCollection(sp)
	if err != nil {
		return loadError(open, err)
	}
	if err := coll.Assign(&s.maps); err != nil {
		coll.Close()
		return err
	}
	s.progs = coll
	if err := s.attach(open); err != nil {
		s.unload()
		return err
	}
	return nil
}

func loadError(open OpenHook, err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		if open.trampoline() {
			// A fallback's reason: the verifier's last lines, not its whole log.
			return fmt.Errorf("the kernel's verifier refused the program: %v", ve)
		}
		return fmt.Errorf("loading the sensor programs: the kernel's verifier refused them (kernel %s): %+v", KernelRelease(), ve)
	}
	if open.trampoline() {
		return explainRefusal(open, err)
	}
	return fmt.Errorf("loading the sensor programs (kernel %s): %w", KernelRelease(), err)
}

func (s *Sensor) attach(open OpenHook) error {
	l, err := link.AttachTracing(link.TracingOptions{Program: s.progs.Programs[bpf.SensorProgProcessExec]})
	if err != nil {
		return fmt.Errorf("attaching the exec program to tp_btf/sched_process_exec: %w", err)
	}
	s.links = append(s.links, l)
	s.attached = append(s.attached, "exec:tp_btf/sched_process_exec")
	if open == "" {
		return nil
	}
	prog := s.progs.Programs[open.program()]
	switch open {
	case OpenHookLSM:
		l, err = link.AttachLSM(link.LSMOptions{Program: prog})
	case OpenHookFexit:
		l, err = link.AttachTracing(link.TracingOptions{Program: prog})
	case OpenHookTracepoint:
		return s.attachOpenTracepoints(prog)
	}
	if err != nil {
		return fmt.Errorf("attaching the open program to %s: %w", open.Where(), explainRefusal(open, err))
	}
	s.links = append(s.links, l)
	s.attached = append(s.attached, "open:"+open.Where())
	return nil
}

func (s *Sensor) attachOpenTracepoints(prog *ebpf.Program) error {
	for _, sc := range openSyscalls {
		l, err := link.Tracepoint("syscalls", "sys_exit_"+sc, prog, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue // e.g. open and creat on arm64
		}
		if err != nil {
			return fmt.Errorf("attaching the open program to syscalls/sys_exit_%s: %w", sc, err)
		}
		s.links = append(s.links, l)
		s.attached = append(s.attached, "open:syscalls/sys_exit_"+sc)
	}
	return nil
}

// unload detaches and closes what load made.
func (s *Sensor) unload() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links, s.attached = nil, nil
	errs = append(errs, s.maps.Close())
	s.maps = bpf.SensorMaps{}
	if s.progs != nil {
		s.progs.Close()
		s.progs = nil
	}
	return errors.Join(errs...)
}

// OpenHook is the hook the open program runs on; "" when opens are not captured.
func (s *Sensor) OpenHook() OpenHook { return s.openHook }

// Refused lists the hooks preferred to OpenHook that the kernel refused, and why.
func (s *Sensor) Refused() []Refusal { return append([]Refusal(nil), s.refused...) }

// Attached names the attached programs and their hooks.
func (s *Sensor) Attached() []string { return append([]string(nil), s.attached...) }

// AllowCgroup adds a cgroup (directory inode in its hierarchy) whose subtree is captured when the filter is on.
func (s *Sensor) AllowCgroup(hierarchy uint32, id uint64) error {
	return s.maps.ContainerCgroups.Update(bpf.SensorFilterKey{Id: id, Hierarchy: hierarchy}, uint8(1), ebpf.UpdateAny)
}

// Read blocks for the next record and returns its raw bytes in rec (reused). ErrClosed after Close.
func (s *Sensor) Read(rec *ringbuf.Record) error { return s.reader.ReadInto(rec) }

// Drain hands every record waiting in the ring buffer to fn, without blocking, and returns how many it read.
// raw is only valid during the call. It is how a Polled sensor is read; do not mix it with a blocked Read.
func (s *Sensor) Drain(fn func(raw []byte)) (int, error) {
	// A deadline in the past makes ReadInto look once (epoll_wait with a zero timeout), return what waits, then
	// report the deadline.
	s.reader.SetDeadline(time.Unix(1, 0))
	n := 0
	for {
		if err := s.reader.ReadInto(&s.rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return n, nil
			}
			return n, err
		}
		n++
		fn(s.rec.RawSample)
	}
}

// RingBuffer is the events ring buffer map; a benchmark feeds it through package bpf/inject.
func (s *Sensor) RingBuffer() *ebpf.Map { return s.maps.Events }

// ErrClosed is returned by Read once the sensor is closed.
var ErrClosed = ringbuf.ErrClosed

// Stats sums the per-CPU counters.
func (s *Sensor) Stats() (Stats, error) {
	var st Stats
	// The slots of bpf/sensor.c's enum sensor_stat.
	dst := map[bpf.SensorSensorStat]*uint64{
		bpf.SensorSensorStatSTAT_EXEC:      &st.Exec,
		bpf.SensorSensorStatSTAT_OPEN:      &st.Open,
		bpf.SensorSensorStatSTAT_DROPPED:   &st.Dropped,
		bpf.SensorSensorStatSTAT_DEDUP_HIT: &st.DedupHits,
		bpf.SensorSensorStatSTAT_FILTERED:  &st.Filtered,
	}
	for slot, p := range dst {
		var per []uint64
		if err := s.maps.Stats.Lookup(uint32(slot), &per); err != nil {
			return st, fmt.Errorf("reading counter %d: %w", slot, err)
		}
		for _, v := range per {
			*p += v
		}
	}
	return st, nil
}

// Close detaches and unloads everything; a blocked Read returns ErrClosed.
func (s *Sensor) Close() error {
	var errs []error
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	errs = append(errs, s.unload())
	return errors.Join(errs...)
}
