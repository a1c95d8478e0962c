// Tree copy engine (see tree_copy.h): one walker builds the skeleton, worker threads copy files.
#include "common/tree_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/inode_key.h"

namespace cowbench {
namespace {

constexpr size_t kQueueCapacity = 256;       // bounds queued files, and so the directories held open
constexpr size_t kDirentBuffer = 64 * 1024;  // getdents64 buffer
constexpr size_t kRwBuffer = 1 << 20;        // read/write fallback buffer
constexpr size_t kXattrBuffer = 4096;        // first guess for xattr lists and values

// What the copy needs to know about one source inode (from statx).
struct Meta {
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  dev_t rdev = 0;
  bool mount_root = false;
  timespec times[2]{};  // atime, mtime (utimensat order)
};

Meta meta_of(const struct statx& s) {
  Meta m;
  m.mode = s.stx_mode;
  m.uid = s.stx_uid;
  m.gid = s.stx_gid;
  m.nlink = s.stx_nlink;
  m.size = s.stx_size;
  m.blocks = s.stx_blocks;
  m.dev = makedev(s.stx_dev_major, s.stx_dev_minor);
  m.ino = s.stx_ino;
  m.rdev = makedev(s.stx_rdev_major, s.stx_rdev_minor);
  m.mount_root = (s.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (s.stx_attributes & STATX_ATTR_MOUNT_ROOT);
  m.times[0] = {static_cast<time_t>(s.stx_atime.tv_sec), static_cast<long>(s.stx_atime.tv_nsec)};
  m.times[1] = {static_cast<time_t>(s.stx_mtime.tv_sec), static_cast<long>(s.stx_mtime.tv_nsec)};
  return m;
}

// statx without following a final symlink; name "" stats dirfd itself. Returns errno or 0.
int stat_at(int dirfd, const char* name, Meta& out) {
  struct statx s {};
  int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name ? 0 : AT_EMPTY_PATH);
  if (statx(dirfd, name, flags, STATX_BASIC_STATS, &s) != 0) return errno;
  out = meta_of(s);
  return 0;
}

std::string join_rel(const std::string& rel, std::string_view name) {
  if (rel.empty()) return std::string(name);
  std::string r;
  r.reserve(rel.size() + 1 + name.size());
  r.append(rel).push_back('/');
  r.append(name);
  return r;
}

// The layout getdents64(2) fills in.
struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// Calls fn(name) for every entry of the directory open as `fd` except . and ..; returns errno or 0.
template <typename Fn>
int for_each_dirent(int fd, std::vector<char>& buf, Fn&& fn) {
  while (true) {
    long n = getdents64(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<LinuxDirent64*>(buf.data() + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
      fn(name);
    }
  }
}

// A directory being copied. Both sides stay open while anything below it is pending: the
// walker's listing, queued files, unfinished subdirectories. When that count drops to zero its
// metadata is applied, so its times are set after its contents are written.
struct DirNode {
  std::shared_ptr<DirNode> parent;
  std::string name;  // in parent
  std::string rel;   // relative to the roots, "" for the root
  Meta meta;
  Fd src;
  Fd dst;
  std::atomic<int> pending{1};  // the walker's reference
};

// A regular file handed to a worker. `dst` is already created for multiply-linked inodes,
// whose further names the walker links to it right away.
struct FileTask {
  std::shared_ptr<DirNode> dir;
  std::string name;
  Meta meta;
  Fd dst;
  bool chmod_needed = true;  // for a pre-created dst: whether it was created with its final mode
};

// One copy_tree call: the walker (the calling thread), the work queue, helper threads and
// the first error.
class TreeCopier {
 public:
  TreeCopier(const std::string& src, const std::string& dst, const TreeCopyOptions& options)
      : src_(src), dst_(dst), options_(options), is_root_(geteuid() == 0) {}

  TreeCopyStats run();

 private:
  std::string src_path(const std::string& rel) const { return rel.empty() ? src_ : path_join(src_, rel); }
  std::string dst_path(const std::string& rel) const { return rel.empty() ? dst_ : path_join(dst_, rel); }

  void record_error(std::exception_ptr e) {
    std::lock_guard lock(error_mu_);
    if (!first_error_) first_error_ = e;
    failed_.store(true, std::memory_order_relaxed);
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }

  void check_dst_empty(int dst_fd);
  void probe_creation(int dst_fd);
  bool chown_needed(const Meta& m) const { return !probed_ || m.uid != created_uid_ || m.gid != created_gid_; }
  mode_t create_mode(const Meta& m, bool& chmod_needed) const;
  void walk(std::shared_ptr<DirNode> root, TreeCopyStats& st);
  void enter_dir(DirNode& node);
  void list_dir(const std::shared_ptr<DirNode>& node, std::vector<std::shared_ptr<DirNode>>& todo, TreeCopyStats& st);
  void copy_entry(const std::shared_ptr<DirNode>& dir, const char* name, const Meta& m, TreeCopyStats& st);
  void set_path_metadata(DirNode& dir, const char* name, const std::string& rel, const Meta& m, bool chmod_needed);

  void enqueue(FileTask&& task, TreeCopyStats& st);
  bool pop(FileTask& out, bool wait);
  void worker_loop(TreeCopyStats& st);
  void run_task(FileTask& task, TreeCopyStats& st);
  void copy_file(FileTask& task, TreeCopyStats& st);
  void copy_data(int in, int out, const FileTask& t);
  void copy_range(int in, int out, uint64_t off, uint64_t len, const FileTask& t);
  void copy_range_rw(int in, int out, uint64_t off, uint64_t len, const FileTask& t);
  void reflink(int in, int out, const FileTask& t);

  void release(std::shared_ptr<DirNode> node);
  void finish_dir(DirNode& node);
  template <typename List, typename Get, typename Set, typename Rel>
  void copy_xattrs(List&& list, Get&& get, Set&& set, const Rel& rel);
  template <typename Rel>
  void copy_xattrs_fd(int in, int out, const Rel& rel);
  void copy_xattrs_path(const std::string& rel);

  const std::string src_;
  const std::string dst_;
  const TreeCopyOptions options_;
  const bool is_root_;
  dev_t src_dev_ = 0;
  dev_t dst_dev_ = 0;
  ino_t dst_ino_ = 0;
  // What a new inode in dst gets before we change it (see probe_creation).
  bool probed_ = false;
  uid_t created_uid_ = 0;
  gid_t created_gid_ = 0;
  mode_t created_mask_ = 0;  // the permission bits that survive creation (umask)

  std::atomic<bool> failed_{false};
  std::mutex error_mu_;
  std::exception_ptr first_error_;

  std::atomic<bool> use_copy_file_range_{true};

  std::mutex queue_mu_;
  std::condition_variable queue_not_empty_;
  std::deque<FileTask> queue_;
  bool queue_closed_ = false;
  bool have_helpers_ = false;

  // Walker only.
  Fd dst_root_;  // for linking to the first name of an inode
  std::vector<char> dirent_buf_ = std::vector<char>(kDirentBuffer);
  std::unordered_map<InodeKey, std::string, InodeKeyHash> links_;  // inode → first copied name (rel)
};

TreeCopyStats TreeCopier::run() {
  auto root = std::make_shared<DirNode>();
  root->src = open_dir(src_);
  root->dst = open_dir(dst_);
  if (int err = stat_at(root->src.get(), "", root->meta)) fail_errno(err, "stat {}", src_);
  Meta d;
  if (int err = stat_at(root->dst.get(), "", d)) fail_errno(err, "stat {}", dst_);
  src_dev_ = root->meta.dev;
  dst_dev_ = d.dev;
  dst_ino_ = d.ino;
  if (src_dev_ == dst_dev_ && root->meta.ino == dst_ino_)
    fail(Errc::kInvalidInput, "copy {} to {}: source and destination are the same directory", src_, dst_);
  check_dst_empty(root->dst.get());
  probe_creation(root->dst.get());
  dst_root_.reset(fcntl(root->dst.get(), F_DUPFD_CLOEXEC, 0));
  if (!dst_root_) fail_sys("dup {}", dst_);

  unsigned threads = options_.threads ? options_.threads : std::max(1u, std::thread::hardware_concurrency());
  // The calling thread walks and copies too (whenever the queue is full and at the end).
  std::vector<TreeCopyStats> helper_stats(threads - 1);
  std::vector<std::thread> helpers;
  TreeCopyStats total;
  try {
    for (auto& hs : helper_stats) helpers.emplace_back([this, &hs] { worker_loop(hs); });
  } catch (...) {
    record_error(std::current_exception());
  }
  have_helpers_ = !helpers.empty();
  if (!failed()) walk(std::move(root), total);
  root.reset();
  {
    FileTask t;
    while (pop(t, false)) run_task(t, total);
  }
  {
    std::lock_guard lock(queue_mu_);
    queue_closed_ = true;
  }
  queue_not_empty_.notify_all();
  for (auto& h : helpers) h.join();
  if (first_error_) std::rethrow_exception(first_error_);
  for (const auto& hs : helper_stats) {
    total.files += hs.files;
    total.bytes += hs.bytes;
  }
  return total;
}

void TreeCopier::check_dst_empty(int dst_fd) {
  Fd fd(openat(dst_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) fail_sys("open {}", dst_);
  std::string first;
  int err = for_each_dirent(fd.get(), dirent_buf_, [&](const char* name) {
    if (first.empty()) first = name;
  });
  if (err) fail_errno(err, "read directory {}", dst_);
  if (!first.empty())
    fail(Errc::kFailedPrecondition, "copy {} to {}: the destination is not empty (it holds {})", src_, dst_, first);
}

// Learns which owner and which permission bits a new inode in dst gets (the umask, a setgid
// root, the grpid mount option all play a part) from an unnamed O_TMPFILE inode, so that
// chown and chmod can be skipped where they would change nothing: two of the ten system calls
// a small file costs. Directories created below inherit the same rules, as their own
// owner and mode are applied only after their content. A default ACL on dst would hand
// inherited ACLs to everything created, so it goes first (dst takes src's xattrs at the end).
void TreeCopier::probe_creation(int dst_fd) {
  for (const char* acl : {"system.posix_acl_default", "system.posix_acl_access"})
    if (fremovexattr(dst_fd, acl) != 0 && errno != ENODATA && errno != EOPNOTSUPP)
      fail_sys("remove {} from {}", acl, dst_);
  Fd probe(openat(dst_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0777));
  if (!probe) return;  // no O_TMPFILE here: always chown and chmod
  struct stat st {};
  if (fstat(probe.get(), &st) != 0) return;
  probed_ = true;
  created_uid_ = st.st_uid;
  created_gid_ = st.st_gid;
  created_mask_ = st.st_mode & 0777;
}

// The mode to create a file or node with: its final one when creation keeps it intact (no
// setuid/setgid/sticky bits, which creation or chown may drop), else owner-only with
// chmod_needed set.
mode_t TreeCopier::create_mode(const Meta& m, bool& chmod_needed) const {
  mode_t perm = m.mode & 07777;
  chmod_needed = !(probed_ && (perm & 07000) == 0 && (perm & ~created_mask_) == 0);
  return chmod_needed ? 0600 : perm;
}

// Depth first with an explicit stack: only the ancestors of the current directory (and those
// with queued files) hold descriptors, however wide or deep the tree.
void TreeCopier::walk(std::shared_ptr<DirNode> root, TreeCopyStats& st) {
  std::vector<std::shared_ptr<DirNode>> todo;
  try {
    st.dirs += 1;
    list_dir(root, todo, st);
    release(std::move(root));
    while (!todo.empty() && !failed()) {
      std::shared_ptr<DirNode> node = std::move(todo.back());
      todo.pop_back();
      enter_dir(*node);
      st.dirs += 1;
      list_dir(node, todo, st);
      release(std::move(node));
    }
  } catch (...) {
    record_error(std::current_exception());
  }
  // After an error: drop what was not visited (closing descriptors, no metadata).
  while (!todo.empty()) {
    release(std::move(todo.back()));
    todo.pop_back();
  }
  if (root) release(std::move(root));
}

// Creates the destination directory and opens both sides.
void TreeCopier::enter_dir(DirNode& node) {
  DirNode& parent = *node.parent;
  const char* name = node.name.c_str();
  // Owner-only until finish_dir applies the real mode, as cp does.
  if (mkdirat(parent.dst.get(), name, 0700) != 0) fail_sys("create directory {}", dst_path(node.rel));
  node.src.reset(openat(parent.src.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!node.src) fail_sys("open {}", src_path(node.rel));
  node.dst.reset(openat(parent.dst.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!node.dst) fail_sys("open {}", dst_path(node.rel));
}

void TreeCopier::list_dir(const std::shared_ptr<DirNode>& node, std::vector<std::shared_ptr<DirNode>>& todo,
                          TreeCopyStats& st) {
  int err = for_each_dirent(node->src.get(), dirent_buf_, [&](const char* name) {
    if (failed()) return;
    Meta m;
    if (int e = stat_at(node->src.get(), name, m)) {
      if (e == ENOENT) return;  // removed while we copy
      fail_errno(e, "stat {}", src_path(join_rel(node->rel, name)));
    }
    // A mount root below src (a bind-mounted file too), or a directory of another file system.
    // Non-directories on overlayfs may report their layer's device, so st_dev only counts for
    // directories.
    if (m.mount_root || (S_ISDIR(m.mode) && m.dev != src_dev_))
      fail(Errc::kFailedPrecondition, "copy {} to {}: {} is a mount point; copy_tree does not cross mounts", src_, dst_,
           src_path(join_rel(node->rel, name)));
    if (S_ISDIR(m.mode)) {
      if (m.dev == dst_dev_ && m.ino == dst_ino_)
        fail(Errc::kInvalidInput, "copy {} to {}: the destination is inside the source", src_, dst_);
      auto child = std::make_shared<DirNode>();
      child->parent = node;
      child->name = name;
      child->rel = join_rel(node->rel, name);
      child->meta = m;
      node->pending.fetch_add(1, std::memory_order_relaxed);
      todo.push_back(std::move(child));
      return;
    }
    copy_entry(node, name, m, st);
  });
  if (err) fail_errno(err, "read directory {}", src_path(node->rel));
}

// Copies one non-directory: regular files go to the queue, the rest is done here.
void TreeCopier::copy_entry(const std::shared_ptr<DirNode>& dir, const char* name, const Meta& m, TreeCopyStats& st) {
  int dst_dir = dir->dst.get();
  std::string rel;  // built only when needed
  // Further names of an inode already copied become hard links.
  if (m.nlink > 1) {
    rel = join_rel(dir->rel, name);
    auto [it, inserted] = links_.try_emplace(InodeKey{m.dev, m.ino}, rel);
    if (!inserted) {
      if (linkat(dst_root_.get(), it->second.c_str(), dst_dir, name, 0) != 0)
        fail_sys("link {} to {}", dst_path(rel), dst_path(it->second));
      st.hardlinks += 1;
      return;
    }
  }
  switch (m.mode & S_IFMT) {
    case S_IFREG: {
      FileTask task{dir, name, m, Fd()};
      if (m.nlink > 1) {
        // Created now so that later names can be linked before a worker gets to it.
        mode_t mode = create_mode(m, task.chmod_needed);
        task.dst.reset(openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
        if (!task.dst) fail_sys("create {}", dst_path(rel));
      }
      dir->pending.fetch_add(1, std::memory_order_relaxed);
      enqueue(std::move(task), st);
      return;
    }
    case S_IFLNK: {
      if (rel.empty()) rel = join_rel(dir->rel, name);
      std::string target(m.size + 1 < 256 ? 256 : m.size + 1, '\0');
      while (true) {
        ssize_t n = readlinkat(dir->src.get(), name, target.data(), target.size());
        if (n < 0) fail_sys("read link {}", src_path(rel));
        if (static_cast<size_t>(n) < target.size()) {
          target.resize(static_cast<size_t>(n));
          break;
        }
        target.resize(target.size() * 2);
      }
      if (symlinkat(target.c_str(), dst_dir, name) != 0) fail_sys("create symlink {}", dst_path(rel));
      set_path_metadata(*dir, name, rel, m, false);
      st.symlinks += 1;
      return;
    }
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK: {
      if (rel.empty()) rel = join_rel(dir->rel, name);
      bool chmod_needed = true;
      if (mknodat(dst_dir, name, (m.mode & S_IFMT) | create_mode(m, chmod_needed), m.rdev) != 0)
        fail_sys("create {}", dst_path(rel));
      set_path_metadata(*dir, name, rel, m, chmod_needed);
      st.specials += 1;
      return;
    }
    default:
      fail(Errc::kFailure, "copy {}: unknown file type 0{:o}", src_path(join_rel(dir->rel, name)), m.mode & S_IFMT);
  }
}

// Owner, xattrs, mode and times of a symlink or special file (no descriptor to use: opening a
// device or fifo has side effects).
void TreeCopier::set_path_metadata(DirNode& dir, const char* name, const std::string& rel, const Meta& m,
                                   bool chmod_needed) {
  int fd = dir.dst.get();
  if (chown_needed(m) && fchownat(fd, name, m.uid, m.gid, AT_SYMLINK_NOFOLLOW) != 0)
    fail_sys("set owner of {}", dst_path(rel));
  copy_xattrs_path(rel);
  if (chmod_needed && fchmodat(fd, name, m.mode & 07777, 0) != 0) fail_sys("set mode of {}", dst_path(rel));
  if (utimensat(fd, name, m.times, AT_SYMLINK_NOFOLLOW) != 0) fail_sys("set times of {}", dst_path(rel));
}

void TreeCopier::enqueue(FileTask&& task, TreeCopyStats& st) {
  if (have_helpers_) {
    std::unique_lock lock(queue_mu_);
    if (queue_.size() < kQueueCapacity) {
      queue_.push_back(std::move(task));
      lock.unlock();
      queue_not_empty_.notify_one();
      return;
    }
  }
  // No helpers, or they are busy: copy it here.
  run_task(task, st);
}

bool TreeCopier::pop(FileTask& out, bool wait) {
  std::unique_lock lock(queue_mu_);
  if (wait) queue_not_empty_.wait(lock, [this] { return !queue_.empty() || queue_closed_; });
  if (queue_.empty()) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

void TreeCopier::worker_loop(TreeCopyStats& st) {
  FileTask t;
  while (pop(t, true)) run_task(t, st);
}

void TreeCopier::run_task(FileTask& task, TreeCopyStats& st) {
  if (!failed()) {
    try {
      copy_file(task, st);
    } catch (...) {
      record_error(std::current_exception());
    }
  }
  task.dst.reset();
  release(std::move(task.dir));
}

void TreeCopier::copy_file(FileTask& t, TreeCopyStats& st) {
  const DirNode& dir = *t.dir;
  const char* name = t.name.c_str();
  auto rel = [&] { return join_rel(dir.rel, t.name); };
  int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (is_root_ ? O_NOATIME : 0);
  Fd in(openat(dir.src.get(), name, flags));
  if (!in && errno == EPERM && (flags & O_NOATIME)) in.reset(openat(dir.src.get(), name, flags & ~O_NOATIME));
  if (!in) fail_sys("open {}", src_path(rel()));
  if (!t.dst) {
    mode_t mode = create_mode(t.meta, t.chmod_needed);
    t.dst.reset(openat(dir.dst.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!t.dst) fail_sys("create {}", dst_path(rel()));
  }
  int out = t.dst.get();
  if (options_.data == TreeCopyOptions::Data::kReflink) {
    reflink(in.get(), out, t);
  } else if (options_.data == TreeCopyOptions::Data::kHoles) {
    if (t.meta.size > 0 && ftruncate(out, static_cast<off_t>(t.meta.size)) != 0)
      fail_sys("set the size of {}", dst_path(rel()));
  } else if (t.meta.size > 0) {
    copy_data(in.get(), out, t);
  }
  // Owner first (chown clears setuid bits and security.capability), then xattrs, mode, times.
  if (chown_needed(t.meta) && fchown(out, t.meta.uid, t.meta.gid) != 0) fail_sys("set owner of {}", dst_path(rel()));
  copy_xattrs_fd(in.get(), out, [&] { return rel(); });
  if (t.chmod_needed && fchmod(out, t.meta.mode & 07777) != 0) fail_sys("set mode of {}", dst_path(rel()));
  if (futimens(out, t.meta.times) != 0) fail_sys("set times of {}", dst_path(rel()));
  if (int e = t.dst.close()) fail_errno(-e, "close {}", dst_path(rel()));
  st.files += 1;
  st.bytes += t.meta.size;
}

void TreeCopier::reflink(int in, int out, const FileTask& t) {
  if (ioctl(out, FICLONE, in) == 0) return;
  int err = errno;
  std::string rel = join_rel(t.dir->rel, t.name);
  if (err == EXDEV)
    throw Error(Errc::kUnsupported,
                fmt::format("reflink {} to {}: the source and the destination are on different file systems",
                            src_path(rel), dst_path(rel)),
                err);
  if (err == EOPNOTSUPP || err == ENOTTY || err == EINVAL || err == ENOSYS) {
    std::string fs;
    try {
      fs = fs_type_name(dst_);
    } catch (const Error&) {
      fs = "the file system";
    }
    throw Error(Errc::kUnsupported,
                fmt::format("reflink {} to {}: {} cannot share file data (FICLONE: {})", src_path(rel), dst_path(rel),
                            fs, std::strerror(err)),
                err);
  }
  fail_errno(err, "reflink {} to {}", src_path(rel), dst_path(rel));
}

// Copies the data, leaving holes where the source has them (files with fewer blocks than
// their size) — a 1 GiB file holding 4 KiB stays 4 KiB.
void TreeCopier::copy_data(int in, int out, const FileTask& t) {
  const uint64_t size = t.meta.size;
  if (t.meta.blocks * 512 >= size) {
    copy_range(in, out, 0, size, t);
    return;
  }
  uint64_t off = 0;
  while (off < size) {
    off_t data = lseek(in, static_cast<off_t>(off), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      if (errno == EINVAL && off == 0) {  // no SEEK_DATA here: copy it all
        copy_range(in, out, 0, size, t);
        return;
      }
      fail_sys("seek data in {}", src_path(join_rel(t.dir->rel, t.name)));
    }
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) fail_sys("seek hole in {}", src_path(join_rel(t.dir->rel, t.name)));
    uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
    if (static_cast<uint64_t>(data) >= end) break;
    copy_range(in, out, static_cast<uint64_t>(data), end - static_cast<uint64_t>(data), t);
    off = end;
  }
  if (ftruncate(out, static_cast<off_t>(size)) != 0) fail_sys("set size of {}", dst_path(join_rel(t.dir->rel, t.name)));
}

void TreeCopier::copy_range(int in, int out, uint64_t off, uint64_t len, const FileTask& t) {
  while (len > 0) {
    if (!use_copy_file_range_.load(std::memory_order_relaxed)) {
      copy_range_rw(in, out, off, len, t);
      return;
    }
    loff_t off_in = static_cast<loff_t>(off), off_out = static_cast<loff_t>(off);
    ssize_t n = copy_file_range(in, &off_in, out, &off_out, len, 0);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EXDEV || err == EINVAL || err == EOPNOTSUPP || err == ENOSYS) {
        // EINVAL may be about this file only; the others hold for the whole copy.
        if (err != EINVAL) use_copy_file_range_.store(false, std::memory_order_relaxed);
        copy_range_rw(in, out, off, len, t);
        return;
      }
      std::string rel = join_rel(t.dir->rel, t.name);
      fail_errno(err, "copy {} to {}", src_path(rel), dst_path(rel));
    }
    if (n == 0) return;  // the source shrank while we copied
    off += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
  }
}

void TreeCopier::copy_range_rw(int in, int out, uint64_t off, uint64_t len, const FileTask& t) {
  thread_local std::vector<char> buf;
  if (buf.empty()) buf.resize(kRwBuffer);
  while (len > 0) {
    ssize_t n = pread(in, buf.data(), std::min<uint64_t>(len, buf.size()), static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string rel = join_rel(t.dir->rel, t.name);
      fail_sys("copy {} to {}", src_path(rel), dst_path(rel));
    }
    if (n == 0) return;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = pwrite(out, buf.data() + done, static_cast<size_t>(n - done), static_cast<off_t>(off) + done);
      if (w < 0) {
        if (errno == EINTR) continue;
        std::string rel = join_rel(t.dir->rel, t.name);
        fail_sys("copy {} to {}", src_path(rel), dst_path(rel));
      }
      done += w;
    }
    off += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
  }
}

// Drops one pending reference; the last one applies the directory's metadata and closes it,
// then drops the reference it held on its parent.
void TreeCopier::release(std::shared_ptr<DirNode> node) {
  while (node && node->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (!failed()) {
      try {
        finish_dir(*node);
      } catch (...) {
        record_error(std::current_exception());
      }
    }
    node->src.reset();
    node->dst.reset();
    node = std::move(node->parent);
  }
}

void TreeCopier::finish_dir(DirNode& node) {
  int out = node.dst.get();
  const Meta& m = node.meta;
  if (chown_needed(m) && fchown(out, m.uid, m.gid) != 0) fail_sys("set owner of {}", dst_path(node.rel));
  copy_xattrs_fd(node.src.get(), out, [&] { return node.rel; });
  if (fchmod(out, m.mode & 07777) != 0) fail_sys("set mode of {}", dst_path(node.rel));
  if (futimens(out, m.times) != 0) fail_sys("set times of {}", dst_path(node.rel));
}

// Copies every extended attribute, all namespaces. list/get/set behave as the xattr system
// calls; rel() names the entry for messages.
template <typename List, typename Get, typename Set, typename Rel>
void TreeCopier::copy_xattrs(List&& list, Get&& get, Set&& set, const Rel& rel) {
  char small[kXattrBuffer];
  std::vector<char> big;
  char* names = small;
  ssize_t n = list(small, sizeof small);
  while (n < 0 && errno == ERANGE) {
    ssize_t need = list(nullptr, 0);
    if (need < 0) break;
    big.resize(static_cast<size_t>(need) + 256);
    names = big.data();
    n = list(names, big.size());
  }
  if (n < 0) {
    if (errno == ENOTSUP) return;  // the source file system has none
    fail_sys("list xattrs of {}", src_path(rel()));
  }
  if (n == 0) return;
  std::vector<char> value(kXattrBuffer);
  for (const char* name = names; name < names + n; name += std::strlen(name) + 1) {
    ssize_t len = get(name, value.data(), value.size());
    while (len < 0 && errno == ERANGE) {
      ssize_t need = get(name, nullptr, 0);
      if (need < 0) break;
      value.resize(static_cast<size_t>(need) + 256);
      len = get(name, value.data(), value.size());
    }
    if (len < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      fail_sys("read xattr {} of {}", name, src_path(rel()));
    }
    if (set(name, value.data(), static_cast<size_t>(len)) != 0) fail_sys("set xattr {} on {}", name, dst_path(rel()));
  }
}

template <typename Rel>
void TreeCopier::copy_xattrs_fd(int in, int out, const Rel& rel) {
  copy_xattrs([in](char* b, size_t n) { return flistxattr(in, b, n); },
              [in](const char* name, char* b, size_t n) { return fgetxattr(in, name, b, n); },
              [out](const char* name, const char* v, size_t n) { return fsetxattr(out, name, v, n, 0); }, rel);
}

// Symlinks and special files have no descriptor to use, so these go by path (never following
// the last component).
void TreeCopier::copy_xattrs_path(const std::string& rel) {
  std::string from = src_path(rel), to = dst_path(rel);
  copy_xattrs([&](char* b, size_t n) { return llistxattr(from.c_str(), b, n); },
              [&](const char* name, char* b, size_t n) { return lgetxattr(from.c_str(), name, b, n); },
              [&](const char* name, const char* v, size_t n) { return lsetxattr(to.c_str(), name, v, n, 0); },
              [&] { return rel; });
}

}  // namespace

TreeCopyStats copy_tree(const std::string& src, const std::string& dst, const TreeCopyOptions& options) {
  TreeCopier c(src, dst, options);
  return c.run();
}

}  // namespace cowbench
