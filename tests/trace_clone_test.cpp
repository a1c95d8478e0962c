// Copy-up kinds on real overlays: data copied on the work directory's file system, cloned with fs=xfs|btrfs, metadata only with metacopy=on — traced == ground truth == FIEMAP.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/mount.h"
#include "ebpf/tracer.h"
#include "runner/cgroup.h"
#include "runner/ground_truth.h"
#include "runner/sandbox.h"
#include "snapshotters/fiemap.h"
#include "snapshotters/reflink/reflink_snapshotter.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"
#include "tests/trace_util.h"

namespace cowbench::test {
namespace {

using nlohmann::json;

constexpr int64_t kKiB = 1024, kMiB = 1024 * kKiB;

// The lower layer: files the container appends to (one of each size), one it only chmods, one it
// chmods and then appends to, one it only reads.
struct LowerFile {
  const char* path;
  int64_t size;
};
const LowerFile kAppended[] = {{"/s4k", 4 * kKiB}, {"/s64k", 64 * kKiB + 3}, {"/s1m", kMiB}, {"/s8m", 8 * kMiB + 5}};
constexpr LowerFile kChmodOnly{"/m", 32 * kKiB};
constexpr LowerFile kChmodThenAppend{"/n", 16 * kKiB};
constexpr LowerFile kReadOnly{"/r", 12 * kKiB};

std::vector<LowerFile> all_files() {
  std::vector<LowerFile> out(std::begin(kAppended), std::end(kAppended));
  out.insert(out.end(), {kChmodOnly, kChmodThenAppend, kReadOnly});
  return out;
}

Applier lower_image() {
  return [](const std::string& root) {
    int i = 0;
    for (const auto& f : all_files()) create_file(f.path + 1, std::string(static_cast<size_t>(f.size), static_cast<char>('a' + i++)))(root);
  };
}

LowerFiles lower_files() {
  LowerFiles out;
  for (const auto& f : all_files()) out[f.path] = f.size;
  return out;
}

// In the container: append to every kAppended file, chmod m, chmod then append to n, read r.
json container_ops() {
  json errors = json::array();
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) errors.push_back(fmt::format("{}: {}", what, std::strerror(errno)));
  };
  auto append = [&](const char* path) {
    Fd fd(open(path, O_WRONLY | O_APPEND | O_CLOEXEC));
    check(fd && write(fd.get(), "tail", 4) == 4, fmt::format("append {}", path));
  };
  for (const auto& f : kAppended) append(f.path);
  check(chmod(kChmodOnly.path, 0600) == 0, "chmod m");
  check(chmod(kChmodThenAppend.path, 0600) == 0, "chmod n");
  append(kChmodThenAppend.path);
  char buf[4096];
  Fd r(open(kReadOnly.path, O_RDONLY | O_CLOEXEC));
  check(r && read(r.get(), buf, sizeof buf) > 0, "read r");
  return {{"errors", errors}};
}

// Whether the upper file at `path` has an extent FIEMAP flags shared.
bool fiemap_shared(const std::string& path) {
  Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f) fail_sys("open {}", path);
  std::vector<snap::Extent> extents;
  if (!snap::file_extents(f.get(), path, extents)) return false;
  for (const auto& e : extents)
    if (e.shared()) return true;
  return false;
}

// fs ("" = the work directory's own), metacopy.
using Param = std::tuple<std::string, bool>;

class CloneKinds : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    std::string error;
    tracer_ = shared_tracer(&error);
    ASSERT_NE(tracer_, nullptr) << "the tracepoint mode must load on this kernel: " << error;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "trace-clone");
    layout_ = detect_cgroup_layout();
    if (layout_.v2_root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy: the tracer filters by cgroup v2 id";
    rootfs_ = path_join(tmp_->path(), "rootfs");
    make_dirs(rootfs_);
  }
  void TearDown() override {
    if (sn_) sn_->close();
    sn_.reset();
    if (tmp_) {
      EXPECT_TRUE(mounts_under(tmp_->path()).empty()) << "a test must leave nothing mounted";
    }
  }

  // Runs container_ops in a container of sn_ on `mounts`, watched by the tracer.
  ebpf::TraceCounts watched(const std::vector<Mount>& mounts) {
    Cgroup cg(layout_, fmt::format("trace-clone-{}", getpid()));
    ebpf::TraceTarget t;
    t.cgroup_id = cg.id();
    t.backend = "overlayfs";
    t.cow = snap::Granularity::kFile;
    t.mounts = mounts;
    tracer_->begin(t);
    SandboxOptions so;
    so.mounts = mounts;
    so.rootfs = rootfs_;
    so.cgroup = &cg;
    so.timeout = std::chrono::seconds(60);
    SandboxResult r = run_in_sandbox(so, container_ops);
    ebpf::TraceCounts c = tracer_->end();
    cg.close();
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_TRUE(r.result.value("errors", json::array()).empty()) << r.result.dump();
    return c;
  }

  ebpf::TraceSession* tracer_ = nullptr;
  std::unique_ptr<TempDir> tmp_;
  CgroupLayout layout_;
  std::string rootfs_;
  std::unique_ptr<snap::Snapshotter> sn_;
};

// Traced kinds == ground-truth kinds == what FIEMAP of the upper files shows, and both equal
// what the file system must do: clone on XFS/btrfs, copy elsewhere, metadata only for a chmod
// with metacopy=on.
TEST_P(CloneKinds, TracedEqualsGroundTruthEqualsFiemap) {
  auto [fs, metacopy] = GetParam();
  snap::BackendOptions o;
  if (!fs.empty()) o["fs"] = fs;
  if (metacopy) {
    o["metacopy"] = "on";
    o["redirect_dir"] = "on";  // metacopy=on needs it
  }
  const auto& spec = snap::builtin_registry().get("overlayfs");
  if (auto a = spec.probe(tmp_->path()); !a.available) GTEST_SKIP() << "overlayfs unavailable: " << a.reason;
  try {
    sn_ = spec.create(path_join(tmp_->path(), "ovl"), o);
  } catch (const Error& e) {
    if (e.code() == Errc::kUnsupported && !fs.empty()) GTEST_SKIP() << e.what();
    throw;
  }
  with_mounted(sn_->prepare("base-active", ""), tmp_->path(), lower_image());
  sn_->commit("base", "base-active");
  auto mounts = sn_->prepare("c", "base");
  std::string upper = writable_dir(mounts);
  // Copy-ups clone when the layers' file system clones: always with fs, and on the work
  // directory's own file system when it happens to be XFS reflink=1 or btrfs.
  bool clones = !fs.empty() || !snap::reflink_trial(upper).has_value();
  RecordProperty("upper_fs", fs_type_name(upper));

  ebpf::TraceCounts c = watched(mounts);
  CopyupTruth truth = file_copyups(upper, lower_files(), lower_dirs(mounts));
  CopyupKinds gt = kinds_of(truth);

  // What must have happened: every touched file copied up (r is not); m metadata only with
  // metacopy=on, n's data copied (or cloned) after its metadata.
  int64_t files = 0, bytes = 0, meta = 0;
  for (const auto& f : kAppended) {
    ++files;
    bytes += f.size;
  }
  ++files;
  bytes += kChmodThenAppend.size;
  ++files;
  if (metacopy)
    ++meta;
  else
    bytes += kChmodOnly.size;
  CopyupKinds want;
  want.measured = true;
  want.metadata = {meta, 0};
  (clones ? want.cloned : want.data) = {files - meta, bytes};

  // FIEMAP by hand: each file with data in the upper shares extents exactly when copy-up clones.
  for (const auto& f : all_files()) {
    std::string p = upper + f.path;
    bool present = path_exists(p);
    EXPECT_EQ(present, std::string(f.path) != kReadOnly.path) << f.path;
    if (!present) continue;
    bool data = !(metacopy && std::string(f.path) == kChmodOnly.path);
    EXPECT_EQ(fiemap_shared(p), clones && data) << f.path << " on " << fs_type_name(upper);
  }

  auto expect_kinds = [](const CopyupKinds& got, const CopyupKinds& w, const std::string& what) {
    EXPECT_TRUE(got.measured) << what;
    EXPECT_EQ(got.data.events, w.data.events) << what << ": data";
    EXPECT_EQ(got.data.bytes, w.data.bytes) << what << ": data bytes";
    EXPECT_EQ(got.cloned.events, w.cloned.events) << what << ": cloned";
    EXPECT_EQ(got.cloned.bytes, w.cloned.bytes) << what << ": cloned bytes";
    EXPECT_EQ(got.metadata.events, w.metadata.events) << what << ": metadata only";
    EXPECT_EQ(got.metadata.bytes, 0) << what << ": metadata bytes";
  };
  expect_kinds(gt, want, "ground truth");
  expect_kinds(c.copyup_kinds, want, "traced");
  EXPECT_EQ(c.copyup_events, truth.files) << c.extra.dump(1);
  EXPECT_EQ(c.copyup_bytes, truth.bytes) << c.extra.dump(1);
  if (clones) {
    EXPECT_GT(c.extra.value("clone_events", int64_t{0}), 0) << c.extra.dump(1);
  }
  // The storage of a scratch file system is named like reflink's.
  if (!fs.empty() && !sn_->storage().loop_device.empty()) {
    EXPECT_EQ(sn_->storage().fs, fs);
  }
  sn_->remove("c");
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  const auto& [fs, metacopy] = info.param;
  return fmt::format("{}_metacopy_{}", fs.empty() ? "workdir" : fs, metacopy ? "on" : "off");
}

INSTANTIATE_TEST_SUITE_P(Overlays, CloneKinds,
                         ::testing::Combine(::testing::Values(std::string(), std::string("xfs"), std::string("btrfs")),
                                            ::testing::Bool()),
                         param_name);

// A bad fs value is bad input (exit 2 at the CLI), before anything is made.
TEST(OverlayfsFsOption, BadValuesAreInvalidInput) {
  TempDir tmp(scratch_root(), "ovl-fs-option");
  const auto& spec = snap::builtin_registry().get("overlayfs");
  for (const snap::BackendOptions& o : {snap::BackendOptions{{"fs", "ext4"}}, snap::BackendOptions{{"size", "1G"}},
                                        snap::BackendOptions{{"fs", "xfs"}, {"loop", "sideways"}}}) {
    try {
      spec.create(path_join(tmp.path(), "root"), o);
      ADD_FAILURE() << "accepted " << o.begin()->first << "=" << o.begin()->second;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    }
  }
  EXPECT_TRUE(mounts_under(tmp.path()).empty());
}

// A missing mkfs program makes the backend unavailable, naming the program; nothing stays mounted.
TEST(OverlayfsFsOption, MissingMkfsIsUnsupported) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir tmp(scratch_root(), "ovl-fs-mkfs");
  if (!snap::reflink_trial(tmp.path())) GTEST_SKIP() << "the work directory clones: no scratch file system is made";
  try {
    snap::builtin_registry().get("overlayfs").create(path_join(tmp.path(), "root"),
                                                     {{"fs", "xfs"}, {"mkfs", "/nonexistent/mkfs.xfs"}});
    ADD_FAILURE() << "a missing mkfs program must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kUnsupported) << e.what();
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mkfs.xfs"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(mounts_under(tmp.path()).empty());
}

}  // namespace
}  // namespace cowbench::test
