// Trial load-and-attach of minimal BPF programs: which program types work on this host, and why not.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cowbench::ebpf {

// The outcome of one probe: ok, or why not (naming the errno and the likely cause).
struct ProbeResult {
  bool ok = false;
  std::string detail;  // what worked (and how) when ok; why not otherwise
};

// Every probe below:
//  - loads a hand-written two-instruction program (r0 = 0; exit) with libbpf's low-level
//    API and attaches it for real, then detaches and closes everything: no fd, link, perf
//    event or kprobe event is left behind. (tracefs may be mounted and left mounted, see
//    find_tracefs in ebpf/kernel_fs.h; the detail then says so.)
//  - needs root with CAP_BPF + CAP_PERFMON or CAP_SYS_ADMIN; otherwise returns ok=false with
//    a detail starting "needs root".
//  - silences libbpf's print callback while it runs (restoring the previous one), and
//    raises RLIMIT_MEMLOCK only when a load fails with EPERM under a finite limit (kernels
//    without memcg accounting of BPF memory), for one retry, then restores it; the detail
//    says when the load needed it.
//  - never throws; it is not thread-safe (libbpf's print callback is process-global).

// vmlinux BTF is present and parses (/sys/kernel/btf/vmlinux). Does not need root.
ProbeResult probe_btf();

// BPF_PROG_TYPE_TRACEPOINT on syscalls:sys_enter_openat through perf_event_open
// (PERF_TYPE_TRACEPOINT, id from tracefs) + PERF_EVENT_IOC_SET_BPF, bound to the calling
// thread; it then opens "/" a few times and checks with BPF run statistics that the program
// really ran. Mounts tracefs at /sys/kernel/tracing if it is mounted nowhere.
ProbeResult probe_tracepoint();

// BPF_PROG_TYPE_RAW_TRACEPOINT attached to "sys_enter" (bpf_raw_tracepoint_open); checks
// that it ran, as probe_tracepoint does.
ProbeResult probe_raw_tracepoint();

// tp_btf: BPF_PROG_TYPE_TRACING / BPF_TRACE_RAW_TP on the BTF typedef
// btf_trace_sched_process_exec, attached with bpf_link_create (or raw_tracepoint_open).
ProbeResult probe_tp_btf();

// The overlayfs copy-up functions, most specific first (ovl_copy_up_one is inlined on
// some kernels, hence the others).
const std::vector<std::string>& overlay_copy_up_functions();

// fentry: BPF_PROG_TYPE_TRACING / BPF_TRACE_FENTRY on the first of `candidates` found in
// vmlinux BTF or, for overlayfs built as a module, in /sys/kernel/btf/overlay (then the
// module's BTF object fd is passed as attach_btf_obj_fd). When none is found it checks
// with vfs_read. The detail names the function used.
ProbeResult probe_fentry(const std::vector<std::string>& candidates = overlay_copy_up_functions());

// BPF_PROG_TYPE_KPROBE on `func`, attached through the kprobe PMU
// (/sys/bus/event_source/devices/kprobe) or else a legacy tracefs kprobe_events entry,
// which is removed again afterwards.
ProbeResult probe_kprobe(const std::string& func);

// The first of `names` listed in /proc/kallsyms (the kernel's symbols, where kprobes can
// go), or nullopt.
std::optional<std::string> first_in_kallsyms(const std::vector<std::string>& names);

}  // namespace cowbench::ebpf
