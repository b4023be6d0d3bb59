package grpcraw

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestCodec(t *testing.T) {
	raw := Codec{}
	b, err := raw.Marshal(&Message{B: []byte{0x0a, 0x01, 'x'}})
	require.NoError(t, err)
	require.Equal(t, []byte{0x0a, 0x01, 'x'}, b.Materialize())
	var m Message
	require.NoError(t, raw.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{1, 2})}, &m))
	require.Equal(t, []byte{1, 2}, m.B)
	_, err = raw.Marshal(wrapperspb.String("x"))
	require.EqualError(t, err, "grpcraw: cannot marshal *wrapperspb.StringValue")
	require.EqualError(t, raw.Unmarshal(nil, wrapperspb.String("x")), "grpcraw: cannot unmarshal into *wrapperspb.StringValue")
	require.Equal(t, "proto", raw.Name())

	// With the proto fallback, generated messages go through protobuf and raw ones stay raw.
	c := WithProto()
	b, err = c.Marshal(wrapperspb.String("x"))
	require.NoError(t, err)
	require.Equal(t, []byte{0x0a, 0x01, 'x'}, b.Materialize())
	var s wrapperspb.StringValue
	require.NoError(t, c.Unmarshal(b, &s))
	require.Equal(t, "x", s.GetValue())
	require.NoError(t, c.Unmarshal(b, &m))
	require.Equal(t, []byte{0x0a, 0x01, 'x'}, m.B)
}
