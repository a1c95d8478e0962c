// Unit tests of the snapshot metadata store: persistence, atomic files, chains, corruption.
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fs.h"
#include "snapshotters/metastore.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using snap::Kind;
using snap::MetaStore;
using snap::Record;

Record rec(uint64_t id, std::string name, std::string parent, Kind kind) {
  Record r;
  r.id = id;
  r.info.name = std::move(name);
  r.info.parent = std::move(parent);
  r.info.kind = kind;
  r.info.labels = {{"k", "v"}};
  r.info.created_ns = 1;
  r.info.updated_ns = 2;
  return r;
}

TEST(MetaStore, SurvivesReopen) {
  TempDir d(scratch_root(), "meta");
  {
    MetaStore s(d.path());
    s.put(rec(s.next_id(), "base", "", Kind::kCommitted));
    s.put(rec(s.next_id(), "mid", "base", Kind::kCommitted));
    Record a = rec(s.next_id(), "active", "mid", Kind::kActive);
    s.put(a);
    // Commit renames: the old key disappears from the index.
    Record c = a;
    c.info.name = "top";
    c.info.kind = Kind::kCommitted;
    s.put(c, "active");
  }
  MetaStore s(d.path());
  EXPECT_EQ(s.find("active"), nullptr);
  ASSERT_NE(s.find("top"), nullptr);
  EXPECT_EQ(s.get("top").id, 3u);
  EXPECT_EQ(s.get("top").info.labels.at("k"), "v");
  auto chain = s.chain("top");
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0].info.name, "top");
  EXPECT_EQ(chain[2].info.name, "base");
  EXPECT_TRUE(s.has_children("base"));
  EXPECT_FALSE(s.has_children("top"));
  EXPECT_EQ(s.next_id(), 4u);
}

TEST(MetaStore, EraseAndMissing) {
  TempDir d(scratch_root(), "meta");
  MetaStore s(d.path(), false);
  Record r = rec(s.next_id(), "x", "", Kind::kView);
  s.put(r);
  s.erase(r);
  EXPECT_EQ(s.find("x"), nullptr);
  try {
    s.get("x", "parent");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
    EXPECT_NE(std::string(e.what()).find("parent 'x'"), std::string::npos) << e.what();
  }
  MetaStore again(d.path());
  EXPECT_TRUE(again.all().empty());
}

TEST(MetaStore, CorruptFileIsNamed) {
  TempDir d(scratch_root(), "meta");
  write_file_atomic(path_join(d.path(), "7.json"), "{\"id\": 7, \"name\": ");
  try {
    MetaStore s(d.path());
    FAIL() << "a corrupt record must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("7.json"), std::string::npos) << e.what();
  }
}

TEST(MetaStore, InterruptedWriteLeavesOldRecord) {
  TempDir d(scratch_root(), "meta");
  {
    MetaStore s(d.path());
    s.put(rec(1, "a", "", Kind::kActive));
  }
  // A process killed between writing the temp file and the rename.
  write_file_atomic(path_join(d.path(), "1.json.tmp.999"), "garbage");
  MetaStore s(d.path());
  EXPECT_EQ(s.get("a").info.kind, Kind::kActive);
  EXPECT_NE(access(path_join(d.path(), "1.json.tmp.999").c_str(), F_OK), 0) << "temp leftovers are removed";
}

}  // namespace
}  // namespace cowbench::test
