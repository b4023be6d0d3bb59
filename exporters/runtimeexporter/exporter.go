package runtimeexporter // import "github.com/runtrust/runtrust/exporters/runtimeexporter"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/runtrust/runtrust/exporters/runtimeexporter/internal/metadata"
	"github.com/runtrust/runtrust/internal/grpcraw"
	"github.com/runtrust/runtrust/internal/periodic"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/wire"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
)

// tokenStorageKey is where the token is kept in the storage extension's client for this exporter.
const tokenStorageKey = "cluster_token"

// storedToken is what the storage extension keeps. The join key's hash, the cluster uid, the collector id and
// the endpoint say which enrolment the token came from: a new join key or collector id in the configuration
// enrols again. A token stored before collector ids existed has none, so an upgraded exporter enrols once more
// under its id (its join key still enrols collectors of its cluster).
type storedToken struct {
	Token         string `json:"token"`
	JoinKeySHA256 string `json:"join_key_sha256"`
	ClusterUID    string `json:"cluster_uid"`
	CollectorID   string `json:"collector_id"`
	Endpoint      string `json:"endpoint"`
}

type runtimeExporter struct {
	cfg *Config
	set exporter.Settings
	log *zap.Logger

	conn    *grpc.ClientConn
	logs    plogotlp.GRPCClient
	cluster runtrustv1.ClusterServiceClient
	store   storage.Client

	token atomic.Pointer[string]

	cancel context.CancelFunc
	wg     sync.WaitGroup

	telemetry *metadata.TelemetryBuilder // otelcol_exporter_runtrust_rejected_log_records

	mu           sync.Mutex
	kindsLogged  map[string]struct{}
	nodes        map[string]struct{}
	sensorSeen   bool
	unauthLogged time.Time
}

func newExporter(cfg *Config, set exporter.Settings) (*runtimeExporter, error) {
	e := &runtimeExporter{cfg: cfg, set: set, log: set.Logger,
		kindsLogged: map[string]struct{}{}, nodes: map[string]struct{}{}}
	var err error
	if e.telemetry, err = metadata.NewTelemetryBuilder(set.TelemetrySettings); err != nil {
		return nil, err
	}
	if cfg.Token != "" {
		t := string(cfg.Token)
		e.token.Store(&t)
	}
	return e, nil
}

func (e *runtimeExporter) start(ctx context.Context, host component.Host) error {
	conn, err := e.cfg.ClientConfig.ToClientConn(ctx, host.GetExtensions(), e.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("runtime exporter: endpoint %q: %w", e.cfg.ClientConfig.Endpoint, err)
	}
	e.conn = conn
	e.logs = plogotlp.NewGRPCClient(conn)
	e.cluster = runtrustv1.NewClusterServiceClient(conn)
	if e.cfg.JoinKey != "" {
		id := e.cfg.tokenStorage()
		ext, ok := host.GetExtensions()[*id]
		if !ok {
			return fmt.Errorf("runtime exporter: storage: extension %q is not configured in service.extensions", id)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("runtime exporter: storage: extension %q is not a storage extension", id)
		}
		e.store, err = se.GetClient(ctx, component.KindExporter, e.set.ID, "token")
		if err != nil {
			return fmt.Errorf("runtime exporter: storage %q: %w", id, err)
		}
		if err := e.loadToken(ctx); err != nil {
			return err
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if e.token.Load() == nil {
			if !e.enrolLoop(bg) {
				return
			}
		}
		e.heartbeatLoop(bg)
	}()
	return nil
}

func (e *runtimeExporter) shutdown(ctx context.Context) error {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	e.telemetry.Shutdown()
	var errs []error
	if e.store != nil {
		errs = append(errs, e.store.Close(ctx))
	}
	if e.conn != nil {
		errs = append(errs, e.conn.Close())
	}
	return errors.Join(errs...)
}

func (e *runtimeExporter) enrolment() storedToken {
	h := sha256.Sum256([]byte(e.cfg.JoinKey))
	return storedToken{JoinKeySHA256: hex.EncodeToString(h[:]), ClusterUID: e.cfg.ClusterUID, CollectorID: e.cfg.CollectorID,
		Endpoint: e.cfg.ClientConfig.Endpoint}
}

// loadToken takes the stored token when it came from the configured join key, cluster and endpoint.
func (e *runtimeExporter) loadToken(ctx context.Context) error {
	b, err := e.store.Get(ctx, tokenStorageKey)
	if err != nil {
		return fmt.Errorf("runtime exporter: reading the cluster token from storage: %w", err)
	}
	if b == nil {
		return nil
	}
	var st storedToken
	if err := json.Unmarshal(b, &st); err != nil || st.Token == "" {
		e.log.Warn("the stored cluster token is unreadable; enrolling again", zap.Error(err))
		return nil
	}
	want := e.enrolment()
	if st.JoinKeySHA256 != want.JoinKeySHA256 || st.ClusterUID != want.ClusterUID || st.CollectorID != want.CollectorID || st.Endpoint != want.Endpoint {
		e.log.Info("the configured join key, cluster uid, collector id or endpoint changed since the stored enrolment; enrolling again")
		return nil
	}
	e.token.Store(&st.Token)
	e.log.Info("using the stored cluster token", zap.String("cluster_uid", st.ClusterUID))
	return nil
}

// enrolLoop enrols until it succeeds or ctx ends (false). Records wait in the queue meanwhile.
func (e *runtimeExporter) enrolLoop(ctx context.Context) bool {
	delay := time.Second
	for {
		err := e.enrol(ctx)
		if err == nil {
			return true
		}
		wait := delay
		switch status.Code(err) {
		case codes.Unauthenticated, codes.InvalidArgument:
			e.log.Error("enrolment refused: records stay queued until the cluster is enrolled; configure a join key the service accepts (join_key) or a token",
				zap.Error(err))
			wait = max(e.cfg.RetryConfig.MaxInterval, time.Second)
		case codes.FailedPrecondition:
			// The service refuses this collector as things stand (a sensor beyond its cluster's node
			// entitlement) and says why; that can change without a change here, so the enrolment is retried.
			wait = max(e.cfg.RetryConfig.MaxInterval, time.Second)
			e.log.Error("the runtime service refused this collector's enrolment: "+status.Convert(err).Message()+
				"; records stay queued (and are dropped when the queue is full) until it is accepted, enrolment is retried",
				zap.String("collector_id", e.cfg.CollectorID), zap.Duration("retry_in", wait))
		default:
			e.log.Warn("enrolment failed; retrying", zap.Error(err), zap.Duration("retry_in", wait))
			delay = min(delay*2, max(e.cfg.RetryConfig.MaxInterval, time.Second))
		}
		if d := wire.RetryAfter(status.Convert(err)); d > wait {
			wait = d
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

func (e *runtimeExporter) enrol(ctx context.Context) error {
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := e.cluster.Enrol(callCtx, &runtrustv1.EnrolRequest{
		JoinKey: string(e.cfg.JoinKey), ClusterUid: e.cfg.ClusterUID, ClusterName: e.cfg.ClusterName,
		CollectorId: e.cfg.CollectorID, Mode: enrolMode(e.cfg.Mode)})
	if err != nil {
		return err
	}
	st := e.enrolment()
	st.Token = resp.GetToken()
	b, _ := json.Marshal(st)
	// The token is kept before it is used: the join key is spent now, and a restart must find the token.
	if err := e.store.Set(ctx, tokenStorageKey, b); err != nil {
		e.log.Error("the cluster token could not be stored: a restart will need a new join key", zap.Error(err))
	}
	e.token.Store(&st.Token)
	e.log.Info("cluster enrolled", zap.String("cluster_uid", e.cfg.ClusterUID), zap.String("collector_id", e.cfg.CollectorID))
	return nil
}

// enrolMode is what the collector declares at enrolment: its configured mode; auto declares nothing yet, its
// first heartbeat says what it saw.
func enrolMode(mode string) runtrustv1.Mode {
	switch mode {
	case ModeIntegrity:
		return runtrustv1.Mode_MODE_INTEGRITY
	case ModeImpact:
		return runtrustv1.Mode_MODE_IMPACT
	}
	return runtrustv1.Mode_MODE_UNSPECIFIED
}

func (e *runtimeExporter) authContext(ctx context.Context, token string) context.Context {
	return grpcmd.AppendToOutgoingContext(ctx, wire.AuthorizationHeader, wire.Bearer(token))
}

func (e *runtimeExporter) heartbeatLoop(ctx context.Context) {
	periodic.NowAndEvery(ctx, e.cfg.HeartbeatInterval, e.heartbeat)
}

func (e *runtimeExporter) heartbeat(ctx context.Context) {
	tok := e.token.Load()
	if tok == nil {
		return
	}
	mode, nodes := e.heartbeatState()
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := e.cluster.Heartbeat(e.authContext(callCtx, *tok), &runtrustv1.HeartbeatRequest{
		CollectorVersion: e.set.BuildInfo.Version, Mode: mode, NodeCount: uint32(nodes)})
	if err != nil && ctx.Err() == nil {
		e.log.Warn("heartbeat failed", zap.Error(err))
	}
}

func (e *runtimeExporter) heartbeatState() (runtrustv1.Mode, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	mode := runtrustv1.Mode_MODE_INTEGRITY
	switch {
	case e.cfg.Mode == ModeImpact, e.cfg.Mode == ModeAuto && e.sensorSeen:
		mode = runtrustv1.Mode_MODE_IMPACT
	}
	return mode, len(e.nodes)
}

// convert stamps records entering the exporter with their idempotency key, before the queue, and notes what
// the heartbeat reports (nodes from inventory records, whether sensors report).
func (e *runtimeExporter) convert(_ context.Context, ld plog.Logs) (xexporterhelper.Request, error) {
	e.observe(ld)
	return &batch{key: newKey(), ld: ld}, nil
}

const maxTrackedNodes = 1 << 20

func (e *runtimeExporter) observe(ld plog.Logs) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				switch lr.EventName() {
				case records.EventProcessExec, records.EventFileOpen, records.EventSensorHealth:
					e.sensorSeen = true
				case records.EventK8sNode:
					name, ok := lr.Attributes().Get(records.AttrK8sNodeName)
					if !ok {
						continue
					}
					if ch, ok := lr.Attributes().Get(records.AttrK8sChange); ok && ch.Str() == records.ChangeDeleted {
						delete(e.nodes, name.Str())
					} else if len(e.nodes) < maxTrackedNodes {
						e.nodes[name.Str()] = struct{}{}
					}
				}
			}
		}
	}
}

// errNotEnrolled keeps records queued until enrolment succeeds.
var errNotEnrolled = errors.New("runtime exporter: the cluster is not enrolled yet; records stay queued")

// push sends one queued batch: its requests in order, each under its derived idempotency key.
func (e *runtimeExporter) push(ctx context.Context, r xexporterhelper.Request) error {
	b := r.(*batch)
	tok := e.token.Load()
	if tok == nil {
		return exporterhelper.NewThrottleRetry(errNotEnrolled, time.Second)
	}
	reqs, err := b.requests(e.cfg.MaxRecordsPerRequest)
	if err != nil {
		// The queue's file holds something this exporter cannot read back: sending it again cannot help.
		return consumererror.NewPermanent(err)
	}
	for b.sent < len(reqs) {
		rq := reqs[b.sent]
		if err := e.send(ctx, *tok, rq); err != nil {
			return err
		}
		b.sent++
	}
	return nil
}

func (e *runtimeExporter) send(ctx context.Context, token string, rq request) error {
	ctx = grpcmd.AppendToOutgoingContext(e.authContext(ctx, token), wire.IdempotencyKeyHeader, rq.key)
	var trailer grpcmd.MD
	resp, err := e.export(ctx, rq, &trailer)
	if err == nil {
		if n := resp.PartialSuccess().RejectedLogRecords(); n > 0 {
			// The runtime service says which records and why in the trailer; another OTLP server only in words.
			st := wire.StatusFromTrailer(trailer)
			if st == nil {
				st = status.New(codes.InvalidArgument, resp.PartialSuccess().ErrorMessage())
			}
			e.reject(ctx, n, st)
		}
		return nil
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.OK:
		return nil
	case codes.InvalidArgument:
		// Nothing of this request was stored and sending it again cannot help: drop it, count it, say why.
		e.reject(ctx, int64(rq.records), st)
		return nil
	case codes.Unauthenticated, codes.PermissionDenied:
		e.logUnauthenticated(st)
		return exporterhelper.NewThrottleRetry(err, max(e.cfg.RetryConfig.MaxInterval, time.Second))
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
		if d := wire.RetryAfter(st); d > 0 {
			return exporterhelper.NewThrottleRetry(err, d)
		}
		return err
	default:
		// Internal, Unimplemented, …: the service cannot take this request as it is. Permanent, so the
		// exporterhelper logs it with the record count.
		return consumererror.NewPermanent(fmt.Errorf("runtime service refused %d record(s): %w", rq.records, err))
	}
}

// export makes the OTLP Export call; a request that is already encoded goes as its bytes.
func (e *runtimeExporter) export(ctx context.Context, rq request, trailer *grpcmd.MD) (plogotlp.ExportResponse, error) {
	if rq.raw == nil {
		return e.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(rq.ld), grpc.Trailer(trailer))
	}
	var out grpcraw.Message
	if err := e.conn.Invoke(ctx, logsExportMethod, &grpcraw.Message{B: rq.raw}, &out, grpc.ForceCodecV2(grpcraw.Codec{}), grpc.Trailer(trailer)); err != nil {
		return plogotlp.NewExportResponse(), err
	}
	resp := plogotlp.NewExportResponse()
	if err := resp.UnmarshalProto(out.B); err != nil {
		return resp, status.Errorf(codes.Internal, "decoding the runtime service's answer: %v", err)
	}
	return resp, nil
}

// logsExportMethod is OTLP's LogsService/Export.
const logsExportMethod = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

func (e *runtimeExporter) logUnauthenticated(st *status.Status) {
	e.mu.Lock()
	now := time.Now()
	due := now.Sub(e.unauthLogged) >= time.Minute
	if due {
		e.unauthLogged = now
	}
	e.mu.Unlock()
	if due {
		e.log.Error("the runtime service refused the cluster token: records stay queued and are retried; enrol the cluster again (a new join_key) or configure a valid token",
			zap.String("reason", st.Message()))
	}
}

// rejectionKinds are the service's reasons for the records it refused, from the status details: records refused
// alike share a reason, which is what gets logged once. A status without per-record details is one kind: the
// service's reason for refusing the request whole, else (another OTLP server) its message.
func rejectionKinds(st *status.Status) []string {
	if r, ok := wire.RejectionsOf(st); ok && len(r.Records) > 0 {
		kinds := make([]string, 0, len(r.Records))
		for _, rj := range r.Records {
			kinds = append(kinds, rj.Reason)
		}
		return kinds
	}
	if reason := wire.ReasonOf(st); reason != "" {
		return []string{reason}
	}
	return []string{st.Message()}
}

const maxKindsLogged = 1000

// reject counts n records the service refused and logs each kind of refusal the first time it is seen.
func (e *runtimeExporter) reject(ctx context.Context, n int64, st *status.Status) {
	e.telemetry.ExporterRuntrustRejectedLogRecords.Add(ctx, n)
	for _, kind := range rejectionKinds(st) {
		e.mu.Lock()
		_, seen := e.kindsLogged[kind]
		if !seen && len(e.kindsLogged) < maxKindsLogged {
			e.kindsLogged[kind] = struct{}{}
		}
		e.mu.Unlock()
		if !seen {
			e.log.Warn("the runtime service rejected log records; they are dropped (logged once per kind, counted in otelcol_exporter_runtrust_rejected_log_records)",
				zap.String("kind", kind), zap.String("reason", st.Message()))
		}
	}
}
