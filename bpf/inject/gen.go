// Package inject is a test-only eBPF program that feeds copies of a template event into the runtime sensor's
// ring buffer, to drive the sensor's reader at a chosen rate (see inject.c). Nothing but benchmarks imports it.
// `go generate` rebuilds it like package bpf (clang, llvm, libbpf-dev).
package inject

//go:generate go tool -modfile=../../tools/go.mod bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type template Inject inject.c
