package sensor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseOpenHook(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want OpenHook
		err  string
	}{
		{in: "", want: OpenHookAuto},
		{in: "auto", want: OpenHookAuto},
		{in: "lsm", want: OpenHookLSM},
		{in: "fexit", want: OpenHookFexit},
		{in: "tracepoint", want: OpenHookTracepoint},
		{in: "kprobe", err: `unknown open hook "kprobe": want auto, lsm, fexit or tracepoint`},
		{in: "LSM", err: `unknown open hook "LSM"`},
	} {
		got, err := ParseOpenHook(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

// TestChooseOpenHook forces each path of the choice: which hooks the kernel allows is given, not probed.
func TestChooseOpenHook(t *testing.T) {
	refuse := func(allowed ...OpenHook) func(OpenHook) error {
		return func(h OpenHook) error {
			for _, a := range allowed {
				if a == h {
					return nil
				}
			}
			return errors.New("refused " + string(h))
		}
	}
	for _, tc := range []struct {
		name    string
		want    OpenHook
		allowed []OpenHook
		got     OpenHook
		refused []string
		err     string
	}{
		{name: "auto, everything allowed: LSM", want: OpenHookAuto, allowed: OpenHookOrder, got: OpenHookLSM},
		{name: "auto, no BPF LSM: fexit", want: OpenHookAuto, allowed: []OpenHook{OpenHookFexit, OpenHookTracepoint},
			got: OpenHookFexit, refused: []string{"lsm/file_open: refused lsm"}},
		{name: "auto, no trampolines (lockdown): tracepoints", want: OpenHookAuto, allowed: []OpenHook{OpenHookTracepoint},
			got: OpenHookTracepoint, refused: []string{"lsm/file_open: refused lsm", "fexit/do_filp_open: refused fexit"}},
		{name: "auto, LSM only", want: OpenHookAuto, allowed: []OpenHook{OpenHookLSM}, got: OpenHookLSM},
		{name: "auto, nothing allowed", want: OpenHookAuto,
			err: "no open hook is allowed by the kernel: lsm/file_open: refused lsm; fexit/do_filp_open: refused fexit; syscalls/sys_exit_open*: refused tracepoint"},
		{name: "forced fexit, allowed", want: OpenHookFexit, allowed: OpenHookOrder, got: OpenHookFexit},
		{name: "forced tracepoint, though LSM is allowed", want: OpenHookTracepoint, allowed: OpenHookOrder, got: OpenHookTracepoint},
		{name: "forced LSM, refused", want: OpenHookLSM, allowed: []OpenHook{OpenHookTracepoint},
			err: "open_hook lsm: the kernel does not allow lsm/file_open: refused lsm (set open_hook: auto to fall back to the hooks it allows)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tried []OpenHook
			try := refuse(tc.allowed...)
			got, refused, err := chooseOpenHook(tc.want, func(h OpenHook) error { tried = append(tried, h); return try(h) })
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.got, got)
			var rs []string
			for _, r := range refused {
				rs = append(rs, r.String())
			}
			require.Equal(t, tc.refused, rs)
			require.Equal(t, got, tried[len(tried)-1], "stops at the first allowed hook")
		})
	}
}

func TestSecurityfsParsers(t *testing.T) {
	require.True(t, lsmListHasBPF("lockdown,capability,landlock,bpf\n"))
	require.True(t, lsmListHasBPF("bpf"))
	require.False(t, lsmListHasBPF("lockdown,capability,landlock,yama"))
	require.False(t, lsmListHasBPF("bpfilter"))
	require.False(t, lsmListHasBPF(""))
	require.Equal(t, "integrity", parseLockdown("none [integrity] confidentiality\n"))
	require.Equal(t, "none", parseLockdown("[none] integrity confidentiality"))
	require.Equal(t, "", parseLockdown("none integrity"))
	require.Equal(t, "", parseLockdown("none [integrity"))
	require.Equal(t, "", parseLockdown(""))
}

// TestOpenHooksOnThisKernel forces each hook on the real kernel: one the kernel allows captures a real open, one
// it refuses says which hook and why; auto then keeps the first allowed one and reports the refusals before it.
// This machine's kernel (lockdown integrity) refuses the trampolines, so here it exercises the fallback to the
// syscall tracepoints; on a kernel with the BPF LSM active the same test captures through lsm/file_open.
func TestOpenHooksOnThisKernel(t *testing.T) {
	if err := Preflight(true); err != nil {
		t.Skipf("the sensor cannot load here: %v", err)
	}
	var allowed []OpenHook
	for _, h := range OpenHookOrder {
		s, err := Open(Options{CaptureOpens: true, OpenHook: h, RingBufferBytes: 1 << 20})
		if err != nil {
			t.Logf("%s refused: %v", h, err)
			require.ErrorContains(t, err, "open_hook "+string(h)+": the kernel does not allow "+h.Where()+": ")
			continue
		}
		allowed = append(allowed, h)
		require.Equal(t, h, s.OpenHook())
		require.Contains(t, strings.Join(s.Attached(), ","), "open:"+strings.TrimSuffix(h.Where(), "*"))
		f := filepath.Join(t.TempDir(), "through-"+string(h))
		require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
		ev := collect(t, s, func(e any) bool { x, ok := e.(*OpenEvent); return ok && x.Path == f }).(*OpenEvent)
		require.Equal(t, uint32(os.Getpid()), ev.TGID, "%s: %+v", h, ev)
		require.NoError(t, s.Close())
	}
	require.Contains(t, allowed, OpenHookTracepoint, "every kernel the sensor supports has the syscall tracepoints")

	s := openForTest(t, Options{CaptureOpens: true})
	require.Equal(t, allowed[0], s.OpenHook(), "auto keeps the first allowed hook of %v", OpenHookOrder)
	var refused []OpenHook
	for _, r := range s.Refused() {
		refused = append(refused, r.Hook)
		require.NotEmpty(t, r.Reason)
	}
	for _, h := range OpenHookOrder {
		if h == allowed[0] {
			break
		}
		require.Contains(t, refused, h)
	}
	t.Logf("open hook %s; refused %v", s.OpenHook(), s.Refused())

	none := openForTest(t, Options{})
	require.Equal(t, OpenHook(""), none.OpenHook())
	require.Equal(t, []string{"exec:tp_btf/sched_process_exec"}, none.Attached())
}
