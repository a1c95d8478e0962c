/* Part of copyup.bpf.c (included there, after the maps and helpers): FUSE requests and FUSE daemon copy-ups. */
/* --- FUSE requests --------------------------------------------------------------------- */

/* The FUSE opcodes (uapi fuse.h) whose replies end a daemon's creating of a new file. */
#define FUSE_MKNOD_OP 8
#define FUSE_CREATE_OP 35

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
    __u32 op_now = BPF_CORE_READ(req, in.h.opcode);
    if (t && t->n && (window.flags & CB_FLAG_FUSE_NEW_FILES) && (op_now == FUSE_CREATE_OP || op_now == FUSE_MKNOD_OP)) {
      /* The container's new file, created where the copies go: not a copy-up. */
      count(CB_C_FUSE_NEW_FILES, t->n);
      t->n = 0;
      if (t->depth == 0) bpf_map_delete_elem(&tasks, &tid);
    } else if (t && t->n) {
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
