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
 * still to come. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct cb_file_key);
  __type(value, __u8);
} metacopied SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __s32);
  __type(value, struct cb_syscall_stat);
} syscalls SEC(".maps");

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

/* The value under `key` in a hash map, inserted as zeroes first when missing; NULL only when
 * the map is full. */
#define lookup_or_zero(map, key, type)                   \
  ({                                                     \
    type *v_ = bpf_map_lookup_elem(map, key);            \
    if (!v_) {                                           \
      type z_ = {};                                      \
      bpf_map_update_elem(map, key, &z_, BPF_NOEXIST);   \
      v_ = bpf_map_lookup_elem(map, key);                \
    }                                                    \
    v_;                                                  \
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

/* What a kernel overlayfs copy-up copied. Without metacopy=on: data. With it, overlayfs copies
 * metadata only unless the file is opened for write or truncated (ovl_need_meta_copy_up); a data
 * copy through the page cache also leaves the upper inode with pages (a clone leaves none, but
 * is then made by an open for write or a truncate). */
static __always_inline __u32 copyup_kind(struct cb_pending *p, struct inode *inode) {
  if (p->kind == CB_CU_META_DATA) return CB_CU_META_DATA;
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
  if (kind == CB_CU_META_DATA) {
    count(CB_C_META_DATA_COPYUPS, 1); /* the file was counted at its metadata copy-up */
  } else {
    count(CB_C_COPYUPS, 1);
  }
  if (kind == CB_CU_METADATA) {
    count(CB_C_METADATA_COPYUPS, 1);
    struct cb_file_key k = {.ino = p->ino, .dev = p->dev};
    __u8 one = 1;
    bpf_map_update_elem(&metacopied, &k, &one, BPF_ANY);
  }
  count(CB_C_COPYUP_BYTES, size);
  if (type == CB_EV_FUSE_COPYUP) count(CB_C_FUSE_COPYUPS, 1);
  __u32 b = log2_bucket(lat);
  __u64 *h = bpf_map_lookup_elem(&copyup_hist, &b);
  if (h) *h += 1;
  struct cb_syscall_stat *s = lookup_or_zero(&syscalls, &nr, struct cb_syscall_stat);
  if (s) {
    if (kind != CB_CU_META_DATA) __sync_fetch_and_add(&s->copyups, 1);
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

/* --- kernel overlayfs: the upper O_TMPFILE, and the end of its syscall ------------------- */

SEC("tp_btf/writeback_mark_inode_dirty")
int BPF_PROG(cb_mark_inode_dirty, struct inode *inode, int flags) {
  if (!watched()) return 0;
  __u32 kind = window.kind;
  __u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
  if (dev != window.upper_dev) return 0;
  if (kind == CB_KIND_EXTENT) {
    /* A file the container writes to: its CoW, even when done by a kworker, is the container's. */
    struct cb_file_key k = {.ino = BPF_CORE_READ(inode, i_ino), .dev = dev};
    __u8 one = 1;
    if (!bpf_map_lookup_elem(&dirtied, &k)) bpf_map_update_elem(&dirtied, &k, &one, BPF_ANY);
    return 0;
  }
  if (kind != CB_KIND_OVERLAY) return 0;
  if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFREG) return 0;
  if (BPF_CORE_READ(inode, __i_nlink) != 0) {
    /* metacopy=on: overlayfs copying the data of a file it copied up metadata-only into the
     * same upper inode (its first open for write): the inode's first dirtied pages. */
    if ((window.flags & CB_FLAG_METACOPY) && dirties_pages_only(flags)) {
      struct cb_file_key k = {.ino = BPF_CORE_READ(inode, i_ino), .dev = dev};
      if (bpf_map_lookup_elem(&metacopied, &k)) {
        bpf_map_delete_elem(&metacopied, &k);
        add_pending(inode, dev, (__s32)syscall_nr(current_regs()), CB_CU_META_DATA, CB_PF_WRITE);
      }
    }
    return 0;
  }
  /* d_tmpfile(): a regular inode whose link count just dropped to 0, not yet given a dentry. */
  if (BPF_CORE_READ(inode, i_dentry.first)) return 0;
  if (bpf_core_enum_value_exists(enum inode_state_flags_t___cb, I_FREEING___cb) &&
      bpf_core_enum_value_exists(enum inode_state_flags_t___cb, I_WILL_FREE___cb)) {
    __u32 dying = bpf_core_enum_value(enum inode_state_flags_t___cb, I_FREEING___cb) |
                  bpf_core_enum_value(enum inode_state_flags_t___cb, I_WILL_FREE___cb);
    if (BPF_CORE_READ(inode, i_state) & dying) return 0;
  }
  struct pt_regs *regs = current_regs();
  long nr = syscall_nr(regs);
  /* overlayfs's own tmpfile support check at mount time */
  if (ignored_syscall(nr)) return 0;
  /* an O_TMPFILE the container opened itself is not a copy-up */
  if (is_open(nr) && (open_flags(regs, nr) & o_tmpfile) == o_tmpfile) {
    count(CB_C_TMPFILES_SKIPPED, 1);
    return 0;
  }
  add_pending(inode, dev, (__s32)nr, CB_CU_DATA, writes_data(regs, nr) ? CB_PF_WRITE : 0);
  return 0;
}

/* The FUSE daemon's open call created a file in its <workdir>/work: a copy-up begins. */
static __always_inline void fuse_daemon_open(struct pt_regs *regs, long nr, long fd) {
  struct task_struct *task = bpf_get_current_task_btf();
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds)) return;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = NULL;
  bpf_probe_read_kernel(&f, sizeof f, &fds[fd]);
  if (!f) return;
  struct inode *inode = BPF_CORE_READ(f, f_inode);
  if (!inode || (BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFREG) return;
  __u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
  if (dev != window.upper_dev) return;
  struct dentry *parent = BPF_CORE_READ(f, f_path.dentry, d_parent);
  struct inode *grand = BPF_CORE_READ(parent, d_parent, d_inode);
  if (!grand || BPF_CORE_READ(grand, i_ino) != window.fuse_workdir) return;
  if (fmode_created) {
    if (!(BPF_CORE_READ(f, f_mode) & fmode_created)) return;
  } else if (!(open_flags(regs, nr) & o_creat)) {
    return;
  }
  add_pending(inode, dev, (__s32)nr, CB_CU_DATA, 0);
}

static __always_inline void syscall_record(struct pt_regs *regs, long ret) {
  count(CB_C_SYSCALL_RECORDS, 1);
  struct cb_event *e = bpf_ringbuf_reserve(&events, sizeof *e, 0);
  if (!e) {
    count(CB_C_LOST, 1);
    return;
  }
  e->ts_ns = bpf_ktime_get_ns();
  e->latency_ns = 0;
  e->bytes = (__u64)ret;
  e->ino = 0;
  e->offset = 0;
  e->dev = 0;
  e->syscall = (__s32)syscall_nr(regs);
  e->type = CB_EV_SYSCALL;
  e->fuse_opcode = 0;
  e->extents = 0;
  e->how = 0;
  e->names[0][0] = 0;
  fill_task(e);
  submit(e);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(cb_sys_exit, struct pt_regs *regs, long ret) {
  if (!watched()) return 0;
  if (window.flags & CB_FLAG_ALL_SYSCALLS) syscall_record(regs, ret);
  __u32 kind = window.kind;
  if (kind == CB_KIND_OVERLAY) {
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct cb_task *t = bpf_map_lookup_elem(&tasks, &tid);
    if (t && t->n && t->depth == 0)
      complete_task(tid, t, CB_EV_COPYUP, CB_HOW_SYSCALL_EXIT, -1, -1, 0, 0);
  } else if (kind == CB_KIND_FUSE && ret >= 0) {
    long nr = syscall_nr(regs);
    if (is_open(nr)) fuse_daemon_open(regs, nr, ret);
  }
  return 0;
}

/* --- FUSE requests --------------------------------------------------------------------- */

SEC("tp_btf/fuse_request_send")
int BPF_PROG(cb_fuse_send, const struct fuse_req___cb *req) {
  if (!window.cgroup_id) return 0;
  __u32 conn = BPF_CORE_READ(req, fm, fc, dev);
  bool mine = watched();
  if (mine) {
    __u8 one = 1;
    if (!bpf_map_lookup_elem(&conns, &conn)) bpf_map_update_elem(&conns, &conn, &one, BPF_ANY);
  } else if (!bpf_map_lookup_elem(&conns, &conn)) {
    return 0; /* a FUSE mount the container never used */
  }
  struct cb_req_key k = {.unique = BPF_CORE_READ(req, in.h.unique), .conn = conn};
  struct cb_req v = {.sent_ns = bpf_ktime_get_ns(), .opcode = BPF_CORE_READ(req, in.h.opcode), .syscall = -1};
  v.tid = (__u32)bpf_get_current_pid_tgid();
  if (mine) v.syscall = (__s32)syscall_nr(current_regs());
  bpf_map_update_elem(&reqs, &k, &v, BPF_ANY);
  count(CB_C_FUSE_REQUESTS, 1);
  return 0;
}

SEC("tp_btf/fuse_request_end")
int BPF_PROG(cb_fuse_end, const struct fuse_req___cb *req) {
  if (!window.cgroup_id) return 0;
  __u64 now = bpf_ktime_get_ns();
  struct cb_req_key k = {.unique = BPF_CORE_READ(req, in.h.unique), .conn = BPF_CORE_READ(req, fm, fc, dev)};
  struct cb_req *r = bpf_map_lookup_elem(&reqs, &k);
  __s64 lat = -1;
  __u32 opcode = 0;
  __s32 nr = -1;
  if (r) {
    lat = (__s64)(now - r->sent_ns);
    opcode = r->opcode;
    nr = r->syscall;
    struct cb_fuse_op *op = lookup_or_zero(&fuse_ops, &opcode, struct cb_fuse_op);
    if (op) {
      __sync_fetch_and_add(&op->count, 1);
      __sync_fetch_and_add(&op->total_ns, (__u64)lat);
      if (BPF_CORE_READ(req, out.h.error)) __sync_fetch_and_add(&op->errors, 1);
    }
    __u32 hk = (opcode & 0xffffff) << 8 | log2_bucket((__u64)lat);
    __u64 *h = bpf_map_lookup_elem(&fuse_hist, &hk);
    if (h) {
      __sync_fetch_and_add(h, 1);
    } else {
      __u64 one = 1;
      bpf_map_update_elem(&fuse_hist, &hk, &one, BPF_NOEXIST);
    }
  }
  /* The daemon thread answering finished whatever copy-up it did for this request. */
  if (window.kind == CB_KIND_FUSE && watched()) {
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct cb_task *t = bpf_map_lookup_elem(&tasks, &tid);
    if (t && t->n) {
      __u32 n = t->n;
      complete_task(tid, t, CB_EV_FUSE_COPYUP, CB_HOW_FUSE_REPLY, lat, nr, opcode, k.unique);
      if (r) {
        struct cb_fuse_op *op = bpf_map_lookup_elem(&fuse_ops, &opcode);
        if (op) __sync_fetch_and_add(&op->copyups, n);
      }
    }
  }
  if (r) bpf_map_delete_elem(&reqs, &k);
  return 0;
}

/* --- block CoW ------------------------------------------------------------------------- */

/* What one written range of an inherited file turned out to be (account_range). */
struct range_ctx {
  struct cb_block_key key;
  __u64 first, last; /* blocks [first, last) of the range */
  __u64 data_end;    /* blocks below it held the inherited data (the size rounded up), but for the holes */
  __u64 hole_s[CB_MAX_HOLES], hole_e[CB_MAX_HOLES]; /* in blocks */
  __u32 holes;
  __u32 cow_source; /* a CoW event: its blocks in the inherited data are CoW; else only new data counts */
  __u64 phys;       /* the disk block the range's first block goes to (cb_block_chunk.phys) */
};

/* What account_chunk() adds up over a range. Kept in a per-CPU map, not in the loop's context:
 * the verifier tracks no values in map memory, so the loop's states converge. (Per CPU is
 * enough: the tracepoints run with preemption off, and none of them fires in an interrupt.) */
struct range_sums {
  __u64 cow, fresh_new, again; /* blocks: first rewrite of inherited data, first write of new data, seen before */
  __u64 untracked;             /* chunks counted without the once-per-block check (cow_blocks full) */
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct range_sums);
} range_scratch SEC(".maps");

/* Bits [lo, hi) of a 64-bit word, 0 <= lo <= hi <= 64. */
static __always_inline __u64 bit_range(__u64 lo, __u64 hi) {
  if (lo >= hi) return 0;
  __u64 upto = hi >= 64 ? ~0ULL : (1ULL << hi) - 1;
  return upto & ~((1ULL << lo) - 1);
}

/* Blocks [a, b) as bits of the chunk starting at block `base`. */
static __always_inline __u64 chunk_bits(__u64 a, __u64 b, __u64 base) {
  __u64 lo = a > base ? a - base : 0, hi = b > base ? b - base : 0;
  return bit_range(lo < 64 ? lo : 64, hi < 64 ? hi : 64);
}

/* One 64-block chunk of the range (a bpf_loop callback): which of its blocks are counted for
 * the first time, and as what. */
static long account_chunk(__u64 i, void *arg) {
  struct range_ctx *c = arg;
  __u64 chunk = (c->first >> 6) + i, base = chunk << 6;
  if (base >= c->last) return 1;
  __u64 mask = chunk_bits(c->first, c->last, base);
  __u64 data = chunk_bits(0, c->data_end, base);
#pragma unroll
  for (int h = 0; h < CB_MAX_HOLES; h++)
    if (h < c->holes) data &= ~chunk_bits(c->hole_s[h], c->hole_e[h], base);
  if (!c->cow_source) mask &= ~data; /* writeback of data blocks is CoW, seen by the CoW events */
  if (!mask) return 0;
  __u32 zero = 0;
  struct range_sums *sum = bpf_map_lookup_elem(&range_scratch, &zero);
  if (!sum) return 1;
  c->key.chunk = (__u32)chunk;
  struct cb_block_chunk *b = bpf_map_lookup_elem(&cow_blocks, &c->key);
  if (!b) {
    struct cb_block_chunk none = {};
    bpf_map_update_elem(&cow_blocks, &c->key, &none, BPF_NOEXIST);
    b = bpf_map_lookup_elem(&cow_blocks, &c->key);
  }
  __u64 fresh = mask;
  if (b) {
    /* (not atomic: a file's writeback does not run on two CPUs at once) */
    fresh = mask & ~b->seen;
    b->seen |= mask;
    for (int j = 0; j < 64; j++)
      if (mask & (1ULL << j)) b->phys[j] = (__u32)(c->phys + (base + j - c->first));
  } else {
    sum->untracked++;
  }
  sum->cow += __builtin_popcountll(fresh & data);
  sum->fresh_new += __builtin_popcountll(fresh & ~data);
  sum->again += __builtin_popcountll(mask & ~fresh);
  return 0;
}

/* One ring buffer record of block CoW or new data. */
static __always_inline void cow_record(struct inode *inode, __u64 ino, __u32 dev, __u64 bytes, __u64 offset, __u32 type) {
  struct cb_event *e = bpf_ringbuf_reserve(&events, sizeof *e, 0);
  if (!e) {
    count(CB_C_LOST, 1);
    return;
  }
  __builtin_memset(e, 0, sizeof *e);
  e->ts_ns = bpf_ktime_get_ns();
  e->bytes = bytes;
  e->ino = ino;
  e->dev = dev;
  e->offset = offset;
  e->syscall = -1;
  e->type = type;
  e->extents = 1;
  fill_task(e);
  fill_names(e, inode);
  submit(e);
}

/* One written range of a file, in and out of account_range(). */
struct cb_acct {
  __u64 ino, offset, bytes;
  __u64 phys; /* disk address of offset, bytes (any unit-consistent space of the file system) */
  __u32 dev, bits, generation, cow_source;
  __u64 cow_bytes, new_bytes; /* out: what to record */
};

/* Accounts bytes [offset, offset + bytes) of a file the container wrote, as its writeback (or
 * CoW remap) reached the file system. For a file inherited from the parent (`inherited`, as
 * user space found it at begin()), each block counts once: the first time it is written, as
 * CoW when it held inherited data and as new data beyond the inherited end or in a hole;
 * later writes of it (btrfs writes every extent anew) count as rewrites. cow_source: the event
 * is a CoW (XFS remap, btrfs ordered extent); other events (XFS writeback into the data fork)
 * only add new data. A file without an entry (beyond the map's bound, or a new inode that reused
 * an inherited number) counts whole as CoW when the event is one. Sets a->cow_bytes and
 * a->new_bytes for the caller's records. A global function: the verifier checks it once, apart
 * from the programs that call it. */
__noinline int account_range(struct cb_acct *a) {
  if (!a || !a->bytes) return 0;
  struct cb_file_key k = {.ino = a->ino, .dev = a->dev};
  struct cb_inherited *in = bpf_map_lookup_elem(&inherited, &k);
  if (in && (in->flags & CB_INH_GENERATION) && a->generation != in->generation) in = NULL;
  struct cb_cow_file *f;
  if (!in) {
    if (!a->cow_source) return 0;
    count(CB_C_COW_UNSIZED, 1);
    count(CB_C_COW_EXTENTS, 1);
    count(CB_C_COW_BYTES, a->bytes);
    f = lookup_or_zero(&cow_files, &k, struct cb_cow_file);
    if (f) {
      __sync_fetch_and_add(&f->extents, 1);
      __sync_fetch_and_add(&f->bytes, a->bytes);
    }
    a->cow_bytes = a->bytes;
    return 0;
  }
  __u32 bits = a->bits;
  if (bits < 9 || bits > 16) bits = 12;
  __u64 bs = 1ULL << bits;
  struct range_ctx c = {};
  c.key.ino = a->ino;
  c.key.dev = a->dev;
  c.first = a->offset >> bits;
  c.last = (a->offset + a->bytes + bs - 1) >> bits;
  c.data_end = (in->size + bs - 1) >> bits;
  c.cow_source = a->cow_source;
  c.phys = a->phys >> bits;
  __u32 holes = in->holes;
  c.holes = holes < CB_MAX_HOLES ? holes : CB_MAX_HOLES;
#pragma unroll
  for (int h = 0; h < CB_MAX_HOLES; h++) {
    c.hole_s[h] = in->hole_start[h] >> bits;
    c.hole_e[h] = in->hole_end[h] >> bits;
  }
  __u32 zero = 0;
  struct range_sums *sum = bpf_map_lookup_elem(&range_scratch, &zero);
  if (!sum) return 0;
  __builtin_memset(sum, 0, sizeof *sum);
  __u64 chunks = ((c.last - 1) >> 6) - (c.first >> 6) + 1;
  const __u64 max_chunks = 1 << 16; /* 4M blocks (16 GiB of 4 KiB blocks) per event */
  bpf_loop(chunks < max_chunks ? (__u32)chunks : (__u32)max_chunks, account_chunk, &c, 0);
  struct range_sums t = *sum;
  if (chunks > max_chunks) {
    /* The rest of a huge event: by position only (holes and the once-per-block check left out). */
    __u64 from = ((c.first >> 6) + max_chunks) << 6;
    __u64 data_to = c.data_end < c.last ? c.data_end : c.last;
    __u64 cow = data_to > from ? data_to - from : 0;
    if (c.cow_source) t.cow += cow;
    t.fresh_new += (c.last - from) - cow;
    t.untracked += chunks - max_chunks;
  }
  if (t.untracked) count(CB_C_BLOCKS_UNTRACKED, t.untracked);
  if (t.again) count(CB_C_REWRITE_BYTES, t.again << bits);
  if (!t.cow && !t.fresh_new) return 0;
  f = lookup_or_zero(&cow_files, &k, struct cb_cow_file);
  a->cow_bytes = t.cow << bits;
  a->new_bytes = t.fresh_new << bits;
  if (t.cow) {
    count(CB_C_COW_EXTENTS, 1);
    count(CB_C_COW_BYTES, a->cow_bytes);
    if (f) {
      __sync_fetch_and_add(&f->extents, 1);
      __sync_fetch_and_add(&f->bytes, a->cow_bytes);
    }
  }
  if (t.fresh_new) {
    count(CB_C_NEW_EXTENTS, 1);
    count(CB_C_NEW_BYTES, a->new_bytes);
    if (f) __sync_fetch_and_add(&f->new_bytes, a->new_bytes);
  }
  return 0;
}

/* account_range() of one event of `inode`, then its records. */
static __always_inline void account(struct inode *inode, __u64 ino, __u32 dev, __u64 offset, __u64 bytes, __u64 phys,
                                    bool cow_source) {
  struct cb_acct a = {.ino = ino, .offset = offset, .bytes = bytes, .phys = phys, .dev = dev, .cow_source = cow_source};
  a.bits = BPF_CORE_READ(inode, i_blkbits);
  a.generation = BPF_CORE_READ(inode, i_generation);
  account_range(&a);
  if (a.cow_bytes) cow_record(inode, ino, dev, a.cow_bytes, offset, CB_EV_COW);
  if (a.new_bytes) cow_record(inode, ino, dev, a.new_bytes, offset, CB_EV_NEW_DATA);
}

/* Whether CoW on this file is the container's: it dirtied it (writeback may run elsewhere),
 * or the CoW happens in its own context (direct I/O), and the file was not made by it. */
static __always_inline bool container_cow(__u64 ino, __u32 dev) {
  struct cb_file_key k = {.ino = ino, .dev = dev};
  if (bpf_map_lookup_elem(&created, &k)) return false;
  return watched() || bpf_map_lookup_elem(&dirtied, &k);
}

SEC("tp_btf/xfs_reflink_cow_remap_from")
int BPF_PROG(cb_xfs_cow_remap, struct xfs_inode___cb *ip, struct xfs_bmbt_irec___cb *irec) {
  if (!window.cgroup_id || window.kind != CB_KIND_EXTENT) return 0;
  __u32 dev = BPF_CORE_READ(ip, i_vnode.i_sb, s_dev);
  if (dev != window.upper_dev) return 0;
  __u64 ino = BPF_CORE_READ(ip, i_vnode.i_ino);
  if (!container_cow(ino, dev)) return 0;
  __u32 bits = BPF_CORE_READ(ip, i_vnode.i_blkbits);
  __u64 blocks = BPF_CORE_READ(irec, br_blockcount);
  __u64 start = BPF_CORE_READ(irec, br_startoff);
  struct inode *inode = (struct inode *)((char *)ip + bpf_core_field_offset(struct xfs_inode___cb, i_vnode));
  __u64 disk = BPF_CORE_READ(irec, br_startblock); /* fs block (AG-encoded): contiguous within an AG */
  account(inode, ino, dev, start << bits, blocks << bits, disk << bits, true);
  return 0;
}

/* XFS writeback into the data fork (not through the CoW fork): how an inherited file gets new
 * blocks beyond its end or in its holes. (Blocks that go through the CoW fork are counted at
 * their remap above.) */
#define IOMAP_F_SHARED___cb 0x04 /* include/linux/iomap.h: the mapping is the CoW fork's */
SEC("tp_btf/iomap_add_to_ioend")
int BPF_PROG(cb_xfs_ioend, struct inode *inode, __u64 pos, unsigned int dirty_len, struct iomap *iomap) {
  if (!window.cgroup_id || window.kind != CB_KIND_EXTENT) return 0;
  if (BPF_CORE_READ(iomap, flags) & IOMAP_F_SHARED___cb) return 0; /* through the CoW fork: its remap counts it */
  __u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
  if (dev != window.upper_dev) return 0;
  __u64 ino = BPF_CORE_READ(inode, i_ino);
  if (!container_cow(ino, dev)) return 0;
  __u64 disk = BPF_CORE_READ(iomap, addr) + (pos - BPF_CORE_READ(iomap, offset)); /* bytes on the device */
  account(inode, ino, dev, pos, dirty_len, disk, false);
  return 0;
}

SEC("tp_btf/btrfs_ordered_extent_add")
int BPF_PROG(cb_btrfs_ordered, const struct btrfs_inode___cb *inode, const struct btrfs_ordered_extent___cb *ordered) {
  if (!window.cgroup_id || window.kind != CB_KIND_EXTENT) return 0;
  __u32 dev = BPF_CORE_READ(inode, vfs_inode.i_sb, s_dev);
  if (dev != window.upper_dev) return 0;
  /* NOCOW and PREALLOC ordered extents write in place: not CoW (but new data where they are
   * beyond the inherited end, e.g. into the container's own fallocate). */
  unsigned long flags = BPF_CORE_READ(ordered, flags);
  unsigned long in_place = 0;
  if (bpf_core_enum_value_exists(enum btrfs_ordered_extent_flag___cb, BTRFS_ORDERED_NOCOW___cb))
    in_place |= 1UL << bpf_core_enum_value(enum btrfs_ordered_extent_flag___cb, BTRFS_ORDERED_NOCOW___cb);
  if (bpf_core_enum_value_exists(enum btrfs_ordered_extent_flag___cb, BTRFS_ORDERED_PREALLOC___cb))
    in_place |= 1UL << bpf_core_enum_value(enum btrfs_ordered_extent_flag___cb, BTRFS_ORDERED_PREALLOC___cb);
  bool cow = !(flags & in_place);
  __u64 ino = BPF_CORE_READ(inode, vfs_inode.i_ino);
  if (!container_cow(ino, dev)) return 0;
  struct inode *vfs = (struct inode *)((char *)inode + bpf_core_field_offset(struct btrfs_inode___cb, vfs_inode));
  /* btrfs writes every extent anew: account_range tells CoW of inherited data from new data. */
  __u64 disk = 0; /* btrfs logical address of the extent (6.10 renamed start to disk_bytenr) */
  if (bpf_core_field_exists(ordered->disk_bytenr))
    disk = BPF_CORE_READ(ordered, disk_bytenr);
  else
    disk = BPF_CORE_READ((const struct btrfs_ordered_extent___old *)ordered, start);
  if (bpf_core_field_exists(ordered->offset)) disk += BPF_CORE_READ(ordered, offset);
  account(vfs, ino, dev, BPF_CORE_READ(ordered, file_offset), BPF_CORE_READ(ordered, num_bytes), disk, cow);
  return 0;
}

SEC("tp_btf/btrfs_inode_new")
int BPF_PROG(cb_btrfs_inode_new, const struct inode *inode) {
  if (!watched() || window.kind != CB_KIND_EXTENT) return 0;
  struct cb_file_key k = {.ino = BPF_CORE_READ(inode, i_ino), .dev = BPF_CORE_READ(inode, i_sb, s_dev)};
  if (k.dev != window.upper_dev) return 0;
  __u8 one = 1;
  bpf_map_update_elem(&created, &k, &one, BPF_ANY);
  return 0;
}

/* --- fentry / kprobe: a window around the overlayfs copy-up function ---------------------- */

static __always_inline void window_enter(void) {
  if (!watched() || window.kind != CB_KIND_OVERLAY) return;
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct cb_task *t = lookup_or_zero(&tasks, &tid, struct cb_task);
  if (!t) return;
  if (t->depth == 0) {
    t->window_ns = bpf_ktime_get_ns();
    count(CB_C_PROBE_WINDOWS, 1);
  }
  t->depth++;
}

static __always_inline void window_exit(void) {
  if (!watched() || window.kind != CB_KIND_OVERLAY) return;
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct cb_task *t = bpf_map_lookup_elem(&tasks, &tid);
  if (!t || t->depth == 0) return;
  if (--t->depth) return;
  __s64 lat = (__s64)(bpf_ktime_get_ns() - t->window_ns);
  if (t->n)
    complete_task(tid, t, CB_EV_COPYUP, CB_HOW_PROBE_EXIT, lat, -1, 0, 0);
  else
    bpf_map_delete_elem(&tasks, &tid);
}

/* The attach target (ovl_copy_up_flags or another) is set by the loader. */
SEC("fentry")
int BPF_PROG(cb_copy_up_entry) {
  window_enter();
  return 0;
}

SEC("fexit")
int BPF_PROG(cb_copy_up_exit) {
  window_exit();
  return 0;
}

SEC("kprobe")
int BPF_KPROBE(cb_copy_up_kprobe) {
  window_enter();
  return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(cb_copy_up_kretprobe) {
  window_exit();
  return 0;
}
