package ingest_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

var testCluster = store.Cluster{ID: 1, UID: "cluster-uid", Name: "test"}

const runningDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// rec is one log record to build: event name and attributes.
type rec struct {
	event string
	attrs map[string]any
}

func logsOf(resource map[string]any, rs ...rec) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	putAll(rl.Resource().Attributes(), resource)
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range rs {
		lr := lrs.AppendEmpty()
		lr.SetEventName(r.event)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		putAll(lr.Attributes(), r.attrs)
	}
	return ld
}

func putAll(m pcommon.Map, attrs map[string]any) {
	for k, v := range attrs {
		switch v := v.(type) {
		case string:
			m.PutStr(k, v)
		case int:
			m.PutInt(k, int64(v))
		case bool:
			m.PutBool(k, v)
		case []string:
			s := m.PutEmptySlice(k)
			for _, e := range v {
				s.AppendEmpty().SetStr(e)
			}
		case []any:
			s := m.PutEmptySlice(k)
			for _, e := range v {
				switch e := e.(type) {
				case string:
					s.AppendEmpty().SetStr(e)
				case int:
					s.AppendEmpty().SetInt(int64(e))
				}
			}
		default:
			panic("unsupported attribute type")
		}
	}
}

func merge(base map[string]any, extra map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

var (
	nodeAttrs      = map[string]any{records.AttrK8sNodeUID: "node-uid", records.AttrK8sNodeName: "node-1", records.AttrK8sChange: records.ChangeAdded}
	workloadAttrs  = map[string]any{records.AttrK8sWorkloadUID: "wl-uid", records.AttrK8sWorkloadKind: "Deployment", records.AttrK8sWorkloadName: "web", records.AttrK8sNamespaceName: "shop", records.AttrK8sChange: records.ChangeSnapshot}
	podAttrs       = map[string]any{records.AttrK8sPodUID: "pod-uid", records.AttrK8sPodName: "web-1", records.AttrK8sNamespaceName: "shop", records.AttrK8sNodeName: "node-1", records.AttrK8sWorkloadUID: "wl-uid", records.AttrK8sWorkloadKind: "Deployment", records.AttrK8sWorkloadName: "web"}
	containerAttrs = map[string]any{
		records.AttrK8sPodUID: "pod-uid", records.AttrK8sPodName: "web-1", records.AttrK8sContainerName: "app",
		records.AttrContainerID: "cid-1", records.AttrK8sNamespaceName: "shop", records.AttrK8sNodeName: "node-1",
		records.AttrK8sWorkloadUID: "wl-uid", records.AttrK8sWorkloadKind: "Deployment", records.AttrK8sWorkloadName: "web",
		records.AttrContainerImageName: "nginx:1.25", records.AttrContainerImageTags: []string{"1.25"},
		records.AttrImageRunningDigest: "docker.io/library/nginx@" + runningDigest, records.AttrImagePullPolicy: "IfNotPresent",
		records.AttrImageRef: "docker.io/library/nginx:1.25", records.AttrRegistryHost: "docker.io",
		records.AttrRegistryTrusted: false, records.AttrImageTagMutable: false,
		records.AttrImageIntegrity: records.IntegrityDigestMismatch, records.AttrImageExpectedDigest: "sha256:" + strings.Repeat("2", 64),
		records.AttrRiskSeverity: records.SeverityCritical,
		records.AttrRiskReasons:  []string{records.ReasonUntrustedRegistry + ": docker.io is not trusted"},
	}
	execAttrs = map[string]any{records.AttrProcessPID: 42, records.AttrProcessParentPID: 1, records.AttrProcessExecutablePath: "/bin/sh",
		records.AttrProcessCommandArgs: []string{"sh", "-c", "id"}, records.AttrProcessUserID: 0, records.AttrProcessWorkingDirectory: "/",
		records.AttrContainerID: "cid-1", records.AttrProcessExecutableSHA256: strings.Repeat("AB", 32)}
	fileAttrs = map[string]any{records.AttrFilePath: "/etc/shadow", records.AttrFileFlags: 0, records.AttrProcessPID: 42, records.AttrProcessExecutablePath: "/bin/sh", records.AttrContainerID: "cid-1"}
	// hostContainerAttrs: a container the host's own runtime started, running the pod's image.
	hostContainerAttrs = map[string]any{
		records.AttrContainerID: strings.Repeat("c", 64), records.AttrContainerRuntime: "docker",
		records.AttrContainerImageName: "nginx:1.25", records.AttrImageRunningDigest: "docker.io/library/nginx@" + runningDigest,
		records.AttrImageRef: "docker.io/library/nginx:1.25", records.AttrRegistryHost: "docker.io", records.AttrRegistryTrusted: false,
		records.AttrImageIntegrity: records.IntegrityVerified, records.AttrRiskSeverity: records.SeverityHigh,
		records.AttrRiskReasons: []string{records.ReasonUntrustedRegistry + ": docker.io is not trusted"},
		records.AttrK8sChange:   records.ChangeAdded,
	}
	healthAttrs = map[string]any{records.AttrSensorEventsSeen: 100, records.AttrSensorEventsDropped: 2, records.AttrSensorKernel: "6.1.0", records.AttrSensorProgramStatus: "exec:attached",
		records.AttrSensorOpenHook: "tracepoint", records.AttrSensorHooksRefused: "lsm/file_open: refused"}
)

// TestDecodeAcceptsEveryRecordKind: one record of each kind in docs/records.md lands in the batch with its fields.
func TestDecodeAcceptsEveryRecordKind(t *testing.T) {
	d := decodeBoth(t, everyKindOf(testCluster.UID), testCluster, time.Now())
	if d.Rejected != 0 {
		t.Fatalf("rejected: %s", d.Message())
	}
	b := d.Batch
	if len(b.Nodes) != 1 || len(b.Workloads) != 1 || len(b.Pods) != 1 || len(b.Containers) != 2 ||
		len(b.Execs) != 1 || len(b.FileOpens) != 1 || len(b.SensorHealth) != 1 {
		t.Fatalf("batch: %+v", b)
	}
	k := b.Containers[0]
	if k.RunningDigest != runningDigest || k.Severity != records.SeverityCritical || k.RegistryTrusted == nil || *k.RegistryTrusted ||
		len(k.Reasons) != 1 || k.WorkloadUID != "wl-uid" {
		t.Fatalf("container: %+v", k)
	}
	if h := b.Containers[1]; h.PodUID != "" || h.Name != strings.Repeat("c", 64) || h.ContainerID != h.Name ||
		h.NodeName != "node-1" || h.Integrity != records.IntegrityVerified || h.RunningDigest != runningDigest || h.Deleted {
		t.Fatalf("host container (no pod, named by its id, on the resource's node): %+v", h)
	}
	if e := b.Execs[0]; e.SHA256 != strings.Repeat("ab", 32) || e.PID != 42 || len(e.CommandArgs) != 3 {
		t.Fatalf("exec: %+v", e)
	}
	if h := b.SensorHealth[0]; h.NodeName != "node-1" || h.EventsDropped != 2 || h.OpenHook != "tracepoint" || h.HooksRefused != "lsm/file_open: refused" {
		t.Fatalf("sensor health (node name from the resource): %+v", h)
	}
}

// TestDecodeRejectsBadRecordsAndKeepsTheRest: each bad record is rejected with a message naming what is wrong,
// and the good record beside it is kept.
func TestDecodeRejectsBadRecordsAndKeepsTheRest(t *testing.T) {
	cases := []struct {
		name string
		rec  rec
		want string
	}{
		{"no event name", rec{"", nodeAttrs}, "no event name"},
		{"unknown event", rec{"app.log", nodeAttrs}, `unknown event name "app.log"`},
		{"missing uid", rec{records.EventK8sPod, merge(podAttrs, map[string]any{records.AttrK8sPodUID: nil})}, "k8s.pod.uid is missing"},
		{"empty uid", rec{records.EventK8sNode, merge(nodeAttrs, map[string]any{records.AttrK8sNodeUID: ""})}, "k8s.node.uid is missing"},
		{"wrong type", rec{records.EventProcessExec, merge(execAttrs, map[string]any{records.AttrProcessPID: "42"})}, "process.pid is a Str; want an int"},
		{"bad change", rec{records.EventK8sNode, merge(nodeAttrs, map[string]any{records.AttrK8sChange: "moved"})}, "runtrust.k8s.change is \"moved\"; want one of added, updated, deleted, snapshot"},
		{"bad severity", rec{records.EventK8sContainer, merge(containerAttrs, map[string]any{records.AttrRiskSeverity: "urgent"})}, "runtrust.risk.severity is \"urgent\""},
		{"bad verdict", rec{records.EventK8sContainer, merge(containerAttrs, map[string]any{records.AttrImageIntegrity: "fine"})}, "runtrust.image.integrity is \"fine\""},
		{"bad digest", rec{records.EventK8sContainer, merge(containerAttrs, map[string]any{records.AttrImageRunningDigest: "sha256:xyz"})}, "runtrust.image.running_digest is \"sha256:xyz\"; want a digest"},
		{"bad sha", rec{records.EventProcessExec, merge(execAttrs, map[string]any{records.AttrProcessExecutableSHA256: "abc"})}, "want 64 hex digits"},
		{"NUL", rec{records.EventFileOpen, merge(fileAttrs, map[string]any{records.AttrFilePath: "/etc/\x00x"})}, "file.path contains a NUL byte"},
		{"bad UTF-8", rec{records.EventFileOpen, merge(fileAttrs, map[string]any{records.AttrFilePath: "/etc/\xff"})}, "file.path is not valid UTF-8"},
		{"too long", rec{records.EventFileOpen, merge(fileAttrs, map[string]any{records.AttrFilePath: strings.Repeat("a", 5000)})}, "file.path is 5000 bytes long"},
		{"list of ints", rec{records.EventProcessExec, merge(execAttrs, map[string]any{records.AttrProcessCommandArgs: []any{"sh", 1}})}, "process.command_args[1] is a Int; want a string"},
		{"list too long", rec{records.EventProcessExec, merge(execAttrs, map[string]any{records.AttrProcessCommandArgs: make([]string, 300)})}, "has 300 entries"},
		{"bool as string", rec{records.EventK8sContainer, merge(containerAttrs, map[string]any{records.AttrRegistryTrusted: "yes"})}, "runtrust.registry.trusted is a Str; want a bool"},
		{"health without node", rec{records.EventSensorHealth, healthAttrs}, "k8s.node.name (or host.name) is missing"},
		{"host container without id", rec{records.EventHostContainer, merge(hostContainerAttrs, map[string]any{records.AttrContainerID: nil})}, "container.id is missing"},
		{"host container bad change", rec{records.EventHostContainer, merge(hostContainerAttrs, map[string]any{records.AttrK8sChange: "gone"})}, "runtrust.k8s.change is \"gone\""},
		{"host container bad verdict", rec{records.EventHostContainer, merge(hostContainerAttrs, map[string]any{records.AttrImageIntegrity: "ok"})}, "runtrust.image.integrity is \"ok\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ld := logsOf(nil, rec{records.EventK8sNode, nodeAttrs}, c.rec)
			d := decodeBoth(t, ld, testCluster, time.Now())
			if d.Rejected != 1 || len(d.Batch.Nodes) != 1 {
				t.Fatalf("rejected %d, kept %d nodes; want 1 rejected and the good node kept", d.Rejected, len(d.Batch.Nodes))
			}
			if !strings.Contains(d.Message(), c.want) || !strings.Contains(d.Message(), "record 1 ") {
				t.Fatalf("message %q; want it to name record 1 and say %q", d.Message(), c.want)
			}
		})
	}
}

func TestDecodeRejectsAnotherClustersResource(t *testing.T) {
	ld := logsOf(map[string]any{records.AttrK8sClusterUID: "someone-else"}, rec{records.EventK8sNode, nodeAttrs}, rec{records.EventK8sNode, nodeAttrs})
	d := decodeBoth(t, ld, testCluster, time.Now())
	if d.Rejected != 2 || d.Batch.Len() != 0 || !strings.Contains(d.Message(), `"someone-else" is not the cluster this token belongs to`) {
		t.Fatalf("rejected %d, message %q", d.Rejected, d.Message())
	}
}

// TestDecodeUsesObservedTimeThenNow: a record without a timestamp takes its observed time, else the receive time.
func TestDecodeUsesObservedTimeThenNow(t *testing.T) {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	obs := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 2; i++ {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventK8sNode)
		putAll(lr.Attributes(), nodeAttrs)
		if i == 0 {
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(obs))
		}
	}
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	d := decodeBoth(t, ld, testCluster, now)
	if !d.Batch.Nodes[0].Time.Equal(obs) || !d.Batch.Nodes[1].Time.Equal(now) {
		t.Fatalf("times %v, %v", d.Batch.Nodes[0].Time, d.Batch.Nodes[1].Time)
	}
}

// FuzzDecode feeds arbitrary bytes through the service's OTLP decoder and the record checks. Whatever comes in, nothing
// panics, every record is either kept or rejected, and every kept string is one Postgres can store.
func FuzzDecode(f *testing.F) {
	seed := logsOf(map[string]any{records.AttrK8sClusterUID: testCluster.UID},
		rec{records.EventK8sNode, nodeAttrs}, rec{records.EventK8sContainer, containerAttrs},
		rec{records.EventProcessExec, execAttrs}, rec{records.EventFileOpen, fileAttrs},
		rec{records.EventSensorHealth, merge(healthAttrs, map[string]any{records.AttrHostName: "h"})},
		rec{records.EventHostContainer, hostContainerAttrs}, rec{"bogus", nil})
	b, _ := plogotlp.NewExportRequestFromLogs(seed).MarshalProto()
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(data); err != nil {
			return
		}
		ld := req.Logs()
		d, err := ingest.DecodeRequest(data, testCluster, time.Now()) // the service's decoder; FuzzDecodeRequestMatchesPdata holds it to Decode
		if err != nil {
			t.Fatalf("pdata decodes the request, DecodeRequest fails: %v", err)
		}
		if got := d.Batch.Len() + d.Rejected; got != ld.LogRecordCount() {
			t.Fatalf("kept %d + rejected %d != %d records", d.Batch.Len(), d.Rejected, ld.LogRecordCount())
		}
		for _, k := range d.Batch.Containers {
			for _, s := range append([]string{k.PodUID, k.Name, k.ImageName, k.RunningDigest}, k.Reasons...) {
				if strings.IndexByte(s, 0) >= 0 || !validUTF8(s) {
					t.Fatalf("kept a string Postgres cannot store: %q", s)
				}
			}
		}
	})
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }

// TestDigestChecks: the hand-written digest and SHA-256 checks accept exactly what the regular expressions
// they replaced accepted.
func TestDigestChecks(t *testing.T) {
	digestRE := regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$`)
	hex64 := strings.Repeat("0123456789abcdef", 4)
	cases := []string{"", "sha256:", "sha256:" + hex64, "sha512:" + hex64 + hex64, "sha512:" + hex64, "sha256:" + hex64 + "0",
		"sha256:" + strings.ToUpper(hex64), "sha256:" + hex64[:63] + "g", "SHA256:" + hex64, "sha384:" + hex64, "md5:" + hex64[:32],
		"repo@sha256:" + hex64, "sha256:" + hex64[:63] + "/"}
	for _, c := range cases {
		rec := map[string]any{records.AttrFilePath: "/f", records.AttrImageRunningDigest: c}
		d := ingest.Decode(logsOf(nil, rec2(records.EventFileOpen, rec)), testCluster, time.Now())
		want := c == "" || digestRE.MatchString(c[strings.LastIndexByte(c, '@')+1:])
		if got := d.Rejected == 0; got != want {
			t.Errorf("digest %q accepted: %v; want %v (%s)", c, got, want, d.Message())
		}
	}
	for _, c := range []string{hex64, strings.ToUpper(hex64), hex64[:63], hex64 + "0", hex64[:63] + "g", hex64[:63] + ":"} {
		rec := map[string]any{records.AttrProcessExecutablePath: "/bin/sh", records.AttrProcessExecutableSHA256: c}
		d := ingest.Decode(logsOf(nil, rec2(records.EventProcessExec, rec)), testCluster, time.Now())
		want := regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(strings.ToLower(c))
		if got := d.Rejected == 0; got != want {
			t.Errorf("sha256 %q accepted: %v; want %v (%s)", c, got, want, d.Message())
		}
	}
}

func rec2(event string, attrs map[string]any) rec { return rec{event, attrs} }
