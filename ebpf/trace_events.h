/* The records and counters shared by copyup.bpf.c and its C++ loader (ebpf/tracer_*.cpp). */
#ifndef COWBENCH_EBPF_TRACE_EVENTS_H
#define COWBENCH_EBPF_TRACE_EVENTS_H

/* Fixed-width fields only: the same bytes are read by the kernel program and user space. The
 * BPF side gets __u32/__u64 from vmlinux.h, user space from <linux/types.h>. */
#ifndef __bpf__
#include <linux/types.h>
#endif

/* What the container's snapshot is, so that the programs know what to look for (cb_window.kind). */
enum cb_kind {
  CB_KIND_NONE = 0,     /* nothing to observe (a full copy: no copy-up ever happens) */
  CB_KIND_OVERLAY = 1,  /* kernel overlayfs: copy-up = an O_TMPFILE on the upper file system */
  CB_KIND_FUSE = 2,     /* FUSE daemons (fuse-overlayfs, unionfs-fuse): copy-up = the daemon creating a file where
                           its copies go (cb_window.fuse_create_*) */
  CB_KIND_EXTENT = 3,   /* reflink (XFS) / btrfs: block CoW at writeback */
};

/* Ring buffer record types (cb_event.type). */
enum cb_event_type {
  CB_EV_COPYUP = 1,      /* kernel overlayfs copy-up, completed at the end of its syscall */
  CB_EV_FUSE_COPYUP = 2, /* FUSE daemon copy-up, completed when the daemon answers */
  CB_EV_COW = 3,         /* block CoW: extents remapped (XFS) or ordered extents (btrfs) */
  CB_EV_SYSCALL = 4,     /* every syscall of the container (stress tests only: CB_FLAG_ALL_SYSCALLS) */
  CB_EV_NEW_DATA = 5,    /* block-CoW windows: data written into an inherited file beyond its inherited end
                            or into its holes (new blocks, not CoW) */
};

/* How a copy-up event was completed (cb_event.how). */
enum cb_how {
  CB_HOW_SYSCALL_EXIT = 1, /* at the exit of the syscall that made the upper inode */
  CB_HOW_FUSE_REPLY = 2,   /* when the FUSE daemon replied to the request it served */
  CB_HOW_PROBE_EXIT = 3,   /* at the return of the overlayfs copy-up function (fexit/kretprobe) */
};

/* What a kernel overlayfs copy-up copied (cb_event.copyup_kind, cb_pending.kind). */
enum cb_copyup_kind {
  CB_CU_DATA = 0,      /* the file's data (and metadata) into a new upper inode */
  CB_CU_METADATA = 1,  /* metadata only (metacopy=on): the upper inode is sparse, 0 data bytes */
  CB_CU_META_DATA = 2, /* the data of a file copied up metadata-only earlier in the window (its first
                          open for write), into the same upper inode: not a new copy-up */
  CB_CU_CLONED = 3,    /* the file's data cloned, not copied (upper and lower on one XFS reflink=1 or
                          btrfs: vfs_clone_file_range shares the lower's extents) */
  CB_CU_META_CLONED = 4, /* CB_CU_META_DATA by a clone */
};

/* Window flags (cb_window.flags). */
#define CB_FLAG_ALL_SYSCALLS 1u /* emit a CB_EV_SYSCALL record for every syscall exit of the container */
#define CB_FLAG_METACOPY 2u     /* the overlay is mounted with metacopy=on */
#define CB_FLAG_FUSE_NEW_FILES 4u /* the FUSE daemon creates the container's new files where its copies go too
                                     (unionfs-fuse): its creates while serving FUSE_CREATE / FUSE_MKNOD are not copy-ups */

/* Pending copy-up flags (cb_pending.flags). */
#define CB_PF_WRITE 1u  /* made by an open for write / with O_TRUNC, or a truncate: a data copy-up */
#define CB_PF_CLONED 2u /* its data was cloned into it (xfs_reflink_remap_range / btrfs data refs added) */

#define CB_NAME_LEN 32   /* bytes per path component (truncated, NUL-terminated) */
#define CB_NAME_DEPTH 8  /* path components kept, leaf first */
#define CB_CREATE_DEPTH 32 /* directory levels searched up for cb_window.fuse_create_dir (depth 0: any) */
#define CB_SKIP_TOP_LEN 16 /* bytes of cb_window.fuse_skip_top */
#define CB_MAX_PENDING 4 /* copy-ups one task can have in flight (one syscall or one FUSE request) */
#define CB_HIST_BUCKETS 64
#define CB_SYSCALL_SLOTS 1024 /* syscall numbers counted per window (map `syscall_counts`, index = nr) */

/* One ring buffer record. */
struct cb_event {
  __u64 ts_ns;      /* bpf_ktime_get_ns() at completion */
  __u64 latency_ns; /* copy-up: from the upper inode's creation (overlay) or the FUSE request (fuse) */
  __u64 bytes;      /* copy-up: the new upper inode's size; CoW: bytes of shared blocks rewritten; new data: bytes */
  __u64 ino;        /* the upper (or CoW'd) inode */
  __u64 offset;     /* CoW, new data: file offset of the extent; FUSE: request unique id */
  __u32 dev;        /* its super block's dev_t, kernel encoding (major << 20 | minor) */
  __u32 pid;        /* tgid of the task that made it (FUSE: the daemon) */
  __u32 tid;
  __s32 syscall;    /* syscall nr of the container task (FUSE: of the requester), -1 unknown */
  __u32 type;       /* enum cb_event_type */
  __u32 fuse_opcode;/* FUSE: the request's opcode, 0 otherwise */
  __u32 extents;    /* CoW: extents in this record */
  __u32 how;        /* enum cb_how */
  __u32 copyup_kind;/* copy-up: enum cb_copyup_kind */
  __u32 pad;
  char comm[16];
  char names[CB_NAME_DEPTH][CB_NAME_LEN]; /* path components below the upper dir, leaf first */
};

/* Indices of the per-CPU counter array (map `counters`). */
enum cb_counter {
  CB_C_COPYUPS = 0,
  CB_C_COPYUP_BYTES,
  CB_C_COW_EXTENTS,
  CB_C_COW_BYTES,
  CB_C_LOST,             /* ring buffer reservations that failed: records lost, counts kept */
  CB_C_PENDING_OVERFLOW, /* copy-ups beyond CB_MAX_PENDING in one syscall: counted, size unknown */
  CB_C_FUSE_REQUESTS,
  CB_C_FUSE_COPYUPS,
  CB_C_TMPFILES_SKIPPED, /* O_TMPFILE opened by the container itself (not a copy-up) */
  CB_C_SYSCALL_RECORDS,  /* CB_EV_SYSCALL records emitted */
  CB_C_PROBE_WINDOWS,    /* fentry/kprobe copy-up windows entered */
  CB_C_METADATA_COPYUPS, /* copy-ups of metadata only (metacopy=on), counted in CB_C_COPYUPS too */
  CB_C_META_DATA_COPYUPS,/* data copy-ups of files copied up metadata-only before (CB_CU_META_DATA) */
  CB_C_NEW_EXTENTS,      /* block CoW windows: extents (events) that added new data to inherited files */
  CB_C_NEW_BYTES,        /* ... and its bytes: beyond the inherited end or in holes (not CoW) */
  CB_C_REWRITE_BYTES,    /* blocks of inherited files written back again after their first CoW / new write
                            (btrfs writes every extent anew): neither CoW nor new */
  CB_C_COW_UNSIZED,      /* CoW events on files without an entry in `inherited` (beyond its bound): counted
                            whole as CoW, as before the split */
  CB_C_BLOCKS_UNTRACKED, /* chunks the `cow_blocks` map had no room for: counted without the once-per-block check */
  CB_C_SYSCALLS_UNSLOTTED, /* container syscalls whose number is outside 0..CB_SYSCALL_SLOTS-1: not in `syscall_counts` */
  CB_C_CLONED_COPYUPS,   /* copy-ups whose data was cloned (CB_CU_CLONED and CB_CU_META_CLONED) */
  CB_C_CLONED_BYTES,     /* ... and their bytes (in CB_C_COPYUP_BYTES too) */
  CB_C_CLONE_EVENTS,     /* clone tracepoints that matched a copy-up in flight (several per copy-up on btrfs) */
  CB_C_FUSE_NEW_FILES,   /* files a FUSE daemon created for FUSE_CREATE / FUSE_MKNOD (CB_FLAG_FUSE_NEW_FILES): not copy-ups */
  CB_C_COUNT
};

/* A copy-up in flight: the new upper inode, waiting for its syscall / FUSE request to end. */
struct cb_pending {
  __u64 inode; /* struct inode * (read again at completion) */
  __u64 ino;
  __u64 created_ns;
  __u32 dev;
  __s32 syscall;
  __u32 kind;  /* enum cb_copyup_kind: CB_CU_DATA (decided at completion) or CB_CU_META_DATA */
  __u32 flags; /* CB_PF_* */
};

/* Per task (key: tid): the copy-ups it has in flight, and its probe window depth. */
struct cb_task {
  struct cb_pending p[CB_MAX_PENDING];
  __u32 n;
  __u32 depth;       /* fentry/kprobe: nesting of the copy-up function */
  __u64 window_ns;   /* fentry/kprobe: when the outermost copy-up call began */
};

/* An outstanding FUSE request (key: struct cb_req_key). */
struct cb_req_key {
  __u64 unique;
  __u32 conn; /* fuse_conn dev */
  __u32 pad;
};
struct cb_req {
  __u64 sent_ns;
  __u32 opcode;
  __s32 syscall; /* of the requester, when it is a container task in a syscall */
  __u32 tid;     /* the requester */
  __u32 pad;
};

/* Per FUSE opcode (key: opcode): requests answered, their total latency, failures. */
struct cb_fuse_op {
  __u64 count;
  __u64 total_ns;
  __u64 errors;
  __u64 copyups;
};

/* Per-file key for CoW and dirtied-inode sets. */
struct cb_file_key {
  __u64 ino;
  __u32 dev;
  __u32 pad;
};
struct cb_cow_file {
  __u64 extents;
  __u64 bytes;
  __u64 new_bytes; /* new data (not CoW), see CB_EV_NEW_DATA */
};

/* A regular file of the writable tree when the window opened, as the container inherited it
 * (key: struct cb_file_key; filled by user space at begin()). The data it shared with the
 * parent is [0, size rounded up to a block) without its holes; what is written there is CoW,
 * what is written beyond or into a hole is new data. */
#define CB_MAX_HOLES 4
#define CB_MAX_INHERITED (1u << 18) /* files loaded per window; CoW on the others is counted whole (CB_C_COW_UNSIZED) */
#define CB_INH_GENERATION 1u        /* `generation` is known: compare it */
struct cb_inherited {
  __u64 size;       /* i_size at begin() */
  __u32 generation; /* i_generation (FS_IOC_GETVERSION): a new inode that reuses the number differs */
  __u16 holes;      /* entries of hole_start/hole_end in use (at most CB_MAX_HOLES; more are taken as data) */
  __u16 flags;      /* CB_INH_* */
  __u64 hole_start[CB_MAX_HOLES]; /* bytes, block-aligned, below size */
  __u64 hole_end[CB_MAX_HOLES];
};

/* Which blocks of an inherited file were already counted in this window (map `cow_blocks`):
 * 64 blocks per entry, bit i = block (chunk << 6) + i, and where on disk each was written last —
 * so that user space can count the extents the file ends up with (runs of blocks that follow
 * each other on disk, as the file systems merge them). */
struct cb_block_key {
  __u64 ino;
  __u32 dev;
  __u32 chunk; /* block index >> 6 */
};
struct cb_block_chunk {
  __u64 seen;      /* blocks counted (CoW or new data) */
  __u32 phys[64];  /* per block: the low 32 bits of the disk block it was last written to */
};

/* Per syscall nr (key: __s32): copy-ups it caused. */
struct cb_syscall_stat {
  __u64 copyups;
  __u64 bytes;
};

/* The window: which container is being watched. Written by user space (the skeleton's
 * mmap'ed .bss) between runs; cgroup_id == 0 means no window is open. */
struct cb_window {
  __u64 cgroup_id;    /* bpf_get_current_cgroup_id() of the container's tasks */
  __u64 fuse_create_dir; /* FUSE: ino of the directory the daemon's copies are created below (fuse-overlayfs:
                            its workdir=, the files in <it>/work; unionfs-fuse: the writable branch) */
  __u64 upper_ino;    /* ino of the upper / writable dir: where path walks stop */
  __u32 fuse_tgid;    /* FUSE daemon outside the cgroup (0: none) */
  __u32 kind;         /* enum cb_kind */
  __u32 upper_dev;    /* super block dev of the upper / writable dir (kernel encoding) */
  __u32 flags;        /* CB_FLAG_* */
  __u32 ignore_tid;   /* a thread of the tracer itself (its ring buffer reader): its syscalls are not the container's */
  __u32 fuse_create_depth; /* FUSE: the copies lie exactly this many levels below fuse_create_dir; 0: at any depth */
  char fuse_skip_top[CB_SKIP_TOP_LEN]; /* FUSE: an entry of fuse_create_dir whose files are not copies
                                          (unionfs-fuse's ".unionfs-fuse" whiteouts); "" for none */
};

#endif /* COWBENCH_EBPF_TRACE_EVENTS_H */
