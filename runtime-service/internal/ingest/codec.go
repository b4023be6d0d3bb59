package ingest

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // collectors' OTLP exporters compress with gzip by default
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// rawMessage is a gRPC message the codec passes through as bytes. The OTLP Export handler decodes the request
// itself, so a payload that is not OTLP gets InvalidArgument naming the decode error; decoded by gRPC, it would
// get Internal ("grpc: error unmarshalling request"), which tells the client nothing it can act on.
type rawMessage struct{ b []byte }

// rawCodec is the server's codec: rawMessage as bytes, everything else (runtrust.v1) as protobuf.
type rawCodec struct{ proto encoding.CodecV2 }

func newRawCodec() rawCodec { return rawCodec{proto: encoding.GetCodecV2(proto.Name)} }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(r.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawMessage); ok {
		r.b = data.Materialize()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

func (c rawCodec) Name() string { return proto.Name }

// The OTLP LogsService, registered by hand so that Export receives the raw request (see rawMessage).
const (
	logsServiceName = "opentelemetry.proto.collector.logs.v1.LogsService"
	logsExportPath  = "/" + logsServiceName + "/Export"
)

type logsExporter interface {
	exportRaw(ctx context.Context, req *rawMessage) (*rawMessage, error)
}

var logsServiceDesc = grpc.ServiceDesc{
	ServiceName: logsServiceName,
	HandlerType: (*logsExporter)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(rawMessage)
			if err := dec(in); err != nil {
				return nil, err
			}
			handle := func(ctx context.Context, req any) (any, error) {
				return srv.(logsExporter).exportRaw(ctx, req.(*rawMessage))
			}
			if interceptor == nil {
				return handle(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: logsExportPath}, handle)
		},
	}},
	Metadata: "opentelemetry/proto/collector/logs/v1/logs_service.proto",
}
