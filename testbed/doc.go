// Package testbed runs runtrust end to end on real parts: the built otelcol-runtrust binary, real gRPC on
// loopback, real files. Tests here need `make dist` first (or RUNTRUST_OTELCOL pointing at a built binary);
// `make test` does both.
package testbed
