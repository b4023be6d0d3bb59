package sensor

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/runtrust/runtrust/bpf"
)

// OpenHook is the kind of kernel hook the open program runs on. Exec always runs on tp_btf/sched_process_exec:
// a BTF tracepoint is a direct call with no trampoline to save, and it fires once the exec has succeeded.
type OpenHook string

const (
	// OpenHookAuto tries the hooks in OpenHookOrder and keeps the first the kernel allows.
	OpenHookAuto OpenHook = "auto"
	// OpenHookLSM is lsm/file_open: one trampoline call per open, every open a task makes (io_uring's too).
	OpenHookLSM OpenHook = "lsm"
	// OpenHookFexit is fexit/do_filp_open: one trampoline call per open by name (io_uring's too).
	OpenHookFexit OpenHook = "fexit"
	// OpenHookTracepoint is the exit tracepoints of the open syscalls: every kernel has them, but once one is on
	// every syscall of every task takes the kernel's slower traced path, and io_uring's opens pass them by.
	OpenHookTracepoint OpenHook = "tracepoint"
)

// OpenHookOrder is the order auto tries the hooks in: cheapest and widest first.
var OpenHookOrder = []OpenHook{OpenHookLSM, OpenHookFexit, OpenHookTracepoint}

// ParseOpenHook reads a configured hook; "" is auto.
func ParseOpenHook(s string) (OpenHook, error) {
	switch h := OpenHook(s); h {
	case "":
		return OpenHookAuto, nil
	case OpenHookAuto, OpenHookLSM, OpenHookFexit, OpenHookTracepoint:
		return h, nil
	}
	return "", fmt.Errorf("unknown open hook %q: want auto, lsm, fexit or tracepoint", s)
}

// Where names the kernel hook as the kernel calls it.
func (h OpenHook) Where() string {
	switch h {
	case OpenHookLSM:
		return "lsm/file_open"
	case OpenHookFexit:
		return "fexit/do_filp_open"
	case OpenHookTracepoint:
		return "syscalls/sys_exit_open*"
	}
	return string(h)
}

// program is the bpf2go name of the open program for the hook.
func (h OpenHook) program() string {
	switch h {
	case OpenHookLSM:
		return bpf.SensorProgFileOpenLsm
	case OpenHookFexit:
		return bpf.SensorProgFileOpenFexit
	}
	return bpf.SensorProgFileOpen
}

// Refusal says why a hook the sensor would rather have used was not.
type Refusal struct {
	Hook   OpenHook
	Reason string
}

func (r Refusal) String() string { return r.Hook.Where() + ": " + r.Reason }

// chooseOpenHook tries the hooks want allows, in OpenHookOrder, and returns the first that try accepts, with
// why each one before it was refused. A hook that is asked for by name and refused is an error that says why.
func chooseOpenHook(want OpenHook, try func(OpenHook) error) (OpenHook, []Refusal, error) {
	candidates := OpenHookOrder
	if want != OpenHookAuto {
		candidates = []OpenHook{want}
	}
	var refused []Refusal
	for _, h := range candidates {
		err := try(h)
		if err == nil {
			return h, refused, nil
		}
		refused = append(refused, Refusal{Hook: h, Reason: err.Error()})
	}
	if want != OpenHookAuto {
		return "", refused, fmt.Errorf("open_hook %s: the kernel does not allow %s: %s (set open_hook: auto to fall back to the hooks it allows)",
			want, want.Where(), refused[0].Reason)
	}
	return "", refused, fmt.Errorf("no open hook is allowed by the kernel: %s", JoinRefusals(refused))
}

// JoinRefusals lists refusals "; "-separated: their reasons hold commas.
func JoinRefusals(rs []Refusal) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, "; ")
}

// SecurityfsPath is where the kernel lists its active LSMs and its lockdown mode.
const SecurityfsPath = "/sys/kernel/security"

// bpfLSMActive says whether BPF LSM programs run: the kernel must have been started with "bpf" in its lsm= list.
// Without it an lsm/ program loads and attaches to a hook nobody calls, so it would capture nothing, silently.
func bpfLSMActive() error {
	list, err := readSecurityfs("lsm")
	if err != nil {
		return fmt.Errorf("cannot tell whether the BPF LSM is active: %w", err)
	}
	if !lsmListHasBPF(list) {
		return fmt.Errorf(`the BPF LSM is not active (%s/lsm lists %q): boot the kernel with "bpf" in lsm=`, SecurityfsPath, strings.TrimSpace(list))
	}
	return nil
}

// lsmListHasBPF reads securityfs's lsm file: the active LSMs, comma-separated.
func lsmListHasBPF(list string) bool {
	for _, name := range strings.Split(strings.TrimSpace(list), ",") {
		if name == "bpf" {
			return true
		}
	}
	return false
}

// lockdownMode is the kernel's lockdown mode ("none", "integrity", "confidentiality"), "" when unknown.
func lockdownMode() string {
	s, err := readSecurityfs("lockdown")
	if err != nil {
		return ""
	}
	return parseLockdown(s)
}

// parseLockdown reads securityfs's lockdown file, which brackets the mode in force: "none [integrity] confidentiality".
func parseLockdown(s string) string {
	i := strings.IndexByte(s, '[')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], ']')
	if j < 0 {
		return ""
	}
	return s[i+1 : i+j]
}

// readSecurityfs reads a file of securityfs, mounting it when it is absent and the mount is allowed (a
// container's /sys usually lacks it).
func readSecurityfs(name string) (string, error) {
	p := SecurityfsPath + "/" + name
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		if merr := unix.Mount("securityfs", SecurityfsPath, "securityfs", 0, ""); merr == nil || errors.Is(merr, unix.EBUSY) {
			b, err = os.ReadFile(p)
		}
	}
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// trampoline says whether the hook's program goes through a BPF trampoline: the kinds of program a kernel may
// refuse where it allows the tracepoints, so a refusal is a fallback's reason rather than a start error.
func (h OpenHook) trampoline() bool { return h == OpenHookLSM || h == OpenHookFexit }

// explainRefusal says why the kernel refused a trampoline program, with what its state suggests. (cilium/ebpf's
// own wording for EPERM blames RLIMIT_MEMLOCK, which Open has already lifted.)
func explainRefusal(h OpenHook, err error) error {
	if !h.trampoline() || !errors.Is(err, unix.EPERM) {
		return err
	}
	msg := "the kernel refused to load the program (operation not permitted)"
	if mode := lockdownMode(); mode != "" && mode != "none" {
		msg += fmt.Sprintf("; it is in lockdown (%s), and kernels in lockdown may refuse BPF trampolines", mode)
	}
	return errors.New(msg)
}
