package testbed

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/runtrust/runtrust/internal/periodic"
)

// usageSampler reads each measured process's CPU and RSS every second while a run lasts.
type usageSampler struct {
	pids    map[string]int
	mu      sync.Mutex
	samples map[string][]Usage
	done    chan struct{}
}

func startUsageSampler(ctx context.Context, pids map[string]int) *usageSampler {
	s := &usageSampler{pids: pids, samples: map[string][]Usage{}, done: make(chan struct{})}
	s.sample() // before the run starts: its baseline
	go func() {
		defer close(s.done)
		periodic.Every(ctx, time.Second, func(context.Context) { s.sample() })
	}()
	return s
}

func (s *usageSampler) sample() {
	for name, pid := range s.pids {
		u, err := ReadUsage(pid, name == "postgres")
		if err != nil {
			continue // the process may be between restarts; a missing sample is not a failed run
		}
		s.mu.Lock()
		s.samples[name] = append(s.samples[name], u)
		s.mu.Unlock()
	}
}

// summarize fills CPU (mean over the sending window) and RSS (peak in it); samples taken after sendEnd
// (plus half a second of slack for the last tick) would count the drain as load.
func (s *usageSampler) summarize(res *LoadResult, sendEnd time.Time) {
	<-s.done
	for _, name := range Measured {
		var inWindow []Usage
		for _, u := range s.samples[name] {
			if !u.At.After(sendEnd.Add(500 * time.Millisecond)) {
				inWindow = append(inWindow, u)
			}
		}
		if len(inWindow) >= 2 {
			res.CPU[name] = CPUPercent(inWindow[0], inWindow[len(inWindow)-1])
		}
		for _, u := range inWindow {
			res.RSS[name] = max(res.RSS[name], u.RSS)
		}
	}
}

// markerWatcher polls Postgres for the marker execs' aggregates: the time from a marker's send to its row
// is the end-to-end latency.
type markerWatcher struct {
	prefix    string
	sentAt    sync.Map // path → time.Time
	mu        sync.Mutex
	latencies []time.Duration
	seen      map[string]bool
	err       error // the last query error, kept for the result (a silent watcher would read as no latency)
	done      chan struct{}
}

func startMarkerWatcher(ctx context.Context, dsn, prefix string) *markerWatcher {
	w := &markerWatcher{prefix: prefix, seen: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			w.err = err
			return
		}
		defer conn.Close(context.Background())
		for ctx.Err() == nil {
			w.poll(ctx, conn)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return w
}

func (w *markerWatcher) poll(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, `SELECT executable_path FROM exec_aggregates WHERE executable_path LIKE $1`, w.prefix+"%")
	var paths []string
	if err == nil {
		paths, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		if ctx.Err() == nil {
			w.err = err
		}
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range paths {
		if w.seen[p] {
			continue
		}
		if at, ok := w.sentAt.Load(p); ok {
			w.seen[p] = true
			w.latencies = append(w.latencies, now.Sub(at.(time.Time)))
		}
	}
}

func (w *markerWatcher) seenCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.latencies)
}

// waitFor gives the last markers, which land while draining, up to limit to be seen.
func (w *markerWatcher) waitFor(markers int, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end) && w.seenCount() < markers; {
		time.Sleep(100 * time.Millisecond)
	}
}

// summarize fills the latency fields once the watcher has stopped.
func (w *markerWatcher) summarize(res *LoadResult) {
	<-w.done
	if w.err != nil {
		res.WatchErr = w.err.Error()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	res.Seen = len(w.latencies)
	res.P50, res.P99 = Percentile(w.latencies, 0.50), Percentile(w.latencies, 0.99)
}

// loadJob is one tick's batch; marker is the exec path whose arrival times it.
type loadJob struct {
	ld     plog.Logs
	marker string
}

// senderPool sends batches with a few senders in parallel, as several nodes would.
type senderPool struct {
	jobs                   chan loadJob
	sent, refused, skipped atomic.Int64
	wg                     sync.WaitGroup
}

func startSenderPool(ctx context.Context, client plogotlp.GRPCClient, w *markerWatcher, senders int) *senderPool {
	p := &senderPool{jobs: make(chan loadJob, senders)}
	for range senders {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				n := int64(j.ld.LogRecordCount())
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				if w != nil {
					w.sentAt.Store(j.marker, time.Now())
				}
				_, err := client.Export(cctx, plogotlp.NewExportRequestFromLogs(j.ld))
				ccancel()
				if err != nil {
					p.refused.Add(n)
					continue
				}
				p.sent.Add(n)
			}
		}()
	}
	return p
}

// offer hands the batch to an idle sender; a tick that finds them all busy is skipped and reported false.
func (p *senderPool) offer(j loadJob) bool {
	select {
	case p.jobs <- j:
		return true
	default:
		p.skipped.Add(int64(j.ld.LogRecordCount()))
		return false
	}
}

func (p *senderPool) stop() {
	close(p.jobs)
	p.wg.Wait()
}

// Run offers rate records/s for d in batches every tick, with one marker exec per tick whose arrival in
// Postgres gives the end-to-end latency, then waits up to drainLimit for the rest to be stored.
func (ls *LoadStack) Run(t testing.TB, rate int, d, tick, drainLimit time.Duration) LoadResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := LoadResult{Rate: rate, Duration: d, CPU: map[string]float64{}, RSS: map[string]uint64{}}
	res.LoadAvg = loadAvg()
	stored0 := ls.storedRecords(t)
	prefix := "/testbed/marker/" + randomHex(4) + "/"

	sampler := startUsageSampler(ctx, map[string]int{"collector": ls.Controller.PID(), "service": ls.Service.PID(),
		"postgres": postmasterPID(t, ls.PG), "generator": os.Getpid()})
	watcher := startMarkerWatcher(ctx, ls.DSN, prefix)
	senders := startSenderPool(ctx, plogotlp.NewGRPCClient(ls.dial(t)), watcher, 4)
	start := time.Now()
	res.Markers = ls.offer(senders, rate, d, tick, prefix)
	sendEnd := time.Now()
	res.Duration = sendEnd.Sub(start)
	sampler.sample()

	res.Sent, res.Refused, res.Skipped = senders.sent.Load(), senders.refused.Load(), senders.skipped.Load()
	res.Stored, res.Drain, res.Drained = ls.drain(t, stored0, res.Sent, sendEnd, drainLimit)
	watcher.waitFor(res.Markers, 5*time.Second)
	cancel()
	sampler.summarize(&res, sendEnd)
	watcher.summarize(&res)
	res.Sustained = float64(res.Stored) / (res.Duration + res.Drain).Seconds()
	return res
}

// offer hands the senders rate records/s for d, a batch every tick, each with one marker exec (prefix + its
// sequence number) last, and returns how many batches (markers) went out; it stops the senders.
func (ls *LoadStack) offer(senders *senderPool, rate int, d, tick time.Duration, prefix string) (markers int) {
	perTick := max(1, int(float64(rate)*tick.Seconds()))
	start := time.Now()
	tk := time.NewTicker(tick)
	for seq := 0; time.Since(start) < d; seq++ {
		now := time.Now()
		ld := ls.batch(perTick-1, seq, now)
		marker := fmt.Sprintf("%s%d", prefix, seq)
		ls.execRecord(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty(), seq, marker, now)
		if senders.offer(loadJob{ld: ld, marker: marker}) {
			markers++
		}
		<-tk.C
	}
	tk.Stop()
	senders.stop()
	return markers
}

// drain waits up to limit after sendEnd for the service to store what the collector acknowledged.
func (ls *LoadStack) drain(t testing.TB, stored0, sent int64, sendEnd time.Time, limit time.Duration) (stored int64, took time.Duration, drained bool) {
	return waitDelivered(func() int64 { return ls.storedRecords(t) - stored0 }, sent, sendEnd, limit, 100*time.Millisecond)
}

// waitDelivered polls delivered every poll until it reaches sent or limit has passed since sendEnd.
func waitDelivered(delivered func() int64, sent int64, sendEnd time.Time, limit, poll time.Duration) (stored int64, took time.Duration, drained bool) {
	for {
		stored = delivered()
		took = time.Since(sendEnd)
		if stored >= sent {
			return stored, took, true
		}
		if took > limit {
			return stored, took, false
		}
		time.Sleep(poll)
	}
}
