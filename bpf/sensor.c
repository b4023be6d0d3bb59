// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//go:build ignore

// runtrust runtime sensor: process exec and file open events, with the cgroups that attribute them to containers.
//
// Programs:
//   tp_btf/sched_process_exec        every successful exec: pids, ids, arguments, the file, the cgroups.
//   and one of, for opens (the loader takes the first the kernel allows, in this order):
//   lsm/file_open                    every open the kernel makes for a task;
//   fexit/do_filp_open               every open by name;
//   tracepoint/syscalls/sys_exit_*   every successful open(2), openat(2), openat2(2), creat(2),
//                                    open_by_handle_at(2): the new descriptor's struct file;
//   each deduplicated.
// Paths are built by walking dentries and mounts up to the task's root (resolve_path), so they are absolute and
// as the process sees them (a container's paths inside its root filesystem), whatever relative name it passed.
// bpf_d_path would be shorter but is not allowed from every hook; kprobes may be compiled out. Exec needs no
// trampoline: a BTF tracepoint is a direct call already, and sched_process_exec fires once the exec has
// succeeded, where the bprm LSM hooks fire before it can still fail.
//
// Events are variable-length records (a fixed header, then the strings) sent through one BPF ring buffer. The
// layout is decoded by receivers/runtimesensorreceiver/internal/sensor/event.go through the Go types bpf2go emits
// for these structs and enums (the -type flags in gen.go); its tests check the Go layout against this file's BTF.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char __license[] SEC("license") = "Dual MIT/GPL";

// Event types: the first u32 of every event. An enum, not #defines, so bpf2go emits them for the decoder.
enum event_type {
	EVENT_EXEC = 1,
	EVENT_OPEN = 2,
};

// Event flags.
enum event_flag {
	FLAG_PATH_TRUNCATED = 1, // the path was deeper or longer than the walk allows: its leading part is missing
	FLAG_ARGS_TRUNCATED = 2, // the arguments were longer than ARGS_CAP
	FLAG_CWD_TRUNCATED = 4,  // exec: the working directory is truncated like a path
	FLAG_PATH_DETACHED = 8,  // the file is reachable from no directory: a memfd or another pseudo file, or a
				 // disconnected dentry; the path is "/" and its own name, as d_path shows a memfd
};

// The cgroup hierarchies of filter_key.
enum filter_hierarchy {
	HIERARCHY_V2 = 0,        // cgroup v2
	HIERARCHY_V1_MEMORY = 1, // the cgroup v1 memory controller
};

#define PBUF 4096      // a path's room (PATH_MAX)
#define NAME_CAP 256   // one path component (NAME_MAX + 1)
#define PATH_DEPTH 64  // path components and mount crossings walked (bpf_loop)
#define ARGS_CAP 1024  // bytes of the NUL-separated argument list
#define CGNAME_CAP 128 // one cgroup directory name
#define CG_LEVELS 3    // leaf, parent, grandparent names per hierarchy
#define FILTER_LEVELS 10

#define O_ACCMODE_ 3
#define PF_KTHREAD_ 0x00200000

// Counters, one slot each in the per-CPU "stats" array.
enum sensor_stat {
	STAT_EXEC = 0,      // exec events sent
	STAT_OPEN = 1,      // open events sent
	STAT_DROPPED = 2,   // events the ring buffer had no room for
	STAT_DEDUP_HIT = 3, // opens suppressed by the dedup map
	STAT_FILTERED = 4,  // events skipped by the cgroup filter
	STAT_MAX = 5,
};

// A kfunc (6.2+) that turns a plain kernel pointer into a read-only BTF one, whose field reads are direct loads.
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

// Set by the loader before load.
volatile const u8 filter_containers = 0; // 1: only cgroups under a "container_cgroups" entry are captured
volatile const u64 dedup_ttl_ns = 0;     // 0: an open is reported once per (cgroup, inode, device, access mode)
// 1: never wake the reader (BPF_RB_NO_WAKEUP); it drains the ring buffer on a timer instead. A wake-up per event
// cost the receiver an epoll round trip and a goroutine hand-off each, most of its CPU in an exec storm.
volatile const u8 no_wakeup = 0;

struct event_exec {
	u32 type;  // enum event_type
	u32 flags; // enum event_flag bits
	u64 cgroup_id;  // bpf_get_current_cgroup_id(): the inode of the cgroup v2 directory
	u64 start_time; // task start, ns since boot (CLOCK_MONOTONIC)
	u64 ino;        // executable's inode
	u64 size;       // executable's size
	s64 mtime_sec;  // executable's mtime
	u32 mtime_nsec;
	u32 dev; // executable's device, kernel encoding (major << 20 | minor)
	u32 pid; // thread id that exec'd (== tgid after exec)
	u32 tgid;
	u32 ppid; // real parent's tgid
	u32 uid;  // effective
	u32 gid;  // effective
	u32 argc;
	u16 path_len; // bytes of each string in data, in this order, each followed by a NUL that is not counted
	u16 cwd_len;
	u16 args_len; // NUL-separated arguments (no extra NUL after them)
	u16 cg_len;   // cgroup tails: "/grandparent/parent/leaf" NUL of v2, then the same of the v1 memory hierarchy
	u8 comm[16]; // the process's name (after exec: the executable's base name, cut to 15 bytes)
	u8 data[];
};

struct event_open {
	u32 type; // enum event_type
	u32 flags;
	u64 cgroup_id;
	u64 ino;
	u32 dev;
	u32 open_flags; // f_flags
	u32 pid;        // thread id
	u32 tgid;
	u16 path_len;
	u16 cg_len;
	u32 _pad;
	u8 comm[16];
	u8 data[];
};

// Scratch space, big enough that the verifier can prove every bounded write lands inside it.
#define DATA_CAP (PBUF * 4)
#define DATA_LIMIT (DATA_CAP - PBUF - 1)
#define SCRATCH_SIZE 32768 // the largest per-CPU value; a power of two, so a mask bounds an event's size
struct scratch {
	u8 buf[SCRATCH_SIZE];
};

// A path is assembled backwards, ending at buf[PBUF].
struct pathbuf {
	u8 buf[2 * PBUF];
};

struct dedup_key {
	u64 cgroup_id;
	u64 ino;
	u32 dev;
	u32 acc;
};

struct filter_key {
	u64 id;
	u32 hierarchy; // enum filter_hierarchy
	u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24); // resized by the loader
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct pathbuf);
} path_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); // resized by the loader
	__type(key, struct dedup_key);
	__type(value, u64);
} dedup SEC(".maps");

// A per-CPU direct-mapped cache in front of "dedup": an open whose key sits in its slot is a hit without the LRU
// hash lookup (hashing the key, the bucket walk, the LRU reference mark). In an open storm over 1,000 files it
// took the program from ~230 to ~160 ns an open (docs/performance.md). A slot only ever holds a key the LRU
// reported or found, so it suppresses only what the LRU would have (give or take a key the LRU has just
// evicted, which the slot keeps suppressing until another key takes the slot).
#define RECENT_BITS 12
struct dedup_slot {
	struct dedup_key key;
	u64 seen; // when the key was reported: the dedup TTL runs from here
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1 << RECENT_BITS);
	__type(key, u32);
	__type(value, struct dedup_slot);
} recent SEC(".maps");

// Cgroups whose subtree is captured when filter_containers is set, maintained by user space.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct filter_key);
	__type(value, u8);
} container_cgroups SEC(".maps");

// Force the header types into BTF, so bpf2go generates Go types for them.
const struct event_exec *unused_exec __attribute__((unused));
const struct event_open *unused_open __attribute__((unused));
const struct dedup_key *unused_dedup __attribute__((unused));
const struct filter_key *unused_filter __attribute__((unused));
// And the enums the decoder and the loader use.
const enum event_type *unused_event_type __attribute__((unused));
const enum event_flag *unused_event_flag __attribute__((unused));
const enum filter_hierarchy *unused_hierarchy __attribute__((unused));
const enum sensor_stat *unused_stat __attribute__((unused));

// MASKED(v, m) is v & m, done in the register the access then uses, so the compiler cannot drop the mask after
// proving the value small through another register copy (which leaves the verifier without the bound).
#define MASKED(v, m)                                                                                               \
	({                                                                                                         \
		u64 __v = (u64)(v);                                                                                \
		asm volatile("%[x] &= %[k]" : [x] "+r"(__v) : [k] "i"(m));                                         \
		__v;                                                                                               \
	})

static __always_inline void count(u32 slot)
{
	u64 *v = bpf_map_lookup_elem(&stats, &slot);
	if (v)
		*v += 1;
}

// kernfs_node::parent was renamed __parent in 6.15.
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	struct kernfs_node___old *old = (void *)kn;
	return BPF_CORE_READ(old, parent);
}

// The cgroup that holds the memory controller's state for the task: on a hybrid (v1) host that is the v1
// hierarchy where container runtimes with the cgroupfs driver place containers. NULL when it lives on the v2
// root too, so there is nothing to add.
static __always_inline struct cgroup *v1_memory_cgroup(struct task_struct *task)
{
	struct cgroup *dfl = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (id < 0 || id >= CGROUP_SUBSYS_COUNT)
		return 0;
	struct css_set *cgs = BPF_CORE_READ(task, cgroups);
	struct cgroup_subsys_state *css = 0;
	bpf_core_read(&css, sizeof(css), &cgs->subsys[id]);
	if (!css)
		return 0;
	struct cgroup *cg = BPF_CORE_READ(css, cgroup);
	if (!cg || BPF_CORE_READ(cg, root) == BPF_CORE_READ(dfl, root))
		return 0;
	return cg;
}

static __always_inline int in_filter(struct cgroup *cg, u32 hierarchy)
{
	struct filter_key key = {.hierarchy = hierarchy};
	for (int i = 0; i < FILTER_LEVELS; i++) {
		if (!cg)
			return 0;
		key.id = BPF_CORE_READ(cg, kn, id);
		if (bpf_map_lookup_elem(&container_cgroups, &key))
			return 1;
		// cgroup::self is the first member: the parent css is the parent cgroup.
		cg = (struct cgroup *)BPF_CORE_READ(cg, self.parent);
	}
	return 0;
}

static __always_inline int captured(struct task_struct *task)
{
	if (!filter_containers)
		return 1;
	if (in_filter(BPF_CORE_READ(task, cgroups, dfl_cgrp), HIERARCHY_V2))
		return 1;
	struct cgroup *v1 = v1_memory_cgroup(task);
	if (v1 && in_filter(v1, HIERARCHY_V1_MEMORY))
		return 1;
	count(STAT_FILTERED);
	return 0;
}

// Writes the last CG_LEVELS directory names of cg as "/a/b/c", then a NUL. Returns the new offset.
static __always_inline u32 put_cgroup(u8 *buf, u32 off, struct cgroup *cg)
{
	struct kernfs_node *kns[CG_LEVELS] = {};
	struct kernfs_node *kn = cg ? BPF_CORE_READ(cg, kn) : 0;
	for (int i = 0; i < CG_LEVELS; i++) {
		if (!kn || !kn_parent(kn)) // the root has no name worth sending
			break;
		kns[i] = kn;
		kn = kn_parent(kn);
	}
	for (int i = CG_LEVELS - 1; i >= 0; i--) {
		if (!kns[i])
			continue;
		if (off > DATA_LIMIT)
			return off;
		buf[MASKED(off, DATA_CAP - 1)] = '/';
		off++;
		if (off > DATA_LIMIT)
			return off;
		const char *name = BPF_CORE_READ(kns[i], name);
		long n = bpf_probe_read_kernel_str(&buf[MASKED(off, DATA_CAP - 1)], CGNAME_CAP, name);
		if (n > 1)
			off += n - 1; // without the NUL
	}
	if (off > DATA_LIMIT)
		return off;
	buf[MASKED(off, DATA_CAP - 1)] = 0;
	return off + 1;
}

static __always_inline u32 put_cgroups(u8 *buf, u32 off, struct task_struct *task)
{
	off = put_cgroup(buf, off, BPF_CORE_READ(task, cgroups, dfl_cgrp));
	return put_cgroup(buf, off, v1_memory_cgroup(task));
}

struct walk {
	struct vfsmount *vfsmnt;
	struct dentry *dentry;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	u64 mnt_off;
	u32 pos;
	u32 truncated;
	u32 detached;
	u32 done;
};

// One step of the walk towards the root: a mount crossing, or one name prepended. Returns 1 when done.
static long walk_step(u32 i, void *data)
{
	struct walk *w = data;
	u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&path_map, &zero);
	if (!pb)
		return 1;
	// Plain locals: BPF_CORE_READ(w->x, ...) would relocate the w->x access against a kernel type "walk".
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	if (dentry == w->root_dentry && vfsmnt == w->root_mnt)
		goto done;
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
		if (!up || up == mnt)
			goto done; // the top of the mount tree
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		w->vfsmnt = (struct vfsmount *)((void *)up + w->mnt_off);
		return 0;
	}
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (!parent)
		goto done;
	u32 len = BPF_CORE_READ(dentry, d_name.len);
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	u32 pos = w->pos;
	if (len >= NAME_CAP || len + 2 > pos || pos > PBUF) {
		w->truncated = 1;
		goto done;
	}
	pos -= len;
	bpf_probe_read_kernel(&pb->buf[MASKED(pos, PBUF - 1)], MASKED(len, NAME_CAP - 1), name);
	pos -= 1;
	pb->buf[MASKED(pos, PBUF - 1)] = '/';
	w->pos = pos;
	if (parent == dentry) {
		// A root that is not its mount's root: a pseudo file such as a memfd (executed from memory, the
		// classic fileless payload: d_path shows "/memfd:<name> (deleted)") or a disconnected dentry. Its
		// own name is all the path there is; without it the path would read "/".
		w->detached = 1;
		goto done;
	}
	w->dentry = parent;
	return 0;
done:
	w->done = 1;
	return 1;
}

// resolve_path writes the absolute path of (mnt, dentry) as the task sees it (relative to its root, crossing
// mounts) into path_map, ending at buf[PBUF], and returns its length (at least 1: "/").
static __always_inline u32 resolve_path(struct pathbuf *pb, struct vfsmount *vfsmnt, struct dentry *dentry,
					struct task_struct *task, u32 *flags)
{
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct walk w = {
		.vfsmnt = vfsmnt,
		.dentry = dentry,
		.root_dentry = BPF_CORE_READ(fs, root.dentry),
		.root_mnt = BPF_CORE_READ(fs, root.mnt),
		.mnt_off = bpf_core_field_offset(struct mount, mnt),
		.pos = PBUF,
	};
	w.mnt = (struct mount *)((void *)vfsmnt - w.mnt_off);
	bpf_loop(PATH_DEPTH, walk_step, &w, 0);
	if (!w.done)
		w.truncated = 1;
	*flags = (w.truncated ? FLAG_PATH_TRUNCATED : 0) | (w.detached ? FLAG_PATH_DETACHED : 0);
	u32 pos = w.pos;
	if (pos >= PBUF || pos == 0) {
		pos = PBUF - 1;
		pb->buf[MASKED(pos, PBUF - 1)] = '/';
	}
	return PBUF - pos;
}

// put_path copies a resolved path and a NUL to buf[off]; returns its length.
static __always_inline u32 put_path(u8 *buf, u32 off, struct pathbuf *pb, u32 n)
{
	if (n > PBUF - 1)
		n = PBUF - 1;
	if (off > DATA_LIMIT)
		return 0;
	bpf_probe_read_kernel(&buf[MASKED(off, DATA_CAP - 1)], MASKED(n, PBUF - 1), &pb->buf[MASKED((PBUF - n), PBUF - 1)]);
	buf[MASKED((off + n), DATA_CAP - 1)] = 0;
	return n;
}

// scratch_bufs looks up this CPU's event and path scratch buffers; 0 when either is missing.
static __always_inline int scratch_bufs(struct scratch **s, struct pathbuf **pb)
{
	u32 zero = 0;
	*s = bpf_map_lookup_elem(&scratch_map, &zero);
	*pb = bpf_map_lookup_elem(&path_map, &zero);
	return *s && *pb;
}

static __always_inline void send(void *ev, u32 size, u32 stat)
{
	u64 flags = no_wakeup ? BPF_RB_NO_WAKEUP : 0;
	if (bpf_ringbuf_output(&events, ev, MASKED(size, SCRATCH_SIZE - 1), flags) == 0)
		count(stat);
	else
		count(STAT_DROPPED);
}

// report_open sends the open of file by task, unless the dedup maps have seen it lately. The caller reads fflags,
// ino and dev through whichever kind of pointer its hook hands it. task is a BTF pointer.
static __always_inline int report_open(struct task_struct *task, struct file *file, u32 fflags, u64 ino, u32 dev)
{
	struct dedup_key dk = {
		.cgroup_id = task->cgroups->dfl_cgrp->kn->id, // bpf_get_current_cgroup_id()
		.ino = ino,
		.dev = dev,
		.acc = fflags & O_ACCMODE_,
	};
	u32 slot = (u32)(((dk.ino ^ (dk.cgroup_id << 17) ^ ((u64)dk.dev << 40) ^ dk.acc) * 0x9E3779B97F4A7C15ULL) >>
			 (64 - RECENT_BITS));
	struct dedup_slot *re = bpf_map_lookup_elem(&recent, &slot);
	if (re && re->key.ino == dk.ino && re->key.cgroup_id == dk.cgroup_id && re->key.dev == dk.dev &&
	    re->key.acc == dk.acc && (dedup_ttl_ns == 0 || bpf_ktime_get_ns() - re->seen < dedup_ttl_ns)) {
		count(STAT_DEDUP_HIT);
		return 0;
	}
	u64 *seen = bpf_map_lookup_elem(&dedup, &dk);
	if (seen && (dedup_ttl_ns == 0 || bpf_ktime_get_ns() - *seen < dedup_ttl_ns)) {
		if (re) {
			re->key = dk;
			re->seen = *seen;
		}
		count(STAT_DEDUP_HIT);
		return 0;
	}
	u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&dedup, &dk, &now, BPF_ANY);
	if (re) {
		re->key = dk;
		re->seen = now;
	}

	struct scratch *s;
	struct pathbuf *pb;
	if (!scratch_bufs(&s, &pb))
		return 0;
	struct event_open *ev = (void *)s->buf;
	u64 pid_tgid = bpf_get_current_pid_tgid();
	ev->type = EVENT_OPEN;
	ev->flags = 0;
	ev->cgroup_id = dk.cgroup_id;
	ev->ino = dk.ino;
	ev->dev = dk.dev;
	ev->open_flags = fflags;
	ev->pid = (u32)pid_tgid;
	ev->tgid = pid_tgid >> 32;
	ev->_pad = 0;
	// The process's name (its leader's comm, /proc/<tgid>/comm), not the opening thread's, which a program may
	// have renamed (prctl PR_SET_NAME): the record names the process.
	bpf_probe_read_kernel(ev->comm, sizeof(ev->comm), task->group_leader->comm);

	u32 pflags = 0;
	u32 n = resolve_path(pb, BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry), task, &pflags);
	ev->flags |= pflags;
	u8 *buf = s->buf + sizeof(*ev);
	n = put_path(buf, 0, pb, n);
	ev->path_len = n;
	u32 off = n + 1;
	off = put_cgroups(buf, off, task);
	ev->cg_len = off - (n + 1);
	send(ev, sizeof(*ev) + off, STAT_OPEN);
	return 0;
}

// The open programs, one per kind of hook; the loader keeps the cheapest one the kernel allows (sensor.go: hooks).

// The exit of every syscall that opens a file by name; the loader attaches it to each. Syscall tracepoints work
// on every kernel, but they cost every task's every syscall something once one is on (the kernel takes its slow
// syscall path for all of them), and they miss opens made through io_uring.
SEC("tracepoint/syscalls/sys_exit_openat")
int file_open(struct trace_event_raw_sys_exit *ctx)
{
	long fd = ctx->ret;
	if (fd < 0)
		return 0;
	// A BTF task pointer: the reads below are direct loads, where BPF_CORE_READ through a plain pointer is a
	// bpf_probe_read_kernel call each. This runs on every successful open, and most are dedup hits that only
	// need the key.
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD_)
		return 0;
	if (!captured(task))
		return 0;

	struct fdtable *fdt = task->files->fdt;
	if (fd >= fdt->max_fds)
		return 0;
	struct file *file = 0;
	bpf_core_read(&file, sizeof(file), &fdt->fd[fd]);
	if (!file)
		return 0;
	u32 fflags, dev;
	u64 ino;
	if (bpf_ksym_exists(bpf_rdonly_cast)) {
		// 6.2 and newer: make the file a BTF pointer too, so its reads are direct loads as well.
		struct file *f = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
		fflags = f->f_flags;
		ino = f->f_inode->i_ino;
		dev = f->f_inode->i_sb->s_dev;
	} else {
		struct inode *inode = BPF_CORE_READ(file, f_inode);
		fflags = BPF_CORE_READ(file, f_flags);
		ino = BPF_CORE_READ(inode, i_ino);
		dev = BPF_CORE_READ(inode, i_sb, s_dev);
	}
	return report_open(task, file, fflags, ino, dev);
}

#define FMODE_EXEC_ 0x20 // f_mode: opened by exec for its binary, which the exec event reports

// report_trusted_open is the open programs' common part where the hook hands over the struct file itself (a
// trusted BTF pointer: direct loads). It sees every open the kernel makes for a task, so it leaves out exec's
// open of the binary, which the syscall tracepoints never saw either.
static __always_inline int report_trusted_open(struct file *file)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD_)
		return 0;
	if (file->f_mode & FMODE_EXEC_)
		return 0;
	if (!captured(task))
		return 0;
	return report_open(task, file, file->f_flags, file->f_inode->i_ino, file->f_inode->i_sb->s_dev);
}

// The LSM hook every open passes (5.7+, CONFIG_BPF_LSM, "bpf" in the kernel's lsm= list): one call per open
// through a BPF trampoline, io_uring's and open_by_handle_at(2)'s included, and no cost to other syscalls. It runs
// before the open completes: an open a later check refuses is still reported. ret is what an earlier BPF LSM
// program decided; a refusal is passed on untouched, and that open not reported.
SEC("lsm/file_open")
int BPF_PROG(file_open_lsm, struct file *file, int ret)
{
	if (ret != 0)
		return ret < -4095 || ret > 0 ? -1 : ret; // only errnos are valid returns; keep it a refusal
	report_trusted_open(file);
	return 0;
}

// The return of do_filp_open, where every open by name ends (5.5+, BPF trampolines): io_uring's included, and no
// cost to other syscalls; only open_by_handle_at(2) takes another path.
SEC("fexit/do_filp_open")
int BPF_PROG(file_open_fexit, int dfd, struct filename *pathname, const struct open_flags *op, struct file *ret)
{
	if ((unsigned long)ret >= (unsigned long)-4095 || !ret) // IS_ERR_OR_NULL
		return 0;
	return report_trusted_open(ret);
}

// inode timestamps were a timespec64 i_mtime before 6.6 (__i_mtime in 6.6).
struct inode___ts {
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));
struct inode___ts66 {
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));

static __always_inline void read_mtime(struct inode *inode, s64 *sec, u32 *nsec)
{
	if (bpf_core_field_exists(inode->i_mtime_sec)) {
		*sec = BPF_CORE_READ(inode, i_mtime_sec);
		*nsec = BPF_CORE_READ(inode, i_mtime_nsec);
		return;
	}
	struct inode___ts66 *i66 = (void *)inode;
	if (bpf_core_field_exists(i66->__i_mtime)) {
		*sec = BPF_CORE_READ(i66, __i_mtime.tv_sec);
		*nsec = BPF_CORE_READ(i66, __i_mtime.tv_nsec);
		return;
	}
	struct inode___ts *its = (void *)inode;
	*sec = BPF_CORE_READ(its, i_mtime.tv_sec);
	*nsec = BPF_CORE_READ(its, i_mtime.tv_nsec);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!captured(p))
		return 0;
	struct scratch *s;
	struct pathbuf *pb;
	if (!scratch_bufs(&s, &pb))
		return 0;
	struct event_exec *ev = (void *)s->buf;
	struct file *file = BPF_CORE_READ(bprm, file);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	ev->type = EVENT_EXEC;
	ev->flags = 0;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->start_time = BPF_CORE_READ(p, group_leader, start_time);
	ev->ino = BPF_CORE_READ(inode, i_ino);
	ev->size = BPF_CORE_READ(inode, i_size);
	ev->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	read_mtime(inode, &ev->mtime_sec, &ev->mtime_nsec);
	ev->pid = BPF_CORE_READ(p, pid);
	ev->tgid = BPF_CORE_READ(p, tgid);
	ev->ppid = BPF_CORE_READ(p, real_parent, tgid);
	ev->uid = BPF_CORE_READ(p, cred, euid.val);
	ev->gid = BPF_CORE_READ(p, cred, egid.val);
	ev->argc = BPF_CORE_READ(bprm, argc);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));

	u8 *buf = s->buf + sizeof(*ev);
	u32 pflags = 0;
	u32 n = resolve_path(pb, BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry), p, &pflags);
	ev->flags |= pflags;
	n = put_path(buf, 0, pb, n);
	ev->path_len = n;
	u32 off = n + 1;

	pflags = 0;
	struct fs_struct *fs = BPF_CORE_READ(p, fs);
	n = resolve_path(pb, BPF_CORE_READ(fs, pwd.mnt), BPF_CORE_READ(fs, pwd.dentry), p, &pflags);
	if (pflags & FLAG_PATH_TRUNCATED)
		ev->flags |= FLAG_CWD_TRUNCATED;
	n = put_path(buf, off, pb, n);
	ev->cwd_len = n;
	off += n + 1;

	// Arguments: the new image's argument block, NUL-separated.
	u64 arg_start = BPF_CORE_READ(p, mm, arg_start);
	u64 arg_end = BPF_CORE_READ(p, mm, arg_end);
	u64 alen = arg_end > arg_start ? arg_end - arg_start : 0;
	if (alen > ARGS_CAP) {
		alen = ARGS_CAP;
		ev->flags |= FLAG_ARGS_TRUNCATED;
	}
	if (off > DATA_LIMIT)
		off = DATA_LIMIT;
	if (alen > 0 && bpf_probe_read_user(&buf[MASKED(off, DATA_CAP - 1)], MASKED(alen, 2 * ARGS_CAP - 1), (void *)arg_start) != 0)
		alen = 0;
	// The block ends with the last argument's NUL; leave it out.
	if (alen > 0 && buf[MASKED((off + alen - 1), DATA_CAP - 1)] == 0)
		alen--;
	ev->args_len = alen;
	buf[MASKED((off + alen), DATA_CAP - 1)] = 0;
	off += alen + 1;

	u32 cg_start = off;
	off = put_cgroups(buf, off, p);
	ev->cg_len = off - cg_start;
	send(ev, sizeof(*ev) + off, STAT_EXEC);
	return 0;
}
