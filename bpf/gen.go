// Package bpf holds the runtime sensor's eBPF programs (sensor.c) and their bpf2go output: the compiled objects
// and the Go code that loads them are committed, so building runtrust needs no clang. `make generate` (or
// `go generate ./bpf/`) rebuilds them; it needs clang, llvm and libbpf-dev (Debian:
// `apt-get install -y clang llvm libbpf-dev`). vmlinux.h comes from the build machine's kernel:
// `bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h`; CO-RE relocates the field accesses on
// every other kernel at load.
package bpf

//go:generate go tool -modfile=../tools/go.mod bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type event_exec -type event_open -type dedup_key -type filter_key -type event_type -type event_flag -type filter_hierarchy -type sensor_stat Sensor sensor.c
