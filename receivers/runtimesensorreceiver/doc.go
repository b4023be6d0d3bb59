// Package runtimesensorreceiver is the runtime sensor: one per node, it loads eBPF programs (package bpf) that see
// every process exec and file open, attributes each to its container (cgroup → container id → pod), and emits
// runtrust.process.exec, runtrust.file.open and runtrust.sensor.health log records.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package runtimesensorreceiver // import "github.com/runtrust/runtrust/receivers/runtimesensorreceiver"
