package ingest

import (
	"context"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // collectors' OTLP exporters compress with gzip by default

	"github.com/runtrust/runtrust/internal/grpcraw"
)

// The server's codec is grpcraw.WithProto(): the OTLP Export handler receives the request as bytes
// (grpcraw.Message) and decodes it itself, so a payload that is not OTLP gets InvalidArgument naming the decode
// error; decoded by gRPC, it would get Internal ("grpc: error unmarshalling request"), which tells the client
// nothing it can act on. Everything else (runtrust.v1) goes through protobuf.

// The OTLP LogsService, registered by hand so that Export receives the raw request (see rawMessage).
const (
	logsServiceName = "opentelemetry.proto.collector.logs.v1.LogsService"
	logsExportPath  = "/" + logsServiceName + "/Export"
)

type logsExporter interface {
	exportRaw(ctx context.Context, req *grpcraw.Message) (*grpcraw.Message, error)
}

var logsServiceDesc = grpc.ServiceDesc{
	ServiceName: logsServiceName,
	HandlerType: (*logsExporter)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(grpcraw.Message)
			if err := dec(in); err != nil {
				return nil, err
			}
			handle := func(ctx context.Context, req any) (any, error) {
				return srv.(logsExporter).exportRaw(ctx, req.(*grpcraw.Message))
			}
			if interceptor == nil {
				return handle(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: logsExportPath}, handle)
		},
	}},
	Metadata: "opentelemetry/proto/collector/logs/v1/logs_service.proto",
}
