// Block-level CoW backends (every extent-granular one: reflink, btrfs): a first write copies one block, the block CoW ground truth, FIEMAP usage, scratch file system lifecycle.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/loop.h"
#include "common/mount.h"
#include "runner/ground_truth.h"
#include "snapshotters/fiemap.h"
#include "snapshotters/reflink/reflink_snapshotter.h"
#include "snapshotters/registry.h"
#include "snapshotters/scratch_fs.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

constexpr int64_t kKiB = 1024, kMiB = 1024 * kKiB;
constexpr int64_t kLowerSize = 64 * kMiB;

// Writes `size` bytes of non-zero data (no holes) to dir/name and fsyncs it.
void write_big_file(const std::string& dir, const std::string& name, int64_t size) {
  std::string p = path_join(dir, name);
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << p << ": " << std::strerror(errno);
  std::string chunk(kMiB, 'L');
  for (int64_t done = 0; done < size; done += kMiB)
    ASSERT_EQ(write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size())) << std::strerror(errno);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
}

// One 4 KiB pwrite + fsync in the middle of dir/name.
void write_one_block(const std::string& dir, const std::string& name, int64_t file_size) {
  std::string p = path_join(dir, name);
  int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << p << ": " << std::strerror(errno);
  std::string block(4096, 'W');
  ASSERT_EQ(pwrite(fd, block.data(), block.size(), file_size / 2), 4096) << std::strerror(errno);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
}

std::optional<Errc> error_code(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return std::nullopt;
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// The names in `dir` (none when it cannot be read).
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.push_back(e->d_name);
    closedir(d);
  }
  return out;
}

// The backends whose copy-on-write unit is the extent, by their capabilities.
std::vector<std::string> extent_backends() {
  std::vector<std::string> out;
  for (const auto& name : snap::builtin_registry().names())
    if (snap::builtin_registry().get(name).caps.cow_granularity == snap::Granularity::kExtent) out.push_back(name);
  return out;
}

class BlockCow : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "blockcow-" + GetParam());
    auto a = spec().probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << GetParam() << " is unavailable here: " << a.reason;
  }

  void TearDown() override {
    if (!tmp_) return;
    EXPECT_EQ(left_behind(tmp_->path()), "");
  }

  const snap::BackendSpec& spec() { return snap::builtin_registry().get(GetParam()); }
  std::string root() { return path_join(tmp_->path(), "root"); }
  std::string store() { return path_join(root(), "store"); }
  // The scratch images in the root: ROOT/cache.<fs>.img (scratch_fs.h).
  std::vector<std::string> images() {
    std::vector<std::string> out;
    for (const auto& n : names_in(root()))
      if (n.starts_with("cache.") && n.ends_with(".img")) out.push_back(path_join(root(), n));
    return out;
  }
  std::unique_ptr<snap::Snapshotter> open(const snap::BackendOptions& o = {}) { return spec().create(root(), o); }

  // Why the backend cannot take these scratch file system options (it documents none of
  // them), or nullopt.
  std::optional<std::string> missing_options(std::initializer_list<const char*> names) {
    for (const char* n : names) {
      bool documented = false;
      for (const auto& o : spec().options) documented = documented || o.name == n;
      if (!documented) return GetParam() + " has no scratch file system option '" + n + "'";
    }
    return std::nullopt;
  }

  // True when the backend keeps its snapshots as btrfs subvolumes (store/snapshots/<id>/fs
  // is a subvolume root: inode 256 on btrfs).
  bool snapshots_are_subvolumes() {
    std::string dir = path_join(store(), "snapshots");
    for (const auto& id : names_in(dir)) {
      std::string fs = path_join(path_join(dir, id), "fs");
      if (inode_of(fs) == 256 && fs_type_name(fs) == "btrfs") return true;
    }
    return false;
  }

  // A committed snapshot `name` holding one file.
  void commit_file(snap::Snapshotter& sn, const std::string& name, const std::string& file, const std::string& content) {
    with_mounted(sn.prepare(name + "-active", ""), tmp_->path(), create_file(file, content));
    sn.commit(name, name + "-active");
  }

  // Nothing of a failed open may stay: no mount, no loop device, no image.
  void expect_nothing_left() {
    EXPECT_TRUE(mounts_under(tmp_->path()).empty());
    EXPECT_TRUE(loops_backed_under(tmp_->path()).empty());
    auto left = images();
    EXPECT_TRUE(left.empty()) << left.front() << " must be deleted";
  }

  std::unique_ptr<TempDir> tmp_;
};

TEST_P(BlockCow, FirstWriteCopiesOneBlock) {
  auto sn = open();
  with_mounted(sn->prepare("lower-active", ""), tmp_->path(),
               [&](const std::string& dir) { write_big_file(dir, "big", kLowerSize); });
  sn->commit("lower", "lower-active");
  auto mounts = sn->prepare("container", "lower");
  snap::Usage before = sn->usage("container");
  EXPECT_GE(before.shared, kLowerSize) << "a fresh container shares the whole lower file";
  EXPECT_LT(before.size, 64 * kKiB);
  with_mounted(mounts, tmp_->path(), [&](const std::string& dir) { write_one_block(dir, "big", kLowerSize); });

  snap::Usage after = sn->usage("container");
  int64_t grew = after.size - before.size;
  fmt::print("{}: container exclusive {} -> {} bytes, shared {} bytes\n", GetParam(), before.size, after.size, after.shared);
  EXPECT_GE(grew, 4 * kKiB) << "the written block is the container's own";
  EXPECT_LE(grew, 128 * kKiB + 16 * kKiB) << "extent-granular CoW copies one block or extent, not the file";
  EXPECT_GE(after.shared, kLowerSize - 128 * kKiB) << "the rest of the file stays shared";
  EXPECT_EQ(after.inodes, before.inodes);

  // The parent keeps its data; the container sees its own block.
  with_mounted(sn->view("check", "lower"), tmp_->path(), [&](const std::string& dir) {
    std::string data = read_file(path_join(dir, "big"));
    EXPECT_EQ(data.substr(kLowerSize / 2, 4096), std::string(4096, 'L'));
  });
  with_mounted(sn->mounts("container"), tmp_->path(), [&](const std::string& dir) {
    std::string data = read_file(path_join(dir, "big"));
    ASSERT_EQ(static_cast<int64_t>(data.size()), kLowerSize);
    EXPECT_EQ(data.substr(kLowerSize / 2, 4096), std::string(4096, 'W'));
    EXPECT_EQ(data.substr(kLowerSize / 2 + 4096, 4096), std::string(4096, 'L'));
  });
  snap::Usage lower = sn->usage("lower");
  EXPECT_GE(lower.shared, kLowerSize - 128 * kKiB);
  sn->close();
}

// The block CoW ground truth (runner/ground_truth.h) on the backend's own trees: each lower
// file of a container against what it inherited, split into CoW of inherited data and new data.
TEST_P(BlockCow, GroundTruthTellsCowFromNewData) {
  auto sn = open();
  constexpr int64_t kTail = 1000001;  // not a whole number of blocks
  with_mounted(sn->prepare("lower-active", ""), tmp_->path(), [&](const std::string& dir) {
    for (const char* f : {"aligned", "middle", "untouched"}) write_big_file(dir, f, kMiB);
    create_file("tail", std::string(kTail, 'T'))(dir);
    // Sized first, then written inside its size: a hole from 64 KiB to 960 KiB.
    Fd fd(::open(path_join(dir, "sparse").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    std::string data(64 * kKiB, 'S');
    ASSERT_TRUE(fd && ftruncate(fd.get(), kMiB) == 0);
    ASSERT_EQ(pwrite(fd.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(pwrite(fd.get(), data.data(), data.size(), kMiB - 64 * kKiB), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(fsync(fd.get()), 0);
  });
  sn->commit("lower", "lower-active");
  auto mounts = sn->prepare("container", "lower");
  LowerFiles lower{{"/aligned", kMiB}, {"/middle", kMiB}, {"/untouched", kMiB}, {"/tail", kTail}, {"/sparse", kMiB}, {"/gone", 5}};
  InheritedExtents before = inherited_extents(writable_dir(mounts), lower);
  ASSERT_EQ(before.size(), 5u) << "every lower file that is there";
  EXPECT_EQ(before.at("/aligned").data, (std::vector<std::pair<uint64_t, uint64_t>>{{0, kMiB}}));
  EXPECT_EQ(before.at("/sparse").data, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 64 * kKiB}, {kMiB - 64 * kKiB, kMiB}}));
  with_mounted(mounts, tmp_->path(), [&](const std::string& dir) {
    auto write_at = [&](const char* f, int64_t off, const std::string& data) {
      Fd fd(::open(path_join(dir, f).c_str(), O_WRONLY | O_CLOEXEC | (off < 0 ? O_APPEND : 0)));
      ASSERT_TRUE(fd) << f;
      ssize_t n = off < 0 ? write(fd.get(), data.data(), data.size()) : pwrite(fd.get(), data.data(), data.size(), off);
      ASSERT_EQ(n, static_cast<ssize_t>(data.size())) << f;
      ASSERT_EQ(fsync(fd.get()), 0);
    };
    write_at("aligned", -1, "xy");                           // 2 bytes after 1 MiB: a new block
    write_at("tail", -1, "xy");                              // 2 bytes into the inherited partial block
    write_at("middle", 512 * kKiB, std::string(4096, 'W'));  // 4 KiB of inherited data
    write_at("sparse", 512 * kKiB, std::string(4096, 'H'));  // 4 KiB into the hole
  });
  struct Want {
    const char* path;
    int64_t cow_extents, cow_bytes, new_bytes;
  };
  for (const Want& w : {Want{"/aligned", 0, 0, 4096}, Want{"/tail", 1, 4096, 0}, Want{"/middle", 1, 4096, 0},
                        Want{"/sparse", 0, 0, 4096}, Want{"/untouched", 0, 0, 0}}) {
    SCOPED_TRACE(w.path);
    BlockCowTruth t = extent_cow(writable_dir(mounts), {{w.path, before.at(w.path)}});
    EXPECT_EQ(t.cow_extents, w.cow_extents);
    EXPECT_EQ(t.cow_bytes, w.cow_bytes);
    EXPECT_EQ(t.new_bytes, w.new_bytes);
    EXPECT_EQ(t.new_extents, w.new_bytes > 0 ? 1 : 0);
    EXPECT_EQ(t.files, w.cow_bytes + w.new_bytes > 0 ? 1 : 0);
  }
  BlockCowTruth all = extent_cow(writable_dir(mounts), before);
  EXPECT_EQ(all.files, 4);
  EXPECT_EQ(all.cow_extents, 2);
  EXPECT_EQ(all.cow_bytes, 8192);
  EXPECT_EQ(all.new_bytes, 8192);
  // A lower file replaced by a new one (a rename over it) is a new file, not CoW.
  with_mounted(mounts, tmp_->path(), [&](const std::string& dir) {
    create_file("middle.new", std::string(kMiB, 'N'))(dir);
    ASSERT_EQ(rename(path_join(dir, "middle.new").c_str(), path_join(dir, "middle").c_str()), 0);
  });
  EXPECT_EQ(extent_cow(writable_dir(mounts), {{"/middle", before.at("/middle")}}).files, 0);
  sn->close();
}

TEST_P(BlockCow, CloseLeavesNothingMountedOrAttached) {
  auto sn = open();
  sn->prepare("a", "");
  EXPECT_FALSE(mounts_under(root()).empty()) << "the scratch file system is mounted while open";
  sn->close();
  EXPECT_TRUE(mounts_under(tmp_->path()).empty());
  EXPECT_TRUE(loops_backed_under(tmp_->path()).empty());
  EXPECT_EQ(images().size(), 1u) << "the image stays as a cache";
}

// XFS log blocks between tail and head (the metadata logged but not yet written in place);
// -1 when /sys/fs/xfs/<dev>/log cannot be read.
int64_t xfs_log_backlog(const std::string& device) {
  std::string dir = "/sys/fs/xfs/" + device.substr(device.rfind('/') + 1) + "/log/";
  auto lsn = [&](const char* f) -> std::pair<int64_t, int64_t> {
    std::string t = read_file(dir + f);
    return {std::stoll(t), std::stoll(t.substr(t.find(':') + 1))};
  };
  try {
    auto [hc, hb] = lsn("log_head_lsn");
    auto [tc, tb] = lsn("log_tail_lsn");
    return hc == tc ? hb - tb : 1 << 30;  // a wrapped log: far behind
  } catch (const std::exception&) {
    return -1;
  }
}

// quiesce() writes the scratch file system's log back in place (sync() does not), and leaves
// it writable.
TEST_P(BlockCow, QuiesceWritesTheLogBack) {
  auto sn = open();
  auto mounts = sn->prepare("busy", "");
  with_mounted(mounts, tmp_->path(), [](const std::string& dir) {
    for (int i = 0; i < 2000; ++i) write_file_atomic(path_join(dir, "f" + std::to_string(i)), "x", 0644, false);
  });
  sync();
  auto loops = loops_backed_under(tmp_->path());
  ASSERT_EQ(loops.size(), 1u);
  if (fs_type_name(store()) == "xfs") {
    int64_t before = xfs_log_backlog(loops.front().device);
    ASSERT_GE(before, 0) << "no /sys/fs/xfs log statistics for " << loops.front().device;
    EXPECT_GT(before, 100) << "2000 new files leave metadata in the log after sync()";
    sn->quiesce();
    EXPECT_LE(xfs_log_backlog(loops.front().device), 16) << "was " << before << " blocks";
  } else {
    sn->quiesce();
  }
  with_mounted(mounts, tmp_->path(), create_file("after", "thawed"));
  sn->close();
}

TEST_P(BlockCow, CachedImageIsReused) {
  auto sn = open();
  commit_file(*sn, "base", "os-release", "cowbench\n");
  sn->prepare("container", "base");
  sn->close();
  auto cached = images();
  ASSERT_EQ(cached.size(), 1u);
  ino_t ino = inode_of(cached.front());
  ASSERT_NE(ino, 0u);

  sn = open();
  EXPECT_EQ(images(), cached);
  EXPECT_EQ(inode_of(cached.front()), ino) << "the cached image must be mounted again, not made anew";
  EXPECT_EQ(sn->stat("base").kind, snap::Kind::kCommitted);
  EXPECT_EQ(sn->stat("container").parent, "base");
  with_mounted(sn->view("v", "base"), tmp_->path(), [&](const std::string& dir) {
    EXPECT_EQ(read_file(path_join(dir, "os-release")), "cowbench\n");
  });
  sn->close();
}

TEST_P(BlockCow, CacheOffDeletesTheImage) {
  if (auto why = missing_options({"cache"})) GTEST_SKIP() << *why;
  auto sn = open();
  commit_file(*sn, "base", "f", "x");
  sn->close();
  sn = open({{"cache", "off"}});
  EXPECT_EQ(error_code([&] { sn->stat("base"); }), Errc::kNotFound);
  sn->close();
  EXPECT_TRUE(images().empty()) << "cache=off deletes the image at close";
}

TEST_P(BlockCow, MissingMkfsFailsCleanly) {
  if (auto why = missing_options({"mkfs"})) GTEST_SKIP() << *why;
  std::string msg;
  auto code = error_code([&] { open({{"mkfs", "/nonexistent/mkfs.test"}}); }, &msg);
  EXPECT_EQ(code, Errc::kUnsupported) << msg;
  EXPECT_NE(msg.find("/nonexistent/mkfs.test"), std::string::npos) << msg;
  expect_nothing_left();
}

TEST_P(BlockCow, TooSmallImageFailsCleanly) {
  if (auto why = missing_options({"size"})) GTEST_SKIP() << *why;
  std::string msg;
  auto code = error_code([&] { open({{"size", "1M"}}); }, &msg);
  EXPECT_EQ(code, Errc::kFailure) << msg;
  EXPECT_NE(msg.find("mkfs"), std::string::npos) << "the error names mkfs: " << msg;
  EXPECT_NE(msg.find("1048576"), std::string::npos) << "the error names the size: " << msg;
  expect_nothing_left();
}

TEST_P(BlockCow, BadOptionsAreRefused) {
  if (auto why = missing_options({"size", "cache"})) GTEST_SKIP() << *why;
  EXPECT_EQ(error_code([&] { open({{"size", "lots"}}); }), Errc::kInvalidInput);
  EXPECT_EQ(error_code([&] { open({{"cache", "maybe"}}); }), Errc::kInvalidInput);
  EXPECT_EQ(error_code([&] { open({{"no-such-option", "1"}}); }), Errc::kInvalidInput);
  expect_nothing_left();
}

// Storage without metadata (a process killed mid-prepare) is removed on the next open,
// btrfs subvolumes included.
TEST_P(BlockCow, RecoverRemovesOrphans) {
  auto sn = open();
  commit_file(*sn, "base", "f", "x");
  std::string orphan = path_join(store(), "snapshots/999");
  const bool subvolumes = snapshots_are_subvolumes();
  make_dirs(orphan);
  if (subvolumes) {
    int dir = ::open(orphan.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir, 0);
    btrfs_ioctl_vol_args args{};
    std::strcpy(args.name, "fs");
    ASSERT_EQ(ioctl(dir, BTRFS_IOC_SUBVOL_CREATE, &args), 0) << std::strerror(errno);
    close(dir);
  } else {
    make_dirs(path_join(orphan, "fs"));
  }
  create_file("fs/left-over", "y")(orphan);
  sn->close();
  sn = open();
  EXPECT_NE(access(orphan.c_str(), F_OK), 0) << orphan << " must be removed by recover";
  EXPECT_EQ(sn->stat("base").kind, snap::Kind::kCommitted);
  sn->close();
}

// A root whose own file system serves (here: a scratch file system of the test's own, of the
// type the backend makes for itself) is used directly, without an image of its own.
TEST_P(BlockCow, UsesTheRootsFileSystemWhenItServes) {
  auto probe = open();
  const std::string fs_type = fs_type_name(store());
  probe->close();
  snap::ScratchFsOptions o;
  o.fs_type = fs_type;
  o.size = 512 * kMiB;
  o.cache = false;
  o.trial = [fs_type](const std::string& dir) -> std::optional<std::string> {
    if (fs_type_name(dir) == fs_type) return std::nullopt;
    return "not " + fs_type;
  };
  snap::ScratchFs host(path_join(tmp_->path(), "host"), o);
  std::string inner = path_join(host.path(), "root");
  {
    auto sn = spec().create(inner, {});
    commit_file(*sn, "base", "f", "x");
    with_mounted(sn->prepare("c", "base"), tmp_->path(), [&](const std::string& dir) {
      EXPECT_EQ(read_file(path_join(dir, "f")), "x");
    });
    EXPECT_EQ(mounts_under(inner).size(), 0u) << "no scratch mount of its own";
    EXPECT_EQ(loops_backed_under(inner).size(), 0u);
    sn->close();
  }
  host.close();
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Backends, BlockCow, ::testing::ValuesIn(extent_backends()), param_name);

// For comparison, every backend that is not extent-granular: file-granular copy-up (overlayfs,
// fuse-overlayfs) copies the whole 64 MiB file up on the same one-block write, a whole-tree
// backend (copy) holds it whole from prepare on.
class BlockCowComparison : public ::testing::TestWithParam<std::string> {};

TEST_P(BlockCowComparison, CopiesTheWholeFile) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir tmp(scratch_root(), "blockcow-" + GetParam());
  const auto& spec = snap::builtin_registry().get(GetParam());
  auto a = spec.probe(tmp.path());
  if (!a.available) GTEST_SKIP() << GetParam() << " unavailable: " << a.reason;
  auto sn = spec.create(path_join(tmp.path(), "root"), {});
  with_mounted(sn->prepare("lower-active", ""), tmp.path(),
               [&](const std::string& dir) { write_big_file(dir, "big", kLowerSize); });
  sn->commit("lower", "lower-active");
  with_mounted(sn->prepare("container", "lower"), tmp.path(),
               [&](const std::string& dir) { write_one_block(dir, "big", kLowerSize); });
  EXPECT_GE(sn->usage("container").size, kLowerSize)
      << snap::granularity_name(spec.caps.cow_granularity) << "-granular copy-on-write copies the whole file";
  sn->close();
}

std::vector<std::string> whole_file_backends() {
  std::vector<std::string> out;
  for (const auto& name : snap::builtin_registry().names())
    if (snap::builtin_registry().get(name).caps.cow_granularity != snap::Granularity::kExtent) out.push_back(name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, BlockCowComparison, ::testing::ValuesIn(whole_file_backends()), param_name);

// FIEMAP accounting on its own: two clones share, a rewritten block is exclusive.
TEST(Fiemap, CountsSharedAndExclusiveExtents) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir tmp(scratch_root(), "fiemap");
  snap::ScratchFsOptions o;
  o.size = 300 * kMiB;
  o.cache = false;
  o.trial = snap::reflink_trial;
  std::unique_ptr<snap::ScratchFs> fs;
  try {
    fs = std::make_unique<snap::ScratchFs>(path_join(tmp.path(), "root"), o);
  } catch (const Error& e) {
    if (e.code() == Errc::kUnsupported) GTEST_SKIP() << e.what();
    throw;
  }
  std::string dir = path_join(fs->path(), "t");
  make_dirs(dir);
  write_big_file(dir, "a", 4 * kMiB);
  snap::ExtentUsage one = snap::extent_usage(dir);
  EXPECT_EQ(one.exclusive_bytes, static_cast<uint64_t>(4 * kMiB));
  EXPECT_EQ(one.shared_bytes, 0u);
  EXPECT_EQ(one.inodes, 2u);
  {
    int in = ::open(path_join(dir, "a").c_str(), O_RDONLY | O_CLOEXEC);
    int out = ::open(path_join(dir, "b").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_EQ(ioctl(out, FICLONE, in), 0) << std::strerror(errno);
    close(in);
    close(out);
  }
  ASSERT_EQ(link(path_join(dir, "b").c_str(), path_join(dir, "b-link").c_str()), 0);
  snap::ExtentUsage two = snap::extent_usage(dir);
  EXPECT_EQ(two.shared_bytes, static_cast<uint64_t>(8 * kMiB)) << "both clones' extents are shared; a hard link counts once";
  EXPECT_EQ(two.inodes, 3u);
  write_one_block(dir, "b", 4 * kMiB);
  snap::ExtentUsage three = snap::extent_usage(dir);
  EXPECT_EQ(three.shared_bytes, static_cast<uint64_t>(8 * kMiB - 8192)) << "the rewritten block is no longer shared";
  EXPECT_EQ(three.exclusive_bytes - two.exclusive_bytes, 8192u);
  fs->close();
}

}  // namespace
}  // namespace cowbench::test
