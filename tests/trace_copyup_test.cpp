// The eBPF tracer on real mounts and real containers: exact copy-up counts and bytes per backend and upper file system, isolation, block CoW.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <thread>
#include <utility>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/mount.h"
#include "ebpf/kernel_fs.h"
#include "ebpf/tracer.h"
#include "runner/cgroup.h"
#include "runner/ground_truth.h"
#include "runner/sandbox.h"
#include "snapshotters/registry.h"
#include "snapshotters/scratch_fs.h"
#include "tests/test_util.h"
#include "tests/trace_util.h"

namespace cowbench::test {
namespace {

using nlohmann::json;
using ebpf::TraceCounts;
using ebpf::TraceSession;
using ebpf::TraceTarget;

constexpr int64_t kKiB = 1024, kMiB = 1024 * kKiB;

// The lower layer: files of known sizes, and what the container does to each.
struct LowerFile {
  const char* path;
  int64_t size;
  const char* op;  // what the container does (see container_ops); "" = nothing
  bool copied;     // a copy-up on overlayfs
};
const LowerFile kLower[] = {
    {"etc/empty", 0, "open-write", true},
    {"etc/one", 1, "open-rdwr", true},
    {"etc/page-less", 4095, "chmod", true},
    {"etc/page", 4096, "chown", true},
    {"usr/lib/mid.so", 100001, "utimens", true},
    {"usr/lib/big.so", 3 * kMiB + 7, "append", true},
    {"var/db/t1", 1 * kMiB, "truncate-same", true},
    {"var/db/t2", 2 * kMiB + 1, "link", true},
    {"bin/tool", 20000, "rename", true},
    {"data/x", 5000, "setxattr", true},
    {"etc/child", 777, "child-write", true},
    {"etc/twice", 999, "write-twice", true},
    {"etc/uring", 3333, "uring-open", true},  // opened for write by an io_uring worker
    {"etc/read-only", 12345, "read", false},
    {"etc/deleted", 4444, "unlink", false},  // a whiteout on overlayfs
};

// A sparse lower file no copy-up case touches: data in its first and last 64 KiB, a hole between.
constexpr const char* kSparse = "data/sparse";
constexpr int64_t kSparseSize = 1 * kMiB, kSparseData = 64 * kKiB;

Applier lower_image() {
  return [](const std::string& root) {
    for (const char* d : {"etc", "usr", "usr/lib", "var", "var/db", "bin", "data"}) create_dir(d)(root);
    int i = 0;
    for (const auto& f : kLower) create_file(f.path, std::string(static_cast<size_t>(f.size), static_cast<char>('a' + i++ % 26)))(root);
    // Sized first, then written inside its size: no preallocation fills the hole.
    Fd fd(open(path_join(root, kSparse).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    std::string data(kSparseData, 's');
    if (!fd || ftruncate(fd.get(), kSparseSize) != 0 || pwrite(fd.get(), data.data(), data.size(), 0) != kSparseData ||
        pwrite(fd.get(), data.data(), data.size(), kSparseSize - kSparseData) != kSparseData || fsync(fd.get()) != 0)
      fail_sys("write {}", kSparse);
  };
}

// The image's regular files by path inside the container, as the runner lists them for its
// ground truth.
LowerFiles lower_files() {
  LowerFiles out;
  for (const auto& f : kLower) out[std::string("/") + f.path] = f.size;
  out[std::string("/") + kSparse] = kSparseSize;
  return out;
}

// Runs in the container: every op of kLower, plus operations that must not count as copy-ups.
// Returns what failed, if anything.
json container_ops() {
  json errors = json::array();
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) errors.push_back(fmt::format("{}: {}", what, std::strerror(errno)));
  };
  auto write_at = [&](const char* path, int flags, off_t off, const std::string& data) {
    Fd fd(open(path, flags | O_CLOEXEC));
    check(static_cast<bool>(fd), fmt::format("open {}", path));
    if (fd) check(pwrite(fd.get(), data.data(), data.size(), off) == static_cast<ssize_t>(data.size()), fmt::format("write {}", path));
  };
  for (const auto& f : kLower) {
    std::string p = std::string("/") + f.path, op = f.op;
    if (op == "open-write") {
      write_at(p.c_str(), O_WRONLY, 0, "x");
    } else if (op == "open-rdwr") {
      Fd fd(open(p.c_str(), O_RDWR | O_CLOEXEC));
      check(static_cast<bool>(fd), "open " + p);
    } else if (op == "chmod") {
      check(chmod(p.c_str(), 0600) == 0, "chmod " + p);
    } else if (op == "chown") {
      check(lchown(p.c_str(), 1234, 1234) == 0, "chown " + p);
    } else if (op == "utimens") {
      timespec t[2] = {{1600000000, 0}, {1600000000, 0}};
      check(utimensat(AT_FDCWD, p.c_str(), t, 0) == 0, "utimensat " + p);
    } else if (op == "append") {
      Fd fd(open(p.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
      check(fd && write(fd.get(), "tail", 4) == 4, "append " + p);
    } else if (op == "truncate-same") {
      check(truncate(p.c_str(), f.size) == 0, "truncate " + p);
    } else if (op == "link") {
      check(link(p.c_str(), (p + ".link").c_str()) == 0, "link " + p);
    } else if (op == "rename") {
      check(rename(p.c_str(), (p + ".new").c_str()) == 0, "rename " + p);
    } else if (op == "setxattr") {
      if (setxattr(p.c_str(), "user.cowbench", "1", 1, 0) != 0 && errno == ENOTSUP)
        errors.push_back("unsupported: setxattr");  // the backend has no xattrs: nothing to copy
      else
        check(getxattr(p.c_str(), "user.cowbench", nullptr, 0) == 1, "setxattr " + p);
    } else if (op == "child-write") {
      // Another process of the container: counted as well.
      pid_t pid = fork();
      if (pid == 0) {
        int fd = open(p.c_str(), O_WRONLY | O_CLOEXEC);
        _exit(fd >= 0 && pwrite(fd, "c", 1, 0) == 1 ? 0 : 1);
      }
      int status = 0;
      check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child writes " + p);
    } else if (op == "write-twice") {
      write_at(p.c_str(), O_WRONLY, 0, "1");
      write_at(p.c_str(), O_WRONLY, 1, "2");  // already up: no second copy-up
    } else if (op == "uring-open") {
      // IORING_OP_OPENAT blocks on the copy-up, so it runs in an io-wq worker: no syscall ends.
      io_uring ring{};
      int rc = io_uring_queue_init(4, &ring, 0);
      check(rc == 0, "io_uring_queue_init");
      if (rc == 0) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_openat(sqe, AT_FDCWD, p.c_str(), O_WRONLY | O_CLOEXEC, 0);
        io_uring_cqe* cqe = nullptr;
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc >= 0) rc = io_uring_wait_cqe(&ring, &cqe);
        int fd = rc >= 0 && cqe ? cqe->res : -1;
        errno = fd < 0 ? -fd : 0;
        check(fd >= 0, "io_uring openat " + p);
        if (fd >= 0) close(fd);
        if (cqe) io_uring_cqe_seen(&ring, cqe);
        io_uring_queue_exit(&ring);
      }
    } else if (op == "read") {
      check(read_file(p).size() == static_cast<size_t>(f.size), "read " + p);
    } else if (op == "unlink") {
      check(unlink(p.c_str()) == 0, "unlink " + p);
    }
  }
  // Not copy-ups: new files and directories, an O_TMPFILE of the container's own.
  write_at("/data/new", O_WRONLY | O_CREAT | O_EXCL, 0, std::string(64 * kKiB, 'n'));
  check(mkdir("/data/newdir", 0755) == 0, "mkdir /data/newdir");
  Fd tmp(open("/data", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));  // may be unsupported (FUSE): fine
  if (tmp) check(write(tmp.get(), "tmp", 3) == 3, "write O_TMPFILE");
  return errors;
}

// Ops of kLower the backend refused as unsupported in the last watched container (Debian's
// unionfs-fuse 1.0 is built without xattr support: setxattr fails with ENOTSUP, nothing is
// copied): they copy nothing.
std::set<std::string> g_unsupported_ops;

// Whether the container's op on `f` copies it up.
bool copies(const LowerFile& f, bool with_deleted) {
  if (g_unsupported_ops.count(f.op)) return false;
  return f.copied || (with_deleted && std::string(f.op) == "unlink");
}

// Whether the last watched container's overlay copied metadata only where it could
// (metacopy=on, as composefs always mounts): chmod, chown, utimes, link, rename and setxattr
// of a lower file then copy no data.
bool g_metacopy = false;
bool metadata_only(const LowerFile& f) {
  static const std::set<std::string> kMetaOps = {"chmod", "chown", "utimens", "link", "rename", "setxattr"};
  return g_metacopy && kMetaOps.count(f.op);
}
int64_t expected_metadata_only() {
  int64_t n = 0;
  for (const auto& f : kLower) n += copies(f, false) && metadata_only(f);
  return n;
}

int64_t expected_bytes(bool with_deleted) {
  int64_t sum = 0;
  for (const auto& f : kLower)
    if (copies(f, with_deleted) && !metadata_only(f)) sum += f.size;
  return sum;
}
int64_t expected_files(bool with_deleted) {
  int64_t n = 0;
  for (const auto& f : kLower) n += copies(f, with_deleted);
  return n;
}

// The registered backends whose first write into an inherited file copies with one of
// `kinds`: a new backend is tested by its capability, without edits here.
std::vector<std::string> backends_copying(std::initializer_list<snap::Granularity> kinds) {
  std::vector<std::string> out;
  for (const auto& name : snap::builtin_registry().names()) {
    snap::Granularity g = snap::builtin_registry().get(name).caps.cow_granularity;
    if (std::find(kinds.begin(), kinds.end(), g) != kinds.end()) out.push_back(name);
  }
  return out;
}

// A backend name as a test name ("fuse-overlayfs" → "fuse_overlayfs").
std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

// How the registry says `backend` copies on write (what the runner passes the tracer).
snap::Granularity granularity_of(const std::string& backend) {
  return snap::builtin_registry().get(backend).caps.cow_granularity;
}

class Trace : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    std::string error;
    tracer_ = shared_tracer(&error);
    ASSERT_NE(tracer_, nullptr) << "the tracepoint mode must load on this kernel: " << error;
    EXPECT_EQ(tracer_->mode(), "tracepoint");
    tmp_ = std::make_unique<TempDir>(scratch_root(), "trace");
    layout_ = detect_cgroup_layout();
    if (layout_.v2_root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy: the tracer filters by cgroup v2 id";
    rootfs_ = path_join(tmp_->path(), "rootfs");
    make_dirs(rootfs_);
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_TRUE(mounts_under(tmp_->path()).empty()) << "a test must leave nothing mounted";
    }
  }

  // A backend with kLower committed as "base", or a skip reason.
  std::unique_ptr<snap::Snapshotter> backend(const std::string& name, std::string* skip) {
    const auto& spec = snap::builtin_registry().get(name);
    auto a = spec.probe(tmp_->path());
    if (!a.available) {
      *skip = name + " unavailable: " + a.reason;
      return nullptr;
    }
    auto sn = spec.create(path_join(tmp_->path(), name), {});
    with_mounted(sn->prepare("base-active", ""), tmp_->path(), lower_image());
    sn->commit("base", "base-active");
    return sn;
  }

  // Runs fn in a container on `mounts`, watched by the tracer; returns the counts.
  TraceCounts watched(const std::string& key, const std::vector<Mount>& mounts, snap::Granularity cow,
                      const std::function<json()>& fn, json* result = nullptr,
                      const std::function<void()>& meanwhile = nullptr) {
    Cgroup cg(layout_, fmt::format("trace-{}-{}", getpid(), key));
    TraceTarget t;
    t.cgroup_id = cg.id();
    t.backend = key;
    t.cow = cow;
    t.mounts = mounts;
    auto opened = std::chrono::steady_clock::now();
    tracer_->begin(t);
    SandboxOptions so;
    so.mounts = mounts;
    so.rootfs = rootfs_;
    so.cgroup = &cg;
    so.timeout = std::chrono::seconds(60);
    std::thread noise;
    if (meanwhile) noise = std::thread(meanwhile);
    SandboxResult r = run_in_sandbox(so, fn);
    if (noise.joinable()) noise.join();
    TraceCounts c = tracer_->end();
    auto closed = std::chrono::steady_clock::now();
    window_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(closed - opened).count();
    cg.close();
    EXPECT_TRUE(r.ok) << r.error;
    if (result) *result = r.result;
    return c;
  }

  // Every copy-up latency (and every event time) lies inside the last window: more than 0,
  // at most the window's length (steady_clock and the programs' bpf_ktime_get_ns are both
  // CLOCK_MONOTONIC).
  void expect_within_window(int64_t ns, const std::string& what) const {
    EXPECT_GT(ns, 0) << what;
    EXPECT_LE(ns, window_ns_) << what;
  }

  // Checks the per-event records against kLower: one per copied file, with its size.
  void expect_events(const TraceCounts& c, bool with_deleted) {
    std::map<std::string, int64_t> want;
    for (const auto& f : kLower)
      if (copies(f, with_deleted)) want[f.path] = metadata_only(f) ? 0 : f.size;
    const json& events = c.extra.at("events");
    ASSERT_EQ(static_cast<int64_t>(events.size()), c.copyup_events) << c.extra.dump(1);
    int64_t sum = 0;
    std::set<std::string> seen;
    for (const auto& e : events) {
      sum += e.at("bytes").get<int64_t>();
      // Copy-ups found only at the window's end have no latency.
      if (e.contains("latency_ns")) expect_within_window(e.at("latency_ns").get<int64_t>(), "latency: " + e.dump());
      expect_within_window(e.at("t_ns").get<int64_t>(), "t_ns: " + e.dump());
      std::string path = e.value("path", "");
      // Renamed / linked files are named as they are at the end of the syscall.
      for (const char* suffix : {".new", ".link"})
        if (path.ends_with(suffix)) path.resize(path.size() - std::strlen(suffix));
      if (!path.empty() && path[0] == '/') path.erase(0, 1);
      auto it = want.find(path);
      if (it == want.end()) continue;  // a FUSE copy-up of a deleted file has no name left
      seen.insert(path);
      EXPECT_EQ(e.at("bytes").get<int64_t>(), it->second) << path;
    }
    EXPECT_EQ(sum, c.copyup_bytes);
    if (!with_deleted) {
      EXPECT_EQ(seen.size(), want.size()) << c.extra.dump(1);
    }
  }

  TraceSession* tracer_ = nullptr;
  int64_t window_ns_ = 0;  // the last watched() window, begin() to end()
  std::unique_ptr<TempDir> tmp_;
  CgroupLayout layout_;
  std::string rootfs_;
};

// The snapshot's files written from the host, by a process outside every watched cgroup.
void host_writes(const std::string& root) {
  for (const auto& f : kLower) {
    if (!f.copied) continue;
    Fd fd(open(path_join(root, f.path).c_str(), O_WRONLY | O_CLOEXEC));
    if (fd) (void)!pwrite(fd.get(), "h", 1, 0);
  }
}

class TraceCopyUp : public Trace, public ::testing::WithParamInterface<std::string> {};

// k distinct lower files written by the container (several syscalls, two processes) are
// exactly k copy-ups of exactly their sizes; a concurrent container in another cgroup and a
// host process doing the same on other snapshots of the same image are not counted.
TEST_P(TraceCopyUp, ExactlyTheContainersCopyUps) {
  std::string skip;
  auto sn = backend(GetParam(), &skip);
  if (!sn) GTEST_SKIP() << skip;
  auto mounts = sn->prepare("watched", "base");
  // A FUSE daemon copies up (by the mounts); fuse-overlayfs also copies a lower file up before
  // deleting it (by the capability).
  auto daemon = std::find_if(mounts.begin(), mounts.end(), [](const Mount& m) { return m.type.starts_with("fuse"); });
  bool fuse = daemon != mounts.end();
  bool copies_first = snap::builtin_registry().get(GetParam()).caps.copies_up_before_delete;
  g_metacopy = false;
  for (const auto& m : mounts)
    g_metacopy = g_metacopy || (m.type == "overlay" && std::count(m.options.begin(), m.options.end(), "metacopy=on"));
  auto noise_mounts = sn->prepare("noise", "base");
  auto host_mounts = sn->prepare("host", "base");
  std::string noise_rootfs = path_join(tmp_->path(), "noise-rootfs"), host_root = path_join(tmp_->path(), "host-root");
  make_dirs(noise_rootfs);
  make_dirs(host_root);
  {
    ScopedMount host(host_mounts, host_root);
    json result;
    auto meanwhile = [&] {
      // Another container (its own cgroup) and the host, on the same file systems.
      Cgroup other(layout_, fmt::format("trace-{}-noise", getpid()));
      SandboxOptions so;
      so.mounts = noise_mounts;
      so.rootfs = noise_rootfs;
      so.cgroup = &other;
      SandboxResult r = run_in_sandbox(so, container_ops);
      EXPECT_TRUE(r.ok) << r.error;
      host_writes(host_root);
      other.close();
    };
    TraceCounts c = watched("watched", mounts, granularity_of(GetParam()), container_ops, &result, meanwhile);
    // What the backend does not support copies nothing (and is said so).
    g_unsupported_ops.clear();
    json failed = json::array();
    for (const auto& e : result) {
      std::string what = e.get<std::string>();
      if (what.starts_with("unsupported: ")) {
        g_unsupported_ops.insert(what.substr(13));
        RecordProperty("unsupported", what.substr(13));
      } else {
        failed.push_back(e);
      }
    }
    EXPECT_EQ(failed, json::array()) << "the container's operations failed";
    if (!g_unsupported_ops.empty()) {
      EXPECT_EQ(GetParam(), "unionfs-fuse") << "only Debian's unionfs-fuse lacks xattrs";
    }
    // fuse-overlayfs copies a lower file up before it deletes it: one more.
    EXPECT_EQ(c.copyup_events, expected_files(copies_first)) << c.extra.dump(1);
    EXPECT_EQ(c.copyup_bytes, expected_bytes(copies_first)) << c.extra.dump(1);
    EXPECT_EQ(c.lost_events, 0);
    EXPECT_EQ(c.cow_extents, 0);
    // A latency for every copy-up completed in the kernel (not for those found at the window's end).
    int64_t late = c.extra.contains("copyups_completed_at_end") ? c.extra["copyups_completed_at_end"]["sized"].get<int64_t>() : 0;
    EXPECT_EQ(static_cast<int64_t>(c.copyup_latencies_ns.size()), c.copyup_events - late);
    for (int64_t ns : c.copyup_latencies_ns) expect_within_window(ns, "a copy-up latency");
    expect_events(c, copies_first);
    // And what the upper directory shows: every copy-up that stayed, with the data it copied,
    // and the lower files deleted (whiteouts) — copied up first by fuse-overlayfs alone.
    CopyupTruth truth = file_copyups(writable_dir(mounts), lower_files(), lower_dirs(mounts), unionfs_meta_dir(mounts));
    EXPECT_EQ(truth.files, expected_files(false));
    EXPECT_EQ(truth.bytes, expected_bytes(false));
    if (copies_first) {
      // (The kernel's overlay names a renamed file's origin by a file handle, so its deleted
      // files are not told apart from renamed ones this way; it does not copy to delete.)
      CopyupTruth deleted = deleted_copyups(writable_dir(mounts), lower_files());
      EXPECT_EQ(deleted.files, expected_files(true) - expected_files(false)) << "the deleted lower file";
      EXPECT_EQ(deleted.bytes, expected_bytes(true) - expected_bytes(false));
      add(truth, deleted);
    }
    EXPECT_EQ(c.copyup_events, truth.files);
    EXPECT_EQ(c.copyup_bytes, truth.bytes);
    EXPECT_EQ(truth.dropped, copies_first ? expected_files(true) - expected_files(false) : 0);
    EXPECT_EQ(truth.metadata_only, expected_metadata_only());
    EXPECT_EQ(c.copyup_metadata_only, expected_metadata_only());
    EXPECT_TRUE(c.extra.at("window").at("observable").get<bool>());
    EXPECT_EQ(c.extra.at("window").at("kind"), fuse ? daemon->source : "overlayfs");
    if (fuse) {
      // Every copy-up happened while the daemon served a request; requests were timed.
      EXPECT_GT(c.extra.at("fuse").at("requests").get<int64_t>(), 0);
      int64_t via_requests = 0;
      for (const auto& [op, s] : c.extra.at("fuse").at("ops").items()) via_requests += s.at("copyups").get<int64_t>();
      EXPECT_EQ(via_requests, c.copyup_events) << c.extra.at("fuse").dump(1);
      EXPECT_GT(c.extra.at("fuse").at("ops").at("FUSE_OPEN").at("count").get<int64_t>(), 0);
    } else {
      EXPECT_EQ(c.extra.at("container_tmpfiles_ignored"), 1) << "the container's own O_TMPFILE is not a copy-up";
      // Which syscalls copied: open calls and the metadata calls.
      const json& by = c.extra.at("copyups_by_syscall");
      int64_t total = 0;
      for (const auto& [name, s] : by.items()) total += s.at("copyups").get<int64_t>();
      EXPECT_EQ(total, c.copyup_events) << by.dump();
      EXPECT_TRUE(by.contains("openat")) << by.dump();
    }
    g_unsupported_ops.clear();
    host.close();
  }
  for (const char* key : {"watched", "noise", "host"}) sn->remove(key);
}

// Every whole-file copy-up backend (overlayfs, fuse-overlayfs).
INSTANTIATE_TEST_SUITE_P(Backends, TraceCopyUp, ::testing::ValuesIn(backends_copying({snap::Granularity::kFile})),
                         test_name);

// Kernel overlayfs with its upper layer on each file system the tracer claims: the same exact counts.
class TraceUpperFs : public Trace, public ::testing::WithParamInterface<std::string> {};

TEST_P(TraceUpperFs, ExactCountsWhateverTheUpperFileSystem) {
  std::string fs = GetParam();
  std::string lower = path_join(tmp_->path(), "lower");
  make_dirs(lower);
  lower_image()(lower);
  std::unique_ptr<snap::ScratchFs> scratch;
  ScopedMount tmpfs;
  std::string top;
  try {
    if (fs == "tmpfs") {
      top = path_join(tmp_->path(), "tmpfs");
      make_dirs(top);
      tmpfs = ScopedMount({Mount{"tmpfs", "tmpfs", {"size=128m"}}}, top);
    } else if (fs != "ext4") {
      snap::ScratchFsOptions o;
      o.fs_type = fs;
      o.size = uint64_t{1} << 30;
      o.cache = false;
      // Only a scratch file system of that type will do (not the work dir's own).
      o.trial = [fs](const std::string& dir) -> std::optional<std::string> {
        if (fs_type_name(dir) != fs) return "not " + fs;
        return std::nullopt;
      };
      scratch = std::make_unique<snap::ScratchFs>(path_join(tmp_->path(), fs), o);
      top = scratch->path();
    } else {
      top = path_join(tmp_->path(), "ext4");
      make_dirs(top);
      if (fs_type_name(top) != "ext4") GTEST_SKIP() << "the scratch directory is not on ext4";
    }
  } catch (const Error& e) {
    if (e.code() == Errc::kUnsupported) GTEST_SKIP() << e.what();
    throw;
  }
  std::string upper = path_join(top, "upper"), work = path_join(top, "work");
  make_dirs(upper);
  make_dirs(work);
  std::vector<Mount> mounts{{"overlay", "overlay", {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}};
  json result;
  TraceCounts c = watched("upper-" + fs, mounts, snap::Granularity::kFile, container_ops, &result);
  EXPECT_EQ(result, json::array());
  EXPECT_EQ(c.extra.at("window").at("upper_fs"), fs);
  EXPECT_EQ(c.copyup_events, expected_files(false)) << c.extra.dump(1);
  EXPECT_EQ(c.copyup_bytes, expected_bytes(false)) << c.extra.dump(1);
  expect_events(c, false);
  // And what the upper directory shows.
  CopyupTruth truth = file_copyups(upper, lower_files());
  EXPECT_EQ(c.copyup_events, truth.files);
  EXPECT_EQ(c.copyup_bytes, truth.bytes);
  tmpfs = ScopedMount();
  if (scratch) scratch->close();
}

INSTANTIATE_TEST_SUITE_P(Filesystems, TraceUpperFs, ::testing::Values("ext4", "xfs", "btrfs", "tmpfs"));

// Block CoW: the inherited blocks rewritten are the blocks written, on the files written;
// files the container creates are not CoW; no file is copied up; the copy backend copies
// nothing at write time. Tracer and ground truth (FIEMAP of the same files before and after)
// agree.
class TraceBlockCow : public Trace, public ::testing::WithParamInterface<std::string> {
 protected:
  // Runs `fn` in a container on a fresh snapshot of "base" with the tracer and, for an
  // extent-granular backend, the ground truth of its block CoW (*truth; all 0 for the others).
  TraceCounts cow_run(snap::Snapshotter& sn, const std::string& key, const std::function<json()>& fn, BlockCowTruth* truth) {
    auto mounts = sn.prepare(key, "base");
    snap::Granularity cow = granularity_of(GetParam());
    InheritedExtents before;
    if (cow == snap::Granularity::kExtent) before = inherited_extents(writable_dir(mounts), lower_files());
    json result;
    TraceCounts c = watched(key, mounts, cow, fn, &result);
    EXPECT_EQ(result, json::array()) << key;
    *truth = cow == snap::Granularity::kExtent ? extent_cow(writable_dir(mounts), before) : BlockCowTruth{};
    sn.remove(key);
    return c;
  }

  // What every block CoW window says: no copy-up, nothing lost, one ring record per CoW event,
  // tracer and ground truth within one extent per written file.
  void expect_agreement(const TraceCounts& c, const BlockCowTruth& t, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(c.copyup_events, 0) << "block CoW copies no file up";
    EXPECT_EQ(c.copyup_bytes, 0);
    EXPECT_EQ(c.lost_events, 0);
    EXPECT_LE(std::abs(c.cow_extents - t.cow_extents), std::max<int64_t>(t.files, 1)) << c.extra.dump(1);
    EXPECT_EQ(c.cow_bytes, t.cow_bytes) << c.extra.dump(1);
    EXPECT_EQ(c.new_bytes, t.new_bytes) << c.extra.dump(1);
    if (granularity_of(GetParam()) != snap::Granularity::kExtent) return;
    int64_t cow_records = 0, new_records = 0;
    for (const auto& e : c.extra.at("events")) {
      cow_records += e.at("type") == "cow";
      new_records += e.at("type") == "new-data";
      expect_within_window(e.at("t_ns").get<int64_t>(), "t_ns: " + e.dump());
    }
    EXPECT_EQ(cow_records, c.extra.at("cow_events").get<int64_t>()) << c.extra.dump(1);
    EXPECT_EQ(new_records, c.extra.at("new_data_events").get<int64_t>()) << c.extra.dump(1);
  }
};

struct BlockWrite {
  const char* path;
  int64_t block;   // 4 KiB block index
  int64_t blocks;  // how many
};
const BlockWrite kBlockWrites[] = {
    {"var/db/t1", 1, 1}, {"var/db/t1", 5, 1}, {"var/db/t1", 9, 1}, {"var/db/t1", 20, 3}, {"var/db/t2", 0, 1}, {"var/db/t2", 100, 2},
};

json block_writes() {
  json errors = json::array();
  for (const auto& w : kBlockWrites) {
    std::string p = std::string("/") + w.path, data(static_cast<size_t>(w.blocks * 4096), 'W');
    Fd fd(open(p.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || pwrite(fd.get(), data.data(), data.size(), w.block * 4096) != static_cast<ssize_t>(data.size()))
      errors.push_back(fmt::format("write {}: {}", p, std::strerror(errno)));
  }
  // A new file: fresh extents, not CoW.
  Fd fd(open("/data/new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  std::string data(256 * kKiB, 'n');
  if (!fd || write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
    errors.push_back(fmt::format("write /data/new: {}", std::strerror(errno)));
  return errors;
}

TEST_P(TraceBlockCow, CowBytesAreTheBytesWritten) {
  std::string skip;
  auto sn = backend(GetParam(), &skip);
  if (!sn) GTEST_SKIP() << skip;
  BlockCowTruth truth;
  TraceCounts c = cow_run(*sn, "watched", block_writes, &truth);
  expect_agreement(c, truth, "block writes");
  if (granularity_of(GetParam()) == snap::Granularity::kTree) {
    EXPECT_EQ(c.cow_bytes, 0);
    EXPECT_EQ(c.new_bytes, 0);
    return;
  }
  int64_t written = 0;
  for (const auto& w : kBlockWrites) written += w.blocks * 4096;
  EXPECT_EQ(c.cow_bytes, written) << "every written block held inherited data: " << c.extra.dump(1);
  EXPECT_EQ(c.new_bytes, 0) << "nothing was written beyond the inherited end";
  EXPECT_EQ(c.cow_extents, static_cast<int64_t>(std::size(kBlockWrites))) << "no two writes touch";
  EXPECT_EQ(truth.cow_extents, static_cast<int64_t>(std::size(kBlockWrites)));
  EXPECT_EQ(truth.files, 2);
  EXPECT_EQ(c.extra.at("cow_files"), 2) << "two lower files got extents of their own";
  for (const auto& e : c.extra.at("events")) {
    EXPECT_EQ(e.at("type"), "cow");
    std::string path = e.value("path", "");
    EXPECT_TRUE(path == "/var/db/t1" || path == "/var/db/t2") << e.dump();
  }
}

// One write into one lower file, and what it is: CoW of inherited data, or new data beyond the
// inherited end or in a hole. Tracer and ground truth both give these figures.
struct CowCase {
  const char* name;
  const char* path;
  int64_t offset;  // -1: append
  int64_t bytes;
  int64_t cow_extents, cow_bytes, new_bytes;
};
const CowCase kCowCases[] = {
    // 1 MiB, a whole number of blocks: the 2 bytes go into a block of their own.
    {"append_2_bytes_to_1MiB", "var/db/t1", -1, 2, 0, 0, 4096},
    // 2 MiB + 1: the last block held 1 inherited byte and is rewritten; the file stays in it.
    {"append_2_bytes_to_a_partial_block", "var/db/t2", -1, 2, 1, 4096, 0},
    {"overwrite_4KiB_in_the_middle", "var/db/t1", 512 * kKiB, 4096, 1, 4096, 0},
    // 100,001 bytes: the partial 25th block is CoW, the 64 blocks after it new.
    {"append_256KiB", "usr/lib/mid.so", -1, 256 * kKiB, 1, 4096, 256 * kKiB},
    {"write_4KiB_into_a_hole", kSparse, 512 * kKiB, 4096, 0, 0, 4096},
};

TEST_P(TraceBlockCow, AppendsAndHolesAreNewDataNotCow) {
  std::string skip;
  auto sn = backend(GetParam(), &skip);
  if (!sn) GTEST_SKIP() << skip;
  bool extent = granularity_of(GetParam()) == snap::Granularity::kExtent;
  for (const CowCase& k : kCowCases) {
    BlockCowTruth truth;
    TraceCounts c = cow_run(*sn, k.name, [&k] {
      json errors = json::array();
      std::string p = std::string("/") + k.path, data(static_cast<size_t>(k.bytes), 'A');
      Fd fd(open(p.c_str(), O_WRONLY | O_CLOEXEC | (k.offset < 0 ? O_APPEND : 0)));
      ssize_t n = !fd ? -1 : k.offset < 0 ? write(fd.get(), data.data(), data.size()) : pwrite(fd.get(), data.data(), data.size(), k.offset);
      if (n != static_cast<ssize_t>(data.size()) || fsync(fd.get()) != 0) errors.push_back(fmt::format("write {}: {}", p, std::strerror(errno)));
      return errors;
    }, &truth);
    expect_agreement(c, truth, k.name);
    SCOPED_TRACE(k.name);
    fmt::print("{} {}: tracer CoW {} extents / {} B, new data {} B; ground truth CoW {} extents / {} B, new data {} B\n",
               GetParam(), k.name, c.cow_extents, c.cow_bytes, c.new_bytes, truth.cow_extents, truth.cow_bytes, truth.new_bytes);
    if (!extent) {
      EXPECT_EQ(c.cow_bytes + c.new_bytes, 0) << "a full copy does no CoW";
      continue;
    }
    EXPECT_EQ(truth.cow_extents, k.cow_extents);
    EXPECT_EQ(truth.cow_bytes, k.cow_bytes);
    EXPECT_EQ(truth.new_bytes, k.new_bytes);
    EXPECT_EQ(c.cow_extents, k.cow_extents) << c.extra.dump(1);
    EXPECT_EQ(c.cow_bytes, k.cow_bytes) << c.extra.dump(1);
    EXPECT_EQ(c.new_bytes, k.new_bytes) << c.extra.dump(1);
    EXPECT_EQ(c.extra.at("cow_files"), k.cow_bytes > 0 ? 1 : 0);
    EXPECT_EQ(c.extra.at("new_data_files"), k.new_bytes > 0 ? 1 : 0);
    if (std::string(k.path) == kSparse) {
      EXPECT_EQ(c.extra.at("window").at("inherited").at("files_with_holes"), 1) << c.extra.at("window").dump(1);
    }
  }
}

// Every extent-granular backend (reflink, btrfs) and the full copy (no CoW at write time).
INSTANTIATE_TEST_SUITE_P(Backends, TraceBlockCow,
                         ::testing::ValuesIn(backends_copying({snap::Granularity::kExtent, snap::Granularity::kTree})),
                         test_name);

// The fuse-overlayfs daemon of this process (mounted on the host, outside any watched cgroup).
pid_t fuse_daemon_of_this_process() {
  DIR* d = opendir("/proc");
  pid_t found = 0;
  while (dirent* e = d ? readdir(d) : nullptr) {
    pid_t pid = static_cast<pid_t>(atoi(e->d_name));
    if (pid <= 0) continue;
    std::string stat;
    try {
      stat = read_file(fmt::format("/proc/{}/stat", pid));
    } catch (const Error&) {
      continue;
    }
    // "pid (comm) state ppid ..."
    auto close = stat.rfind(')');
    if (close == std::string::npos || stat.find("(fuse-overlayfs)") == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid()) found = pid;
  }
  if (d) closedir(d);
  return found;
}

// A FUSE daemon outside the container's cgroup (here: mounted by this process on the host)
// is watched through its pid: its copy-ups for the container's processes count, and without
// the pid they cannot be seen.
TEST_F(Trace, FuseDaemonOutsideTheCgroupByPid) {
  std::string skip;
  auto sn = backend("fuse-overlayfs", &skip);
  if (!sn) GTEST_SKIP() << skip;
  std::string host_root = path_join(tmp_->path(), "fuse-host");
  make_dirs(host_root);
  for (bool by_pid : {true, false}) {
    std::string key = by_pid ? "by-pid" : "no-pid";
    auto mounts = sn->prepare(key, "base");
    ScopedMount m(mounts, host_root);
    pid_t daemon = fuse_daemon_of_this_process();
    ASSERT_GT(daemon, 0) << "no fuse-overlayfs child found";
    Cgroup cg(layout_, fmt::format("trace-{}-{}", getpid(), key));
    int go[2];
    ASSERT_EQ(pipe(go), 0);
    pid_t child = fork();
    if (child == 0) {
      char c;
      close(go[1]);
      if (read(go[0], &c, 1) != 1) _exit(2);
      int bad = 0;
      for (const auto& f : kLower) {
        if (!f.copied) continue;
        int fd = open(path_join(host_root, f.path).c_str(), O_WRONLY | O_CLOEXEC);
        bad += fd < 0 || pwrite(fd, "w", 1, 0) != 1;
        if (fd >= 0) close(fd);
      }
      _exit(bad ? 1 : 0);
    }
    close(go[0]);
    cg.add(child);
    TraceTarget t;
    t.cgroup_id = cg.id();
    t.fuse_daemon_pid = by_pid ? daemon : 0;
    t.backend = key;
    t.mounts = mounts;
    tracer_->begin(t);
    ASSERT_EQ(write(go[1], "g", 1), 1);
    close(go[1]);
    int status = 0;
    waitpid(child, &status, 0);
    TraceCounts c = tracer_->end();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (by_pid) {
      EXPECT_EQ(c.copyup_events, expected_files(false)) << c.extra.dump(1);
      EXPECT_EQ(c.copyup_bytes, expected_bytes(false)) << c.extra.dump(1);
      EXPECT_EQ(static_cast<int64_t>(c.extra.at("events").size()), c.copyup_events) << c.extra.dump(1);
      for (const auto& e : c.extra.at("events")) EXPECT_EQ(e.at("pid"), daemon);
    } else {
      EXPECT_EQ(c.copyup_events, 0) << "the daemon is not watched without its pid";
    }
    // The requests were the container's: timed either way.
    EXPECT_GT(c.extra.at("fuse").at("ops").at("FUSE_OPEN").at("count").get<int64_t>(), 0);
    m.close();
    cg.close();
    sn->remove(key);
  }
}

// A ring buffer too small for the records: every lost record is counted (emitted = read +
// lost), and the copy-up counts, kept in maps, stay exact.
TEST_F(Trace, LostRecordsAreCountedAndCountsStayExact) {
  std::string skip;
  auto sn = backend("overlayfs", &skip);
  if (!sn) GTEST_SKIP() << skip;
  ebpf::TracerOptions o;
  o.ringbuf_bytes = 4096;  // a dozen records
  o.record_syscalls = true;
  auto small = ebpf::open_tracer("tracepoint", o);
  ASSERT_NE(small, nullptr);
  // watched() uses tracer_: the small one for this test, the shared one again afterwards.
  struct Restore {
    TraceSession*& slot;
    TraceSession* saved;
    ~Restore() { slot = saved; }
  } restore{tracer_, std::exchange(tracer_, small.get())};
  auto mounts = sn->prepare("lossy", "base");
  json result;
  TraceCounts c = watched("lossy", mounts, snap::Granularity::kFile, [] {
    json errors = container_ops();
    for (int i = 0; i < 200000; ++i) syscall(SYS_getppid);
    return errors;
  }, &result);
  EXPECT_EQ(result, json::array());
  EXPECT_GT(c.lost_events, 0);
  const json& sr = c.extra.at("syscall_records");
  EXPECT_EQ(sr.at("emitted").get<int64_t>() + c.copyup_events,
            sr.at("read").get<int64_t>() + static_cast<int64_t>(c.extra.at("events").size()) +
                c.extra.value("events_not_kept", int64_t{0}) + c.lost_events);
  EXPECT_EQ(c.copyup_events, expected_files(false));
  EXPECT_EQ(c.copyup_bytes, expected_bytes(false));
  sn->remove("lossy");
}

// Where the tracer cannot see copy-ups it says so and reports -1, not 0.
TEST_F(Trace, UnobservableUpperIsMinusOneNotZero) {
  std::string dir = path_join(tmp_->path(), "plain");
  make_dirs(dir);
  make_dirs(path_join(dir, "etc"));
  Cgroup cg(layout_, fmt::format("trace-{}-plain", getpid()));
  TraceTarget t;
  t.cgroup_id = cg.id();
  t.backend = "plain";
  t.cow = snap::Granularity::kExtent;  // extents on ext4: no block CoW to observe
  t.mounts = {Mount{"bind", dir, {"rbind"}}};
  tracer_->begin(t);
  TraceCounts c = tracer_->end();
  EXPECT_EQ(c.copyup_events, -1);
  EXPECT_EQ(c.cow_bytes, -1);
  EXPECT_FALSE(c.extra.at("window").at("observable").get<bool>());
  EXPECT_NE(c.extra.at("window").at("why_not").get<std::string>().find("XFS and btrfs"), std::string::npos);
  cg.close();
}

// Modes that lockdown refuses fail as usage errors naming the reason; auto records why they lost.
TEST_F(Trace, ForcedModesNameWhyTheyCannotWork) {
  json details = tracer_->details();
  EXPECT_EQ(details.at("mode"), "tracepoint");
  EXPECT_EQ(details.at("programs").at("cb_sys_exit").at("status"), "attached");
  for (const char* mode : {"fentry", "kprobe"}) {
    try {
      auto t = ebpf::open_tracer(mode);
      // A host that allows it: the mode works and says so.
      EXPECT_EQ(t->mode(), mode);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUsage) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string("--trace ") + mode), std::string::npos) << e.what();
      std::string lockdown = ebpf::read_lockdown().mode;
      if (lockdown == "integrity" || lockdown == "confidentiality") {
        EXPECT_NE(std::string(e.what()).find("lockdown"), std::string::npos) << e.what();
      }
    }
  }
  EXPECT_THROW(ebpf::open_tracer("bogus"), Error);
  std::string why;
  auto t = ebpf::open_tracer("auto", {}, &why);
  ASSERT_NE(t, nullptr) << why;
  if (t->mode() == "tracepoint") {
    json d = t->details();
    EXPECT_TRUE(d.at("why_not").contains("fentry")) << d.dump(1);
    EXPECT_TRUE(d.at("why_not").contains("kprobe")) << d.dump(1);
  }
}

// --- copy-up kinds: metacopy, index, redirect_dir, volatile ------------------------------

// A small image for the copy-up kinds: A chmod'ed then appended to, B chown'ed, C appended to,
// and a hard-linked pair H1/H2 of which H1 is appended to.
constexpr int64_t kSizeA = 64 * kKiB + 3, kSizeB = 32 * kKiB, kSizeC = 16 * kKiB + 1, kSizeH = 8 * kKiB;

Applier kinds_image() {
  return [](const std::string& root) {
    create_file("A", std::string(kSizeA, 'a'))(root);
    create_file("B", std::string(kSizeB, 'b'))(root);
    create_file("C", std::string(kSizeC, 'c'))(root);
    create_file("H1", std::string(kSizeH, 'h'))(root);
    if (link(path_join(root, "H1").c_str(), path_join(root, "H2").c_str()) != 0) fail_sys("link H2");
  };
}

LowerFiles kinds_lower() { return {{"/A", kSizeA}, {"/B", kSizeB}, {"/C", kSizeC}, {"/H1", kSizeH}, {"/H2", kSizeH}}; }

// In the container: chmod A, chown B, append to C, append to A, append to H1; then whether
// the other name of the pair, H2, shows the append.
json kinds_ops() {
  json errors = json::array();
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) errors.push_back(fmt::format("{}: {}", what, std::strerror(errno)));
  };
  auto append = [&](const char* path) {
    Fd fd(open(path, O_WRONLY | O_APPEND | O_CLOEXEC));
    check(fd && write(fd.get(), "tail", 4) == 4, fmt::format("append {}", path));
  };
  check(chmod("/A", 0600) == 0, "chmod /A");
  check(lchown("/B", 1234, 1234) == 0, "chown /B");
  append("/C");
  append("/A");
  append("/H1");
  struct stat st {};
  check(stat("/H2", &st) == 0, "stat /H2");
  return {{"errors", errors}, {"h2_size", st.st_size}};
}

std::string on_off(bool b) { return b ? "on" : "off"; }

// metacopy, index, redirect_dir, volatile.
using OverlayOptions = std::tuple<bool, bool, bool, bool>;

// Runs kinds_ops in a container of `sn` (kinds_image committed as "base"), checks that the
// tracer's counts equal what the upper directory shows, and returns the latter.
class TraceKinds : public Trace {
 protected:
  CopyupTruth run_kinds(snap::Snapshotter& sn, json* result) {
    auto mounts = sn.prepare("c", "base");
    TraceCounts c = watched("c", mounts, snap::Granularity::kFile, kinds_ops, result);
    EXPECT_TRUE(result->at("errors").empty()) << result->dump();
    CopyupTruth t = file_copyups(writable_dir(mounts), kinds_lower(), lower_dirs(mounts));
    EXPECT_EQ(c.copyup_events, t.files) << c.extra.dump(1);
    EXPECT_EQ(c.copyup_bytes, t.bytes) << c.extra.dump(1);
    EXPECT_EQ(c.copyup_metadata_only, t.metadata_only) << c.extra.dump(1);
    sn.remove("c");
    return t;
  }
};

class TraceCopyUpKinds : public TraceKinds, public ::testing::WithParamInterface<OverlayOptions> {};

// Per run, the tracer's copy-ups, data bytes and metadata-only copy-ups equal what the upper
// directory shows, with every combination of the options that change copy-up.
TEST_P(TraceCopyUpKinds, EqualGroundTruth) {
  auto [metacopy, index, redirect, vol] = GetParam();
  snap::BackendOptions o{{"metacopy", on_off(metacopy)}, {"index", on_off(index)},
                         {"redirect_dir", on_off(redirect)}, {"volatile", on_off(vol)}};
  // The kernel refuses some combinations (metacopy=on needs redirect_dir=on): the backend says
  // so when it opens (a trial mount with its options, exit 2 for a run), and only for those.
  std::unique_ptr<snap::Snapshotter> sn;
  try {
    sn = snap::builtin_registry().get("overlayfs").create(path_join(tmp_->path(), "ovl"), o);
  } catch (const Error& e) {
    EXPECT_TRUE(metacopy && !redirect) << "the kernel refused an overlay it should mount: " << e.what();
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    EXPECT_NE(std::string(e.what()).find("the kernel refuses"), std::string::npos) << e.what();
    RecordProperty("refused", e.what());
    return;
  }
  with_mounted(sn->prepare("base-active", ""), tmp_->path(), kinds_image());
  sn->commit("base", "base-active");
  EXPECT_FALSE(metacopy && !redirect) << "this kernel mounts metacopy=on with redirect_dir=off: test it like the rest";
  json result;
  CopyupTruth t = run_kinds(*sn, &result);
  // What the file system must show: A, B, C and H1 copied up; B's data only with metacopy off.
  EXPECT_EQ(t.files, 4);
  EXPECT_EQ(t.metadata_only, metacopy ? 1 : 0);
  EXPECT_EQ(t.bytes, kSizeA + kSizeC + kSizeH + (metacopy ? 0 : kSizeB));
  // The other name of the hard-linked pair: index=on keeps the link (H2 shows the append),
  // index=off breaks it (H2 is still the lower file).
  EXPECT_EQ(result.at("h2_size").get<int64_t>(), index ? kSizeH + 4 : kSizeH);
  RecordProperty("h2_after_append_to_h1", index ? "the same file (link kept)" : "the lower file (link broken)");
}

std::string options_name(const ::testing::TestParamInfo<OverlayOptions>& info) {
  const auto& [m, i, r, v] = info.param;
  return fmt::format("metacopy_{}_index_{}_redirect_{}_volatile_{}", on_off(m), on_off(i), on_off(r), on_off(v));
}

INSTANTIATE_TEST_SUITE_P(Options, TraceCopyUpKinds,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool(), ::testing::Bool()),
                         options_name);

// fuse-overlayfs on the same image: no metadata-only copy-ups; counts equal ground truth.
TEST_F(TraceKinds, FuseOverlayfsEqualGroundTruth) {
  const auto& spec = snap::builtin_registry().get("fuse-overlayfs");
  if (auto a = spec.probe(tmp_->path()); !a.available) GTEST_SKIP() << "fuse-overlayfs unavailable: " << a.reason;
  auto sn = spec.create(path_join(tmp_->path(), "fuse"), {});
  with_mounted(sn->prepare("base-active", ""), tmp_->path(), kinds_image());
  sn->commit("base", "base-active");
  json result;
  CopyupTruth t = run_kinds(*sn, &result);
  EXPECT_EQ(t.metadata_only, 0);
  EXPECT_EQ(t.files, 4);
}

}  // namespace
}  // namespace cowbench::test
