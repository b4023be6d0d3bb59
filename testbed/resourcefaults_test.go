package testbed

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestResourceFaults runs out of what the delivery path needs rather than killing a part: the disk of the
// collector's persistent queue fills while the service is down, the disk of the service's database fills under
// load, and the service is slower than what is offered. Each time nothing acknowledged may be lost or stored
// twice, the part that ran out says so clearly, and everything recovers when the resource returns; with a slow
// service the queue fills and its bound pushes back on the sender, and the collector's memory stays bounded.
func TestResourceFaults(t *testing.T) {
	var table []string
	check := func(name string, r *FaultRig, d Delivery) {
		t.Helper()
		table = append(table, deliveryRow(t, name, "memory_limiter", d))
		if d.Acked == 0 || d.Lost != 0 || d.Duplicated != 0 {
			t.Errorf("%s: %d acknowledged, %d of them lost, %d duplicated; want none lost or duplicated\ncollector:\n%s\nservice:\n%s",
				name, d.Acked, d.Lost, d.Duplicated, tail(r.Controller.Output()), tail(r.Service.Output()))
		}
	}

	t.Run("queue disk full", func(t *testing.T) {
		disk := SmallDisk(t, 64<<20)
		r := StartFaultRig(t, RigOptions{QueueDir: filepath.Join(disk, "queue")})
		s := r.Send(100_000_000, faultRate, faultBatch)
		time.Sleep(time.Second)
		r.Service.Kill()
		release := FillDisk(t, disk)
		refusedAt := waitFor(30*time.Second, func() bool { return s.Refused() > 0 })
		if refusedAt.IsZero() {
			t.Errorf("the queue's disk is full and the service down, yet the collector refused nothing in 30 s")
		}
		time.Sleep(2 * time.Second)
		if exited, err := r.Controller.Exited(); exited {
			t.Fatalf("the collector exited when its queue's disk filled: %v\n%s", err, tail(r.Controller.Output()))
		}
		if line := lineWith(r.Controller.Output(), "no space left on device"); line == "" {
			t.Errorf("the collector's log does not say its disk is full:\n%s", tail(r.Controller.Output()))
		} else {
			t.Logf("the collector says: %s", line)
		}
		release()
		r.StartService(t)
		at := time.Now()
		// Space is back: what the sender offers now is queued and delivered again.
		more := s.Acked()
		time.Sleep(3 * time.Second)
		s.Stop()
		if s.Acked() == more {
			t.Errorf("the collector acknowledged nothing in 3 s after the queue's disk had space again\n%s", tail(r.Controller.Output()))
		}
		check("persistent queue's disk full, service down", r, r.Await(t, s, at, 2*time.Minute))
	})

	t.Run("database disk full", func(t *testing.T) {
		disk := SmallDisk(t, 256<<20)
		r := StartFaultRig(t, RigOptions{PGDataDir: filepath.Join(disk, "pgdata")})
		s := r.Send(110_000_000, faultRate, faultBatch)
		time.Sleep(2 * time.Second)
		release := FillDisk(t, disk)
		const full = "No space left on device"
		if waitFor(30*time.Second, func() bool { return strings.Contains(r.Controller.Output(), full) }).IsZero() {
			t.Errorf("the database's disk is full, yet the collector's log does not say so in 30 s (%q)\ncollector:\n%s\nservice:\n%s",
				full, tail(r.Controller.Output()), tail(r.Service.Output()))
		}
		t.Logf("the collector says: %s", lineWith(r.Controller.Output(), full))
		t.Logf("the service says: %s", lineWith(r.Service.Output(), full))
		time.Sleep(3 * time.Second)
		release()
		at := time.Now()
		time.Sleep(2 * time.Second)
		s.Stop()
		check("service's database disk full", r, r.Await(t, s, at, 2*time.Minute))
	})

	t.Run("slow service", func(t *testing.T) {
		const serviceRate, queueSize, window = 1000, 10_000, 15 * time.Second
		r := StartFaultRig(t, RigOptions{ServiceRate: serviceRate, QueueSize: queueSize})
		base, err := ReadUsage(r.Controller.PID(), false)
		if err != nil {
			t.Fatal(err)
		}
		s := r.Send(120_000_000, faultRate, faultBatch)
		peak := base.RSS
		for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			if u, err := ReadUsage(r.Controller.PID(), false); err == nil && u.RSS > peak {
				peak = u.RSS
			}
		}
		s.Stop()
		at := time.Now()
		offered := int64(window.Seconds() * faultRate)
		d := r.Await(t, s, at, 3*time.Minute)
		t.Logf("slow service: %d records offered in %s, the sender got %d through (%.0f records/s); collector RSS %d MiB before, peak %d MiB",
			offered, window, d.Sent, float64(d.Sent)/window.Seconds(), base.RSS>>20, peak>>20)
		check("service slower than the sender (1,000 of 4,000 records/s), queue of 10,000", r, d)
		// Backpressure: once the queue is full the receiver blocks, so the sender gets through no more than
		// the queue's size and what the service took meanwhile (with slack for the exporter's retries).
		if most := int64(queueSize + 2*serviceRate*int(window.Seconds())); d.Sent > most {
			t.Errorf("the sender got %d records through in %s; with a queue of %d and a service at %d/s, backpressure should hold it under %d",
				d.Sent, window, queueSize, serviceRate, most)
		}
		if grew := int64(peak) - int64(base.RSS); grew > 128<<20 {
			t.Errorf("the collector's RSS grew by %d MiB behind a slow service; want it bounded (< 128 MiB)", grew>>20)
		}
	})

	writeFaultTable(t, "", "resources.md", "TestResourceFaults", table)
}

// waitFor polls cond every 100 ms for up to limit and returns when it first held, or the zero time.
func waitFor(limit time.Duration, cond func() bool) time.Time {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return time.Now()
		}
	}
	return time.Time{}
}

// lineWith is the first line of out that holds s, or "".
func lineWith(out, s string) string {
	for line := range strings.Lines(out) {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
