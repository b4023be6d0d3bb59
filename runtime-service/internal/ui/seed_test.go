package ui_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
	"github.com/runtrust/runtrust/runtime-service/internal/service"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

const joinKeyPrefix = "ui-browser-test-join-key-"

// runningService is the real runtime service (service.Run: store, gRPC ingest, HTTP API and UI) on loopback
// ports over a fresh pgtest database.
type runningService struct {
	base string // http://127.0.0.1:port
	grpc *grpc.ClientConn
	dsn  string // its database, for seeding what only a moved clock can (an old heartbeat)
}

// startService starts the service with joinKeys one-time join keys and any further flags.
func startService(t testing.TB, joinKeys int, flags ...string) *runningService {
	t.Helper()
	keys := make([]string, joinKeys)
	for i := range keys {
		keys[i] = joinKeyPrefix + string(rune('a'+i))
	}
	dsn := pgtest.DB(t)
	cfg, err := config.Parse(append([]string{"-grpc-listen", "127.0.0.1:0", "-http-listen", "127.0.0.1:0",
		"-database-url", dsn, "-join-key", strings.Join(keys, ","), "-shutdown-timeout", "5s"}, flags...),
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan service.Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
	var addrs service.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("the service did not start: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("the service did not start within 2 minutes")
	}
	conn, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service shutdown: %v", err)
		}
	})
	return &runningService{base: "http://" + addrs.HTTP, grpc: conn, dsn: dsn}
}

// cluster is an enrolled cluster: its token in ctx, its identity on every resource it sends.
type cluster struct {
	ctx       context.Context
	uid, name string
	svc       *runningService
	batch     int
}

func (s *runningService) enrol(t testing.TB, key int, uid, name string, mode runtrustv1.Mode, nodes uint32) *cluster {
	t.Helper()
	cs := runtrustv1.NewClusterServiceClient(s.grpc)
	resp, err := cs.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: joinKeyPrefix + string(rune('a'+key)), ClusterUid: uid, ClusterName: name})
	if err != nil {
		t.Fatalf("enrol %s: %v", name, err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), ingest.AuthorizationHeader, "Bearer "+resp.GetToken())
	if _, err := cs.Heartbeat(ctx, &runtrustv1.HeartbeatRequest{CollectorVersion: "v0.161.0", Mode: mode, NodeCount: nodes}); err != nil {
		t.Fatalf("heartbeat %s: %v", name, err)
	}
	return &cluster{ctx: ctx, uid: uid, name: name, svc: s}
}

// collector enrols one collector of a cluster under its own id (per-collector tokens) and heartbeats as it
// with version, mode and node count. A zero heartbeatAt enrols and heartbeats now, over gRPC as the exporter
// does; at any other time both are written through the real store with its clock set to that time, since the
// service stamps them with its own clock and a test cannot wait the live window out.
func (s *runningService) collector(t testing.TB, key int, uid, name, id, version string, mode runtrustv1.Mode, nodes uint32, heartbeatAt time.Time) *cluster {
	t.Helper()
	joinKey := joinKeyPrefix + string(rune('a'+key))
	cs := runtrustv1.NewClusterServiceClient(s.grpc)
	if heartbeatAt.IsZero() {
		resp, err := cs.Enrol(context.Background(), &runtrustv1.EnrolRequest{JoinKey: joinKey,
			ClusterUid: uid, ClusterName: name, CollectorId: id, Mode: mode})
		if err != nil {
			t.Fatalf("enrol %s's collector %s: %v", name, id, err)
		}
		ctx := metadata.AppendToOutgoingContext(context.Background(), ingest.AuthorizationHeader, "Bearer "+resp.GetToken())
		if _, err := cs.Heartbeat(ctx, &runtrustv1.HeartbeatRequest{CollectorVersion: version, Mode: mode, NodeCount: nodes}); err != nil {
			t.Fatalf("heartbeat %s's collector %s: %v", name, id, err)
		}
		return &cluster{ctx: ctx, uid: uid, name: name, svc: s}
	}
	st, err := store.Open(context.Background(), s.dsn, store.Options{Now: func() time.Time { return heartbeatAt }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	modes := map[runtrustv1.Mode]string{runtrustv1.Mode_MODE_INTEGRITY: "integrity", runtrustv1.Mode_MODE_IMPACT: "impact"}
	token, c, err := st.EnrolCollector(context.Background(), store.Enrolment{JoinKey: joinKey, ClusterUID: uid, ClusterName: name,
		CollectorID: id, Mode: modes[mode]})
	if err != nil {
		t.Fatalf("enrol %s's collector %s at %s: %v", name, id, heartbeatAt, err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), ingest.AuthorizationHeader, "Bearer "+token)
	if err := st.Heartbeat(context.Background(), c, version, modes[mode], int(nodes)); err != nil {
		t.Fatalf("heartbeat %s's collector %s at %s: %v", name, id, heartbeatAt, err)
	}
	return &cluster{ctx: ctx, uid: uid, name: name, svc: s}
}

// send exports records over OTLP/gRPC as the cluster's collector does, and fails on any rejected record.
func (c *cluster) send(t testing.TB, recs ...rec) {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(records.AttrK8sClusterUID, c.uid)
	rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, c.name)
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range recs {
		lr := lrs.AppendEmpty()
		lr.SetEventName(r.event)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.at))
		for k, v := range r.attrs {
			switch v := v.(type) {
			case string:
				lr.Attributes().PutStr(k, v)
			case int:
				lr.Attributes().PutInt(k, int64(v))
			case bool:
				lr.Attributes().PutBool(k, v)
			case []string:
				sl := lr.Attributes().PutEmptySlice(k)
				for _, s := range v {
					sl.AppendEmpty().SetStr(s)
				}
			default:
				t.Fatalf("attribute %s: unsupported type %T", k, v)
			}
		}
	}
	c.batch++
	ctx := metadata.AppendToOutgoingContext(c.ctx, ingest.IdempotencyKeyHeader, c.name+"-"+time.Now().Format(time.RFC3339Nano))
	resp, err := plogotlp.NewGRPCClient(c.svc.grpc).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	if err != nil {
		t.Fatalf("export to %s: %v", c.name, err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedLogRecords() != 0 {
		t.Fatalf("export to %s: %d rejected: %s", c.name, ps.RejectedLogRecords(), ps.ErrorMessage())
	}
}

type rec struct {
	event string
	at    time.Time
	attrs map[string]any
}

// image is one image as the collector's processors judge it.
type image struct {
	ref, digest, expected, verdict, severity, pullPolicy string
	trusted                                              bool
	reasons                                              []string
}

// workload places an image: pods of a workload in a namespace, on nodes.
type workload struct {
	kind, name, namespace string
	nodes                 []string
	pods                  int
}

// containers returns the container records of w's pods running img.
func containers(at time.Time, img image, w workload) []rec {
	var out []rec
	host, _, _ := strings.Cut(img.ref, "/")
	for i := 0; i < w.pods; i++ {
		pod := w.name + "-" + string(rune('a'+i))
		a := map[string]any{
			records.AttrK8sPodUID: w.namespace + "/" + pod, records.AttrK8sPodName: pod, records.AttrK8sContainerName: "main",
			records.AttrContainerID: "cid-" + w.namespace + "-" + pod, records.AttrK8sNamespaceName: w.namespace,
			records.AttrK8sNodeName: w.nodes[i%len(w.nodes)], records.AttrK8sWorkloadUID: w.namespace + "/" + w.name,
			records.AttrK8sWorkloadKind: w.kind, records.AttrK8sWorkloadName: w.name,
			records.AttrContainerImageName: img.ref, records.AttrImageRef: img.ref, records.AttrRegistryHost: host,
			records.AttrRegistryTrusted: img.trusted, records.AttrImageRunningDigest: img.digest,
			records.AttrImageIntegrity: img.verdict, records.AttrRiskSeverity: img.severity,
			records.AttrK8sChange: records.ChangeAdded,
		}
		if img.expected != "" {
			a[records.AttrImageExpectedDigest] = img.expected
		}
		if img.pullPolicy != "" {
			a[records.AttrImagePullPolicy] = img.pullPolicy
		}
		if img.reasons != nil {
			a[records.AttrRiskReasons] = img.reasons
		}
		out = append(out, rec{records.EventK8sContainer, at, a})
	}
	return out
}

func node(at time.Time, name string) rec {
	return rec{records.EventK8sNode, at, map[string]any{records.AttrK8sNodeUID: "uid-" + name, records.AttrK8sNodeName: name,
		records.AttrK8sChange: records.ChangeSnapshot}}
}

func sensorHealth(at time.Time, nodeName string, seen, dropped int) rec {
	return rec{records.EventSensorHealth, at, map[string]any{records.AttrK8sNodeName: nodeName, records.AttrSensorEventsSeen: seen,
		records.AttrSensorEventsDropped: dropped, records.AttrSensorKernel: "6.1.0-28-amd64", records.AttrSensorProgramStatus: "ok",
		records.AttrSensorProgramsActive: 2}}
}

func digestOf(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }
