// Which tracepoints and functions this kernel's BTF has (vmlinux and loaded modules): what tp_btf and fentry need.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ebpf/bpf_util.h"

namespace cowbench::ebpf {

// Loads vmlinux BTF and every module BTF under /sys/kernel/btf once; lookups are by name.
// Never throws: without vmlinux BTF every tracepoint is missing (saying why).
class TracepointIndex {
 public:
  TracepointIndex();

  // "" when the tracepoint is there (its typedef btf_trace_<name>), else why not.
  std::string missing(const std::string& tracepoint) const;
  // Where function `name` is ("vmlinux" or a module's name), or "".
  std::string function(const std::string& name) const;

 private:
  BtfPtr vmlinux_;
  std::vector<std::pair<std::string, BtfPtr>> modules_;
  std::string error_;
};

}  // namespace cowbench::ebpf
