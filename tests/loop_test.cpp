// Loop devices in direct I/O mode: the mode the kernel really uses, the fallback to buffered, the scratch backends' storage record, the image's page cache, results.json.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/loop.h"
#include "common/mount.h"
#include "snapshotters/btrfs/btrfs_snapshotter.h"
#include "snapshotters/reflink/reflink_snapshotter.h"
#include "snapshotters/registry.h"
#include "snapshotters/scratch_fs.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using nlohmann::json;
constexpr int64_t kMiB = 1 << 20;

// /sys/block/loopN/loop/dio of a /dev/loopN: "1" or "0" ("" when unreadable).
std::string sysfs_dio(const std::string& device) {
  try {
    std::string s = read_file("/sys/block/" + device.substr(device.rfind('/') + 1) + "/loop/dio");
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  } catch (const Error&) {
    return "";
  }
}

// A sparse file of `size` bytes.
std::string make_sparse(const std::string& path, int64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
  EXPECT_EQ(ftruncate(fd, size), 0) << std::strerror(errno);
  close(fd);
  return path;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

// `losetup -a` lines that name `dir` (other people's loop devices come and go meanwhile).
std::string losetup_lines_naming(const std::string& dir) {
  std::string out;
  FILE* p = popen("losetup -a 2>/dev/null", "r");
  if (!p) return "(cannot run losetup)";
  char line[4096];
  while (fgets(line, sizeof line, p))
    if (std::strstr(line, dir.c_str())) out += line;
  pclose(p);
  return out;
}

// Bytes of `path` resident in the page cache (mincore over a mapping of the whole file).
int64_t resident_bytes(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st {};
  fstat(fd, &st);
  int64_t page = sysconf(_SC_PAGESIZE), total = 0;
  constexpr int64_t kChunk = int64_t{1} << 30;  // map 1 GiB at a time
  std::vector<unsigned char> vec(static_cast<size_t>(kChunk / page));
  for (int64_t off = 0; off < st.st_size; off += kChunk) {
    int64_t len = std::min(kChunk, st.st_size - off);
    void* m = mmap(nullptr, static_cast<size_t>(len), PROT_READ, MAP_SHARED, fd, off);
    if (m == MAP_FAILED) {
      close(fd);
      return -1;
    }
    if (mincore(m, static_cast<size_t>(len), vec.data()) == 0)
      for (int64_t i = 0; i < (len + page - 1) / page; ++i) total += (vec[static_cast<size_t>(i)] & 1) ? page : 0;
    munmap(m, static_cast<size_t>(len));
  }
  close(fd);
  return total;
}

// Writes back and drops the page cache of one file (POSIX_FADV_DONTNEED after fdatasync).
void drop_file_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  fdatasync(fd);
  EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  close(fd);
}

// LoopDevice on its own, over sparse images in a fresh directory of the real disk.
class LoopDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "loop");
  }
  void TearDown() override {
    if (!tmp_) return;
    EXPECT_EQ(left_behind(tmp_->path()), "");
  }
  // A directory with a small `type` file system mounted on it (tmpfs, ramfs).
  std::string mount_small(const std::string& type) {
    std::string dir = path_join(tmp_->path(), type);
    make_dirs(dir);
    mounts_.emplace_back(std::vector<Mount>{Mount{type, type, type == "tmpfs" ? std::vector<std::string>{"size=80m"} : std::vector<std::string>{}}},
                         dir);
    return dir;
  }

  std::unique_ptr<TempDir> tmp_;
  std::vector<ScopedMount> mounts_;
};

TEST_F(LoopDeviceTest, DirectIoOnTheWorkDirectorysFileSystem) {
  std::string image = make_sparse(path_join(tmp_->path(), "img"), 64 * kMiB);
  std::string fs = fs_type_name(image);
  LoopDevice loop(image);
  fmt::print("{} over {} on {}: {}, block size {}\n", loop.path(), image, fs, loop.mode(), loop.block_size());
  EXPECT_TRUE(loop.direct_io()) << fs << ": " << loop.fallback_reason();
  EXPECT_EQ(loop.mode(), "direct-io");
  EXPECT_EQ(sysfs_dio(loop.path()), "1") << "the kernel's own word";
  EXPECT_EQ(loop.fallback_reason(), "");
  EXPECT_EQ(loop.backing_fs(), fs);
  EXPECT_GE(loop.block_size(), 512u);
  EXPECT_EQ(loop.block_size(), loop_block_size(image));
  std::string lbs = read_file("/sys/block/" + loop.path().substr(5) + "/queue/logical_block_size");
  EXPECT_EQ(std::stoul(lbs), loop.block_size());
  loop.close();
}

TEST_F(LoopDeviceTest, BufferedWhenAskedFor) {
  std::string image = make_sparse(path_join(tmp_->path(), "img"), 64 * kMiB);
  testing::internal::CaptureStderr();
  LoopDevice loop(image, LoopMode::kBuffered);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(loop.direct_io());
  EXPECT_EQ(loop.mode(), "buffered");
  EXPECT_EQ(sysfs_dio(loop.path()), "0");
  EXPECT_EQ(loop.fallback_reason(), "") << "asked for, not a fallback";
  EXPECT_EQ(err, "") << "no warning when buffered was asked for";
  EXPECT_EQ(loop.block_size(), loop_block_size(image)) << "the same block size in both modes";
}

// ramfs has no direct I/O: opening with O_DIRECT fails (EINVAL), so the device runs buffered,
// and says so once.
TEST_F(LoopDeviceTest, FallsBackToBufferedWhereTheBackingFileSystemRefusesODirect) {
  std::string dir = mount_small("ramfs");
  std::string image = make_sparse(path_join(dir, "img"), 16 * kMiB);
  int direct = ::open(image.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (direct >= 0) {
    close(direct);
    GTEST_SKIP() << "ramfs accepts O_DIRECT on this kernel";
  }
  testing::internal::CaptureStderr();
  LoopDevice first(image);
  LoopDevice second(image);
  std::string err = testing::internal::GetCapturedStderr();
  for (LoopDevice* loop : {&first, &second}) {
    EXPECT_FALSE(loop->direct_io());
    EXPECT_EQ(loop->mode(), "buffered");
    EXPECT_EQ(sysfs_dio(loop->path()), "0");
    EXPECT_NE(loop->fallback_reason().find("ramfs refuses O_DIRECT"), std::string::npos) << loop->fallback_reason();
  }
  EXPECT_EQ(count(err, "runs buffered"), 1u) << "warned once, not per device:\n" << err;
  EXPECT_NE(err.find(first.path()), std::string::npos) << "names the device: " << err;
  EXPECT_NE(err.find("ramfs"), std::string::npos) << "names the backing file system: " << err;
  EXPECT_NE(err.find("O_DIRECT"), std::string::npos) << "says why: " << err;
  first.close();
  second.close();
  mounts_.clear();
}

// tmpfs has taken O_DIRECT since Linux 6.6 (older kernels refuse it): whichever it is here,
// the mode reported is the kernel's, and a buffered one says why.
TEST_F(LoopDeviceTest, OnTmpfsTheModeIsTheKernels) {
  std::string dir = mount_small("tmpfs");
  std::string image = make_sparse(path_join(dir, "img"), 16 * kMiB);
  int direct = ::open(image.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  bool takes_odirect = direct >= 0;
  if (direct >= 0) close(direct);
  LoopDevice loop(image);
  fmt::print("tmpfs {} O_DIRECT; {} runs {}{}\n", takes_odirect ? "takes" : "refuses", loop.path(), loop.mode(),
             loop.fallback_reason().empty() ? "" : " (" + loop.fallback_reason() + ")");
  EXPECT_EQ(sysfs_dio(loop.path()), loop.direct_io() ? "1" : "0");
  if (!takes_odirect) {
    EXPECT_EQ(loop.mode(), "buffered");
    EXPECT_NE(loop.fallback_reason().find("tmpfs refuses O_DIRECT"), std::string::npos) << loop.fallback_reason();
  } else {
    EXPECT_EQ(loop.direct_io(), loop.fallback_reason().empty()) << loop.fallback_reason();
  }
  loop.close();
  mounts_.clear();
}

// The scratch backends: how their storage is attached.
class LoopBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "loop-" + GetParam());
    auto a = spec().probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << GetParam() << " is unavailable here: " << a.reason;
    if (a.reason.find("loop device") == std::string::npos)
      GTEST_SKIP() << "the work directory's own file system serves " << GetParam() << ": " << a.reason;
  }
  void TearDown() override {
    if (!tmp_) return;
    EXPECT_EQ(left_behind(tmp_->path()), "");
  }

  const snap::BackendSpec& spec() { return snap::builtin_registry().get(GetParam()); }
  std::string fs() { return GetParam() == "btrfs" ? "btrfs" : "xfs"; }
  std::string root(const std::string& name = "root") { return path_join(tmp_->path(), name); }
  std::string image(const std::string& name = "root") { return path_join(root(name), "cache." + fs() + ".img"); }
  std::unique_ptr<snap::Snapshotter> open(const snap::BackendOptions& o = {}, const std::string& name = "root") {
    return spec().create(root(name), o);
  }

  std::unique_ptr<TempDir> tmp_;
};

TEST_P(LoopBackend, ScratchImageRunsInDirectIoByDefault) {
  auto sn = open();
  snap::StorageInfo s = sn->storage();
  EXPECT_TRUE(s.loop_device.starts_with("/dev/loop")) << s.loop_device;
  EXPECT_EQ(s.image, image());
  EXPECT_EQ(s.mode, "direct-io") << s.fallback;
  EXPECT_EQ(s.fs, fs());
  EXPECT_EQ(s.fallback, "");
  EXPECT_EQ(sysfs_dio(s.loop_device), "1");
  json j = s;
  EXPECT_EQ(j, (json{{"loop_device", s.loop_device}, {"image", image()}, {"mode", "direct-io"}, {"fs", fs()}})) << j.dump();
  sn->close();
  EXPECT_EQ(sn->storage().loop_device, s.loop_device) << "after close: how it ran";
}

TEST_P(LoopBackend, LoopBufferedOptionGivesBuffered) {
  auto sn = open({{"loop", "buffered"}});
  snap::StorageInfo s = sn->storage();
  EXPECT_EQ(s.mode, "buffered");
  EXPECT_EQ(s.fallback, "");
  EXPECT_EQ(sysfs_dio(s.loop_device), "0");
  sn->close();
  // The same cached image mounts again in direct I/O (the block size does not change).
  sn = open({{"loop", "direct"}});
  EXPECT_EQ(sn->storage().mode, "direct-io");
  EXPECT_EQ(sysfs_dio(sn->storage().loop_device), "1");
  sn->close();
}

TEST_P(LoopBackend, UnknownLoopValueIsRefusedLeavingNothing) {
  std::string msg;
  try {
    open({{"loop", "sideways"}});
    ADD_FAILURE() << "loop=sideways was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    msg = e.what();
  }
  EXPECT_NE(msg.find("'sideways'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("loop"), std::string::npos) << msg;
  EXPECT_NE(msg.find("direct|buffered"), std::string::npos) << msg;
  EXPECT_NE(access(image().c_str(), F_OK), 0) << "no image made";
}

// A root whose own file system serves has no loop device of its own: {"loop_device": null}.
TEST_P(LoopBackend, NoLoopDeviceWhereTheRootsFileSystemServes) {
  snap::ScratchFsOptions o;
  o.fs_type = fs();
  o.size = 512 * kMiB;
  o.cache = false;
  o.trial = GetParam() == "btrfs" ? snap::btrfs_trial : snap::reflink_trial;
  snap::ScratchFs host(root("host"), o);
  {
    auto sn = spec().create(path_join(host.path(), "root"), {});
    EXPECT_EQ(sn->storage().loop_device, "");
    EXPECT_EQ(json(sn->storage()), (json{{"loop_device", nullptr}}));
    sn->close();
  }
  EXPECT_EQ(host.storage().mode, "direct-io");
  host.close();
  // Backends without a scratch file system say the same.
  EXPECT_EQ(json(snap::StorageInfo{}), (json{{"loop_device", nullptr}}));
}

// The point of direct I/O: a file read through the scratch file system from a cold cache
// leaves (almost) nothing of the image file in the host's page cache; buffered, the image
// holds a second copy of what was read.
TEST_P(LoopBackend, ReadingThroughTheScratchFsCachesTheImageOnlyWhenBuffered) {
  constexpr int64_t kFile = 64 * kMiB;
  std::map<std::string, int64_t> grew;
  for (std::string mode : {"direct", "buffered"}) {
    auto sn = open({{"loop", mode}, {"cache", "off"}, {"size", "1G"}}, mode);
    ASSERT_EQ(sn->storage().mode, mode == "direct" ? "direct-io" : "buffered") << sn->storage().fallback;
    with_mounted(sn->prepare("base-active", ""), tmp_->path(), [&](const std::string& dir) {
      std::string p = path_join(dir, "big");
      int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ASSERT_GE(fd, 0) << std::strerror(errno);
      std::string chunk(kMiB, 'D');
      for (int64_t done = 0; done < kFile; done += kMiB) ASSERT_EQ(write(fd, chunk.data(), chunk.size()), kMiB);
      ASSERT_EQ(fsync(fd), 0);
      close(fd);
    });
    sn->commit("base", "base-active");
    with_mounted(sn->view("reader", "base"), tmp_->path(), [&](const std::string& dir) {
      std::string p = path_join(dir, "big");
      // A cold start: the scratch file system's own pages and the image's, written back and dropped.
      int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      ASSERT_GE(fd, 0) << std::strerror(errno);
      ASSERT_EQ(syncfs(fd), 0);
      drop_file_cache(p);
      drop_file_cache(image(mode));
      int64_t before = resident_bytes(image(mode));
      std::vector<char> buf(kMiB);
      int64_t read_total = 0;
      for (ssize_t n; (n = read(fd, buf.data(), buf.size())) > 0;) read_total += n;
      close(fd);
      ASSERT_EQ(read_total, kFile);
      int64_t after = resident_bytes(image(mode));
      ASSERT_GE(before, 0);
      grew[mode] = after - before;
      fmt::print("{} loop={}: image resident {} -> {} bytes after reading {} bytes\n", GetParam(), mode, before, after,
                 kFile);
    });
    sn->close();
  }
  EXPECT_LT(grew["direct"], kFile / 4) << "direct I/O: the image file's pages stay out of the page cache";
  EXPECT_GT(grew["buffered"], kFile / 2) << "buffered: the image file caches what was read, a second time";
}

INSTANTIATE_TEST_SUITE_P(Backends, LoopBackend, ::testing::Values("reflink", "btrfs"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// The cowbench binary: results.json records the loop device and its mode per backend.
class LoopRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    host_lock_ = hold_host_lock();
    tmp_ = std::make_unique<TempDir>(scratch_root(), "loop-run");
    auto a = snap::builtin_registry().get("reflink").probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << "reflink is unavailable here: " << a.reason;
    if (a.reason.find("loop device") == std::string::npos) GTEST_SKIP() << "no scratch image here: " << a.reason;
  }
  void TearDown() override {
    if (!tmp_) return;
    EXPECT_TRUE(loops_backed_under(tmp_->path()).empty()) << "left attached";
  }
  std::string work() { return path_join(tmp_->path(), "work"); }
  std::string out() { return path_join(tmp_->path(), "out"); }
  std::vector<std::string> tiny_run(const std::string& backends) {
    return {"run", "--backends", backends, "--workloads", "startup", "--image", "synth:tiny", "--repeat", "1",
            "--no-warmup", "--trace", "off", "--workdir", work(), "--out", out()};
  }

  std::unique_ptr<HostLock> host_lock_;  // cowbench run borrows it
  std::unique_ptr<TempDir> tmp_;
};

TEST_F(LoopRun, ResultsRecordTheLoopDeviceAndItsMode) {
  Output o = run_cowbench(tiny_run("reflink,overlayfs"));
  ASSERT_EQ(o.code, 0) << o.out;
  std::string path = path_join(out(), "results.json");
  json r = json::parse(read_file(path));
  ASSERT_TRUE(r["host"].contains("storage")) << r["host"].dump(2);
  const json& s = r["host"]["storage"];
  ASSERT_TRUE(s.contains("reflink")) << s.dump(2);
  EXPECT_EQ(s["reflink"]["mode"], "direct-io") << s.dump(2);
  ASSERT_TRUE(s["reflink"]["loop_device"].is_string()) << s.dump(2);
  EXPECT_TRUE(s["reflink"]["loop_device"].get<std::string>().starts_with("/dev/loop")) << s.dump(2);
  EXPECT_EQ(s["reflink"]["fs"], "xfs");
  EXPECT_EQ(s["reflink"]["image"], path_join(work(), "reflink/cache.xfs.img"));
  EXPECT_EQ(s["overlayfs"], (json{{"loop_device", nullptr}})) << s.dump(2);
  if (auto why = schema_skip_reason()) {
    ADD_FAILURE() << "cannot validate the real results: " << *why;
  } else {
    EXPECT_EQ(schema_errors(path), "") << path;
  }
}

TEST_F(LoopRun, UnknownLoopValueExitsWith2AndLeavesNothing) {
  std::string before = losetup_lines_naming(tmp_->path());
  auto args = tiny_run("reflink");
  args.insert(args.end(), {"--backend-opt", "reflink:loop=sideways"});
  Output o = run_cowbench(args);
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("loop"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("'sideways'"), std::string::npos) << "names the bad value: " << o.out;
  EXPECT_EQ(before, "");
  EXPECT_EQ(losetup_lines_naming(tmp_->path()), "") << "losetup -a names no device of this run";
  EXPECT_TRUE(loops_backed_under(tmp_->path()).empty());
  EXPECT_TRUE(mounts_under(tmp_->path()).empty());
  EXPECT_NE(access(path_join(work(), "reflink/cache.xfs.img").c_str(), F_OK), 0) << "no image made";
  EXPECT_NE(access(path_join(out(), "results.json").c_str(), F_OK), 0) << "no results written";
}

}  // namespace
}  // namespace cowbench::test
