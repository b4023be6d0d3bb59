package ingest_test

import (
	"google.golang.org/grpc/mem"
)

type rawBytes struct{ b []byte }

// rawClientCodec sends rawBytes as they are, for tests that send what no OTLP client would.
type rawClientCodec struct{}

func (rawClientCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawBytes).b)}, nil
}

func (rawClientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawBytes).b = data.Materialize()
	return nil
}

func (rawClientCodec) Name() string { return "proto" }
