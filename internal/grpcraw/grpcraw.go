// Package grpcraw carries protobuf messages through gRPC as bytes, for calls whose messages are encoded or
// decoded outside gRPC's codec: a server that decodes OTLP itself (to answer a bad payload with a clear error),
// a client that speaks a few messages of an API by hand, or an exporter that sends a request it already holds
// encoded.
package grpcraw

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Message is a protobuf message as its encoding.
type Message struct{ B []byte }

// Codec passes *Message through as it is, and any other message to Fallback (nil: an error). Its name is
// "proto", so the content type stays application/grpc+proto.
type Codec struct{ Fallback encoding.CodecV2 }

// WithProto is the codec for a server or client that has generated messages beside the raw ones.
func WithProto() Codec { return Codec{Fallback: encoding.GetCodecV2(proto.Name)} }

func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*Message); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.B)}, nil
	}
	if c.Fallback == nil {
		return nil, fmt.Errorf("grpcraw: cannot marshal %T", v)
	}
	return c.Fallback.Marshal(v)
}

func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*Message); ok {
		m.B = data.Materialize()
		return nil
	}
	if c.Fallback == nil {
		return fmt.Errorf("grpcraw: cannot unmarshal into %T", v)
	}
	return c.Fallback.Unmarshal(data, v)
}

func (Codec) Name() string { return proto.Name }
