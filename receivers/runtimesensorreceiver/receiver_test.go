package runtimesensorreceiver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"golang.org/x/sys/unix"

	"github.com/runtrust/runtrust/internal/cgrouptest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/metadata"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/sensor"
)

// startSensor starts the receiver on the real kernel, or skips with the precise reason when this machine cannot
// load the programs.
func startSensor(t testing.TB, mutate func(*Config)) (*sensorReceiver, *consumertest.LogsSink) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NodeName = "test-node"
	cfg.PollInterval = 10 * time.Millisecond
	cfg.FlushInterval = 20 * time.Millisecond
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	if err := sensor.Preflight(cfg.FileOpens); err != nil {
		t.Skipf("the runtime sensor cannot load on this machine: %v", err)
	}
	sink := new(consumertest.LogsSink)
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, sink, nil)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, sink
}

// waitRecords polls the sink until match finds at least one record, with a deadline generous enough for a
// loaded 2-core machine; then it waits a little longer so stragglers land, and returns every match.
func waitRecords(t *testing.T, sink *consumertest.LogsSink, match func(plog.LogRecord) bool) []plog.LogRecord {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got := findRecords(sink, match); len(got) > 0 {
			time.Sleep(500 * time.Millisecond)
			return findRecords(sink, match)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no matching record within 30s")
	return nil
}

func findRecords(sink *consumertest.LogsSink, match func(plog.LogRecord) bool) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					if match(lrs.At(k)) {
						out = append(out, lrs.At(k))
					}
				}
			}
		}
	}
	return out
}

func intAttr(lr plog.LogRecord, key string) int64 {
	v, _ := lr.Attributes().Get(key)
	return v.Int()
}

func strAttr(lr plog.LogRecord, key string) string {
	v, ok := lr.Attributes().Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

func sha256File(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestExecRecord(t *testing.T) {
	_, sink := startSensor(t, nil)
	dir := t.TempDir()
	cmd := exec.Command("/bin/true", "--first", "second arg", "3")
	cmd.Dir = dir
	require.NoError(t, cmd.Run())
	pid := int64(cmd.ProcessState.Pid())

	got := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && intAttr(lr, records.AttrProcessPID) == pid
	})
	require.Len(t, got, 1)
	lr := got[0]
	exe, err := filepath.EvalSymlinks("/bin/true")
	require.NoError(t, err)
	// /bin is a symlink to /usr/bin on a merged-/usr system: the kernel reports the file it really opened.
	assert.Equal(t, exe, strAttr(lr, records.AttrProcessExecutablePath))
	args, _ := lr.Attributes().Get(records.AttrProcessCommandArgs)
	assert.Equal(t, []any{"/bin/true", "--first", "second arg", "3"}, args.Slice().AsRaw())
	assert.Equal(t, int64(4), intAttr(lr, records.AttrProcessArgsCount))
	assert.Equal(t, int64(os.Getpid()), intAttr(lr, records.AttrProcessParentPID))
	assert.Equal(t, int64(os.Geteuid()), intAttr(lr, records.AttrProcessUserID))
	assert.Equal(t, int64(os.Getegid()), intAttr(lr, records.AttrProcessGroupID))
	assert.Equal(t, dir, strAttr(lr, records.AttrProcessWorkingDirectory))
	assert.Equal(t, sha256File(t, exe), strAttr(lr, records.AttrProcessExecutableSHA256))
	ct, err := time.Parse(time.RFC3339Nano, strAttr(lr, records.AttrProcessCreationTime))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), ct, time.Minute)
	_, truncated := lr.Attributes().Get(records.AttrProcessCommandArgsTruncated)
	assert.False(t, truncated)
	// This test runs on the host: no container.
	_, hasContainer := lr.Attributes().Get(records.AttrContainerID)
	assert.False(t, hasContainer)
	onHost, _ := lr.Attributes().Get(records.AttrProcessOnHost)
	assert.True(t, onHost.Bool())
}

func TestExecArgsTruncated(t *testing.T) {
	_, sink := startSensor(t, nil)
	long := strings.Repeat("a", 700)
	cmd := exec.Command("/bin/true", long, long, "last")
	require.NoError(t, cmd.Run())
	pid := int64(cmd.ProcessState.Pid())
	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && intAttr(lr, records.AttrProcessPID) == pid
	})[0]
	tr, _ := lr.Attributes().Get(records.AttrProcessCommandArgsTruncated)
	assert.True(t, tr.Bool())
	assert.Equal(t, int64(4), intAttr(lr, records.AttrProcessArgsCount))
	args, _ := lr.Attributes().Get(records.AttrProcessCommandArgs)
	assert.Equal(t, "/bin/true", args.Slice().At(0).Str())
	assert.Equal(t, long, args.Slice().At(1).Str())
}

// TestOpenRelativePath opens a file by a relative path from another working directory; the record carries the
// absolute path. Re-opening it 1,000 times adds no record (in-kernel dedup).
func TestOpenRelativePath(t *testing.T) {
	_, sink := startSensor(t, nil)
	dir := t.TempDir()
	name := "data-" + rand.Text() + ".txt"
	file := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(file, []byte("hello"), 0o644))
	sub := filepath.Join(dir, "a", "b")
	require.NoError(t, os.MkdirAll(sub, 0o755))

	// A shell script that opens the file relatively 1,001 times, read-only, in one process.
	script := fmt.Sprintf("cd %s && i=0; while [ $i -le 1000 ]; do read x < ../../%s; i=$((i+1)); done", sub, name)
	cmd := exec.Command("/bin/sh", "-c", script)
	require.NoError(t, cmd.Run())
	pid := int64(cmd.ProcessState.Pid())

	match := func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventFileOpen && strAttr(lr, records.AttrFilePath) == file
	}
	got := waitRecords(t, sink, match)
	var mine []plog.LogRecord
	for _, lr := range got {
		if intAttr(lr, records.AttrProcessPID) == pid {
			mine = append(mine, lr)
		}
	}
	require.Len(t, mine, 1, "1,001 read-only opens from one cgroup must make one record")
	lr := mine[0]
	assert.Equal(t, int64(os.O_RDONLY), intAttr(lr, records.AttrFileFlags)&3)
	exe, _ := filepath.EvalSymlinks("/bin/sh")
	assert.Equal(t, exe, strAttr(lr, records.AttrProcessExecutablePath))
	var st = mustStat(t, file)
	assert.Equal(t, int64(st), intAttr(lr, records.AttrFileInode))
	assert.NotEmpty(t, strAttr(lr, records.AttrFileDevice))

	// The health record counts the repeats.
	time.Sleep(100 * time.Millisecond)
}

func TestHealthRecord(t *testing.T) {
	_, sink := startSensor(t, func(c *Config) { c.HealthInterval = 200 * time.Millisecond })
	require.NoError(t, exec.Command("/bin/true").Run())
	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventSensorHealth && intAttr(lr, records.AttrSensorExecEvents) > 0
	})[0]
	assert.Equal(t, sensor.KernelRelease(), strAttr(lr, records.AttrSensorKernel))
	assert.Contains(t, strAttr(lr, records.AttrSensorProgramStatus), "exec:tp_btf/sched_process_exec")
	hook, err := sensor.ParseOpenHook(strAttr(lr, records.AttrSensorOpenHook))
	require.NoError(t, err)
	assert.NotEqual(t, sensor.OpenHookAuto, hook, "the health record names the hook chosen")
	assert.Contains(t, strAttr(lr, records.AttrSensorProgramStatus), "open:"+strings.TrimSuffix(hook.Where(), "open*"))
	if hook != sensor.OpenHookLSM {
		// A cheaper hook was refused, and the record says why (this machine's kernel: lockdown).
		assert.Contains(t, strAttr(lr, records.AttrSensorHooksRefused), "lsm/file_open: ")
	}
	assert.GreaterOrEqual(t, intAttr(lr, records.AttrSensorProgramsActive), int64(2))
	assert.Equal(t, int64(0), intAttr(lr, records.AttrSensorEventsDropped))
}

func runInCgroup(t testing.TB, cgroup string, argv ...string) int64 {
	t.Helper()
	script := fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec "$@"`, cgroup)
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, argv...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return int64(cmd.ProcessState.Pid())
}

func TestContainerAttribution(t *testing.T) {
	_, sink := startSensor(t, nil)
	cg, id := cgrouptest.Containerd(t)
	pid := runInCgroup(t, cg, "/bin/true", "in-container")
	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && intAttr(lr, records.AttrProcessPID) == pid &&
			strAttr(lr, records.AttrProcessExecutablePath) != "/usr/bin/dash" && strAttr(lr, records.AttrProcessExecutablePath) != "/bin/dash"
	})[0]
	assert.Equal(t, id, strAttr(lr, records.AttrContainerID))
	assert.Equal(t, "containerd", strAttr(lr, records.AttrContainerRuntime))
	assert.Contains(t, strAttr(lr, records.AttrCgroupPath), "cri-containerd-"+id+".scope")
	_, onHost := lr.Attributes().Get(records.AttrProcessOnHost)
	assert.False(t, onHost)
	var st = mustStat(t, cg)
	assert.Equal(t, int64(st), intAttr(lr, records.AttrCgroupID), "bpf_get_current_cgroup_id is the cgroup directory's inode")
}

// TestContainersOnly: with the kernel filter on, a host exec is not captured, a container's is.
func TestContainersOnly(t *testing.T) {
	cg, id := cgrouptest.Containerd(t) // before start: the first scan allows it
	r, sink := startSensor(t, func(c *Config) { c.ContainersOnly = true })
	hostCmd := exec.Command("/bin/true", "host")
	require.NoError(t, hostCmd.Run())
	pid := runInCgroup(t, cg, "/bin/true", "container")
	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && intAttr(lr, records.AttrProcessPID) == pid
	})[0]
	assert.Equal(t, id, strAttr(lr, records.AttrContainerID))
	assert.Empty(t, findRecords(sink, func(lr plog.LogRecord) bool {
		return intAttr(lr, records.AttrProcessPID) == int64(hostCmd.ProcessState.Pid())
	}))
	st, err := r.sensor.Stats()
	require.NoError(t, err)
	assert.Positive(t, st.Filtered)
}

func mustStat(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestHashOfExitedContainerProcess: a short-lived process in a container whose parent has exited too by the
// time the event is read (here: a poll every 500 ms) is hashed through another live process of the container.
func TestHashOfExitedContainerProcess(t *testing.T) {
	for _, seenBefore := range []bool{true, false} {
		name := "sensor saw the container's other exec"
		if !seenBefore {
			name = "container started before the sensor"
		}
		t.Run(name, func(t *testing.T) {
			cg, id := cgrouptest.Containerd(t)
			var r *sensorReceiver
			var sink *consumertest.LogsSink
			if seenBefore {
				r, sink = startSensor(t, func(c *Config) { c.PollInterval, c.FlushInterval = 500*time.Millisecond, time.Second })
			}
			// The container's long-lived process.
			keep := exec.Command("/bin/sh", "-c", fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec sleep 60`, cg))
			require.NoError(t, keep.Start())
			t.Cleanup(func() { _ = keep.Process.Kill(); _ = keep.Wait() })
			require.Eventually(t, func() bool {
				b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
				return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(keep.Process.Pid)
			}, 10*time.Second, 10*time.Millisecond)
			if !seenBefore {
				r, sink = startSensor(t, func(c *Config) { c.PollInterval, c.FlushInterval = 500*time.Millisecond, time.Second })
			}
			_ = r
			// A shell in the container starts tac in the background and exits; tac exits at once too.
			runInCgroup(t, cg, "/bin/sh", "-c", "/usr/bin/tac /dev/null &")
			tac, err := filepath.EvalSymlinks("/usr/bin/tac")
			require.NoError(t, err)
			lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
				return lr.EventName() == records.EventProcessExec && strAttr(lr, records.AttrProcessExecutablePath) == tac &&
					strAttr(lr, records.AttrContainerID) == id
			})[0]
			assert.Equal(t, sha256File(t, tac), strAttr(lr, records.AttrProcessExecutableSHA256))
		})
	}
}

// TestExecFromMemory: a program run from a memfd (the classic fileless payload) is reported by its memfd name,
// flagged detached, and hashed through /proc/<pid>/exe; before, its path read "/".
func TestExecFromMemory(t *testing.T) {
	_, sink := startSensor(t, nil)
	sleepBin, code := sleepBinary(t)
	fd, err := unix.MemfdCreate("runtrust-fileless", 0)
	require.NoError(t, err)
	mem := os.NewFile(uintptr(fd), "memfd")
	defer mem.Close()
	_, err = mem.Write(code)
	require.NoError(t, err)

	pid := startLive(t, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd), "1")

	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && intAttr(lr, records.AttrProcessPID) == pid
	})[0]
	assert.Equal(t, "/memfd:runtrust-fileless", strAttr(lr, records.AttrProcessExecutablePath))
	detached, ok := lr.Attributes().Get(records.AttrFilePathDetached)
	assert.True(t, ok && detached.Bool(), "runtrust.file.path_detached")
	assert.Equal(t, sha256File(t, sleepBin), strAttr(lr, records.AttrProcessExecutableSHA256))
}

// TestExecProcessName: the exec record names the process as the kernel does (/proc/<pid>/comm: the executable's
// base name, cut to 15 bytes).
func TestExecProcessName(t *testing.T) {
	_, sink := startSensor(t, nil)
	_, code := sleepBinary(t)
	bin := filepath.Join(t.TempDir(), "runtrust-a-long-process-name")
	require.NoError(t, os.WriteFile(bin, code, 0o755))
	pid := startLive(t, bin, "30")

	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && intAttr(lr, records.AttrProcessPID) == pid
	})[0]
	assert.Equal(t, procComm(t, int(pid)), strAttr(lr, records.AttrProcessExecutableName))
	assert.Equal(t, "runtrust-a-long", strAttr(lr, records.AttrProcessExecutableName), "comm is cut to 15 bytes")
}

// TestOpenProcessName: an open record names the process (its main thread's comm), also when the opening
// thread was renamed.
func TestOpenProcessName(t *testing.T) {
	// The file is made before the sensor starts, so the only open it sees is the renamed thread's.
	file := filepath.Join(t.TempDir(), "named-"+rand.Text())
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, sink := startSensor(t, nil)
	opened := make(chan error, 1)
	for renamed := false; !renamed; {
		go func() {
			// The renamed thread is never handed back to the scheduler: a goroutine that exits locked ends it.
			runtime.LockOSThread()
			if unix.Gettid() == os.Getpid() {
				// The main thread is the leader: renaming it would rename the process. Try another thread.
				runtime.UnlockOSThread()
				opened <- errLeaderThread
				return
			}
			name, _ := unix.BytePtrFromString("renamed-thread")
			if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0); err != nil {
				opened <- err
				return
			}
			fd, err := unix.Open(file, unix.O_RDONLY, 0)
			if err == nil {
				err = unix.Close(fd)
			}
			opened <- err
		}()
		err := <-opened
		if err == errLeaderThread {
			continue
		}
		require.NoError(t, err)
		renamed = true
	}

	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventFileOpen && strAttr(lr, records.AttrFilePath) == file
	})[0]
	assert.Equal(t, int64(os.Getpid()), intAttr(lr, records.AttrProcessPID))
	leader := procComm(t, os.Getpid())
	require.NotEqual(t, "renamed-thread", leader)
	assert.Equal(t, leader, strAttr(lr, records.AttrProcessExecutableName))
}

// errLeaderThread says a goroutine of TestOpenProcessName landed on the process's main thread.
var errLeaderThread = errors.New("on the leader thread")

// sleepBinary is sleep(1)'s real path and its bytes, for running it under another name or from memory.
func sleepBinary(t *testing.T) (string, []byte) {
	t.Helper()
	path, err := filepath.EvalSymlinks("/bin/sleep")
	require.NoError(t, err)
	code, err := os.ReadFile(path)
	require.NoError(t, err)
	return path, code
}

// startLive starts a process that outlives the check of its record (killed at cleanup) and returns its pid.
func startLive(t *testing.T, path string, args ...string) int64 {
	t.Helper()
	cmd := exec.Command(path, args...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return int64(cmd.Process.Pid)
}

func procComm(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	require.NoError(t, err)
	return strings.TrimSuffix(string(b), "\n")
}

// TestExecCwdTruncated: a working directory longer than the kernel side's path buffer (4 KiB) is flagged, and
// what is reported is its trailing part. A shell climbs into it one relative step at a time (one chdir of the
// whole path would fail with ENAMETOOLONG).
func TestExecCwdTruncated(t *testing.T) {
	_, sink := startSensor(t, nil)
	dir := t.TempDir()
	name := strings.Repeat("d", 200)
	const levels = 22 // 22 × 201 bytes: past 4 KiB, well within the walk's 64 steps
	script := fmt.Sprintf(`for i in $(seq %d); do mkdir "$1" && cd -P "$1" || exit 1; done; exec /bin/true cwd-truncated`, levels)
	cmd := exec.Command("/bin/sh", "-c", script, "sh", name)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	pid := int64(cmd.ProcessState.Pid())

	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && intAttr(lr, records.AttrProcessPID) == pid &&
			strAttr(lr, records.AttrProcessExecutablePath) != "/usr/bin/dash"
	})[0]
	truncated, ok := lr.Attributes().Get(records.AttrProcessWorkingDirectoryTruncated)
	assert.True(t, ok && truncated.Bool(), "runtrust.process.working_directory_truncated")
	full := dir + strings.Repeat("/"+name, levels)
	cwd := strAttr(lr, records.AttrProcessWorkingDirectory)
	assert.True(t, strings.HasSuffix(full, cwd), "the reported cwd %q is the tail of the real one", cwd)
	assert.Less(t, len(cwd), len(full))

	// A short one is not flagged.
	short := exec.Command("/bin/true", "cwd-whole")
	short.Dir = dir
	require.NoError(t, short.Run())
	lr = waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && intAttr(lr, records.AttrProcessPID) == int64(short.ProcessState.Pid())
	})[0]
	_, flagged := lr.Attributes().Get(records.AttrProcessWorkingDirectoryTruncated)
	assert.False(t, flagged)
	assert.Equal(t, dir, strAttr(lr, records.AttrProcessWorkingDirectory))
}
