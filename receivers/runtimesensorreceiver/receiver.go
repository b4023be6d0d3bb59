package runtimesensorreceiver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/runtrust/runtrust/internal/periodic"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/hostcontainers"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/metadata"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/sensor"
)

const maxBatch = 1024

// The most attributes an exec, an open and a health record carry: their maps are sized once instead of grown.
const (
	execAttrs   = 24
	openAttrs   = 16
	healthAttrs = 13
)

type sensorReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   consumer.Logs
	pods   PodLookup
	hasher *hasher
	host   string

	sensor *sensor.Sensor
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	batch      plog.Logs
	lrs        plog.LogRecordSlice
	batchStart time.Time // when the batch's first event was read

	exeMu sync.Mutex
	exes  map[uint32]string // tgid → executable path, from exec events

	attrMu sync.Mutex
	attrs  map[cgroupTails]attribution

	roots *containerRoots // live processes per container, for hashing an exited process's executable

	// hostImages asks the host's containerd about containers in no known pod; nil when off.
	hostImages *hostImages
	closeHost  func() error

	decodeErrors, hashErrors atomic.Uint64
	monoOffset               time.Duration // wall clock − CLOCK_MONOTONIC
}

// cgroupTails are the cgroup path tails an event carries, the key of the attribution cache.
type cgroupTails struct{ v2, v1 string }

type attribution struct {
	c       Container
	path    string
	host    bool
	hasPods bool
}

// newReceiver builds the receiver; pods may be nil (the Kubernetes config then decides).
func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs, pods PodLookup) (*sensorReceiver, error) {
	host, _ := os.Hostname()
	r := &sensorReceiver{cfg: cfg, set: set, next: next, pods: pods, host: host,
		exes: map[uint32]string{}, attrs: map[cgroupTails]attribution{}, roots: newContainerRoots(cfg.ProcPath)}
	if cfg.Hash.Enabled {
		r.hasher = newHasher(cfg.ProcPath, cfg.Hash.MaxFileSize, cfg.Hash.CacheEntries)
	}
	r.resetBatch()
	return r, nil
}

func (r *sensorReceiver) Start(ctx context.Context, _ component.Host) error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		r.monoOffset = time.Duration(time.Now().UnixNano() - ts.Nano())
	}
	if r.pods == nil && r.cfg.Kubernetes.Enabled {
		client, closeConns, err := r.cfg.Kubernetes.MakeClient("runtrust-runtimesensor")
		if err != nil {
			return fmt.Errorf("kubernetes: %w", err)
		}
		pods := newInformerPods(client, r.cfg.NodeName)
		pods.closeConns = closeConns
		r.pods = pods
	}
	if r.pods != nil {
		if err := r.pods.Start(ctx); err != nil {
			return fmt.Errorf("starting the pod watch: %w", err)
		}
	}
	s, err := sensor.Open(sensor.Options{
		RingBufferBytes:  uint32(r.cfg.RingBufferSize),
		DedupEntries:     uint32(r.cfg.DedupEntries),
		DedupTTLNanos:    uint64(r.cfg.DedupTTL.Nanoseconds()),
		FilterContainers: r.cfg.ContainersOnly,
		CaptureOpens:     r.cfg.FileOpens,
		OpenHook:         sensor.OpenHook(r.cfg.OpenHook),
		Polled:           true,
	})
	if err != nil {
		if r.pods != nil {
			r.pods.Shutdown()
		}
		return fmt.Errorf("runtime sensor: %w", err)
	}
	r.sensor = s
	r.set.Logger.Info("runtime sensor attached", zap.Strings("programs", s.Attached()), zap.String("kernel", sensor.KernelRelease()),
		zap.String("open_hook", string(s.OpenHook())), zap.Stringers("hooks_refused", s.Refused()))
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if err := r.startHostImages(runCtx); err != nil {
		cancel()
		_ = s.Close()
		if r.pods != nil {
			r.pods.Shutdown()
		}
		return fmt.Errorf("host_containers: %w", err)
	}
	if r.cfg.ContainersOnly || r.hostImages != nil {
		r.scanCgroups()
		r.every(runCtx, r.cfg.CgroupRescanInterval, r.scanCgroups)
	}
	r.every(runCtx, r.cfg.HealthInterval, func() { r.health(runCtx) })
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.readLoop(runCtx)
	}()
	return nil
}

// startHostImages prepares the lookups of host_containers, one client per runtime whose socket is set; none
// set leaves them off.
func (r *sensorReceiver) startHostImages(ctx context.Context) error {
	hc := r.cfg.HostContainers
	var rt hostRuntimes
	var closers []func() error
	if hc.ContainerdSocket != "" {
		c, err := hostcontainers.NewContainerd(hc.ContainerdSocket)
		if err != nil {
			return err
		}
		rt.containerd, closers = c.Lookup, append(closers, c.Close)
	}
	if hc.DockerSocket != "" {
		d := hostcontainers.NewDocker(hc.DockerSocket)
		rt.docker, closers = d.Lookup, append(closers, d.Close)
	}
	if hc.PodmanSocket != "" {
		p := hostcontainers.NewDocker(hc.PodmanSocket) // Podman's service answers Docker's API
		rt.podman, closers = p.Lookup, append(closers, p.Close)
	}
	if len(closers) == 0 {
		return nil
	}
	r.hostImages = newHostImages(rt.lookup, r.announceHost, r.set.Logger)
	r.closeHost = func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.hostImages.run(ctx)
	}()
	return nil
}

// announceHost adds a runtrust.host.container record to the batch: a container in no pod, with its image, and
// the change (added, snapshot, deleted). The read loop flushes it with the events.
func (r *sensorReceiver) announceHost(c hostContainer, img hostcontainers.Image, change string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lrs.Len() == 0 {
		r.batchStart = time.Now()
	}
	a := r.appendRecord(records.EventHostContainer, 6)
	a.PutStr(records.AttrContainerID, c.id)
	if c.runtime != "" {
		a.PutStr(records.AttrContainerRuntime, c.runtime)
	}
	if img.Name != "" {
		a.PutStr(records.AttrContainerImageName, img.Name)
	}
	if img.Digest != "" {
		a.PutStr(records.AttrImageRunningDigest, img.Digest)
	}
	if c.cgroupPath != "" {
		a.PutStr(records.AttrCgroupPath, c.cgroupPath)
	}
	a.PutStr(records.AttrK8sChange, change)
}

func (r *sensorReceiver) every(ctx context.Context, d time.Duration, f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		periodic.Every(ctx, d, func(context.Context) { f() })
	}()
}

func (r *sensorReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	if r.sensor != nil {
		r.drain(ctx) // what arrived since the last tick
		err = r.sensor.Close()
		r.flush(ctx)
	}
	if r.pods != nil {
		r.pods.Shutdown()
	}
	if r.closeHost != nil {
		_ = r.closeHost()
	}
	return err
}

// readLoop drains the ring buffer every PollInterval. The kernel never wakes it (sensor.Options.Polled): a
// goroutine parked on a timer costs nothing between ticks, where one blocked in epoll_wait per event cost the
// receiver most of its CPU in an exec storm (docs/performance.md).
func (r *sensorReceiver) readLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.drain(ctx)
			// Flushing here rather than on a ticker of its own: every timer tick wakes the Go runtime's sysmon
			// thread into a burst of short sleeps, about 0.8 ms of CPU per tick on this VM.
			r.mu.Lock()
			due := r.lrs.Len() > 0 && now.Sub(r.batchStart) >= r.cfg.FlushInterval-r.cfg.PollInterval
			r.mu.Unlock()
			if due {
				r.flush(ctx)
			}
		}
	}
}

// drain turns every waiting event into a record.
func (r *sensorReceiver) drain(ctx context.Context) {
	_, err := r.sensor.Drain(func(raw []byte) { r.handle(ctx, raw) })
	if err != nil && !errors.Is(err, sensor.ErrClosed) {
		r.set.Logger.Warn("reading the ring buffer", zap.Error(err))
	}
}

// handle turns one raw event into a record, and hands the batch on when it is full.
func (r *sensorReceiver) handle(ctx context.Context, raw []byte) {
	ev, err := sensor.Decode(raw)
	if err != nil {
		r.decodeErrors.Add(1)
		r.set.Logger.Warn("undecodable sensor event", zap.Error(err))
		return
	}
	r.mu.Lock()
	if r.lrs.Len() == 0 {
		r.batchStart = time.Now()
	}
	switch e := ev.(type) {
	case *sensor.ExecEvent:
		r.appendExec(e)
	case *sensor.OpenEvent:
		r.appendOpen(e)
	}
	full := r.lrs.Len() >= maxBatch
	r.mu.Unlock()
	if full {
		r.flush(ctx)
	}
}

func (r *sensorReceiver) resetBatch() {
	r.batch = plog.NewLogs()
	rl := r.batch.ResourceLogs().AppendEmpty()
	if r.cfg.NodeName != "" {
		rl.Resource().Attributes().PutStr(records.AttrK8sNodeName, r.cfg.NodeName)
	}
	if r.host != "" {
		rl.Resource().Attributes().PutStr(records.AttrHostName, r.host)
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	r.lrs = sl.LogRecords()
	r.lrs.EnsureCapacity(maxBatch)
}

func (r *sensorReceiver) flush(ctx context.Context) {
	r.mu.Lock()
	if r.lrs.Len() == 0 {
		r.mu.Unlock()
		return
	}
	out := r.batch
	r.resetBatch()
	r.mu.Unlock()
	if err := r.next.ConsumeLogs(ctx, out); err != nil {
		r.set.Logger.Warn("the pipeline refused sensor records", zap.Error(err))
	}
}

// attribute turns the cgroup tails an event carries into a container (cached: few distinct cgroups exist).
func (r *sensorReceiver) attribute(v2, v1 string) attribution {
	key := cgroupTails{v2, v1}
	r.attrMu.Lock()
	defer r.attrMu.Unlock()
	if a, ok := r.attrs[key]; ok && (a.host || a.hasPods || r.pods == nil) {
		return a
	}
	a := attribution{host: true}
	for _, p := range []string{v2, v1} {
		if c, ok := ParseCgroupPath(p); ok {
			a = attribution{c: c, path: p}
			break
		}
	}
	if len(r.attrs) > 16384 {
		clear(r.attrs)
	}
	r.attrs[key] = a
	return a
}

func (r *sensorReceiver) putAttribution(attrs pcommon.Map, cgroupID uint64, a attribution) {
	attrs.PutInt(records.AttrCgroupID, int64(cgroupID))
	if a.host {
		attrs.PutBool(records.AttrProcessOnHost, true)
		return
	}
	attrs.PutStr(records.AttrContainerID, a.c.ID)
	attrs.PutStr(records.AttrCgroupPath, a.path)
	if a.c.Runtime != "" {
		attrs.PutStr(records.AttrContainerRuntime, a.c.Runtime)
	}
	if r.pods != nil {
		if pod, ok := r.pods.PodFor(a.c.ID); ok {
			attrs.PutStr(records.AttrK8sPodName, pod.Name)
			attrs.PutStr(records.AttrK8sPodUID, pod.UID)
			attrs.PutStr(records.AttrK8sNamespaceName, pod.Namespace)
			return
		}
	}
	if a.c.PodUID != "" {
		attrs.PutStr(records.AttrK8sPodUID, a.c.PodUID)
	}
	if r.hostImages != nil {
		if img, ok := r.hostImages.ImageFor(hostContainer{id: a.c.ID, runtime: a.c.Runtime, cgroupPath: a.path, podUID: a.c.PodUID}); ok {
			if img.Name != "" {
				attrs.PutStr(records.AttrContainerImageName, img.Name)
			}
			if img.Digest != "" {
				attrs.PutStr(records.AttrImageRunningDigest, img.Digest)
			}
		}
	}
}

// appendRecord adds a record named event, stamped now, to the batch (r.mu held) and returns its attributes,
// with room for attrs of them.
func (r *sensorReceiver) appendRecord(event string, attrs int) pcommon.Map {
	lr := r.lrs.AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Now())
	lr.SetObservedTimestamp(now)
	lr.SetTimestamp(now)
	lr.SetEventName(event)
	a := lr.Attributes()
	a.EnsureCapacity(attrs)
	return a
}

// putPathFlags says what the kernel flagged about the path of an exec's executable or an open's file.
func putPathFlags(a pcommon.Map, flags uint32) {
	if flags&sensor.FlagPathTruncated != 0 {
		a.PutBool(records.AttrFilePathTruncated, true)
	}
	if flags&sensor.FlagPathDetached != 0 {
		a.PutBool(records.AttrFilePathDetached, true)
	}
}

func (r *sensorReceiver) appendExec(e *sensor.ExecEvent) {
	a := r.appendRecord(records.EventProcessExec, execAttrs)
	a.PutInt(records.AttrProcessPID, int64(e.TGID))
	a.PutInt(records.AttrProcessParentPID, int64(e.PPID))
	a.PutStr(records.AttrProcessExecutablePath, e.Path)
	if e.Comm != "" {
		a.PutStr(records.AttrProcessExecutableName, e.Comm)
	}
	args := a.PutEmptySlice(records.AttrProcessCommandArgs)
	args.EnsureCapacity(len(e.Args))
	for _, s := range e.Args {
		args.AppendEmpty().SetStr(s)
	}
	a.PutInt(records.AttrProcessArgsCount, int64(e.Argc))
	if e.Flags&sensor.FlagArgsTruncated != 0 {
		a.PutBool(records.AttrProcessCommandArgsTruncated, true)
	}
	a.PutInt(records.AttrProcessUserID, int64(e.UID))
	a.PutInt(records.AttrProcessGroupID, int64(e.GID))
	if e.Cwd != "" {
		a.PutStr(records.AttrProcessWorkingDirectory, e.Cwd)
	}
	if e.Flags&sensor.FlagCwdTruncated != 0 {
		a.PutBool(records.AttrProcessWorkingDirectoryTruncated, true)
	}
	if e.StartTime != 0 {
		a.PutStr(records.AttrProcessCreationTime, time.Unix(0, int64(e.StartTime)+int64(r.monoOffset)).UTC().Format(time.RFC3339Nano))
	}
	a.PutInt(records.AttrProcessExecutableInode, int64(e.Inode))
	putPathFlags(a, e.Flags)
	at := r.attribute(e.CgroupV2, e.CgroupV1)
	r.putAttribution(a, e.CgroupID, at)
	if r.hasher != nil {
		if sum, err := r.hasher.sum(e, r.hashPaths(e, at)); err == nil {
			a.PutStr(records.AttrProcessExecutableSHA256, sum)
		} else {
			r.hashErrors.Add(1)
			r.set.Logger.Debug("no SHA-256 for executable", zap.String("path", e.Path), zap.Error(err))
		}
	}
	r.rememberExe(e.TGID, e.Path)
	if !at.host {
		r.roots.seen(at.c.ID, e.TGID)
	}
}

// hashPaths are where the executable of an exec event may be read: through the roots of rootPIDs, or, for an
// executable run from memory (a memfd, no directory holds it), through /proc/<pid>/exe, its only name.
func (r *sensorReceiver) hashPaths(e *sensor.ExecEvent, at attribution) iter.Seq[string] {
	return func(yield func(string) bool) {
		if e.Flags&sensor.FlagPathDetached != 0 {
			yield(filepath.Join(r.cfg.ProcPath, strconv.Itoa(int(e.TGID)), "exe"))
			return
		}
		for pid := range r.rootPIDs(e, at) {
			if !yield(filepath.Join(r.cfg.ProcPath, strconv.Itoa(int(pid)), "root", e.Path)) {
				return
			}
		}
	}
}

// rootPIDs are the processes whose /proc/<pid>/root may show the file an exec event names, in the order to try:
// the process; for a container process, a live process of the same container (same root filesystem: the
// event is read up to poll_interval late, and a short-lived process, such as a shell run by `kubectl exec`, has
// often exited by then, its parent being the runtime's shim on the host); the parent; for a host process, init.
func (r *sensorReceiver) rootPIDs(e *sensor.ExecEvent, at attribution) iter.Seq[uint32] {
	return func(yield func(uint32) bool) {
		if !yield(e.TGID) {
			return
		}
		if at.host {
			_ = yield(e.PPID) && yield(1)
			return
		}
		if pid, ok := r.roots.live(at.c.ID, e.TGID); ok && !yield(pid) {
			return
		}
		yield(e.PPID)
	}
}

func (r *sensorReceiver) exeOf(tgid uint32) string {
	r.exeMu.Lock()
	p, ok := r.exes[tgid]
	r.exeMu.Unlock()
	if ok {
		return p
	}
	// A process that has exited has no link: remember that too, or each of its opens costs a failing readlink.
	p, _ = os.Readlink(filepath.Join(r.cfg.ProcPath, strconv.Itoa(int(tgid)), "exe"))
	r.rememberExe(tgid, p)
	return p
}

// rememberExe records a process's executable ("" for none to be found); the map is bounded by starting over.
func (r *sensorReceiver) rememberExe(tgid uint32, path string) {
	r.exeMu.Lock()
	defer r.exeMu.Unlock()
	if len(r.exes) > 65536 {
		clear(r.exes)
	}
	r.exes[tgid] = path
}

func (r *sensorReceiver) appendOpen(e *sensor.OpenEvent) {
	a := r.appendRecord(records.EventFileOpen, openAttrs)
	a.PutStr(records.AttrFilePath, e.Path)
	a.PutInt(records.AttrFileFlags, int64(e.Flags))
	a.PutInt(records.AttrFileInode, int64(e.Inode))
	a.PutStr(records.AttrFileDevice, sensor.DeviceString(e.Device))
	putPathFlags(a, e.EvFlags)
	a.PutInt(records.AttrProcessPID, int64(e.TGID))
	if exe := r.exeOf(e.TGID); exe != "" {
		a.PutStr(records.AttrProcessExecutablePath, exe)
	}
	if e.Comm != "" {
		a.PutStr(records.AttrProcessExecutableName, e.Comm)
	}
	r.putAttribution(a, e.CgroupID, r.attribute(e.CgroupV2, e.CgroupV1))
}

func (r *sensorReceiver) health(ctx context.Context) {
	st, err := r.sensor.Stats()
	if err != nil {
		r.set.Logger.Warn("reading the sensor's counters", zap.Error(err))
	}
	attached := r.sensor.Attached()
	r.mu.Lock()
	a := r.appendRecord(records.EventSensorHealth, healthAttrs)
	a.PutInt(records.AttrSensorEventsSeen, int64(st.Exec+st.Open))
	a.PutInt(records.AttrSensorEventsDropped, int64(st.Dropped))
	a.PutInt(records.AttrSensorExecEvents, int64(st.Exec))
	a.PutInt(records.AttrSensorOpenEvents, int64(st.Open))
	a.PutInt(records.AttrSensorDedupHits, int64(st.DedupHits))
	a.PutInt(records.AttrSensorFiltered, int64(st.Filtered))
	a.PutInt(records.AttrSensorDecodeErrors, int64(r.decodeErrors.Load()))
	a.PutInt(records.AttrSensorHashErrors, int64(r.hashErrors.Load()))
	a.PutStr(records.AttrSensorKernel, sensor.KernelRelease())
	a.PutStr(records.AttrSensorProgramStatus, strings.Join(attached, ","))
	a.PutInt(records.AttrSensorProgramsActive, int64(len(attached)))
	if h := r.sensor.OpenHook(); h != "" {
		a.PutStr(records.AttrSensorOpenHook, string(h))
	}
	if refused := r.sensor.Refused(); len(refused) > 0 {
		a.PutStr(records.AttrSensorHooksRefused, sensor.JoinRefusals(refused))
	}
	r.mu.Unlock()
	r.flush(ctx)
}

// scanCgroups allows, in the kernel filter (containers_only), the kubepods trees and every cgroup named like a
// container, in the v2 hierarchy and the v1 memory hierarchy; and tells hostImages which containers outside
// kubepods exist now.
func (r *sensorReceiver) scanCgroups() {
	live := map[string]hostContainer{}
	v2 := filepath.Join(r.cfg.CgroupPath, "unified")
	if _, err := os.Stat(filepath.Join(v2, "cgroup.procs")); err != nil {
		v2 = r.cfg.CgroupPath // pure v2
	}
	r.scanTree(v2, sensor.HierarchyV2, live)
	if mem := filepath.Join(r.cfg.CgroupPath, "memory"); mem != v2 {
		if _, err := os.Stat(filepath.Join(mem, "memory.limit_in_bytes")); err == nil {
			r.scanTree(mem, sensor.HierarchyV1Memory, live)
		}
	}
	if r.hostImages != nil {
		r.hostImages.observe(live)
	}
}

func (r *sensorReceiver) scanTree(root string, hierarchy uint32, live map[string]hostContainer) {
	base := strings.Count(root, "/")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Count(p, "/")-base > 8 {
			return filepath.SkipDir
		}
		name := d.Name()
		id, runtime, isContainer := containerSegment(name)
		if !isContainer && name != "kubepods" && name != "kubepods.slice" {
			return nil
		}
		if isContainer {
			if runtime == "" && filepath.Base(filepath.Dir(p)) == "docker" {
				runtime = "docker" // the cgroupfs driver's /docker/<id>
			}
			if _, seen := live[id]; !seen {
				live[id] = hostContainer{id: id, runtime: runtime, cgroupPath: strings.TrimPrefix(p, root)}
			}
		}
		if r.cfg.ContainersOnly {
			var st syscall.Stat_t
			if syscall.Stat(p, &st) == nil {
				if err := r.sensor.AllowCgroup(hierarchy, st.Ino); err != nil {
					r.set.Logger.Warn("adding a container cgroup to the filter", zap.String("cgroup", p), zap.Error(err))
				}
			}
		}
		return filepath.SkipDir // its subtree is covered
	})
}
