// Minimal leveled logging to stderr, shared by the library and the CLI.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace cowbench::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_level(Level l) noexcept;
Level level() noexcept;
void write(Level l, std::string_view msg) noexcept;

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) { write(Level::kError, fmt::format(f, std::forward<Args>(a)...)); }
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) {
  if (level() >= Level::kWarn) write(Level::kWarn, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) {
  if (level() >= Level::kInfo) write(Level::kInfo, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) {
  if (level() >= Level::kDebug) write(Level::kDebug, fmt::format(f, std::forward<Args>(a)...));
}

}  // namespace cowbench::log
