// Package testbed runs runtrust end to end on real parts: the built otelcol-runtrust binary (controller and
// sensor modes, the shipped configs), the runtime service binary on PostgreSQL, OCI registries, etcd +
// kube-apiserver, containerd + runc, headless Chromium, real gRPC on loopback (docs/testbed.md).
//
// Stack starts the parts; the scenarios (scenarios_test.go) tell the stories a platform team lives through and
// check the API and the UI at the end. LoadStack and TestLoad drive the controller pipeline and the service at
// fixed rates and measure throughput, drops, latency, CPU and memory (docs/performance.md, "Testbed load").
//
// Tests here need `make dist` first (or RUNTRUST_OTELCOL pointing at a built binary) and `make kube-apiserver`;
// `make e2e` and `make test` do both.
package testbed
