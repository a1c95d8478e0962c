// Applies a layer's tar entries to a directory tree safely (see apply.h).
#include "images/apply.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "images/changeset.h"

namespace cowbench::img {

const char* device_policy_name(DevicePolicy p) noexcept {
  switch (p) {
    case DevicePolicy::kRefuse: return "refuse";
    case DevicePolicy::kSkip: return "skip";
    case DevicePolicy::kAllow: return "allow";
  }
  return "?";
}

DevicePolicy parse_device_policy(const std::string& s) {
  for (auto p : {DevicePolicy::kRefuse, DevicePolicy::kSkip, DevicePolicy::kAllow})
    if (s == device_policy_name(p)) return p;
  fail(Errc::kInvalidInput, "device policy '{}' is not one of refuse, skip, allow", s);
}

namespace {

// openat2 beneath `root`: no absolute symlinks, no "..", no escape through any symlink, no
// /proc magic links. Retries the EAGAIN the kernel returns when a rename raced the walk.
int open_beneath(int root, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const char* p = path.empty() ? "." : path.c_str();
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, root, p, &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN || attempt == 16) return static_cast<int>(fd);
  }
}

bool xattr_allowed(std::string_view name) {
  if (name.starts_with("trusted.overlay.")) return false;  // overlay's own: never from a layer
  return name.starts_with("user.") || name.starts_with("trusted.") || name.starts_with("security.");
}

class Applier {
 public:
  Applier(LayerReader& reader, const std::string& root, const ApplyOptions& options)
      : r_(reader), opt_(options) {
    root_.reset(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_) fail_sys("layer {}: open the target directory {}", r_.name(), root);
    struct stat st {};
    if (fstat(root_.get(), &st) != 0) fail_sys("stat {}", root);
    root_dev_ = st.st_dev;
  }

  LayerStats run() {
    TarEntry e;
    while (r_.next(e)) apply(e);
    set_dir_times();
    st_.digests = r_.finish();
    return st_;
  }

 private:
  [[noreturn]] void sys_fail(const std::string& entry, std::string_view what, int err = errno) {
    r_.fail_entry(entry, Errc::kFailure, fmt::format("{}: {}", what, std::strerror(err)));
  }

  // An openat2 failure while resolving `path` for `entry`.
  [[noreturn]] void resolve_fail(const std::string& entry, const std::string& path, int err) {
    switch (err) {
      case EXDEV:
        r_.fail_entry(entry, Errc::kInvalidInput, fmt::format("'{}' leads outside the root (through a symlink)", path));
      case ELOOP:
        r_.fail_entry(entry, Errc::kInvalidInput, fmt::format("'{}' runs into a symlink loop or a magic link", path));
      case ENOTDIR:
        r_.fail_entry(entry, Errc::kInvalidInput, fmt::format("a component of '{}' is not a directory", path));
      default: sys_fail(entry, fmt::format("resolve '{}'", path), err);
    }
  }

  // The directory `parent` (beneath the root), made with its missing ancestors (0755) when
  // absent. Cached for runs of entries in one directory; any removal drops the cache.
  int parent_fd(const std::string& parent, const std::string& entry) {
    if (cached_valid_ && cached_parent_ == parent) return cached_fd_.get();
    Fd fd(open_beneath(root_.get(), parent, O_PATH | O_DIRECTORY));
    if (!fd) {
      if (errno != ENOENT) resolve_fail(entry, parent, errno);
      fd = make_parents(parent, entry);
    }
    cached_parent_ = parent;
    cached_fd_ = std::move(fd);
    cached_valid_ = true;
    return cached_fd_.get();
  }

  Fd make_parents(const std::string& dir, const std::string& entry) {
    Fd cur(open_beneath(root_.get(), "", O_PATH | O_DIRECTORY));
    if (!cur) resolve_fail(entry, ".", errno);
    std::string prefix;
    size_t start = 0;
    while (start <= dir.size()) {
      size_t slash = dir.find('/', start);
      std::string comp = dir.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      prefix = join_path(prefix, comp);
      Fd next(open_beneath(root_.get(), prefix, O_PATH | O_DIRECTORY));
      if (!next && errno == ENOENT) {
        if (mkdirat(cur.get(), comp.c_str(), 0755) == 0) {
          // Ours (nothing else writes here): 0755 whatever the umask.
          if (fchmodat(cur.get(), comp.c_str(), 0755, 0) != 0) sys_fail(entry, "chmod " + prefix);
          written_.add(prefix);
        } else if (errno != EEXIST) {  // EEXIST: a dangling symlink, refused just below
          sys_fail(entry, "mkdir " + prefix);
        }
        next.reset(open_beneath(root_.get(), prefix, O_PATH | O_DIRECTORY));
      }
      if (!next) resolve_fail(entry, prefix, errno);
      cur = std::move(next);
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    return cur;
  }

  // Removes every entry of the directory `fd` (recursively); with keep_written, keeps what
  // this layer wrote below `dir` (the opaque-directory rule).
  void clear_dir(int fd, const std::string& dir, const std::string& entry, bool keep_written) {
    std::vector<std::string> names;
    try {
      names = dir_names(fd, "/" + dir);
    } catch (const Error& e) {
      r_.fail_entry(entry, e.code(), e.what());
    }
    for (const auto& n : names) {
      std::string child = join_path(dir, n);
      if (keep_written && written_.contains_or_above(child)) {
        struct stat st {};
        if (fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
          Fd sub(openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          if (!sub) sys_fail(entry, "open " + child);
          clear_dir(sub.get(), child, entry, true);
        }
        continue;
      }
      remove_at(fd, n, child, entry);
    }
  }

  // Removes dirfd/name, a whole tree if it is a directory; absent is fine.
  void remove_at(int dirfd, const std::string& name, const std::string& path, const std::string& entry) {
    struct stat st {};
    if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return;
      sys_fail(entry, "stat " + path);
    }
    cached_valid_ = false;
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != root_dev_) r_.fail_entry(entry, Errc::kFailure, fmt::format("'{}' is another mount", path));
      Fd sub(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) sys_fail(entry, "open " + path);
      clear_dir(sub.get(), path, entry, false);
      if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0) sys_fail(entry, "rmdir " + path);
    } else if (unlinkat(dirfd, name.c_str(), 0) != 0) {
      sys_fail(entry, "unlink " + path);
    }
  }

  void set_xattr(int fd, const std::string& proc_path, const TarEntry& e) {
    for (const auto& [name, value] : e.xattrs) {
      if (!xattr_allowed(name)) {
        ++st_.skipped;
        continue;
      }
      int rc = fd >= 0 ? fsetxattr(fd, name.c_str(), value.data(), value.size(), 0)
                       : lsetxattr(proc_path.c_str(), name.c_str(), value.data(), value.size(), 0);
      if (rc == 0) continue;
      if (errno == ENOTSUP || errno == EPERM) {  // no user.* on symlinks/fifos, or the fs lacks xattrs
        ++st_.skipped;
        continue;
      }
      sys_fail(e.path, "set xattr " + name);
    }
  }

  // Owner, then mode (chown clears setuid), then xattrs, then (unless a directory) mtime.
  void set_meta(int fd, const TarEntry& e, bool set_time) {
    if (opt_.preserve_owners && fchown(fd, e.uid, e.gid) != 0) sys_fail(e.path, "chown");
    if (fchmod(fd, e.mode) != 0) sys_fail(e.path, "chmod");
    set_xattr(fd, "", e);
    if (set_time) {
      timespec ts[2] = {e.mtime, e.mtime};
      if (futimens(fd, ts) != 0) sys_fail(e.path, "set times");
    }
  }

  // The same for what cannot be opened for writing (symlinks, fifos, device nodes).
  void set_meta_at(int pfd, const std::string& name, const TarEntry& e, bool chmod_too) {
    if (opt_.preserve_owners && fchownat(pfd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
      sys_fail(e.path, "chown");
    if (chmod_too && fchmodat(pfd, name.c_str(), e.mode, 0) != 0) sys_fail(e.path, "chmod");
    if (!e.xattrs.empty()) set_xattr(-1, fmt::format("/proc/self/fd/{}/{}", pfd, name), e);
    timespec ts[2] = {e.mtime, e.mtime};
    if (utimensat(pfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) sys_fail(e.path, "set times");
  }

  void write_file(int pfd, const std::string& name, const TarEntry& e) {
    remove_at(pfd, name, e.path, e.path);
    Fd fd(openat(pfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) sys_fail(e.path, "create");
    uint64_t pos = 0;
    r_.read_data([&](uint64_t off, const char* p, size_t n) {
      if (off + n > e.size) r_.fail_entry(e.path, Errc::kInvalidInput, "data beyond the entry's size");
      if (off != pos && lseek(fd.get(), static_cast<off_t>(off), SEEK_SET) < 0) sys_fail(e.path, "seek");
      for (size_t done = 0; done < n;) {
        ssize_t w = ::write(fd.get(), p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) sys_fail(e.path, "write");
        done += static_cast<size_t>(w);
      }
      pos = off + n;
      st_.file_bytes += n;
    });
    if (pos < e.size && ftruncate(fd.get(), static_cast<off_t>(e.size)) != 0) sys_fail(e.path, "truncate");
    set_meta(fd.get(), e, true);
    if (fd.close() != 0) sys_fail(e.path, "close");
    ++st_.files;
  }

  void make_dir(int pfd, const std::string& name, const TarEntry& e) {
    struct stat st {};
    bool exists = fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !S_ISDIR(st.st_mode)) {
      remove_at(pfd, name, e.path, e.path);
      exists = false;
    }
    if (!exists && mkdirat(pfd, name.c_str(), 0700) != 0) sys_fail(e.path, "mkdir");
    Fd d(openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) sys_fail(e.path, "open directory");
    set_meta(d.get(), e, false);
    dir_times_[e.path] = e.mtime;
    ++st_.dirs;
  }

  void make_root(const TarEntry& e) {
    Fd d(open_beneath(root_.get(), "", O_RDONLY | O_DIRECTORY));
    if (!d) sys_fail(e.path, "open the root");
    set_meta(d.get(), e, false);
    dir_times_[""] = e.mtime;
    ++st_.dirs;
  }

  void make_symlink(int pfd, const std::string& name, const TarEntry& e) {
    remove_at(pfd, name, e.path, e.path);
    if (symlinkat(e.link.c_str(), pfd, name.c_str()) != 0) sys_fail(e.path, "symlink");
    set_meta_at(pfd, name, e, false);
    ++st_.symlinks;
  }

  void make_hardlink(int pfd, const std::string& name, const TarEntry& e) {
    auto [tparent, tname] = split_path(e.link);
    Fd tdir(open_beneath(root_.get(), tparent, O_PATH | O_DIRECTORY));
    if (!tdir) {
      if (errno == ENOENT)
        r_.fail_entry(e.path, Errc::kInvalidInput, fmt::format("hard link target '{}' does not exist", e.link));
      resolve_fail(e.path, e.link, errno);
    }
    struct stat tst {};
    if (fstatat(tdir.get(), tname.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT)
        r_.fail_entry(e.path, Errc::kInvalidInput, fmt::format("hard link target '{}' does not exist", e.link));
      sys_fail(e.path, "stat hard link target " + e.link);
    }
    if (S_ISDIR(tst.st_mode))
      r_.fail_entry(e.path, Errc::kInvalidInput, fmt::format("hard link to the directory '{}'", e.link));
    struct stat dst {};
    if (fstatat(pfd, name.c_str(), &dst, AT_SYMLINK_NOFOLLOW) == 0 && dst.st_ino == tst.st_ino &&
        dst.st_dev == tst.st_dev) {
      ++st_.hardlinks;
      return;  // already this inode (the layer links a name to itself)
    }
    remove_at(pfd, name, e.path, e.path);
    if (linkat(tdir.get(), tname.c_str(), pfd, name.c_str(), 0) != 0) sys_fail(e.path, "link to " + e.link);
    ++st_.hardlinks;
  }

  void make_special(int pfd, const std::string& name, const TarEntry& e) {
    mode_t type = S_IFIFO;
    dev_t dev = 0;
    if (e.type == EntryType::kChar || e.type == EntryType::kBlock) {
      if (e.type == EntryType::kChar && e.dev_major == 0 && e.dev_minor == 0)
        r_.fail_entry(e.path, Errc::kInvalidInput,
                      "a 0/0 character device is an overlay whiteout, not a file; layers mark deletions with .wh. files");
      if (opt_.devices == DevicePolicy::kRefuse)
        r_.fail_entry(e.path, Errc::kInvalidInput,
                      fmt::format("{} device {}:{} refused (device policy: refuse; use skip or allow)",
                                  e.type == EntryType::kChar ? "character" : "block", e.dev_major, e.dev_minor));
      if (opt_.devices == DevicePolicy::kSkip) {
        ++st_.skipped;
        if (++st_.skipped_devices <= kMaxNamedDevices) st_.skipped_device_paths.push_back("/" + e.path);
        return;  // whatever a lower layer has at this path stays
      }
      type = e.type == EntryType::kChar ? S_IFCHR : S_IFBLK;
      dev = makedev(e.dev_major, e.dev_minor);
    }
    remove_at(pfd, name, e.path, e.path);
    if (mknodat(pfd, name.c_str(), type | 0600, dev) != 0) sys_fail(e.path, "mknod");
    set_meta_at(pfd, name, e, true);
    ++st_.specials;
  }

  void whiteout(const TarEntry& e, const std::string& parent, const std::string& target_name) {
    ++st_.whiteouts;
    if (target_name.empty() || target_name == "." || target_name == "..")
      r_.fail_entry(e.path, Errc::kInvalidInput, "whiteout of an invalid name");
    std::string target = join_path(parent, target_name);
    if (written_.contains_or_above(target)) return;  // this layer's own content stays
    Fd dir(open_beneath(root_.get(), parent, O_PATH | O_DIRECTORY));
    if (!dir) {
      if (errno == ENOENT) return;  // nothing below to hide
      resolve_fail(e.path, parent, errno);
    }
    remove_at(dir.get(), target_name, target, e.path);
  }

  // Hides the lower content of `dir`. When the layer has written nothing below it yet, the
  // directory is removed and made again (keeping its metadata): through overlayfs that makes
  // an opaque directory; otherwise the lower entries are deleted one by one (whiteouts).
  void opaque(const TarEntry& e, const std::string& dir) {
    ++st_.opaques;
    if (dir.empty() || written_.has_below(dir)) {
      Fd d(open_beneath(root_.get(), dir, O_RDONLY | O_DIRECTORY));
      if (!d) resolve_fail(e.path, dir.empty() ? "." : dir, errno);
      clear_dir(d.get(), dir, e.path, true);
      return;
    }
    auto [parent, name] = split_path(dir);
    int pfd = parent_fd(parent, e.path);
    struct stat st {};
    if (fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) sys_fail(e.path, "stat " + dir);
      if (mkdirat(pfd, name.c_str(), 0755) != 0) sys_fail(e.path, "mkdir " + dir);
      if (fchmodat(pfd, name.c_str(), 0755, 0) != 0) sys_fail(e.path, "chmod " + dir);
      written_.add(dir);
      return;
    }
    if (!S_ISDIR(st.st_mode)) r_.fail_entry(e.path, Errc::kInvalidInput, "opaque marker in a non-directory");
    std::vector<std::pair<std::string, std::string>> xattrs = dir_xattrs(pfd, name, e.path);
    remove_at(pfd, name, dir, e.path);
    pfd = parent_fd(parent, e.path);
    if (mkdirat(pfd, name.c_str(), 0700) != 0) sys_fail(e.path, "mkdir " + dir);
    Fd d(openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) sys_fail(e.path, "open " + dir);
    if (opt_.preserve_owners && fchown(d.get(), st.st_uid, st.st_gid) != 0) sys_fail(e.path, "chown " + dir);
    if (fchmod(d.get(), st.st_mode & 07777) != 0) sys_fail(e.path, "chmod " + dir);
    for (const auto& [n, v] : xattrs)
      if (fsetxattr(d.get(), n.c_str(), v.data(), v.size(), 0) != 0 && errno != ENOTSUP && errno != EPERM)
        sys_fail(e.path, "set xattr " + n);
    timespec ts[2] = {st.st_atim, st.st_mtim};
    if (futimens(d.get(), ts) != 0) sys_fail(e.path, "set times");
    written_.add(dir);
  }

  std::vector<std::pair<std::string, std::string>> dir_xattrs(int pfd, const std::string& name, const std::string& entry) {
    std::vector<std::pair<std::string, std::string>> out;
    Fd d(openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) sys_fail(entry, "open " + name);
    ssize_t n = flistxattr(d.get(), nullptr, 0);
    if (n <= 0) return out;
    std::string names(static_cast<size_t>(n), '\0');
    n = flistxattr(d.get(), names.data(), names.size());
    if (n < 0) return out;
    for (size_t i = 0; i < static_cast<size_t>(n);) {
      std::string xn(names.c_str() + i);
      i += xn.size() + 1;
      if (!xattr_allowed(xn)) continue;
      ssize_t vs = fgetxattr(d.get(), xn.c_str(), nullptr, 0);
      if (vs < 0) continue;
      std::string v(static_cast<size_t>(vs), '\0');
      vs = fgetxattr(d.get(), xn.c_str(), v.data(), v.size());
      if (vs < 0) continue;
      v.resize(static_cast<size_t>(vs));
      out.emplace_back(std::move(xn), std::move(v));
    }
    return out;
  }

  void apply(const TarEntry& e) {
    ++st_.entries;
    auto [parent, name] = split_path(e.path);
    if (name == kOpaqueMarker) return opaque(e, parent);
    if (std::string_view(name).starts_with(kWhiteoutPrefix))
      return whiteout(e, parent, name.substr(kWhiteoutPrefix.size()));
    if (e.path.empty()) return make_root(e);
    int pfd = parent_fd(parent, e.path);
    switch (e.type) {
      case EntryType::kFile: write_file(pfd, name, e); break;
      case EntryType::kDir: make_dir(pfd, name, e); break;
      case EntryType::kSymlink: make_symlink(pfd, name, e); break;
      case EntryType::kHardlink: make_hardlink(pfd, name, e); break;
      case EntryType::kChar:
      case EntryType::kBlock:
      case EntryType::kFifo: make_special(pfd, name, e); break;
    }
    written_.add(e.path);
  }

  // Directory mtimes last: creating their entries changed them.
  void set_dir_times() {
    for (const auto& [path, mtime] : dir_times_) {
      Fd d(open_beneath(root_.get(), path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      if (!d) continue;  // removed or replaced later in the layer
      timespec ts[2] = {mtime, mtime};
      if (futimens(d.get(), ts) != 0) sys_fail(path, "set times");
    }
  }

  LayerReader& r_;
  ApplyOptions opt_;
  Fd root_;
  dev_t root_dev_ = 0;
  LayerStats st_;
  std::string cached_parent_;
  Fd cached_fd_;
  bool cached_valid_ = false;
  WrittenSet written_;
  std::unordered_map<std::string, timespec> dir_times_;
};

}  // namespace

LayerStats apply_layer(LayerReader& layer, const std::string& root, const ApplyOptions& options) {
  return Applier(layer, root, options).run();
}

}  // namespace cowbench::img
