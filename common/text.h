// Small string helpers shared by the parsers of mount options, command lines and tables.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cowbench {

// Splits at every `sep`, keeping empty parts: "a,,b" → {"a", "", "b"}, "" → {""}.
std::vector<std::string> split(std::string_view s, char sep);
// Joins with `sep` between the parts.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

}  // namespace cowbench
