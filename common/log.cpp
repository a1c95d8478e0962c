// Leveled logging: one line per message on stderr, written with a single write(2).
#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace cowbench::log {
namespace {
std::atomic<Level> g_level{Level::kWarn};
constexpr const char* kPrefix[] = {"error: ", "warning: ", "", "debug: "};
}  // namespace

void set_level(Level l) noexcept { g_level.store(l, std::memory_order_relaxed); }
Level level() noexcept { return g_level.load(std::memory_order_relaxed); }

void write(Level l, std::string_view msg) noexcept {
  try {
    std::string line = fmt::format("cowbench: {}{}\n", kPrefix[static_cast<int>(l)], msg);
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
  } catch (...) {
  }
}

}  // namespace cowbench::log
