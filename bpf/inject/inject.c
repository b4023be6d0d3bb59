// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//go:build ignore

// Test-only: writes copies of a template event into the runtime sensor's ring buffer, so its reader can be driven
// at rates a small machine's exec path cannot reach (receivers/runtimesensorreceiver BenchmarkReaderStorm). The
// loader replaces "events" with the sensor's own ring buffer; a getppid(2) by the target process emits "count"
// copies of the template. Never loaded by the collector.

#include "../vmlinux.h"
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define TEMPLATE_CAP 4096

struct template {
	u32 size;  // bytes of data to send (< TEMPLATE_CAP)
	u32 count; // copies per getppid(2)
	u8 data[TEMPLATE_CAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16); // replaced by the sensor's ring buffer
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct template);
} template_map SEC(".maps");

// Slot 0: copies sent; slot 1: copies the ring buffer had no room for.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

const struct template *unused_template __attribute__((unused));

volatile const u32 target_tgid = 0;

static long emit(u32 i, void *unused)
{
	u32 zero = 0;
	struct template *t = bpf_map_lookup_elem(&template_map, &zero);
	if (!t)
		return 1;
	u32 slot = bpf_ringbuf_output(&events, t->data, t->size & (TEMPLATE_CAP - 1), BPF_RB_NO_WAKEUP) == 0 ? 0 : 1;
	u64 *c = bpf_map_lookup_elem(&counts, &slot);
	if (c)
		__sync_fetch_and_add(c, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int inject(void *ctx)
{
	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	u32 zero = 0;
	struct template *t = bpf_map_lookup_elem(&template_map, &zero);
	if (!t)
		return 0;
	bpf_loop(t->count, emit, 0, 0);
	return 0;
}
