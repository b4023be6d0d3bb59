package sensor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/stretchr/testify/require"
)

// openForTest loads the real programs, or skips with the precise reason when this machine cannot.
func openForTest(t *testing.T, opts Options) *Sensor {
	t.Helper()
	if err := Preflight(opts.CaptureOpens); err != nil {
		t.Skipf("the sensor cannot load here: %v", err)
	}
	s, err := Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// collect reads events until match returns true or the deadline passes.
func collect(t *testing.T, s *Sensor, match func(any) bool) any {
	t.Helper()
	found := make(chan any, 1)
	go func() {
		var rec ringbuf.Record
		for {
			if err := s.Read(&rec); err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Errorf("read: %v", err)
				}
				return
			}
			ev, err := Decode(rec.RawSample)
			if err != nil {
				t.Errorf("decode: %v", err)
				continue
			}
			if match(ev) {
				found <- ev
				return
			}
		}
	}()
	select {
	case ev := <-found:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no matching event within 30s")
		return nil
	}
}

func TestSensorExecAndOpen(t *testing.T) {
	s := openForTest(t, Options{CaptureOpens: true, RingBufferBytes: 1 << 22})
	require.NotEmpty(t, s.Attached())

	dir := t.TempDir()
	cmd := exec.Command("/bin/true", "alpha", "beta gamma")
	cmd.Dir = dir
	require.NoError(t, cmd.Start())
	pid := uint32(cmd.Process.Pid)
	require.NoError(t, cmd.Wait())
	ev := collect(t, s, func(e any) bool { x, ok := e.(*ExecEvent); return ok && x.TGID == pid }).(*ExecEvent)
	t.Logf("%+v", ev)
	require.Equal(t, []string{"/bin/true", "alpha", "beta gamma"}, ev.Args)
	real, _ := filepath.EvalSymlinks("/bin/true")
	require.Contains(t, []string{"/bin/true", "/usr/bin/true", real}, ev.Path)
	require.Equal(t, dir, ev.Cwd)

	f := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	cat := exec.Command("/bin/cat", "../data.txt")
	cat.Dir = sub
	require.NoError(t, cat.Run())
	oe := collect(t, s, func(e any) bool { x, ok := e.(*OpenEvent); return ok && x.Path == f }).(*OpenEvent)
	t.Logf("%+v", oe)
}
