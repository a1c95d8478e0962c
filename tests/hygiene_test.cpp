// Host hygiene's pure parts: /proc/meminfo parsing and page-cache growth when a reading is missing.
#include "runner/hygiene.h"

#include <gtest/gtest.h>

namespace cowbench::test {
namespace {

constexpr const char* kMeminfo =
    "MemTotal:       24567890 kB\n"
    "MemFree:         1234567 kB\n"
    "Cached:           456789 kB\n"
    "Dirty:               100 kB\n"
    "Writeback:            28 kB\n"
    "HugePages_Total:       0\n";

TEST(Hygiene, MeminfoFieldsAreSummed) {
  EXPECT_EQ(parse_meminfo_kb(kMeminfo, {"Cached"}), 456789);
  EXPECT_EQ(parse_meminfo_kb(kMeminfo, {"Dirty", "Writeback"}), 128);
  EXPECT_EQ(parse_meminfo_kb(kMeminfo, {"HugePages_Total"}), 0) << "a field without a unit";
  EXPECT_EQ(parse_meminfo_kb(kMeminfo, {"SwapCached"}), std::nullopt) << "a missing field is not 0";
  EXPECT_EQ(parse_meminfo_kb("", {"Cached"}), std::nullopt);
}

TEST(Hygiene, ThisHostHasACachedField) {
  auto cached = meminfo_kb({"Cached"});
  ASSERT_TRUE(cached.has_value());
  EXPECT_GT(*cached, 0);
}

// A missing reading is "not measured" (-1), never a growth computed from -1.
TEST(Hygiene, PageCacheGrowthNeedsBothReadings) {
  EXPECT_EQ(page_cache_growth_bytes(1000, 1500), 500 * 1024);
  EXPECT_EQ(page_cache_growth_bytes(1500, 1000), -500 * 1024) << "the cache may shrink";
  EXPECT_EQ(page_cache_growth_bytes(std::nullopt, 1500), -1);
  EXPECT_EQ(page_cache_growth_bytes(1000, std::nullopt), -1);
}

}  // namespace
}  // namespace cowbench::test
