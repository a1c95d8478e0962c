// The tracer's probe modes and the words `--trace` takes: one list for the CLI, the factory and the fallback.
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace cowbench::ebpf {

// The probe modes, best first: `--trace auto` tries them in this order.
inline constexpr std::array<std::string_view, 3> kProbeModes{"fentry", "kprobe", "tracepoint"};

// Every word `--trace` takes: auto, the probe modes, off.
inline std::vector<std::string> trace_mode_words() {
  std::vector<std::string> words{"auto"};
  words.insert(words.end(), kProbeModes.begin(), kProbeModes.end());
  words.emplace_back("off");
  return words;
}

inline bool is_probe_mode(std::string_view mode) {
  return std::find(kProbeModes.begin(), kProbeModes.end(), mode) != kProbeModes.end();
}

// "auto, fentry, kprobe, tracepoint or off" (for error messages).
inline std::string trace_mode_list() {
  std::vector<std::string> w = trace_mode_words();
  std::string out;
  for (size_t i = 0; i < w.size(); ++i) out += (i == 0 ? "" : i + 1 == w.size() ? " or " : ", ") + w[i];
  return out;
}

}  // namespace cowbench::ebpf
