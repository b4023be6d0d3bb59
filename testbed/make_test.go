package testbed

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// makeRun is `make <args>` started as a user's terminal starts it: in a process group of its own, so that
// interrupt reaches make and what it runs in the foreground, as Ctrl-C does.
type makeRun struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when make has exited; err is then set
	err  error
}

// startMake runs make in the repository root with env (nil: the test's). A test that fails stops it the same
// way at the end, and kills the group if it does not stop within two minutes.
func startMake(t *testing.T, env []string, args ...string) *makeRun {
	t.Helper()
	m := &makeRun{out: &syncBuffer{}, done: make(chan struct{})}
	m.cmd = exec.Command("make", args...)
	m.cmd.Dir, m.cmd.Env = repoRoot(t), env
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.err = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		if !m.exited() {
			_ = m.interrupt(2 * time.Minute)
		}
	})
	return m
}

// exited says whether make has ended.
func (m *makeRun) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// interrupt sends SIGINT to make's process group and waits up to grace for make to exit, then kills the group.
// make re-raises the SIGINT it got once its command has exited, so its own status is "interrupt", not an error;
// what the command said is in its output.
func (m *makeRun) interrupt(grace time.Duration) error {
	if err := syscall.Kill(-m.cmd.Process.Pid, syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-m.done:
		var exit *exec.ExitError
		if m.err != nil && !errors.As(m.err, &exit) {
			return m.err
		}
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		return errors.New("did not stop within " + grace.String() + " of Ctrl-C:\n" + tail(m.out.String()))
	}
}
