// The eBPF copy-up and block-CoW tracer behind `cowbench run --trace`: probe-mode choice and the TraceSession.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "ebpf/trace_session.h"

namespace cowbench::ebpf {

struct TracerOptions {
  size_t ringbuf_bytes = size_t{4} << 20;  // a power of two, at least one page
  // Every syscall exit of the container becomes a ring buffer record (counted, not kept):
  // for stress tests of the ring buffer. Off for real runs.
  bool record_syscalls = false;
  // Per-event records kept per window for TraceCounts.extra["events"] (the counts never
  // depend on it).
  size_t max_kept_events = 1000;
};

// Opens the tracer: loads the BPF programs once (CO-RE, from the skeleton built with
// cowbench) and attaches them; windows are opened per container with begin().
//   mode "fentry" / "kprobe" / "tracepoint": that mode, or Error(kUsage, "--trace MODE: <why
//     it cannot work here>") — e.g. kernel lockdown refusing fentry and kprobes.
//   mode "auto": the first of kProbeModes (ebpf/trace_modes.h) that loads; its details()
//     record why the better ones lost. Returns nullptr when none works, with the reasons in
//     *why_none.
// Any other mode: Error(kUsage). Needs root (CAP_BPF + CAP_PERFMON or CAP_SYS_ADMIN).
// Everything loaded or attached is released by the session's destructor, also when opening
// fails half-way; nothing stays attached after the process exits.
std::unique_ptr<TraceSession> open_tracer(const std::string& mode, const TracerOptions& options = {},
                                          std::string* why_none = nullptr);

}  // namespace cowbench::ebpf
