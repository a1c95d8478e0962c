// Tests of copy_tree: every kind of entry and its metadata survives, refusals and errors name the path.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/mount.h"
#include "common/prng.h"
#include "common/tree_copy.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

constexpr uid_t kUid = 1234;
constexpr gid_t kGid = 5678;
constexpr uint64_t kSparseSize = 1ULL << 30;
constexpr uint64_t kSparseData[] = {64ULL << 20, kSparseSize - 4096};  // offsets of the two 4 KiB blocks

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what + ": " + std::strerror(errno));
}

int64_t ns_of(const timespec& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec; }

// Everything copy_tree promises to keep about one entry, except file content.
struct Node {
  char type = '?';
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  dev_t rdev = 0;
  nlink_t nlink = 0;
  ino_t ino = 0;
  std::string target;
  std::map<std::string, std::string> xattrs;
};

std::map<std::string, std::string> xattrs_of(const std::string& path) {
  std::map<std::string, std::string> out;
  char names[65536];
  ssize_t n = llistxattr(path.c_str(), names, sizeof names);
  check(n >= 0, "llistxattr " + path);
  for (const char* p = names; p < names + n; p += std::strlen(p) + 1) {
    char value[65536];
    ssize_t len = lgetxattr(path.c_str(), p, value, sizeof value);
    check(len >= 0, "lgetxattr " + path);
    out[p] = std::string(value, static_cast<size_t>(len));
  }
  return out;
}

// Walks a tree by lstat only (no reads, so atimes stay put); keys are paths relative to root.
void scan(const std::string& root, const std::string& rel, std::map<std::string, Node>& out) {
  std::string full = rel.empty() ? root : root + "/" + rel;
  struct stat st {};
  check(lstat(full.c_str(), &st) == 0, "lstat " + full);
  Node n;
  n.mode = st.st_mode & 07777;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.size = static_cast<uint64_t>(st.st_size);
  n.blocks = static_cast<uint64_t>(st.st_blocks);
  n.atime_ns = ns_of(st.st_atim);
  n.mtime_ns = ns_of(st.st_mtim);
  n.nlink = st.st_nlink;
  n.ino = st.st_ino;
  n.xattrs = xattrs_of(full);
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: n.type = 'f'; break;
    case S_IFDIR: n.type = 'd'; break;
    case S_IFLNK: {
      n.type = 'l';
      char buf[4096];
      ssize_t len = readlink(full.c_str(), buf, sizeof buf);
      check(len >= 0, "readlink " + full);
      n.target.assign(buf, static_cast<size_t>(len));
      break;
    }
    case S_IFCHR: n.type = 'c'; n.rdev = st.st_rdev; break;
    case S_IFBLK: n.type = 'b'; n.rdev = st.st_rdev; break;
    case S_IFIFO: n.type = 'p'; break;
    case S_IFSOCK: n.type = 's'; break;
  }
  out[rel] = n;
  if (n.type != 'd') return;
  std::vector<std::string> names;
  {
    Fd fd(open(full.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    check(bool(fd), "open " + full);
    DIR* d = fdopendir(fd.release());
    check(d != nullptr, "fdopendir " + full);
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
  }
  for (const auto& name : names) scan(root, rel.empty() ? name : rel + "/" + name, out);
}

std::string describe(const std::string& rel, const Node& n) {
  std::ostringstream s;
  s << "'" << rel << "' " << n.type << " " << std::oct << n.mode << std::dec << " " << n.uid << ":" << n.gid
    << " size " << n.size << " mtime " << n.mtime_ns << " atime " << n.atime_ns << " nlink " << n.nlink;
  if (n.type == 'l') s << " -> " << n.target;
  if (n.type == 'c' || n.type == 'b') s << " " << major(n.rdev) << ":" << minor(n.rdev);
  for (const auto& [k, v] : n.xattrs) s << " " << k << "=" << v.size() << "B";
  return s.str();
}

std::string dump(const std::map<std::string, Node>& t) {
  std::string s;
  for (const auto& [rel, n] : t) s += describe(rel, n) + "\n";
  return s;
}

// Builds source trees entry by entry; every step throws on failure.
class TreeBuilder {
 public:
  explicit TreeBuilder(std::string root) : root_(std::move(root)) {}
  std::string path(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }

  void dir(const std::string& rel, mode_t mode) {
    check(mkdir(path(rel).c_str(), 0700) == 0, "mkdir " + rel);
    check(chmod(path(rel).c_str(), mode) == 0, "chmod " + rel);
  }
  void file(const std::string& rel, const std::string& content, mode_t mode = 0644) {
    Fd fd(open(path(rel).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    check(bool(fd), "create " + rel);
    check(write(fd.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size()), "write " + rel);
    check(fchmod(fd.get(), mode) == 0, "chmod " + rel);
  }
  void sparse(const std::string& rel, uint64_t size, const std::vector<uint64_t>& data_offsets) {
    Fd fd(open(path(rel).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
    check(bool(fd), "create " + rel);
    check(ftruncate(fd.get(), static_cast<off_t>(size)) == 0, "truncate " + rel);
    for (uint64_t off : data_offsets) {
      std::string block(4096, static_cast<char>('A' + (off >> 20) % 26));
      check(pwrite(fd.get(), block.data(), block.size(), static_cast<off_t>(off)) == 4096, "pwrite " + rel);
    }
    check(fsync(fd.get()) == 0, "fsync " + rel);
  }
  void symlink(const std::string& target, const std::string& rel) {
    check(::symlink(target.c_str(), path(rel).c_str()) == 0, "symlink " + rel);
  }
  void link(const std::string& existing, const std::string& rel) {
    check(::link(path(existing).c_str(), path(rel).c_str()) == 0, "link " + rel);
  }
  void node(const std::string& rel, mode_t mode, dev_t dev = 0) {
    check(mknod(path(rel).c_str(), mode, dev) == 0, "mknod " + rel);
    check(fchmodat(AT_FDCWD, path(rel).c_str(), mode & 07777, 0) == 0, "chmod " + rel);
  }
  void owner(const std::string& rel, uid_t uid, gid_t gid) {
    check(lchown(path(rel).c_str(), uid, gid) == 0, "lchown " + rel);
  }
  void xattr(const std::string& rel, const std::string& name, const std::string& value) {
    check(lsetxattr(path(rel).c_str(), name.c_str(), value.data(), value.size(), 0) == 0, "setxattr " + name + " " + rel);
  }
  // Distinct atime and mtime with nanoseconds, derived from `seed`.
  void times(const std::string& rel, int seed) {
    timespec ts[2] = {{1500000000 + seed * 1000, 123456789 + seed}, {1600000000 + seed * 1000, 987654321 - seed}};
    check(utimensat(AT_FDCWD, path(rel).c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0, "utimensat " + rel);
  }

 private:
  std::string root_;
};

// What the full tree holds, for the stats check.
struct Expected {
  uint64_t files = 0, dirs = 0, symlinks = 0, hardlinks = 0, specials = 0, bytes = 0;
};

// A source tree with every kind of entry copy_tree must handle.
Expected build_everything(const std::string& root) {
  TreeBuilder b(root);
  Expected x;
  Prng prng(42);
  x.dirs = 1;  // the root
  check(chmod(root.c_str(), 0751) == 0, "chmod root");
  b.owner("", kUid, kGid);
  b.xattr("", "user.root", "top");

  // Directories with odd modes, nested; "ro" is read-only and still gets its content.
  for (auto [rel, mode] : std::vector<std::pair<std::string, mode_t>>{
           {"a", 0755}, {"a/private", 0700}, {"a/private/deep", 0750}, {"a/private/deep/er", 0711},
           {"tmp", 01777}, {"setgid", 02775}, {"opaque", 0755}, {"many", 0755}}) {
    b.dir(rel, mode);
    x.dirs++;
  }
  b.xattr("opaque", "trusted.overlay.opaque", "y");
  b.owner("a/private", kUid, kGid);

  auto add_file = [&](const std::string& rel, const std::string& content, mode_t mode) {
    b.file(rel, content, mode);
    x.files++;
    x.bytes += content.size();
  };
  add_file("empty", "", 0644);
  add_file("a/suid", "#!/bin/sh\necho suid\n", 04755);
  add_file("setgid/sgid", "sgid", 02711);
  add_file("a/private/deep/er/noperm", "secret", 0);
  add_file("a/big", prng.text(1 << 20), 0600);
  add_file("name with spaces\nand newline \xc3\xa9", "odd name", 0644);
  add_file("tmp/owned", "owned", 0664);
  b.owner("tmp/owned", kUid, kGid);
  add_file("a/suid_owned", "suid owned", 06750);
  b.owner("a/suid_owned", kUid, kGid);
  check(chmod(b.path("a/suid_owned").c_str(), 06750) == 0, "chmod suid_owned");  // chown cleared the bits
  b.xattr("a/big", "user.comment", "big file");
  b.xattr("a/big", "trusted.note", std::string("\0binary\xff", 8));
  b.xattr("a/big", "security.cowbench", "sec");
  b.xattr("a/big", "user.long", prng.text(3000));
  // File capabilities: chown clears them, so the copy must set them after the owner.
  add_file("a/capable", "cap", 0755);
  b.owner("a/capable", kUid, kGid);
  {
    vfs_cap_data cap{};
    cap.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE;
    cap.data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
    b.xattr("a/capable", "security.capability", std::string(reinterpret_cast<const char*>(&cap), sizeof cap));
  }

  b.sparse("sparse", kSparseSize, {kSparseData[0], kSparseData[1]});
  x.files++;
  x.bytes += kSparseSize;

  // Many small files, so several threads have work.
  for (int i = 0; i < 300; ++i) add_file("many/f" + std::to_string(i), prng.text(prng.below(9000)), 0644);

  b.symlink("/etc/passwd", "abs_link");
  b.symlink("../a/big", "opaque/rel_link");
  b.symlink("does/not/exist", "dangling");
  b.owner("dangling", kUid, kGid);
  b.xattr("dangling", "trusted.link", "on a symlink");
  x.symlinks += 3;

  // Hard links: a pair across directories, and a triple with one name in the same directory.
  add_file("hl1", "linked", 0640);
  b.link("hl1", "a/hl2");
  b.owner("hl1", kUid, kGid);
  add_file("many/t1", "triple", 0600);
  b.link("many/t1", "many/t2");
  b.link("many/t1", "a/private/t3");
  x.hardlinks += 3;

  b.node("fifo", S_IFIFO | 0620);
  b.node("sock", S_IFSOCK | 0755);
  b.node("opaque/.wh.gone", S_IFCHR | 0, makedev(0, 0));  // an overlay whiteout
  b.node("whiteout", S_IFCHR | 0, makedev(0, 0));
  b.xattr("whiteout", "trusted.overlay.note", "x");
  b.node("blk", S_IFBLK | 0660, makedev(7, 200));
  b.owner("blk", 0, 6);
  b.node("null", S_IFCHR | 0666, makedev(1, 3));
  x.specials += 6;

  // Times last, children before their directories (creating entries changes a dir's mtime).
  std::map<std::string, Node> all;
  scan(root, "", all);
  int seed = 0;
  for (auto it = all.rbegin(); it != all.rend(); ++it) b.times(it->first, ++seed);
  return x;
}

// Compares two scans; returns the differences, one per line.
std::string compare_trees(const std::map<std::string, Node>& src, const std::map<std::string, Node>& dst) {
  std::ostringstream diff;
  for (const auto& [rel, s] : src) {
    auto it = dst.find(rel);
    if (it == dst.end()) {
      diff << "missing: " << describe(rel, s) << "\n";
      continue;
    }
    const Node& d = it->second;
    bool same = s.type == d.type && s.uid == d.uid && s.gid == d.gid && s.mtime_ns == d.mtime_ns &&
                s.xattrs == d.xattrs && s.nlink == d.nlink && (s.type == 'l' || s.mode == d.mode) &&
                (s.type == 'd' || s.size == d.size) && s.target == d.target && s.rdev == d.rdev &&
                // Listing a directory or reading a link (by the copy or by scan()) moves its atime,
                // so atimes are compared for files (read with O_NOATIME) and special files only.
                (s.type == 'd' || s.type == 'l' || s.atime_ns == d.atime_ns);
    if (!same) diff << "differs:\n  src " << describe(rel, s) << "\n  dst " << describe(rel, d) << "\n";
  }
  for (const auto& [rel, d] : dst)
    if (!src.count(rel)) diff << "extra: " << describe(rel, d) << "\n";
  // Hard links: the same grouping of names into inodes.
  std::map<ino_t, std::set<ino_t>> src_to_dst;
  for (const auto& [rel, s] : src) {
    auto it = dst.find(rel);
    if (it != dst.end() && s.type != 'd') src_to_dst[s.ino].insert(it->second.ino);
  }
  std::map<ino_t, ino_t> dst_to_src;
  for (const auto& [s_ino, d_inos] : src_to_dst) {
    if (d_inos.size() != 1) diff << "hard links of source inode " << s_ino << " became " << d_inos.size() << " inodes\n";
    for (ino_t d : d_inos)
      if (!dst_to_src.emplace(d, s_ino).second) diff << "destination inode " << d << " merges distinct sources\n";
  }
  return diff.str();
}

// Regular files must hold the same bytes (the sparse one is checked by its data blocks).
std::string compare_contents(const std::string& src, const std::string& dst, const std::map<std::string, Node>& t) {
  std::ostringstream diff;
  for (const auto& [rel, n] : t) {
    if (n.type != 'f' || rel == "sparse") continue;
    if (read_file(src + "/" + rel) != read_file(dst + "/" + rel)) diff << "content differs: " << rel << "\n";
  }
  return diff.str();
}

class TreeCopy : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "treecopy");
    src_ = path_join(tmp_->path(), "src");
    dst_ = path_join(tmp_->path(), "dst");
    make_dirs(src_);
    make_dirs(dst_);
  }

  std::unique_ptr<TempDir> tmp_;
  std::string src_, dst_;
};

TEST_P(TreeCopy, PreservesEverything) {
  Expected x = build_everything(src_);
  std::map<std::string, Node> before;
  scan(src_, "", before);

  TreeCopyOptions o;
  o.threads = GetParam();
  TreeCopyStats st = copy_tree(src_, dst_, o);

  std::map<std::string, Node> after_src, copy;
  scan(src_, "", after_src);
  scan(dst_, "", copy);
  EXPECT_EQ(compare_trees(before, after_src), "") << "copy_tree changed its source";
  std::string diff = compare_trees(before, copy);
  EXPECT_EQ(diff, "") << "source:\n" << dump(before) << "copy:\n" << dump(copy);
  EXPECT_EQ(compare_contents(src_, dst_, before), "");

  EXPECT_EQ(st.files, x.files);
  EXPECT_EQ(st.dirs, x.dirs);
  EXPECT_EQ(st.symlinks, x.symlinks);
  EXPECT_EQ(st.hardlinks, x.hardlinks);
  EXPECT_EQ(st.specials, x.specials);
  EXPECT_EQ(st.bytes, x.bytes);

  // The sparse file stays sparse and keeps its two blocks where they were.
  const Node& sparse = copy.at("sparse");
  EXPECT_EQ(sparse.size, kSparseSize);
  EXPECT_LE(sparse.blocks * 512, 64u * 1024) << "the copy of a 1 GiB file with 8 KiB of data must stay sparse";
  Fd a(open((src_ + "/sparse").c_str(), O_RDONLY | O_CLOEXEC)), b(open((dst_ + "/sparse").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(a && b);
  for (uint64_t off : {uint64_t{0}, kSparseData[0], kSparseData[0] + 4096, kSparseData[1]}) {
    char x1[4096], x2[4096];
    ASSERT_EQ(pread(a.get(), x1, sizeof x1, static_cast<off_t>(off)), 4096);
    ASSERT_EQ(pread(b.get(), x2, sizeof x2, static_cast<off_t>(off)), 4096);
    EXPECT_EQ(std::memcmp(x1, x2, sizeof x1), 0) << "sparse file differs at " << off;
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, TreeCopy, ::testing::Values(0u, 1u, 2u, 8u),
                         [](const ::testing::TestParamInfo<unsigned>& i) {
                           return i.param == 0 ? std::string("Default") : "T" + std::to_string(i.param);
                         });

class TreeCopyErrors : public TreeCopy {};

template <typename Fn>
Error expect_error(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a cowbench::Error";
  return Error(Errc::kFailure, "no error");
}

// Data::kHoles: each regular file is a hole of its size with its xattrs and mode, even where
// the source holds data (as an EROFS tree reports for every byte of a stub).
class TreeCopyHoles : public TreeCopy {};
TEST_F(TreeCopyHoles, FilesBecomeHolesOfTheirSize) {
  TreeBuilder b(src_);
  b.file("data", std::string(1 << 20, 'd'), 0640);
  b.xattr("data", "trusted.overlay.redirect", "/ab/cdef");
  b.dir("sub", 0755);
  b.file("sub/empty", "", 0600);
  TreeCopyOptions o;
  o.data = TreeCopyOptions::Data::kHoles;
  TreeCopyStats st = copy_tree(src_, dst_, o);
  EXPECT_EQ(st.files, 2u);
  struct stat d {};
  ASSERT_EQ(lstat((dst_ + "/data").c_str(), &d), 0);
  EXPECT_EQ(d.st_size, 1 << 20);
  EXPECT_EQ(d.st_blocks, 0) << "no data may be written";
  EXPECT_EQ(d.st_mode & 07777, 0640u);
  EXPECT_EQ(xattrs_of(dst_ + "/data").at("trusted.overlay.redirect"), "/ab/cdef");
  EXPECT_EQ(read_file(dst_ + "/data"), std::string(1 << 20, '\0'));
  ASSERT_EQ(lstat((dst_ + "/sub/empty").c_str(), &d), 0);
  EXPECT_EQ(d.st_size, 0);
}

TEST_F(TreeCopyErrors, NonEmptyDestinationIsRefused) {
  TreeBuilder(src_).file("a", "a");
  TreeBuilder(dst_).file("already", "here");
  Error e = expect_error([&] { copy_tree(src_, dst_); });
  EXPECT_EQ(e.code(), Errc::kFailedPrecondition);
  EXPECT_NE(std::string(e.what()).find(dst_), std::string::npos) << e.what();
  EXPECT_FALSE(access((dst_ + "/a").c_str(), F_OK) == 0) << "nothing may be copied";
}

TEST_F(TreeCopyErrors, MountPointInsideSourceIsRefused) {
  TreeBuilder b(src_);
  b.dir("sub", 0755);
  b.dir("sub/mnt", 0755);
  b.file("sub/file", "x");
  ScopedMount m({Mount{"tmpfs", "tmpfs", {"size=1m"}}}, src_ + "/sub/mnt");
  Error e = expect_error([&] { copy_tree(src_, dst_); });
  EXPECT_EQ(e.code(), Errc::kFailedPrecondition);
  EXPECT_NE(std::string(e.what()).find(src_ + "/sub/mnt"), std::string::npos) << e.what();
}

TEST_F(TreeCopyErrors, BindMountedFileInsideSourceIsRefused) {
  TreeBuilder b(src_);
  b.file("target", "t");
  b.file("other", "o");
  ScopedMount m({Mount{"bind", src_ + "/other", {}}}, src_ + "/target");
  Error e = expect_error([&] { copy_tree(src_, dst_); });
  EXPECT_EQ(e.code(), Errc::kFailedPrecondition);
  EXPECT_NE(std::string(e.what()).find(src_ + "/target"), std::string::npos) << e.what();
}

TEST_F(TreeCopyErrors, ReflinkOnExt4IsUnsupported) {
  if (fs_type_name(dst_) != "ext4") GTEST_SKIP() << "the scratch directory is on " << fs_type_name(dst_) << ", not ext4";
  TreeBuilder(src_).file("data", "some data");
  TreeCopyOptions o;
  o.data = TreeCopyOptions::Data::kReflink;
  Error e = expect_error([&] { copy_tree(src_, dst_, o); });
  EXPECT_EQ(e.code(), Errc::kUnsupported) << e.what();
  EXPECT_NE(std::string(e.what()).find("ext4"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find(src_ + "/data"), std::string::npos) << e.what();
}

TEST_F(TreeCopyErrors, NoSpaceNamesBothPaths) {
  TreeBuilder b(src_);
  b.dir("d", 0755);
  b.file("d/big", std::string(4 << 20, 'x'));  // the only file, so the only one to hit the limit
  ScopedMount m({Mount{"tmpfs", "tmpfs", {"size=1m"}}}, dst_);
  Error e = expect_error([&] { copy_tree(src_, dst_); });
  EXPECT_EQ(e.sys_errno(), ENOSPC) << e.what();
  EXPECT_EQ(std::string(e.what()),
            "copy " + src_ + "/d/big to " + dst_ + "/d/big: " + std::strerror(ENOSPC));
}

TEST_F(TreeCopyErrors, DestinationInsideSourceIsRefused) {
  TreeBuilder b(src_);
  b.dir("inner", 0755);
  Error e = expect_error([&] { copy_tree(src_, src_ + "/inner"); });
  EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
}

TEST_F(TreeCopyErrors, SymlinkSourceIsNotFollowed) {
  std::string link = path_join(tmp_->path(), "link");
  ASSERT_EQ(symlink(src_.c_str(), link.c_str()), 0);
  EXPECT_THROW(copy_tree(link, dst_), Error);
}

}  // namespace
}  // namespace cowbench::test
