// The libbpf helpers the tracer and the probes share: log capture, RAII deleters, errno and EPERM texts, privilege, map iteration.
#pragma once

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cowbench::ebpf {

// --- libbpf's messages ---------------------------------------------------------------------

// Takes over libbpf's print callback while alive and restores the previous one (and the
// previous capture, so that instances nest) when destroyed. libbpf's callback is
// process-global: one instance per thread at a time, not shared between threads.
class LibbpfLog {
 public:
  // Quiet: every message is dropped (the probes, whose failures are expected).
  LibbpfLog();
  // Capture: warnings and infos are appended to *sink, one line each, and logged at debug
  // level; libbpf's debug messages are dropped. `sink` must outlive this object.
  explicit LibbpfLog(std::string* sink);
  LibbpfLog(const LibbpfLog&) = delete;
  LibbpfLog& operator=(const LibbpfLog&) = delete;
  ~LibbpfLog();

 private:
  libbpf_print_fn_t previous_print_ = nullptr;
  std::string* previous_sink_ = nullptr;
};

// The last `n` non-empty lines of `text` joined by " | " (where libbpf or the verifier says
// what failed).
std::string tail_lines(const std::string& text, size_t n);

// What libbpf's log (as a LibbpfLog captured it) says of a failed object load: the program
// whose load failed ("prog 'NAME': failed to load", the last one) and the verifier's reason
// for refusing it (the last line of that program's verifier log that is not a statistic, e.g.
// "combined stack size of 3 calls is 592. Too large"). Empty fields where the log does not say.
struct LoadFailure {
  std::string program;
  std::string reason;
};
LoadFailure load_failure(const std::string& libbpf_log);

// --- RAII for libbpf objects -----------------------------------------------------------------

struct BtfDeleter {
  void operator()(btf* b) const noexcept { btf__free(b); }
};
struct LinkDeleter {
  void operator()(bpf_link* l) const noexcept { bpf_link__destroy(l); }
};
struct RingDeleter {
  void operator()(ring_buffer* r) const noexcept { ring_buffer__free(r); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;
using RingPtr = std::unique_ptr<ring_buffer, RingDeleter>;

// --- errors ----------------------------------------------------------------------------------

// The kernel-internal ENOTSUPP, which reaches user space from BPF calls as is.
inline constexpr int kEnotsupp = 524;

// "EPERM", "ENOTSUPP", or "errno N" for a number without a name.
std::string errno_name(int err);
// "EPERM: Operation not permitted".
std::string errno_text(int err);

// The likely cause of an EPERM from the kernel for `what` ("fentry", "kprobes", "attaching"...):
// "kernel lockdown=integrity refuses fentry (EPERM)" when lockdown is on, else a capability or
// an LSM policy, naming the lockdown state.
std::string eperm_cause(const std::string& what);

// Why this process cannot load and attach tracing programs, or nullopt: it needs root with
// CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON, in its effective set. The text starts with
// "needs root".
std::optional<std::string> privilege_problem();

// --- maps ------------------------------------------------------------------------------------

// Calls fn(key) for every key of the map at `map_fd` (key_size bytes each), in the kernel's
// order. fn must not delete entries (use clear_map); entries the BPF side adds or removes
// meanwhile may or may not be seen, as with bpf_map_get_next_key itself.
void for_each_key_bytes(int map_fd, size_t key_size, const std::function<void(const void* key)>& fn);

// Typed form: fn(const K& key) for every key.
template <class K, class F>
void for_each_key(int map_fd, F&& fn) {
  for_each_key_bytes(map_fd, sizeof(K), [&](const void* raw) {
    K key;
    std::memcpy(&key, raw, sizeof key);
    fn(key);
  });
}

// Deletes every entry of a hash map (stops at the first entry the kernel will not delete).
void clear_map(int map_fd, size_t key_size);

// For a per-CPU array: the sum over CPUs of each of its first `entries` values (uint64_t
// each); entries that cannot be read count 0.
std::vector<uint64_t> percpu_sums(int map_fd, uint32_t entries);

// Sets the first `entries` values of a per-CPU uint64_t array to 0 on every CPU.
void zero_percpu(int map_fd, uint32_t entries);

}  // namespace cowbench::ebpf
