package testbed

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/runtrust/runtrust/internal/records"
)

func TestParseAuditStatus(t *testing.T) {
	real := "enabled 1\nfailure 1\npid 24499\nrate_limit 0\nbacklog_limit 8192\nlost 17\nbacklog 0\nloginuid_immutable 0 unlocked\n"
	st, err := ParseAuditStatus(real)
	if err != nil || st["pid"] != 24499 || st["lost"] != 17 || st["backlog_limit"] != 8192 || st["loginuid_immutable"] != 0 {
		t.Fatalf("got %v, %v", st, err)
	}
	for _, bad := range []string{"", "No rules\n", "pid x\n", "enabled 1\n"} {
		if _, err := ParseAuditStatus(bad); err == nil || !strings.Contains(err.Error(), "no pid line") {
			t.Errorf("%q: error %v, want one saying there is no pid line", bad, err)
		}
	}
}

func TestCountAudit(t *testing.T) {
	const bin = "/tmp/w/exit0"
	log := strings.Join([]string{
		`type=SYSCALL msg=audit(1796586035.001:21): arch=c000003e syscall=59 success=yes exit=0 a0=1 ppid=10 pid=11 auid=0 uid=0 comm="exit0" exe="/tmp/w/exit0" key="rtexec"`,
		`type=EXECVE msg=audit(1796586035.001:21): argc=2 a0="/tmp/w/exit0" a1="storm"`,
		`type=SYSCALL msg=audit(1796586035.002:22): arch=c000003e syscall=59 success=yes exit=0 ppid=10 pid=12 comm="sh" exe="/usr/bin/dash" key="rtexec"`,
		`type=SYSCALL msg=audit(1796586035.003:23): arch=c000003e syscall=257 success=yes exit=3 ppid=1 pid=4242 comm="testbed.test" exe="/tmp/testbed.test" key="rtopen"`,
		`type=SYSCALL msg=audit(1796586035.004:24): arch=c000003e syscall=257 success=yes exit=3 ppid=4242 pid=42420 comm="x" exe="/x" key="rtopen"`,
		`type=PATH msg=audit(1796586035.003:23): item=0 name="/tmp/w/f0001" pid=4242 `,
		`type=SYSCALL msg=audit(1796586035.005:25): arch=c000003e syscall=257 ppid=4242 pid=4242 exe="/tmp/w/exit0" key="rtopen"`,
		`garbage`, ``,
	}, "\n")
	if got := CountAudit([]byte(log), bin, 4242); got != (PeerCount{Execs: 1, Opens: 2}) {
		t.Errorf("got %+v, want 1 exec of %s and 2 opens of pid 4242 (not ppid 4242, not a PATH record)", got, bin)
	}
}

func TestCountBpftrace(t *testing.T) {
	out := "Attaching 3 probes...\nexec 11 /tmp/w/exit0\nexec 12 /usr/bin/dash\nexec 13 /tmp/w/exit0 with space\nopen 4242 /tmp/w/f0001\nopen 42420 /tmp/w/f0001\nopen 4242 \nLost 7 events\nLost many events\n\n"
	if got := CountBpftrace([]byte(out), "/tmp/w/exit0", 4242); got != (PeerCount{Execs: 1, Opens: 2, Drops: 7}) {
		t.Errorf("got %+v", got)
	}
}

func TestCountRuntrust(t *testing.T) {
	const bin = "/tmp/w/exit0"
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	add := func(event string, attrs map[string]any) {
		lr := lrs.AppendEmpty()
		lr.SetEventName(event)
		for k, v := range attrs {
			switch v := v.(type) {
			case string:
				lr.Attributes().PutStr(k, v)
			case int:
				lr.Attributes().PutInt(k, int64(v))
			}
		}
	}
	add(records.EventProcessExec, map[string]any{records.AttrProcessExecutablePath: bin})
	add(records.EventProcessExec, map[string]any{records.AttrProcessExecutablePath: "/bin/sh"})
	add(records.EventFileOpen, map[string]any{records.AttrProcessPID: 4242})
	add(records.EventFileOpen, map[string]any{records.AttrProcessPID: 1})
	add(records.EventSensorHealth, map[string]any{records.AttrSensorDedupHits: 10, records.AttrSensorEventsDropped: 0})
	add(records.EventSensorHealth, map[string]any{records.AttrSensorDedupHits: 99, records.AttrSensorEventsDropped: 3})
	line, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	file := append(append(append([]byte{}, line...), "\n\n"...), line...)
	got, err := CountRuntrust(file, bin, 4242)
	if err != nil || got != (PeerCount{Execs: 2, Opens: 2, Folded: 99, Drops: 3}) {
		t.Errorf("got %+v, %v; want 2 execs, 2 opens and the last health record's counters", got, err)
	}
	if _, err := CountRuntrust([]byte(string(line)+"\n{\"resourceLogs\": 1}\n"), bin, 4242); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad line: %v, want an error naming line 2", err)
	}
}

// FuzzPeerOutputs: whatever auditctl, auditd, bpftrace or the file exporter wrote, the counters return counts
// (or an error), never panic, and count no more events than lines.
func FuzzPeerOutputs(f *testing.F) {
	f.Add([]byte("pid 1\nlost 2\n"))
	f.Add([]byte(`type=SYSCALL msg=audit(1.0:1): pid=7 exe="/b" key="rtexec"` + "\n"))
	f.Add([]byte("exec 7 /b\nopen 7 /f\nLost 3 events\n"))
	f.Add([]byte(`{"resourceLogs":[]}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines := strings.Count(string(b), "\n") + 1
		_, _ = ParseAuditStatus(string(b))
		if c := CountAudit(b, "/b", 7); c.Execs+c.Opens > lines {
			t.Fatalf("audit: %+v from %d lines", c, lines)
		}
		if c := CountBpftrace(b, "/b", 7); c.Execs+c.Opens > lines {
			t.Fatalf("bpftrace: %+v from %d lines", c, lines)
		}
		_, _ = CountRuntrust(b, "/b", 7)
	})
}
