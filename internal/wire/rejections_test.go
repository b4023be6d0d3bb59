package wire

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var refused = Rejections{Total: 7, Records: []Rejection{
	{Record: 0, Reason: `("runtrust.k8s.pod"): k8s.pod.uid is missing`},
	{Record: 12, Reason: `(""): no event name`},
}}

func TestRejectionsMessage(t *testing.T) {
	want := `7 log record(s) rejected: record 0 ("runtrust.k8s.pod"): k8s.pod.uid is missing; record 12 (""): no event name; …`
	if got := refused.Message(); got != want {
		t.Fatalf("message %q\nwant    %q", got, want)
	}
	all := Rejections{Total: 1, Records: refused.Records[:1]}
	if got := all.Message(); got != `1 log record(s) rejected: record 0 ("runtrust.k8s.pod"): k8s.pod.uid is missing` {
		t.Fatalf("message %q", got)
	}
	if (Rejections{}).Message() != "" {
		t.Fatal("nothing refused, yet a message")
	}
}

// refusingHealth answers Check with the scripted error and trailer, so the statuses cross a real gRPC connection.
type refusingHealth struct {
	*health.Server
	err     error
	trailer metadata.MD
}

func (h refusingHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if h.trailer != nil {
		if err := grpc.SetTrailer(ctx, h.trailer); err != nil {
			return nil, err
		}
	}
	if h.err != nil {
		return nil, h.err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func call(t *testing.T, srv refusingHealth) (metadata.MD, error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, srv)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var md metadata.MD
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Trailer(&md))
	return md, err
}

func TestRejectedStatusOverGRPC(t *testing.T) {
	_, err := call(t, refusingHealth{Server: health.NewServer(), err: RejectedStatus(refused).Err()})
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument || st.Message() != refused.Message() {
		t.Fatalf("status %v %q", st.Code(), st.Message())
	}
	got, ok := RejectionsOf(st)
	if !ok || !reflect.DeepEqual(got, refused) || ReasonOf(st) != ReasonRecordsRejected {
		t.Fatalf("rejections %+v %v (%s); want %+v", got, ok, ReasonOf(st), refused)
	}
}

func TestRefusedStatusOverGRPC(t *testing.T) {
	_, err := call(t, refusingHealth{Server: health.NewServer(), err: RefusedStatus(ReasonRequestUndecodable, "not OTLP: 12 bytes").Err()})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || ReasonOf(st) != ReasonRequestUndecodable || st.Message() != "not OTLP: 12 bytes" {
		t.Fatalf("%v: reason %q", st, ReasonOf(st))
	}
	if _, ok := RejectionsOf(st); ok {
		t.Fatal("a request refused whole read as record rejections")
	}
}

func TestPartialSuccessTrailerOverGRPC(t *testing.T) {
	md, err := call(t, refusingHealth{Server: health.NewServer(), trailer: PartialSuccessTrailer(RejectedStatus(refused))})
	if err != nil {
		t.Fatal(err)
	}
	st := StatusFromTrailer(md)
	if st == nil {
		t.Fatalf("no status in the trailer %v", md)
	}
	got, ok := RejectionsOf(st)
	if !ok || !reflect.DeepEqual(got, refused) || st.Message() != refused.Message() {
		t.Fatalf("rejections %+v %v, message %q", got, ok, st.Message())
	}
	if StatusFromTrailer(metadata.MD{}) != nil {
		t.Fatal("a status from an empty trailer")
	}
}

func TestRetryStatusOverGRPC(t *testing.T) {
	_, err := call(t, refusingHealth{Server: health.NewServer(), err: RetryStatus(codes.ResourceExhausted, "slow down", 700*time.Millisecond).Err()})
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || RetryAfter(st) != 700*time.Millisecond {
		t.Fatalf("%v: retry after %s", st, RetryAfter(st))
	}
	if _, ok := RejectionsOf(st); ok {
		t.Fatal("a retry status read as rejections")
	}
}

func TestRejectionsOfOtherStatuses(t *testing.T) {
	for _, st := range []*status.Status{
		status.New(codes.InvalidArgument, "2 log record(s) rejected: record 0 …"), // words only: not parsed
		status.Convert(errors.New("plain")),
	} {
		if r, ok := RejectionsOf(st); ok {
			t.Errorf("%v: rejections %+v", st, r)
		}
	}
	if ReasonOf(status.New(codes.InvalidArgument, "x")) != "" {
		t.Error("a reason from a status without ErrorInfo")
	}
	if RetryAfter(status.New(codes.Unavailable, "down")) != 0 {
		t.Error("retry delay from a status without RetryInfo")
	}
}
