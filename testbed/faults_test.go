package testbed

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var faultsOut = flag.String("faults.out", "", "write the fault table (markdown) to this file; empty: _build/faults/results.md under the repo")

const (
	faultRate  = 4000 // records/s offered by the sender
	faultBatch = 200  // records per OTLP request
)

// fault is one way a part of the delivery path dies, as a step the test runs while (or after) the sender sends.
type fault struct {
	name string
	// run breaks and repairs the rig while s sends, stops s, and returns when the broken part was started again.
	run func(t *testing.T, r *FaultRig, s *Sender) (restartedAt time.Time)
}

// TestFaults kills each part of the controller's delivery path under load — the collector with a backlog in its
// persistent queue and mid-send, the runtime service mid-ingest, PostgreSQL restarted and killed — and a graceful
// collector stop with the service down, and checks record by record that everything the collector acknowledged
// is in PostgreSQL exactly once. The same collector kill with the batch processor in the pipeline is measured
// too: what the batch processor holds is acknowledged but not yet queued, and a SIGKILL loses it.
func TestFaults(t *testing.T) {
	sleep := time.Sleep
	faults := []fault{
		{"collector SIGKILL with a backlog, service down", func(t *testing.T, r *FaultRig, s *Sender) time.Time {
			r.Service.Kill()
			sleep(3 * time.Second)
			r.Controller.Kill()
			s.Stop()
			r.StartService(t)
			r.StartCollector(t)
			return time.Now()
		}},
		{"collector SIGKILL mid-send, service up", func(t *testing.T, r *FaultRig, s *Sender) time.Time {
			return underLoad(s, time.Second, r.Controller.Kill, func() { r.StartCollector(t) })
		}},
		{"service SIGKILL mid-ingest", func(t *testing.T, r *FaultRig, s *Sender) time.Time {
			return underLoad(s, 2*time.Second, r.Service.Kill, func() { r.StartService(t) })
		}},
		{"PostgreSQL restarted under load", func(t *testing.T, r *FaultRig, s *Sender) time.Time {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return underLoad(s, 2*time.Second, func() {
				if err := r.PG.Stop(ctx); err != nil {
					t.Fatal(err)
				}
			}, func() {
				if err := r.PG.Start(ctx); err != nil {
					t.Fatal(err)
				}
			})
		}},
		{"PostgreSQL SIGKILL under load", func(t *testing.T, r *FaultRig, s *Sender) time.Time {
			return underLoad(s, 2*time.Second, func() {
				if err := syscall.Kill(postmasterPID(t, r.PG), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}, func() { restartPostgres(t, r) })
		}},
		{"collector graceful stop, service down", func(t *testing.T, r *FaultRig, s *Sender) time.Time {
			r.Service.Kill()
			sleep(3 * time.Second)
			s.Stop()
			if err := r.Controller.Stop(30 * time.Second); err != nil {
				t.Fatalf("the collector did not stop gracefully with the service down: %v", err)
			}
			r.StartService(t)
			r.StartCollector(t)
			return time.Now()
		}},
	}

	var table []string
	row := func(pipeline, name string, d Delivery) { table = append(table, deliveryRow(t, name, pipeline, d)) }

	r := StartFaultRig(t, RigOptions{})
	for i, f := range faults {
		s := r.Send(int64(i+1)*10_000_000, faultRate, faultBatch)
		restarted := f.run(t, r, s)
		d := r.Await(t, s, restarted, 2*time.Minute)
		row("memory_limiter", f.name, d)
		if d.Acked == 0 || d.Lost != 0 || d.Duplicated != 0 {
			t.Errorf("%s: %d acknowledged, %d of them lost, %d duplicated; want none lost or duplicated\ncollector:\n%s\nservice:\n%s",
				f.name, d.Acked, d.Lost, d.Duplicated, tail(r.Controller.Output()), tail(r.Service.Output()))
		}
	}

	// The shipped controller pipeline batches before the exporter (the runtime exporter stamps an idempotency
	// key on each queued batch, so it cannot merge them after queueing): a SIGKILL loses what the batch
	// processor held. Measured, not hidden; docs/reliability.md says which pipelines should leave batch out.
	rb := StartFaultRig(t, RigOptions{Processors: "memory_limiter, batch"})
	s := rb.Send(90_000_000, faultRate, faultBatch)
	restarted := faults[1].run(t, rb, s)
	d := rb.Await(t, s, restarted, time.Minute)
	row("memory_limiter, batch", faults[1].name, d)
	if d.Duplicated != 0 {
		t.Errorf("with the batch processor: %d duplicated", d.Duplicated)
	}

	writeFaultTable(t, *faultsOut, "results.md", "TestFaults", table)
}

// deliveryRow is d as a row of the fault table (and the test's log).
func deliveryRow(t *testing.T, name, pipeline string, d Delivery) string {
	recovered := fmt.Sprintf("%.1f s", d.Recovered.Seconds())
	if d.Lost > 0 {
		recovered = "never: lost"
	}
	t.Logf("%s (%s): sent %d, acknowledged %d, refused %d, stored %d, lost %d, duplicated %d, stored unacknowledged %d, recovered: %s",
		name, pipeline, d.Sent, d.Acked, d.Refused, d.Stored, d.Lost, d.Duplicated, d.Unacked, recovered)
	return fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d | %d | %d | %s |", name, pipeline,
		d.Sent, d.Acked, d.Refused, d.Stored, d.Lost, d.Duplicated, d.Unacked, recovered)
}

// writeFaultTable writes the rows as a markdown table to out, or to _build/faults/name under the repository.
func writeFaultTable(t *testing.T, out, name, test string, rows []string) {
	if out == "" {
		out = filepath.Join(repoRoot(t), "_build", "faults", name)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	md := fmt.Sprintf("Faults at %d records/s offered in batches of %d (%s, %s)\n\n"+
		"| fault | pipeline processors | sent | acknowledged | refused | stored | lost | duplicated | stored unacknowledged | recovered |\n"+
		"|---|---|---|---|---|---|---|---|---|---|\n%s\n", faultRate, faultBatch, test, time.Now().UTC().Format(time.RFC3339), strings.Join(rows, "\n"))
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("fault table: %s", out)
}

// underLoad breaks a part 2 s into the load, repairs it after down, lets the sender go on 2 s more and stops
// it; it returns when the repair was done.
func underLoad(s *Sender, down time.Duration, breakIt, repair func()) time.Time {
	time.Sleep(2 * time.Second)
	breakIt()
	time.Sleep(down)
	repair()
	at := time.Now()
	time.Sleep(2 * time.Second)
	s.Stop()
	return at
}

// restartPostgres starts PostgreSQL after its postmaster was killed: until its orphaned backends have exited
// they hold the shared memory, and a start is refused; it is retried for 30 s.
func restartPostgres(t *testing.T, r *FaultRig) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := r.PG.Start(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL did not start again after SIGKILL: %v", err)
		}
		time.Sleep(time.Second)
	}
}
