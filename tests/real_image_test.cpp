// A real Debian image (mmdebstrap) as rootfs: and as a packed OCI image, real programs on every backend: tracer = ground truth.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "images/digest.h"
#include "reports/results.h"
#include "runner/run.h"
#include "runner/run_hooks.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

constexpr const char* kCacheDir = "/var/tmp/cowbench-test-cache";
// minbase plus an interpreter and a database; debootstrap-like, reproducible enough for a cache.
constexpr const char* kDebootstrap =
    "mmdebstrap --quiet --mode=root --format=tar --variant=minbase --include=python3-minimal,sqlite3 bookworm";

// Runs `cmd` (stdout and stderr into `log`); its exit status.
int sh(const std::string& cmd, const std::string& log) {
  std::string full = "( " + cmd + " ) > " + log + " 2>&1";
  int rc = std::system(full.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string tail_of(const std::string& file, size_t n = 1500) {
  std::string s;
  try {
    s = read_file(file);
  } catch (const std::exception&) {
  }
  return s.size() > n ? s.substr(s.size() - n) : s;
}

const std::string kPython = "exec:python3 -c 'print(1)'";
const std::string kSqlite = "exec:sqlite3 /srv/app.db 'update t set v = randomblob(4000) where id = 5000'";
const std::string kDpkg = "exec:PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg -i /opt/cowbench-hello.deb";

// The run where a new file replaces an inherited one by rename on the kernel overlay.
bool replaces_lower_file(const rep::Run& run) {
  return (run.backend == "overlayfs" || run.backend == "unionfs-fuse") && run.workload == kDpkg;
}

class RealImage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (root_skip_reason()) return;
    if (sh("command -v mmdebstrap", "/dev/null") != 0) {
      skip_ = "mmdebstrap is not installed (apt-get install mmdebstrap)";
      return;
    }
    make_dirs(kCacheDir);
    // Cached by the command that makes it: a rerun reuses the tar.
    rootfs_ = path_join(kCacheDir, "debian-" + img::sha256_digest(kDebootstrap).substr(7, 16) + ".tar");
    struct stat st {};
    if (::stat(rootfs_.c_str(), &st) == 0) return;
    std::string stem = rootfs_.substr(0, rootfs_.size() - 4);
    std::string tmp = stem + ".tmp.tar";
    std::string log = stem + ".log";
    int rc = sh(fmt::format("timeout 240 {} {} http://deb.debian.org/debian", kDebootstrap, tmp), log);
    if (rc != 0) {
      ::unlink(tmp.c_str());
      skip_ = fmt::format("mmdebstrap failed (exit {}; is the Debian mirror reachable?): {}", rc, tail_of(log, 600));
      return;
    }
    if (::rename(tmp.c_str(), rootfs_.c_str()) != 0) skip_ = "could not keep the mmdebstrap tar in the cache";
  }

  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    host_lock_ = hold_host_lock();
    tmp_ = std::make_unique<TempDir>(scratch_root(), "real-image");
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_EQ(left_behind(tmp_->path()), "") << "a run must leave nothing mounted";
    }
  }

  rep::Results run(const std::string& image, const std::vector<std::string>& workloads) {
    RunConfig cfg;
    cfg.image = image;
    cfg.workdir = path_join(tmp_->path(), "work");
    cfg.out = path_join(tmp_->path(), "out-" + std::to_string(++runs_));
    cfg.trace = "auto";
    cfg.warmup = false;
    cfg.repeat = 1;
    cfg.timeout = std::chrono::seconds(90);
    cfg.workloads = workloads;
    return run_matrix_quietly(cfg);
  }

  // Every run ok, the program exited 0, and the tracer's figures are the ground truth's.
  void check(const rep::Results& r, size_t workloads) {
    EXPECT_NE(r.trace_mode, "off") << "the comparison needs the tracer";
    EXPECT_EQ(r.lost_events, 0);
    ASSERT_EQ(r.runs.size() % workloads, 0u);
    ASSERT_GE(r.runs.size(), workloads);
    for (const auto& run : r.runs) {
      SCOPED_TRACE(run.backend + " " + run.workload);
      ASSERT_EQ(run.status, "ok") << run.error << "\n" << run.stderr_tail;
      EXPECT_EQ(run.exit_code, 0) << run.stderr_tail;
      if (replaces_lower_file(run)) {
        // A known disagreement, reported and left to runner/ground_truth.cpp: dpkg writes
        // status-new and renames it over the inherited /var/lib/dpkg/status. That is no copy-up
        // (the tracer is right), but the ground truth counts every upper file at a lower path
        // as one, so on the kernel overlay it has exactly that one more file, of the new
        // status's size; so on unionfs-fuse, which keeps no origin either. (fuse-overlayfs
        // copies the old status up to delete it: both count it.)
        EXPECT_EQ(run.truth_copyups, run.copyup_events + 1) << run.extra.dump(1);
        EXPECT_GT(run.truth_copyup_bytes, run.copyup_bytes);
      } else {
        EXPECT_EQ(run.copyup_events, run.truth_copyups) << run.extra.dump(1);
        EXPECT_EQ(run.copyup_bytes, run.truth_copyup_bytes);
      }
      if (run.truth_cow_extents >= 0) {  // block CoW: within one extent per written file
        int64_t files = std::max<int64_t>(1, run.truth_cow_extents);
        EXPECT_LE(std::abs(run.cow_extents - run.truth_cow_extents), files) << run.extra.dump(1);
        EXPECT_LE(std::abs(run.cow_bytes - run.truth_cow_bytes), files * 4096);
      }
    }
  }

  static std::string skip_, rootfs_;
  std::unique_ptr<HostLock> host_lock_;
  std::unique_ptr<TempDir> tmp_;
  int runs_ = 0;
};
std::string RealImage::skip_, RealImage::rootfs_;

// The tar as mmdebstrap wrote it ("./" root, /dev with nodes, skipped and counted).
TEST_F(RealImage, RootfsTarRunsPython) {
  rep::Results r = run("rootfs:" + rootfs_, {kPython});
  check(r, 1);
  for (const auto& [backend, im] : r.config.at("images").items()) {
    EXPECT_EQ(im.at("devices"), "skip");
    EXPECT_GT(im.at("skipped_devices").get<int64_t>(), 0) << backend << ": mmdebstrap's /dev nodes are counted";
  }
  for (const auto& run : r.runs) EXPECT_EQ(run.copyup_events, 0) << run.backend << ": starting python writes nothing";
  // results.json, with the image's device figures, against docs/results.schema.json.
  if (auto why = schema_skip_reason()) {
    std::cout << "schema check skipped: " << *why << "\n";
  } else {
    EXPECT_EQ(schema_errors(path_join(tmp_->path(), "out-1/results.json")), "");
  }
}

// base = the rootfs tar, app = a directory with a 40 MB sqlite database and a .deb, packed by
// `cowbench image pack`: an interpreter start, an UPDATE into the inherited database, a dpkg -i.
TEST_F(RealImage, PackedImageRunsRealPrograms) {
  std::string app = path_join(tmp_->path(), "app");
  make_dirs(path_join(app, "srv"));
  make_dirs(path_join(app, "opt"));
  std::string log = path_join(tmp_->path(), "prep.log");
  ASSERT_EQ(sh(fmt::format("sqlite3 {}/srv/app.db 'create table t(id integer primary key, v blob); "
                           "with recursive c(x) as (select 1 union all select x + 1 from c where x < 10000) "
                           "insert into t select x, randomblob(4000) from c;'",
                           app),
               log),
            0)
      << tail_of(log);
  struct stat st {};
  ASSERT_EQ(::stat(path_join(app, "srv/app.db").c_str(), &st), 0);
  EXPECT_GE(st.st_size, 40'000'000);
  std::string pkg = path_join(tmp_->path(), "pkg");
  make_dirs(path_join(pkg, "DEBIAN"));
  make_dirs(path_join(pkg, "usr/share/cowbench-hello"));
  write_file_atomic(path_join(pkg, "DEBIAN/control"),
                    "Package: cowbench-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: cowbench tests <t@example.org>\n"
                    "Description: a small package for the dpkg -i workload\n",
                    0644, false);
  write_file_atomic(path_join(pkg, "usr/share/cowbench-hello/hello.txt"), "hello\n", 0644, false);
  ASSERT_EQ(sh(fmt::format("dpkg-deb --root-owner-group --build {} {}/opt/cowbench-hello.deb", pkg, app), log), 0)
      << tail_of(log);

  std::string oci = path_join(tmp_->path(), "oci");
  CliResult packed = run_cli(COWBENCH_BIN, fmt::format("image pack --layer {} --layer {} --out {} --tag app --compression none",
                                                       rootfs_, app, oci));
  ASSERT_EQ(packed.code, 0) << packed.out;
  EXPECT_NE(packed.out.find("device nodes (/dev/"), std::string::npos) << "said once on stderr: " << packed.out;

  rep::Results r = run("oci:" + oci + ":app", {kPython, kSqlite, kDpkg});
  check(r, 3);
  bool file_granular = false;
  for (const auto& run : r.runs) {
    SCOPED_TRACE(run.backend + " " + run.workload);
    if (run.workload == kSqlite && run.truth_copyups > 0) {
      file_granular = true;
      EXPECT_EQ(run.truth_copyups, 1) << "the database is copied up whole, once";
      EXPECT_GE(run.truth_copyup_bytes, 40'000'000);
    }
    if (run.workload == kDpkg && run.truth_cow_extents < 0) {
      EXPECT_GT(run.truth_copyups, 0) << "dpkg rewrites its inherited database";
    }
  }
  EXPECT_TRUE(file_granular) << "overlayfs copies the database up";
}

}  // namespace
}  // namespace cowbench::test
