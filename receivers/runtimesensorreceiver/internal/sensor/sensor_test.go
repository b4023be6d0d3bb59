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
	"golang.org/x/sys/unix"
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

// A Polled sensor never wakes its reader: a blocked Read sees nothing, Drain finds the event.
func TestSensorPolledDrain(t *testing.T) {
	s := openForTest(t, Options{RingBufferBytes: 1 << 20, Polled: true})

	cmd := exec.Command("/bin/true", "polled")
	require.NoError(t, cmd.Run())
	pid := uint32(cmd.Process.Pid)

	// No wake-up reaches a blocked reader: it must time out although the event waits in the ring buffer.
	start := time.Now()
	s.reader.SetDeadline(start.Add(300 * time.Millisecond))
	var rec ringbuf.Record
	var found bool
	for first := true; ; first = false {
		err := s.reader.ReadInto(&rec)
		if first {
			// Woken, it would have returned at once; unwoken, it returns what waits only at the deadline.
			require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "the kernel woke the reader")
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		require.NoError(t, err)
		if ev, err := Decode(rec.RawSample); err == nil {
			if x, ok := ev.(*ExecEvent); ok && x.TGID == pid {
				found = true
			}
		}
	}
	require.True(t, found, "the exec event was not in the ring buffer at the deadline")

	cmd = exec.Command("/bin/true", "drained")
	require.NoError(t, cmd.Run())
	pid = uint32(cmd.Process.Pid)
	var got *ExecEvent
	for i := 0; i < 50 && got == nil; i++ {
		n, err := s.Drain(func(raw []byte) {
			if ev, err := Decode(raw); err == nil {
				if x, ok := ev.(*ExecEvent); ok && x.TGID == pid {
					got = x
				}
			}
		})
		require.NoError(t, err)
		if got == nil {
			t.Logf("drain %d: %d records, not yet", i, n)
			time.Sleep(20 * time.Millisecond)
		}
	}
	require.NotNil(t, got, "Drain never returned the exec event")
	require.Equal(t, []string{"/bin/true", "drained"}, got.Args)

	require.NoError(t, s.Close())
	_, err := s.Drain(func([]byte) {})
	require.ErrorIs(t, err, ErrClosed)
}

// Dedup, through the per-CPU slots and the LRU: a re-open within the TTL is a hit, one after it is reported
// again, and another access mode is another key.
func TestSensorDedupTTL(t *testing.T) {
	const ttl = time.Second // long enough that a loaded CI machine still re-opens within it
	s := openForTest(t, Options{CaptureOpens: true, RingBufferBytes: 1 << 20, Polled: true, DedupTTLNanos: uint64(ttl)})
	f := filepath.Join(t.TempDir(), "ttl.txt")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))

	// opens counts the open events for f that the next drains find.
	opens := func() (n int) {
		time.Sleep(50 * time.Millisecond)
		_, err := s.Drain(func(raw []byte) {
			if ev, err := Decode(raw); err == nil {
				if o, ok := ev.(*OpenEvent); ok && o.Path == f {
					n++
				}
			}
		})
		require.NoError(t, err)
		return n
	}
	reopen := func(n, flag int) {
		for range n {
			fd, err := unix.Open(f, flag, 0)
			require.NoError(t, err)
			require.NoError(t, unix.Close(fd))
		}
	}
	require.Equal(t, 1, opens(), "the write that made the file")
	before, err := s.Stats()
	require.NoError(t, err)
	reopen(1, unix.O_RDONLY)
	require.Equal(t, 1, opens(), "first open")
	reopen(200, unix.O_RDONLY)
	require.Equal(t, 0, opens(), "re-opens within the TTL")
	after, err := s.Stats()
	require.NoError(t, err)
	require.GreaterOrEqual(t, after.DedupHits-before.DedupHits, uint64(200))

	reopen(1, unix.O_RDWR)
	require.Equal(t, 1, opens(), "another access mode is another key")

	time.Sleep(ttl)
	reopen(5, unix.O_RDONLY)
	require.Equal(t, 1, opens(), "an open after the TTL is reported again, once")
}
