// composefs backend specifics: one object per content across images, copy-ups from objects, a damaged store refused.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "common/sha256.h"
#include "snapshotters/composefs/metadata_tree.h"
#include "snapshotters/erofs_image.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

std::string sha256_hex(const std::string& s) {
  Sha256 h;
  h.update(s);
  return h.hex();
}

// Non-repeating content of `n` bytes, different per seed.
std::string content(size_t n, char seed) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u + static_cast<unsigned char>(seed);
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

std::string xattr_of(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

// The parameter: the form of the metadata trees (option metadata=erofs|dir).
class Composefs : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "cfs");
    auto a = spec().probe(tmp_->path());
    if (!a.available) {
      GTEST_SKIP() << "composefs unavailable: " << a.reason;
    }
    if (erofs()) {
      auto e = snap::probe_erofs(tmp_->path());
      if (!e.available) {
        GTEST_SKIP() << "no EROFS images here: " << e.reason;
      }
    }
    root_ = path_join(tmp_->path(), "root");
  }
  bool erofs() const { return GetParam() == "erofs"; }
  void TearDown() override {
    sn_.reset();
    if (tmp_) {
      EXPECT_EQ(left_behind(tmp_->path()), "");
    }
  }
  static const snap::BackendSpec& spec() { return snap::builtin_registry().get("composefs"); }
  snap::Snapshotter& open(snap::BackendOptions o = {}) {
    if (sn_) sn_->close();
    o["metadata"] = GetParam();
    sn_ = spec().create(root_, o);
    return *sn_;
  }
  void layer(const std::string& name, const std::string& parent, const Applier& a) {
    with_mounted(sn_->prepare(name + "-active", parent), tmp_->path(), a);
    sn_->commit(name, name + "-active");
  }
  std::string object(const std::string& data) const {
    std::string hex = sha256_hex(data);
    return fmt::format("{}/objects/{}/{}", root_, hex.substr(0, 2), hex.substr(2));
  }
  uint64_t store_bytes() const { return disk_usage(path_join(root_, "objects")).bytes; }
  std::vector<std::string> snapshot_names() {
    std::vector<std::string> out;
    sn_->walk([&](const snap::Info& i) { out.push_back(i.name); });
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<TempDir> tmp_;
  std::string root_;
  std::unique_ptr<snap::Snapshotter> sn_;
};

// Two images with a byte-identical file (at different paths, in different layers): one object,
// stored once, and both images' files read their data from that one inode (one page cache copy).
TEST_P(Composefs, IdenticalFilesAcrossImagesAreOneObject) {
  open();
  const std::string same = content(1 << 20, 's');
  layer("a1", "", apply_all({create_dir("usr"), create_dir("usr/lib"), create_file("usr/lib/libsame.so", same), create_file("a-only", content(4096, 'a'))}));
  uint64_t after_a = store_bytes();
  EXPECT_GE(after_a, 1u << 20);
  layer("b1", "", create_file("b-only", content(8192, 'b')));
  layer("b2", "b1", apply_all({create_dir("opt"), create_file("opt/copy-of-libsame.so", same)}));
  uint64_t after_b = store_bytes();
  EXPECT_LT(after_b - after_a, 64u << 10) << "the second image's copy of the 1 MiB file must not be stored again";

  std::string obj = object(same);
  struct stat st {};
  ASSERT_EQ(::stat(obj.c_str(), &st), 0) << obj;
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_EQ(st.st_nlink, 1u) << "one inode, no other names once the uppers are gone";
  EXPECT_EQ(st.st_mode & 07777, 0444u);

  // The EROFS form: one small image per committed snapshot, holding no file data.
  if (erofs()) {
    int images = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(path_join(root_, "snapshots"))) {
      if (e.path().filename() != "meta.erofs") continue;
      ++images;
      struct stat is {};
      ASSERT_EQ(::stat(e.path().c_str(), &is), 0);
      EXPECT_LT(is.st_blocks * 512, 64 << 10) << e.path() << " must not hold the 1 MiB file's data";
    }
    EXPECT_EQ(images, 3);
  }

  // Through the mounts: the same bytes, and reading image B's file fills the page cache of the
  // object itself, where image A's file finds it.
  with_mounted(sn_->view("va", "a1"), tmp_->path(), [&](const std::string& a) {
    with_mounted(sn_->view("vb", "b2"), tmp_->path(), [&](const std::string& b) {
      // Both metadata trees (the EROFS form: their images, mounted for these views) point at the
      // object; the stubs hold no data.
      std::string redirect = "/" + sha256_hex(same).substr(0, 2) + "/" + sha256_hex(same).substr(2);
      int stubs = 0;
      for (const auto& e : std::filesystem::recursive_directory_iterator(path_join(root_, "snapshots"))) {
        if (!e.is_regular_file() || e.path().filename().string().find("libsame") == std::string::npos) continue;
        ++stubs;
        EXPECT_EQ(xattr_of(e.path(), snap::composefs::kRedirectXattr), redirect) << e.path();
        EXPECT_EQ(xattr_of(e.path(), snap::composefs::kMetacopyXattr), "") << e.path();
        struct stat ss {};
        ASSERT_EQ(lstat(e.path().c_str(), &ss), 0);
        EXPECT_EQ(ss.st_size, 1 << 20);
        // No data blocks in a directory tree: at most the file system's block for the xattrs
        // (ext4 keeps a redirect out of the inode). EROFS reports blocks from the size: its
        // image's size is checked above.
        if (!erofs()) {
          EXPECT_LE(ss.st_blocks * 512, 4096) << e.path() << " must be sparse";
        }
      }
      EXPECT_EQ(stubs, 2) << "a1's libsame and b2's copy of it";
      Fd o(::open(obj.c_str(), O_RDONLY | O_CLOEXEC));
      ASSERT_TRUE(o);
      ASSERT_EQ(posix_fadvise(o.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
      EXPECT_EQ(read_file(b + "/opt/copy-of-libsame.so"), same);
      void* map = mmap(nullptr, 1 << 20, PROT_READ, MAP_SHARED, o.get(), 0);
      ASSERT_NE(map, MAP_FAILED);
      std::vector<unsigned char> vec((1 << 20) / sysconf(_SC_PAGESIZE));
      ASSERT_EQ(mincore(map, 1 << 20, vec.data()), 0);
      size_t resident = 0;
      for (unsigned char v : vec) resident += v & 1;
      munmap(map, 1 << 20);
      EXPECT_EQ(resident, vec.size()) << "a read through the mount caches the object's own pages";
      EXPECT_EQ(read_file(a + "/usr/lib/libsame.so"), same);
    });
  });
  sn_->remove("va");
  sn_->remove("vb");

  // Removing image A keeps the object (image B holds it); removing B too frees it.
  sn_->remove("a1");
  EXPECT_TRUE(path_exists(obj));
  sn_->remove("b2");
  sn_->remove("b1");
  EXPECT_FALSE(path_exists(obj)) << "an object no snapshot holds is deleted";
}

// In a container: a chmod copies metadata only (metacopy), an append copies the data up from
// the object, and the object stays as it was.
TEST_P(Composefs, CopyUpsComeFromTheObject) {
  open();
  const std::string data = content(100000, 'd');
  layer("base", "", apply_all({create_file("log", data), create_file("conf", data, 0600)}));
  auto mounts = sn_->prepare("c", "base");
  std::string upper;
  for (const auto& o : mounts.at(0).options)
    if (o.starts_with("upperdir=")) upper = o.substr(9);
  ASSERT_FALSE(upper.empty());
  with_mounted(mounts, tmp_->path(), [&](const std::string& dir) {
    ASSERT_EQ(chmod((dir + "/conf").c_str(), 0640), 0);
    Fd f(::open((dir + "/log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    ASSERT_TRUE(f);
    ASSERT_EQ(write(f.get(), "x", 1), 1);
    f.reset();
    EXPECT_EQ(read_file(dir + "/log"), data + "x");
    EXPECT_EQ(read_file(dir + "/conf"), data);
  });
  struct stat st {};
  ASSERT_EQ(lstat((upper + "/log").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 100001);
  EXPECT_GE(st.st_blocks * 512, 100000) << "the data was copied up";
  EXPECT_EQ(xattr_of(upper + "/log", snap::composefs::kMetacopyXattr), "<none>");
  ASSERT_EQ(lstat((upper + "/conf").c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 100000) << "chmod copies metadata only (an xattr block at most)";
  EXPECT_EQ(xattr_of(upper + "/conf", snap::composefs::kMetacopyXattr), "");
  EXPECT_EQ(read_file(object(data)), data);

  // Committed, the container's layer reads the same through a new mount; the unchanged
  // content is still one object.
  sn_->commit("top", "c");
  with_mounted(sn_->view("v", "top"), tmp_->path(), [&](const std::string& dir) {
    EXPECT_EQ(read_file(dir + "/log"), data + "x");
    EXPECT_EQ(read_file(dir + "/conf"), data);
    struct stat cs {};
    ASSERT_EQ(::stat((dir + "/conf").c_str(), &cs), 0);
    EXPECT_EQ(cs.st_mode & 07777, 0640u);
  });
  EXPECT_TRUE(path_exists(object(data + "x")));
}

// A damaged store: a prepare on it fails naming the object and digest; nothing mounted or made.
TEST_P(Composefs, DamagedStoreIsRefusedNamingTheObject) {
  open();
  const std::string gone = content(5000, 'g'), changed = content(6000, 'c'), kept = content(7000, 'k');
  layer("base", "", apply_all({create_file("gone", gone), create_file("changed", changed), create_file("kept", kept)}));
  auto expect_refused = [&](const std::string& obj, const std::string& hex, const std::string& why) {
    try {
      sn_->prepare("container", "base");
      ADD_FAILURE() << "a prepare on a damaged store must fail (" << why << ")";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
      std::string msg = e.what();
      EXPECT_NE(msg.find(obj), std::string::npos) << msg;
      EXPECT_NE(msg.find("sha256:" + hex), std::string::npos) << msg;
      EXPECT_NE(msg.find(why), std::string::npos) << msg;
    }
    EXPECT_EQ(snapshot_names(), std::vector<std::string>{"base"}) << "nothing may be left of the failed prepare";
    EXPECT_TRUE(mounts_under(tmp_->path()).empty());
  };

  // A missing object.
  std::string obj = object(gone);
  std::string moved = path_join(tmp_->path(), "moved");  // out of the store (an open sweeps unknown names)
  ASSERT_EQ(rename(obj.c_str(), moved.c_str()), 0);
  sn_->prepare("before", "base");  // the commit checked its objects: this open trusts them
  sn_->remove("before");
  open();  // a new open (a new cowbench run) checks them again
  expect_refused(obj, sha256_hex(gone), "is missing");
  ASSERT_EQ(rename(moved.c_str(), obj.c_str()), 0);
  sn_->prepare("container", "base");
  sn_->remove("container");

  // Content rewritten in place, same size: its mtime stamp moved, so it is hashed.
  obj = object(changed);
  ASSERT_EQ(chmod(obj.c_str(), 0644), 0);
  std::string bad = changed;
  bad[100] ^= 1;
  {
    Fd f(::open(obj.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(f);
    ASSERT_EQ(pwrite(f.get(), bad.data(), bad.size(), 0), static_cast<ssize_t>(bad.size()));
  }
  sn_->prepare("container", "base");
  sn_->remove("container");
  open();
  expect_refused(obj, sha256_hex(changed), "does not match its digest");

  // The same damage with the stamp put back: only verify=digest reads it.
  timespec zero[2] = {{0, 0}, {0, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, obj.c_str(), zero, 0), 0);
  open({{"verify", "digest"}});
  expect_refused(obj, sha256_hex(changed), "does not match its digest");
  open();
  sn_->prepare("container", "base");  // the stat check does not read it: the documented cost policy
  sn_->remove("container");
}

// A truncated metadata image (the EROFS form): a prepare on it fails naming the image; nothing
// mounted or made.
// (The EROFS form only: the dir form has no image.)
class ComposefsImage : public Composefs {};
TEST_P(ComposefsImage, TruncatedMetadataImageIsRefusedNamingIt) {
  open();
  layer("base", "", apply_all({create_file("a", content(5000, 'a')), create_file("b", content(6000, 'b'))}));
  std::string image;
  for (const auto& e : std::filesystem::recursive_directory_iterator(path_join(root_, "snapshots")))
    if (e.path().filename() == "meta.erofs") image = e.path();
  ASSERT_FALSE(image.empty());
  struct stat st {};
  ASSERT_EQ(::stat(image.c_str(), &st), 0);
  ASSERT_EQ(truncate(image.c_str(), st.st_size / 2), 0);
  open();
  try {
    sn_->prepare("container", "base");
    ADD_FAILURE() << "a prepare on a truncated metadata image must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    EXPECT_NE(std::string(e.what()).find(image), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_EQ(snapshot_names(), std::vector<std::string>{"base"}) << "nothing may be left of the failed prepare";
  EXPECT_TRUE(mounts_under(tmp_->path()).empty());
}

// The command line: a run on a damaged store exits 2 naming the object, with nothing mounted.
TEST_P(Composefs, RunOnDamagedStoreExitsTwo) {
  auto host_lock = hold_host_lock();
  std::string work = path_join(tmp_->path(), "work");
  std::string args = fmt::format(
      "run --image synth:tiny@5 --backends composefs --backend-opt composefs:metadata={} --workloads startup "
      "--repeat 1 --no-warmup --trace off --workdir {} --out {}/out",
      GetParam(), work, tmp_->path());
  CliResult r = run_cli(COWBENCH_BIN, args);
  ASSERT_EQ(r.code, 0) << r.out;
  // Remove one object the image's files refer to.
  std::string victim;
  for (const auto& e : std::filesystem::recursive_directory_iterator(path_join(work, "composefs/objects"))) {
    if (e.is_regular_file() && e.path().string().find(".staging") == std::string::npos) {
      victim = e.path();
      break;
    }
  }
  ASSERT_FALSE(victim.empty());
  ASSERT_EQ(unlink(victim.c_str()), 0);
  r = run_cli(COWBENCH_BIN, args);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(victim), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("is missing"), std::string::npos) << r.out;
  EXPECT_TRUE(mounts_under(work).empty());
}

INSTANTIATE_TEST_SUITE_P(Metadata, Composefs, ::testing::Values("erofs", "dir"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });
INSTANTIATE_TEST_SUITE_P(Metadata, ComposefsImage, ::testing::Values("erofs"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace cowbench::test
