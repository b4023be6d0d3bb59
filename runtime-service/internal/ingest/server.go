// Package ingest is the runtime service's gRPC side: the standard OTLP LogsService, so any collector's stock
// otlp exporter can feed it, and runtrust.v1.ClusterService for enrolment and heartbeats. Every call but Enrol
// is authenticated by the cluster's token; each cluster has its own rate limit.
package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/runtrust/runtrust/internal/grpcraw"
	"github.com/runtrust/runtrust/internal/wire"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Metadata keys the service reads, as internal/wire defines them (named here too for the service's own tools
// and tests).
const (
	// AuthorizationHeader carries "Bearer <collector token>".
	AuthorizationHeader = wire.AuthorizationHeader
	// IdempotencyKeyHeader names a batch; a batch sent again with the same key is acknowledged and not applied
	// again. Keys are remembered for IdempotencyKeyTTL.
	IdempotencyKeyHeader = wire.IdempotencyKeyHeader
)

// IdempotencyKeyTTL is how long the store remembers a batch's idempotency key.
const IdempotencyKeyTTL = 24 * time.Hour

// Limits bound what one cluster may send.
type Limits struct {
	// MaxRequestBytes bounds one request, decompressed.
	MaxRequestBytes int
	// RecordsPerSecond is each cluster's sustained rate; Burst the most records it may send at once.
	RecordsPerSecond float64
	Burst            int
}

// DefaultLimits suit a large cluster in Impact mode: 8 MiB requests, 20k records/s, bursts of 100k.
var DefaultLimits = Limits{MaxRequestBytes: wire.DefaultMaxRequestBytes, RecordsPerSecond: wire.DefaultRecordsPerSecond,
	Burst: wire.DefaultBurst}

// Server implements both gRPC services.
type Server struct {
	runtrustv1.UnimplementedClusterServiceServer

	store   *store.Store
	log     *slog.Logger
	limits  Limits
	metrics *Metrics
	now     func() time.Time

	// Failed enrolments (a wrong or foreign join key) together are limited, successful ones are not: join keys
	// are guessable only by brute force, which fails at this rate, while a 500-node DaemonSet rolling out
	// enrols all its sensors at once with the right key.
	enrolFailures *rate.Limiter

	mu       sync.Mutex
	limiters map[int64]*rate.Limiter
	tokens   map[string]tokenEntry // token hash → cluster, briefly cached
}

type tokenEntry struct {
	c       store.Cluster
	expires time.Time
}

// tokenCacheTTL is how long a token lookup is reused. A revoked token keeps working for at most this long.
const tokenCacheTTL = 10 * time.Second

// NewServer returns the ingest server over s.
func NewServer(s *store.Store, log *slog.Logger, limits Limits, m *Metrics) *Server {
	return &Server{
		store:         s,
		log:           log,
		limits:        limits,
		metrics:       m,
		now:           time.Now,
		enrolFailures: rate.NewLimiter(5, 20),
		limiters:      map[int64]*rate.Limiter{},
		tokens:        map[string]tokenEntry{},
	}
}

// TLSFiles configure transport security. Cert and Key enable TLS; ClientCA also requires client certificates
// signed by it (mTLS), on top of the token.
type TLSFiles struct {
	Cert, Key, ClientCA string
}

// TLSConfig loads the files; nil when TLS is off.
func (f TLSFiles) TLSConfig() (*tls.Config, error) {
	if f.Cert == "" && f.Key == "" {
		if f.ClientCA != "" {
			return nil, errors.New("a client CA (mTLS) needs a server certificate and key too")
		}
		return nil, nil
	}
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("TLS needs both a certificate and a key")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s / key %s: %w", f.Cert, f.Key, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.ClientCA != "" {
		pem, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s holds no PEM certificate", f.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// GRPCServer builds the gRPC server with both services registered.
func (s *Server) GRPCServer(tlsCfg *tls.Config) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(grpcraw.WithProto()),
		grpc.MaxRecvMsgSize(s.limits.MaxRequestBytes),
		grpc.ChainUnaryInterceptor(s.authenticate),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	g := grpc.NewServer(opts...)
	g.RegisterService(&logsServiceDesc, s)
	runtrustv1.RegisterClusterServiceServer(g, s)
	return g
}

type clusterKey struct{}

func clusterFrom(ctx context.Context) store.Cluster {
	c, _ := ctx.Value(clusterKey{}).(store.Cluster)
	return c
}

// authenticate resolves the call's token to its cluster; only Enrol goes without.
func (s *Server) authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod == runtrustv1.ClusterService_Enrol_FullMethodName {
		return handler(ctx, req)
	}
	token, err := bearerToken(ctx)
	if err != nil {
		s.countBatch(info.FullMethod, "unauthenticated")
		return nil, err
	}
	c, err := s.cluster(ctx, token)
	if err != nil {
		if errors.Is(err, store.ErrTokenUnknown) {
			s.countBatch(info.FullMethod, "unauthenticated")
			return nil, status.Error(codes.Unauthenticated, "the cluster token is unknown or was replaced by a later enrolment")
		}
		s.countBatch(info.FullMethod, "unavailable")
		return nil, storeStatus(err)
	}
	return handler(context.WithValue(ctx, clusterKey{}, c), req)
}

func (s *Server) countBatch(method, result string) {
	if method == logsExportPath {
		s.metrics.Batches.WithLabelValues(result).Inc()
	}
}

func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(AuthorizationHeader)
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, `no "authorization: Bearer <cluster token>" metadata; enrol the cluster to get a token`)
	}
	token, ok := wire.TokenFromBearer(vals[0])
	if !ok {
		return "", status.Error(codes.Unauthenticated, `the authorization metadata is not "Bearer <cluster token>"`)
	}
	return token, nil
}

func (s *Server) cluster(ctx context.Context, token string) (store.Cluster, error) {
	key := string(store.Hash(token))
	now := s.now()
	s.mu.Lock()
	e, ok := s.tokens[key]
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.c, nil
	}
	c, err := s.store.ClusterByToken(ctx, token)
	if err != nil {
		return store.Cluster{}, err
	}
	s.mu.Lock()
	if len(s.tokens) > 10000 { // a bound, not an LRU: refilling costs one lookup per cluster
		s.tokens = map[string]tokenEntry{}
	}
	s.tokens[key] = tokenEntry{c: c, expires: now.Add(tokenCacheTTL)}
	s.mu.Unlock()
	return c, nil
}

func (s *Server) limiter(clusterID int64) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limiters[clusterID]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(s.limits.RecordsPerSecond), s.limits.Burst)
		s.limiters[clusterID] = l
	}
	return l
}

// storeStatus maps a store error to what the client should do: retry (Unavailable) or give up (Internal).
func storeStatus(err error) error {
	if store.DiskFull(err) {
		return status.Errorf(codes.Unavailable, "the runtime service's database is out of disk space; nothing from this call was stored, retry it when the database has space again: %v", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		return status.Errorf(codes.Unavailable, "the store is unavailable; nothing from this call was stored, retry it: %v", err)
	}
	return status.Errorf(codes.Internal, "store: %v", err)
}

func idempotencyKey(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(IdempotencyKeyHeader)
	if len(vals) == 0 {
		return "", nil
	}
	if err := wire.CheckIdempotencyKey(vals[0]); err != nil {
		return "", wire.RefusedStatus(wire.ReasonIdempotencyKeyInvalid, fmt.Sprintf("%s %v", IdempotencyKeyHeader, err)).Err()
	}
	return vals[0], nil
}

// exportRaw is OTLP LogsService/Export: decode, check, store, and answer with a partial success naming what was
// rejected. It returns only after the batch's transaction committed.
func (s *Server) exportRaw(ctx context.Context, in *grpcraw.Message) (*grpcraw.Message, error) {
	s.metrics.InFlight.Inc()
	defer s.metrics.InFlight.Dec()
	start := time.Now()
	c := clusterFrom(ctx)
	key, err := idempotencyKey(ctx)
	if err != nil {
		s.metrics.Batches.WithLabelValues("invalid").Inc()
		return nil, err
	}
	d, err := DecodeRequest(in.B, c, s.now())
	if err != nil {
		s.metrics.Batches.WithLabelValues("invalid").Inc()
		s.log.Warn("undecodable OTLP request", "cluster", c.UID, "bytes", len(in.B), "error", err)
		return nil, wire.RefusedStatus(wire.ReasonRequestUndecodable, fmt.Sprintf("the request is not an OTLP ExportLogsServiceRequest: %v", err)).Err()
	}
	// The rate limit counts every record, kept or rejected. It is checked after decoding (the wire decoder
	// counts as it goes); decoding costs far less than the store, which is what the limit protects.
	if n := d.Batch.Len() + d.Rejected; n > 0 {
		r := s.limiter(c.ID).ReserveN(s.now(), min(n, s.limits.Burst))
		if delay := r.DelayFrom(s.now()); delay > 0 {
			r.Cancel()
			s.metrics.Batches.WithLabelValues("rate_limited").Inc()
			return nil, wire.RetryStatus(codes.ResourceExhausted,
				fmt.Sprintf("cluster %s is over its rate limit of %.0f records/s; retry later", c.UID, s.limits.RecordsPerSecond), delay).Err()
		}
	}
	for ev, n := range d.Kinds {
		s.metrics.Records.WithLabelValues(ev, "accepted").Add(float64(n))
	}
	if d.Rejected > 0 {
		s.metrics.Records.WithLabelValues("", "rejected").Add(float64(d.Rejected))
		s.log.Warn("rejected log records", "cluster", c.UID, "rejected", d.Rejected, "detail", d.Message())
	}
	if d.Batch.Len() == 0 {
		if d.Rejected > 0 {
			s.metrics.Batches.WithLabelValues("invalid").Inc()
			return nil, wire.RejectedStatus(d.Rejections()).Err()
		}
		s.metrics.Batches.WithLabelValues("ok").Inc()
		return marshalResponse(plogotlp.NewExportResponse())
	}
	res, err := s.store.Apply(ctx, c, key, &d.Batch)
	if err != nil {
		result := "error"
		if errors.Is(err, store.ErrUnavailable) {
			result = "unavailable"
		}
		s.metrics.Batches.WithLabelValues(result).Inc()
		s.log.Error("batch not stored", "cluster", c.UID, "records", d.Batch.Len(), "error", err)
		return nil, storeStatus(err)
	}
	s.metrics.Duration.Observe(time.Since(start).Seconds())
	s.metrics.Events.WithLabelValues("unattributed").Add(float64(res.Unattributed))
	s.metrics.Events.WithLabelValues("raw_skipped").Add(float64(res.RawSkipped))
	resp := plogotlp.NewExportResponse()
	switch {
	case res.Duplicate:
		s.metrics.Batches.WithLabelValues("duplicate").Inc()
	case d.Rejected > 0:
		s.metrics.Batches.WithLabelValues("partial").Inc()
	default:
		s.metrics.Batches.WithLabelValues("ok").Inc()
	}
	if d.Rejected > 0 {
		// The partial success says how many and why in words; the trailer says which, for programs.
		resp.PartialSuccess().SetRejectedLogRecords(int64(d.Rejected))
		resp.PartialSuccess().SetErrorMessage(d.Message())
		if err := grpc.SetTrailer(ctx, wire.PartialSuccessTrailer(wire.RejectedStatus(d.Rejections()))); err != nil {
			s.log.Warn("the rejections trailer could not be set", "cluster", c.UID, "error", err)
		}
	}
	return marshalResponse(resp)
}

func marshalResponse(r plogotlp.ExportResponse) (*grpcraw.Message, error) {
	b, err := r.MarshalProto()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode response: %v", err)
	}
	return &grpcraw.Message{B: b}, nil
}

// Enrol spends a join key for a cluster token. A node's sensor new to its cluster beyond the cluster's node
// entitlement gets FailedPrecondition saying so (store.EntitlementError).
func (s *Server) Enrol(ctx context.Context, req *runtrustv1.EnrolRequest) (*runtrustv1.EnrolResponse, error) {
	if s.enrolFailures.Tokens() < 1 {
		return nil, status.Error(codes.ResourceExhausted, "too many failed enrolments lately; retry in a few seconds")
	}
	resp, err := s.enrol(ctx, req)
	if status.Code(err) == codes.Unauthenticated {
		// A reservation, not Allow: concurrent failures all count, running the limiter into debt that must
		// refill before the next attempt.
		s.enrolFailures.Reserve()
	}
	return resp, err
}

func (s *Server) enrol(ctx context.Context, req *runtrustv1.EnrolRequest) (*runtrustv1.EnrolResponse, error) {
	if req.GetJoinKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "join_key is empty")
	}
	if req.GetClusterUid() == "" {
		return nil, status.Error(codes.InvalidArgument, "cluster_uid is empty (the uid of the cluster's kube-system namespace, by convention)")
	}
	for field, v := range map[string]string{"cluster_uid": req.GetClusterUid(), "cluster_name": req.GetClusterName()} {
		if msg := checkString(field, v); msg != "" {
			return nil, status.Error(codes.InvalidArgument, msg)
		}
	}
	if err := wire.CheckCollectorID(req.GetCollectorId()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, `collector_id %v; use the node name or "controller"`, err)
	}
	mode, ok := modeNames[req.GetMode()]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "mode %d is not a runtrust.v1.Mode", req.GetMode())
	}
	name := req.GetClusterName()
	if name == "" {
		name = req.GetClusterUid()
	}
	token, c, err := s.store.EnrolCollector(ctx, store.Enrolment{JoinKey: req.GetJoinKey(), ClusterUID: req.GetClusterUid(),
		ClusterName: name, CollectorID: req.GetCollectorId(), Mode: mode})
	if errors.Is(err, store.ErrJoinKeyInvalid) {
		s.log.Warn("enrolment refused", "cluster_uid", req.GetClusterUid(), "collector_id", req.GetCollectorId(), "reason", err)
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if errors.Is(err, store.ErrEntitlementExceeded) {
		// FailedPrecondition: the request is right, the cluster's state refuses it until the entitlement is
		// raised or a node's sensor removed; the exporter logs the message and keeps its records queued.
		s.log.Warn("sensor refused by the node entitlement", "cluster_uid", req.GetClusterUid(), "cluster_name", name,
			"collector_id", req.GetCollectorId(), "reason", err)
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		return nil, storeStatus(err)
	}
	s.forgetCollector(c.Collector)
	s.log.Info("collector enrolled", "cluster_uid", c.UID, "cluster_name", c.Name, "collector_id", c.CollectorID, "mode", mode)
	return &runtrustv1.EnrolResponse{Token: token}, nil
}

// forgetCollector drops the cached tokens of a collector that just enrolled again, so its replaced token stops
// working on this replica at once rather than after tokenCacheTTL. Another replica's cache still honours it for
// up to tokenCacheTTL. Its cluster's other collectors keep their entries.
func (s *Server) forgetCollector(collector int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.tokens {
		if e.c.Collector == collector {
			delete(s.tokens, k)
		}
	}
}

// modeNames are the collectors.mode values.
var modeNames = map[runtrustv1.Mode]string{
	runtrustv1.Mode_MODE_UNSPECIFIED: "",
	runtrustv1.Mode_MODE_INTEGRITY:   "integrity",
	runtrustv1.Mode_MODE_IMPACT:      "impact",
}

// Heartbeat stores what the calling collector (the token's) says about itself.
func (s *Server) Heartbeat(ctx context.Context, req *runtrustv1.HeartbeatRequest) (*runtrustv1.HeartbeatResponse, error) {
	mode, ok := modeNames[req.GetMode()]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "mode %d is not a runtrust.v1.Mode", req.GetMode())
	}
	if msg := checkString("collector_version", req.GetCollectorVersion()); msg != "" {
		return nil, status.Error(codes.InvalidArgument, msg)
	}
	if len(req.GetCollectorVersion()) > 128 {
		return nil, status.Error(codes.InvalidArgument, "collector_version is longer than 128 bytes")
	}
	if req.GetNodeCount() > 1<<20 {
		return nil, status.Errorf(codes.InvalidArgument, "node_count %d is not a plausible node count", req.GetNodeCount())
	}
	c := clusterFrom(ctx)
	if err := s.store.Heartbeat(ctx, c, req.GetCollectorVersion(), mode, int(req.GetNodeCount())); err != nil {
		if errors.Is(err, store.ErrTokenUnknown) {
			return nil, status.Error(codes.Unauthenticated, "the cluster token is unknown or was replaced by a later enrolment")
		}
		return nil, storeStatus(err)
	}
	return &runtrustv1.HeartbeatResponse{ReceivedUnixNano: s.now().UnixNano()}, nil
}
