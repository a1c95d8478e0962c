// SPDX-License-Identifier: GPL-2.0
/* cowbench's copy-up and block-CoW tracer (kernel side). Loaded by ebpf/tracer_loader.cpp.
 *
 * Everything is filtered in the kernel by the watched container: its cgroup v2 id (and a FUSE
 * daemon's tgid), set by user space in `window` between runs.
 *
 * Tracepoint mode (stable tracepoints only, works under lockdown):
 *  - kernel overlayfs copies a regular file up by creating an O_TMPFILE on the upper file
 *    system (ovl_copy_up_tmpfile), filling it and linking it in. d_tmpfile() drops the new
 *    inode's link count to 0 through mark_inode_dirty() before it has a name: that is the
 *    writeback_mark_inode_dirty event of a regular inode with nlink 0 and no dentry, on the
 *    upper super block, in a container task. It is pending until the task's syscall ends
 *    (sys_exit); its size then is the bytes copied.
 *  - fuse-overlayfs copies up in the daemon: it creates a file in <workdir>/work (openat2 with
 *    O_CREAT), copies, renames it into place and replies. The create is seen at sys_exit of the
 *    daemon's open call (the returned file's dentry), the completion at fuse_request_end in the
 *    daemon's thread. fuse_request_send/end also give every request's opcode and latency.
 *  - block CoW: xfs_reflink_cow_remap_from (an extent of the CoW fork moved into the file, at
 *    writeback, often in a kworker) and btrfs_ordered_extent_add (btrfs writes every extent
 *    anew), counted for inodes the container dirtied and did not create. User space loads the
 *    inherited size (and holes) of every file of the writable tree at begin() (`inherited`):
 *    each block counts once (`cow_blocks`), as CoW when it held inherited data, as new data
 *    beyond the inherited end or in a hole. XFS writes new blocks through the data fork
 *    without a remap: iomap_add_to_ioend adds those.
 * Every window also counts the system calls the container's tasks enter, by number (sys_enter).
 * fentry / kprobe modes add a window around the overlayfs copy-up function: copy-ups complete
 * at its return (exact latency, and no syscall needed). */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ebpf/trace_events.h"

char LICENSE[] SEC("license") = "GPL";

#define S_IFMT 00170000
#define S_IFREG 0100000

/* Types of file systems that may be modules (then they are not in vmlinux.h): only the fields
 * used, relocated by CO-RE against whichever BTF has them (the ___cb suffix is ignored). */
struct xfs_inode___cb {
  struct inode i_vnode;
} __attribute__((preserve_access_index));
struct xfs_bmbt_irec___cb {
  __u64 br_startoff;
  __u64 br_startblock;
  __u64 br_blockcount;
} __attribute__((preserve_access_index));
struct btrfs_inode___cb {
  struct inode vfs_inode;
} __attribute__((preserve_access_index));
struct btrfs_ordered_extent___cb {
  __u64 file_offset;
  __u64 num_bytes;
  __u64 disk_bytenr;
  __u64 offset;
  unsigned long flags;
} __attribute__((preserve_access_index));
struct btrfs_fs_info___cb {
  struct super_block *sb;
} __attribute__((preserve_access_index));
struct btrfs_data_ref___cb {
  __u64 objectid; /* the inode number owning the reference */
  __u64 offset;
} __attribute__((preserve_access_index));
struct btrfs_delayed_ref_node___cb {
  __u64 num_bytes;
  unsigned int action : 8;
  struct btrfs_data_ref___cb data_ref; /* in an anonymous union: CO-RE finds it there */
} __attribute__((preserve_access_index));
#define BTRFS_ADD_DELAYED_REF___cb 1 /* enum btrfs_delayed_ref_action */
struct btrfs_ordered_extent___old {
  __u64 start;
} __attribute__((preserve_access_index));
enum btrfs_ordered_extent_flag___cb { BTRFS_ORDERED_NOCOW___cb = 1, BTRFS_ORDERED_PREALLOC___cb = 2 };
struct fuse_in_header___cb {
  __u32 opcode;
  __u64 unique;
} __attribute__((preserve_access_index));
struct fuse_out_header___cb {
  __s32 error;
} __attribute__((preserve_access_index));
struct fuse_conn___cb {
  __u32 dev;
} __attribute__((preserve_access_index));
struct fuse_mount___cb {
  struct fuse_conn___cb *fc;
} __attribute__((preserve_access_index));
struct fuse_req___cb {
  struct {
    struct fuse_in_header___cb h;
  } in;
  struct {
    struct fuse_out_header___cb h;
  } out;
  struct fuse_mount___cb *fm;
} __attribute__((preserve_access_index));
/* Inode state bits: an enum only on recent kernels (values are relocated, these are placeholders). */
enum inode_state_flags_t___cb {
  I_FREEING___cb = 1,
  I_WILL_FREE___cb = 2,
  I_DIRTY_SYNC___cb = 3,
  I_DIRTY_DATASYNC___cb = 4,
  I_DIRTY_PAGES___cb = 5,
};

/* Set before load by the loader (arch-specific numbers come from the host's headers). */
const volatile __s32 nr_open = -1, nr_openat = -1, nr_openat2 = -1, nr_creat = -1;
const volatile __s32 nr_ignored[8] = {-1, -1, -1, -1, -1, -1, -1, -1}; /* mount-family syscalls */
const volatile __u32 o_tmpfile = 0; /* O_TMPFILE (incl. O_DIRECTORY) */
const volatile __u32 o_creat = 0;
const volatile __u32 o_trunc = 0;
const volatile __s32 nr_truncate = -1, nr_ftruncate = -1;
const volatile __u32 fmode_created = 0;  /* FMODE_CREATED, 0: unknown (then O_CREAT is trusted) */
const volatile __u64 wake_bytes = 1 << 16; /* wake the reader once this much is queued */

/* Written by user space between runs (mmap'ed .bss). */
struct cb_window window = {};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 << 20); /* resized by the loader */
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CB_C_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CB_HIST_BUCKETS);
  __type(key, __u32);
  __type(value, __u64);
} copyup_hist SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192);
  __type(key, __u32);
  __type(value, struct cb_task);
} tasks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct cb_req_key);
  __type(value, struct cb_req);
} reqs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u8);
} conns SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, struct cb_fuse_op);
} fuse_ops SEC(".maps");

/* key: opcode << 8 | log2 bucket of the latency in ns */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, __u64);
} fuse_hist SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct cb_file_key);
  __type(value, __u8);
} dirtied SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct cb_file_key);
  __type(value, __u8);
} created SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct cb_file_key);
  __type(value, struct cb_cow_file);
} cow_files SEC(".maps");

/* Upper inodes copied up metadata-only in this window (metacopy=on): their data copy-up is
 * still to come. Value: the struct inode * (a clone seen by inode number alone, on btrfs, sizes
 * the data copy-up through it once it still names that inode). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct cb_file_key);
  __type(value, __u64);
} metacopied SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __s32);
  __type(value, struct cb_syscall_stat);
} syscalls SEC(".maps");

/* System calls entered by the container's tasks, by number (index); see copyup_syscalls.bpf.h. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CB_SYSCALL_SLOTS);
  __type(key, __u32);
  __type(value, __u64);
} syscall_counts SEC(".maps");

/* Block CoW windows: the writable tree's regular files as the container inherited them (filled
 * by user space at begin()), and which of their blocks were counted already. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, CB_MAX_INHERITED);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct cb_file_key);
  __type(value, struct cb_inherited);
} inherited SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1 << 16); /* 4M blocks (16 GiB of 4 KiB blocks) written per window */
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct cb_block_key);
  __type(value, struct cb_block_chunk);
} cow_blocks SEC(".maps");

static __always_inline void count(__u32 idx, __u64 v) {
  __u64 *c = bpf_map_lookup_elem(&counters, &idx);
  if (c) *c += v;
}

static __always_inline __u32 log2_bucket(__u64 v) {
  __u32 b = 0;
#pragma unroll
  for (int i = 32; i > 0; i >>= 1) {
    if (v >> i) {
      v >>= i;
      b += i;
    }
  }
  return b < CB_HIST_BUCKETS ? b : CB_HIST_BUCKETS - 1;
}

/* A task of the watched container (or its FUSE daemon). */
static __always_inline bool watched(void) {
  __u64 cg = window.cgroup_id;
  if (!cg) return false;
  if (bpf_get_current_cgroup_id() == cg) return true;
  __u32 daemon = window.fuse_tgid;
  return daemon && (__u32)(bpf_get_current_pid_tgid() >> 32) == daemon;
}

static __always_inline long syscall_nr(struct pt_regs *regs) {
#if defined(__TARGET_ARCH_x86)
  return BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
  return BPF_CORE_READ(regs, syscallno);
#else
  return -1;
#endif
}

static __always_inline struct pt_regs *current_regs(void) {
  return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

static __always_inline bool ignored_syscall(long nr) {
#pragma unroll
  for (int i = 0; i < 8; i++)
    if (nr_ignored[i] >= 0 && nr == nr_ignored[i]) return true;
  return false;
}

/* The open flags of an open-family syscall (regs = its user registers), or 0. */
static __always_inline __u64 open_flags(struct pt_regs *regs, long nr) {
  if (nr == nr_openat) return PT_REGS_PARM3_CORE_SYSCALL(regs);
  if (nr == nr_open) return PT_REGS_PARM2_CORE_SYSCALL(regs);
  if (nr == nr_creat) return o_creat;
  if (nr == nr_openat2) {
    __u64 flags = 0; /* struct open_how starts with __u64 flags */
    void *how = (void *)PT_REGS_PARM3_CORE_SYSCALL(regs);
    bpf_probe_read_user(&flags, sizeof flags, how);
    return flags;
  }
  return 0;
}

static __always_inline bool is_open(long nr) {
  return nr >= 0 && (nr == nr_openat || nr == nr_open || nr == nr_openat2 || nr == nr_creat);
}

/* A __mark_inode_dirty() of data pages only (filemap dirtying a folio): I_DIRTY_PAGES without
 * the inode bits. mark_inode_dirty() passes I_DIRTY, which has I_DIRTY_PAGES too. The bits
 * are enum values on recent kernels (relocated), (1 << 0..2) before. */
static __always_inline bool dirties_pages_only(int flags) {
  int sync = 1, datasync = 2, pages = 4;
  if (bpf_core_enum_value_exists(enum inode_state_flags_t___cb, I_DIRTY_PAGES___cb)) {
    sync = (int)bpf_core_enum_value(enum inode_state_flags_t___cb, I_DIRTY_SYNC___cb);
    datasync = (int)bpf_core_enum_value(enum inode_state_flags_t___cb, I_DIRTY_DATASYNC___cb);
    pages = (int)bpf_core_enum_value(enum inode_state_flags_t___cb, I_DIRTY_PAGES___cb);
  }
  return (flags & (sync | datasync | pages)) == pages;
}

/* A syscall after which overlayfs needs the file's data: an open for write or with O_TRUNC,
 * a truncate. */
static __always_inline bool writes_data(struct pt_regs *regs, long nr) {
  if (nr >= 0 && (nr == nr_truncate || nr == nr_ftruncate)) return true;
  if (!is_open(nr)) return false;
  __u64 f = open_flags(regs, nr);
  return (f & 3) != 0 || (f & o_trunc) != 0; /* O_WRONLY, O_RDWR (O_ACCMODE = 3), O_TRUNC */
}

/* Inserts *zero under `key` unless it is there, then the value under it; NULL only when the
 * map is full. */
#define insert_and_lookup(map, key, zero)              \
  ({                                                   \
    bpf_map_update_elem(map, key, zero, BPF_NOEXIST);  \
    bpf_map_lookup_elem(map, key);                     \
  })
/* The value under `key` in a hash map, inserted as *zero first when missing. `zero` may point
 * into global data: a large value need not sit on the stack. */
#define lookup_or_insert(map, key, zero)                       \
  ({                                                           \
    void *v_ = bpf_map_lookup_elem(map, key);                  \
    if (!v_) v_ = insert_and_lookup(map, key, zero);           \
    v_;                                                        \
  })
/* The same with zeroes of `type` made on the stack, only when missing (small values). */
#define lookup_or_zero(map, key, type)             \
  ({                                               \
    type *v_ = bpf_map_lookup_elem(map, key);      \
    if (!v_) {                                     \
      type z_ = {};                                \
      v_ = insert_and_lookup(map, key, &z_);       \
    }                                              \
    v_;                                            \
  })

/* Adds a copy-up in flight to the current task. */
static __always_inline void add_pending(struct inode *inode, __u32 dev, __s32 nr, __u32 kind, __u32 flags) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct cb_task *t = lookup_or_zero(&tasks, &tid, struct cb_task);
  if (!t) {
    count(CB_C_PENDING_OVERFLOW, 1);
    count(CB_C_COPYUPS, 1);
    return;
  }
  __u32 n = t->n;
  if (n >= CB_MAX_PENDING) {
    /* Counted now; its size is not known. */
    count(CB_C_PENDING_OVERFLOW, 1);
    count(CB_C_COPYUPS, 1);
    return;
  }
  struct cb_pending *p = &t->p[n & (CB_MAX_PENDING - 1)];
  p->inode = (__u64)inode;
  p->ino = BPF_CORE_READ(inode, i_ino);
  p->dev = dev;
  p->created_ns = bpf_ktime_get_ns();
  p->syscall = (__s32)nr;
  p->kind = kind;
  p->flags = flags;
  t->n = n + 1;
}

/* The path of `inode` below the upper dir, leaf first, into names (from its newest name). */
static __always_inline void fill_names(struct cb_event *e, struct inode *inode) {
  struct hlist_node *first = BPF_CORE_READ(inode, i_dentry.first);
  if (!first) return;
  struct dentry *d = (struct dentry *)((char *)first - bpf_core_field_offset(struct dentry, d_u.d_alias));
  __u64 upper = window.upper_ino;
#pragma unroll
  for (int i = 0; i < CB_NAME_DEPTH; i++) {
    struct inode *di = BPF_CORE_READ(d, d_inode);
    if (i > 0 && di && BPF_CORE_READ(di, i_ino) == upper) break;
    const unsigned char *name = BPF_CORE_READ(d, d_name.name);
    bpf_probe_read_kernel_str(e->names[i], CB_NAME_LEN, name);
    struct dentry *parent = BPF_CORE_READ(d, d_parent);
    if (!parent || parent == d) break;
    d = parent;
  }
}

static __always_inline void fill_task(struct cb_event *e) {
  __u64 id = bpf_get_current_pid_tgid();
  e->pid = (__u32)(id >> 32);
  e->tid = (__u32)id;
  bpf_get_current_comm(e->comm, sizeof e->comm);
}

/* Submits, waking the reader only when enough is queued (it also polls on a timer). */
static __always_inline void submit(struct cb_event *e) {
  __u64 queued = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
  bpf_ringbuf_submit(e, queued >= wake_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* The data copy-up of a file copied up metadata-only before (not a new copy-up). */
static __always_inline bool completes_metacopy(__u32 kind) {
  return kind == CB_CU_META_DATA || kind == CB_CU_META_CLONED;
}

/* What a kernel overlayfs copy-up copied. A clone into the new upper inode during the copy-up
 * (clone_into()) makes it cloned. Without metacopy=on: data. With it, overlayfs copies
 * metadata only unless the file is opened for write or truncated (ovl_need_meta_copy_up); a data
 * copy through the page cache also leaves the upper inode with pages (a clone leaves none, but
 * is then made by an open for write or a truncate). */
static __always_inline __u32 copyup_kind(struct cb_pending *p, struct inode *inode) {
  if (p->kind == CB_CU_META_DATA) return (p->flags & CB_PF_CLONED) ? CB_CU_META_CLONED : CB_CU_META_DATA;
  if (p->flags & CB_PF_CLONED) return CB_CU_CLONED; /* the lower's extents are shared, not copied */
  if (!(window.flags & CB_FLAG_METACOPY) || window.kind != CB_KIND_OVERLAY) return CB_CU_DATA;
  if (p->flags & CB_PF_WRITE) return CB_CU_DATA;
  if (BPF_CORE_READ(inode, i_mapping, nrpages) > 0) return CB_CU_DATA;
  return CB_CU_METADATA;
}

/* Completes one copy-up: counters, histogram, per-syscall, and a ring buffer record. latency
 * < 0: since the upper inode was made. */
static __always_inline void complete(struct cb_pending *p, __u32 type, __u32 how, __s64 latency, __s32 nr,
                                     __u32 opcode, __u64 unique, __u64 now) {
  struct inode *inode = (struct inode *)p->inode;
  __u64 lat = latency >= 0 ? (__u64)latency : now - p->created_ns;
  if (nr == -1) nr = p->syscall;
  __u32 kind = copyup_kind(p, inode);
  /* Data bytes: the upper inode's size, none for a metadata-only copy-up (sparse, size set). */
  __u64 size = kind == CB_CU_METADATA ? 0 : (__u64)BPF_CORE_READ(inode, i_size);
  if (completes_metacopy(kind)) {
    count(CB_C_META_DATA_COPYUPS, 1); /* the file was counted at its metadata copy-up */
  } else {
    count(CB_C_COPYUPS, 1);
  }
  if (kind == CB_CU_METADATA) {
    count(CB_C_METADATA_COPYUPS, 1);
    struct cb_file_key k = {.ino = p->ino, .dev = p->dev};
    __u64 at = p->inode;
    bpf_map_update_elem(&metacopied, &k, &at, BPF_ANY);
  }
  if (kind == CB_CU_CLONED || kind == CB_CU_META_CLONED) {
    count(CB_C_CLONED_COPYUPS, 1);
    count(CB_C_CLONED_BYTES, size);
  }
  count(CB_C_COPYUP_BYTES, size);
  if (type == CB_EV_FUSE_COPYUP) count(CB_C_FUSE_COPYUPS, 1);
  __u32 b = log2_bucket(lat);
  __u64 *h = bpf_map_lookup_elem(&copyup_hist, &b);
  if (h) *h += 1;
  struct cb_syscall_stat *s = lookup_or_zero(&syscalls, &nr, struct cb_syscall_stat);
  if (s) {
    if (!completes_metacopy(kind)) __sync_fetch_and_add(&s->copyups, 1);
    __sync_fetch_and_add(&s->bytes, size);
  }
  struct cb_event *e = bpf_ringbuf_reserve(&events, sizeof *e, 0);
  if (!e) {
    count(CB_C_LOST, 1);
    return;
  }
  __builtin_memset(e, 0, sizeof *e);
  e->ts_ns = now;
  e->latency_ns = lat;
  e->bytes = size;
  e->ino = p->ino;
  e->dev = p->dev;
  e->offset = unique;
  e->syscall = nr;
  e->type = type;
  e->fuse_opcode = opcode;
  e->how = how;
  e->copyup_kind = kind;
  fill_task(e);
  fill_names(e, inode);
  submit(e);
}

/* Completes every copy-up the task has in flight and forgets the task's state. */
static __always_inline void complete_task(__u32 tid, struct cb_task *t, __u32 type, __u32 how, __s64 latency,
                                          __s32 nr, __u32 opcode, __u64 unique) {
  __u64 now = bpf_ktime_get_ns();
#pragma unroll
  for (int i = 0; i < CB_MAX_PENDING; i++) {
    if (i >= t->n) break;
    complete(&t->p[i], type, how, latency, nr, opcode, unique, now);
  }
  t->n = 0;
  if (t->depth == 0) bpf_map_delete_elem(&tasks, &tid);
}

/* The programs, one file per job (each uses the maps and helpers above). */
#include "ebpf/copyup_overlay.bpf.h"
#include "ebpf/copyup_fuse.bpf.h"
#include "ebpf/copyup_block_cow.bpf.h"
#include "ebpf/copyup_syscalls.bpf.h"
