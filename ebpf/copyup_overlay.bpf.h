/* Part of copyup.bpf.c (included there, after the maps and helpers): kernel overlayfs copy-ups by tracepoints, and the fentry/kprobe window. */
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

/* --- copy-up by clone: upper and lower on one XFS (reflink=1) or btrfs ------------------- */

/* A clone into the inode (ino, dev) in the current task, whose struct inode * is `inode` when
 * the tracepoint gives it (else 0): overlayfs (ovl_copy_file → vfs_clone_file_range), or the
 * FUSE daemon's FICLONE, filling the upper inode of a copy-up in flight — that copy-up is
 * cloned. With metacopy=on, the first clone into an upper inode copied up metadata-only in this
 * window is that file's data copy-up: it clones and dirties no page, so the page-dirtying rule
 * of cb_mark_inode_dirty never sees it. */
static __always_inline void clone_into(struct inode *inode, __u64 ino, __u32 dev) {
  if (!watched()) return;
  __u32 kind = window.kind;
  if (kind != CB_KIND_OVERLAY && kind != CB_KIND_FUSE) return;
  if (dev != window.upper_dev) return;
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct cb_task *t = bpf_map_lookup_elem(&tasks, &tid);
  if (t) {
#pragma unroll
    for (int i = 0; i < CB_MAX_PENDING; i++) {
      if (i >= t->n) break;
      if (t->p[i].ino == ino && t->p[i].dev == dev) {
        t->p[i].flags |= CB_PF_CLONED;
        count(CB_C_CLONE_EVENTS, 1);
        return;
      }
    }
  }
  if (kind != CB_KIND_OVERLAY || !(window.flags & CB_FLAG_METACOPY)) return;
  struct cb_file_key k = {.ino = ino, .dev = dev};
  __u64 *at = bpf_map_lookup_elem(&metacopied, &k);
  if (!at) return;
  if (!inode) {
    /* Only the number is known (btrfs): the inode the metadata copy-up made, while it is that one. */
    struct inode *was = (struct inode *)*at;
    if (BPF_CORE_READ(was, i_ino) != ino || BPF_CORE_READ(was, i_sb, s_dev) != dev) return;
    inode = was;
  }
  bpf_map_delete_elem(&metacopied, &k);
  count(CB_C_CLONE_EVENTS, 1);
  add_pending(inode, dev, (__s32)syscall_nr(current_regs()), CB_CU_META_DATA, CB_PF_WRITE | CB_PF_CLONED);
}

/* XFS: the remap (clone) of a range of src into dest, at its start (xfs_reflink_remap_prep). */
SEC("tp_btf/xfs_reflink_remap_range")
int BPF_PROG(cb_xfs_clone, struct xfs_inode___cb *src, __s64 soffset, __s64 len, struct xfs_inode___cb *dest,
             __s64 doffset) {
  if (!window.cgroup_id) return 0;
  struct inode *inode = (struct inode *)((char *)dest + bpf_core_field_offset(struct xfs_inode___cb, i_vnode));
  clone_into(inode, BPF_CORE_READ(dest, i_vnode.i_ino), BPF_CORE_READ(dest, i_vnode.i_sb, s_dev));
  return 0;
}

/* btrfs: a reference added to a data extent for an inode (objectid) — a clone shares the
 * source's extents by adding references for the destination inode, in the cloning task; new
 * data gets its references later, when its ordered extent completes in a worker. */
SEC("tp_btf/add_delayed_data_ref")
int BPF_PROG(cb_btrfs_clone, const struct btrfs_fs_info___cb *fs_info, const struct btrfs_delayed_ref_node___cb *ref) {
  if (!window.cgroup_id) return 0;
  if (BPF_CORE_READ_BITFIELD_PROBED(ref, action) != BTRFS_ADD_DELAYED_REF___cb) return 0;
  clone_into(NULL, BPF_CORE_READ(ref, data_ref.objectid), BPF_CORE_READ(fs_info, sb, s_dev));
  return 0;
}

/* Whether `top` (an entry directly below window.fuse_create_dir) is window.fuse_skip_top. */
static __always_inline bool skipped_top(struct dentry *top) {
  if (!window.fuse_skip_top[0]) return false;
  char name[CB_SKIP_TOP_LEN] = {};
  bpf_probe_read_kernel_str(name, sizeof name, BPF_CORE_READ(top, d_name.name));
  for (int i = 0; i < CB_SKIP_TOP_LEN; i++) {
    if (name[i] != window.fuse_skip_top[i]) return false;
    if (!name[i]) return true;
  }
  return true;
}

/* Whether `d` lies where the window's FUSE daemon creates its copies: fuse_create_depth levels
 * below fuse_create_dir (at any depth up to CB_CREATE_DEPTH when 0), not below fuse_skip_top. */
static __always_inline bool in_copyup_site(struct dentry *d) {
  __u32 depth = window.fuse_create_depth;
  struct dentry *top = d; /* the ancestor being looked at, then the one directly below the site */
  for (__u32 i = 1; i <= CB_CREATE_DEPTH; i++) {
    struct dentry *parent = BPF_CORE_READ(top, d_parent);
    if (!parent || parent == top) return false;
    struct inode *pi = BPF_CORE_READ(parent, d_inode);
    if (pi && BPF_CORE_READ(pi, i_ino) == window.fuse_create_dir) return (!depth || i == depth) && !skipped_top(top);
    if (depth && i >= depth) return false;
    top = parent;
  }
  return false;
}

/* The FUSE daemon's open call created a file where its copies go: a copy-up begins. */
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
  if (!in_copyup_site(BPF_CORE_READ(f, f_path.dentry))) return;
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
