// The BTF index of tracepoints and functions (see tracepoint_index.h).
#include "ebpf/tracepoint_index.h"

#include <dirent.h>
#include <fmt/format.h>

#include <cerrno>

namespace cowbench::ebpf {

TracepointIndex::TracepointIndex() {
  vmlinux_.reset(btf__load_vmlinux_btf());
  if (!vmlinux_) {
    error_ = fmt::format("no vmlinux BTF ({})", errno_text(errno));
    return;
  }
  // Module BTFs are split on top of vmlinux's; one file per loaded module.
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir("/sys/kernel/btf"), closedir);
  if (!d) return;
  while (dirent* e = readdir(d.get())) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || n == "vmlinux") continue;
    if (btf* m = btf__load_module_btf(n.c_str(), vmlinux_.get())) modules_.emplace_back(n, BtfPtr(m));
  }
}

std::string TracepointIndex::missing(const std::string& tracepoint) const {
  if (!vmlinux_) return error_;
  std::string name = "btf_trace_" + tracepoint;
  if (btf__find_by_name_kind(vmlinux_.get(), name.c_str(), BTF_KIND_TYPEDEF) > 0) return "";
  for (const auto& [mod, b] : modules_)
    if (btf__find_by_name_kind(b.get(), name.c_str(), BTF_KIND_TYPEDEF) > 0) return "";
  return fmt::format("no tracepoint {} in this kernel (or its module is not loaded)", tracepoint);
}

std::string TracepointIndex::function(const std::string& name) const {
  if (!vmlinux_) return "";
  if (btf__find_by_name_kind(vmlinux_.get(), name.c_str(), BTF_KIND_FUNC) > 0) return "vmlinux";
  for (const auto& [mod, b] : modules_)
    if (btf__find_by_name_kind(b.get(), name.c_str(), BTF_KIND_FUNC) > 0) return mod;
  return "";
}

}  // namespace cowbench::ebpf
