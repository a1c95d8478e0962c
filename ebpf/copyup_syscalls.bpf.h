/* Part of copyup.bpf.c (included there, after the maps and helpers): the container's system calls counted by number. */
/* --- every system call a task of the watched cgroup enters --------------------------------- */

/* sys_enter fires for every system call on the host: the cgroup test comes first and is all
 * that other tasks pay (a .bss load, one helper call, a compare). Only the cgroup counts here,
 * not a FUSE daemon watched by pid: these are the container's own calls. A per-CPU array
 * indexed by number needs no atomics and no hash lookup. Counted at entry, so that calls that
 * never return (exit_group, a successful execve's old image) count too. */
SEC("tp_btf/sys_enter")
int BPF_PROG(cb_sys_enter, struct pt_regs *regs, long id) {
  __u64 cg = window.cgroup_id;
  if (!cg || bpf_get_current_cgroup_id() != cg) return 0;
  __u32 ignore = window.ignore_tid;
  if (ignore && (__u32)bpf_get_current_pid_tgid() == ignore) return 0;
  if (id < 0 || id >= CB_SYSCALL_SLOTS) {
    count(CB_C_SYSCALLS_UNSLOTTED, 1);
    return 0;
  }
  __u32 k = (__u32)id;
  __u64 *c = bpf_map_lookup_elem(&syscall_counts, &k);
  if (c) *c += 1;
  return 0;
}
