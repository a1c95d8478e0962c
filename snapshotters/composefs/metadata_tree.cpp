// Builds the composefs backend's flattened metadata trees (see metadata_tree.h).
#include "snapshotters/composefs/metadata_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/tree_copy.h"

namespace cowbench::snap::composefs {
namespace {

constexpr std::string_view kOverlayPrefix = "trusted.overlay.";
constexpr std::string_view kEscapedPrefix = "trusted.overlay.overlay.";  // a user's own trusted.overlay.* xattr

using Xattrs = std::vector<std::pair<std::string, std::string>>;

// Metadata trees hold no data: their stubs are copied as holes of their size (an EROFS tree
// reports no holes: its stubs would be copied as zeros), and one thread creates their inodes
// faster than two contending for the same directories.
const TreeCopyOptions kOneThread{TreeCopyOptions::Data::kHoles, 1};

// The xattrs of `path` (not following a symlink).
Xattrs read_xattrs(const std::string& path) {
  Xattrs out;
  std::vector<char> names(4096);
  ssize_t n = llistxattr(path.c_str(), names.data(), names.size());
  if (n < 0 && errno == ERANGE) {
    n = llistxattr(path.c_str(), nullptr, 0);
    if (n > 0) {
      names.resize(static_cast<size_t>(n));
      n = llistxattr(path.c_str(), names.data(), names.size());
    }
  }
  if (n < 0) {
    if (errno == ENOTSUP) return out;
    fail_sys("list the xattrs of {}", path);
  }
  for (ssize_t i = 0; i < n;) {
    std::string name(names.data() + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    ssize_t len = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (len < 0) {
      if (errno == ENODATA) continue;
      fail_sys("read xattr {} of {}", name, path);
    }
    std::string value(static_cast<size_t>(len), '\0');
    len = lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (len < 0) fail_sys("read xattr {} of {}", name, path);
    value.resize(static_cast<size_t>(len));
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

std::optional<std::string> xattr(const Xattrs& xs, std::string_view name) {
  for (const auto& [k, v] : xs)
    if (k == name) return v;
  return std::nullopt;
}

// The xattrs a file carries for its own sake: overlay bookkeeping left out, a user's escaped ones kept.
Xattrs own_xattrs(const Xattrs& xs) {
  Xattrs out;
  for (const auto& kv : xs)
    if (!kv.first.starts_with(kOverlayPrefix) || kv.first.starts_with(kEscapedPrefix)) out.push_back(kv);
  return out;
}

// Gives `path` the owner, mode, times and xattrs (replacing its own) of `st`/`xs`.
void apply_attrs(const std::string& path, const struct stat& st, const Xattrs& xs, bool replace_xattrs) {
  if (replace_xattrs) {
    for (const auto& [k, v] : read_xattrs(path))
      if ((!k.starts_with(kOverlayPrefix) || k.starts_with(kEscapedPrefix)) && lremovexattr(path.c_str(), k.c_str()) != 0)
        fail_sys("remove xattr {} of {}", k, path);
  }
  for (const auto& [k, v] : xs)
    if (lsetxattr(path.c_str(), k.c_str(), v.data(), v.size(), 0) != 0) fail_sys("set xattr {} of {}", k, path);
  if (lchown(path.c_str(), st.st_uid, st.st_gid) != 0) fail_sys("chown {}", path);
  if (!S_ISLNK(st.st_mode) && chmod(path.c_str(), st.st_mode & 07777) != 0) fail_sys("chmod {}", path);
  timespec t[2] = {st.st_atim, st.st_mtim};
  if (utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0) fail_sys("set the times of {}", path);
}

// Removes whatever `path` is (a tree, a file, nothing).
void remove_any(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    fail_sys("stat {}", path);
  }
  if (S_ISDIR(st.st_mode)) {
    remove_tree(path);
  } else if (unlink(path.c_str()) != 0) {
    fail_sys("remove {}", path);
  }
}

// A stub: a sparse file of `size` bytes whose data is the object `hex`.
void make_stub(const std::string& path, uint64_t size, const std::string& hex) {
  Fd f(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!f) fail_sys("create {}", path);
  if (ftruncate(f.get(), static_cast<off_t>(size)) != 0) fail_sys("truncate {}", path);
  std::string redirect = ObjectStore::redirect_of(hex);
  if (fsetxattr(f.get(), kMetacopyXattr, "", 0, 0) != 0) fail_sys("set {} of {}", kMetacopyXattr, path);
  if (fsetxattr(f.get(), kRedirectXattr, redirect.data(), redirect.size(), 0) != 0)
    fail_sys("set {} of {}", kRedirectXattr, path);
}

// "/a/b" + "c" = "/a/b/c"; paths inside the trees, "" being the root.
std::string child(const std::string& dir, const std::string& name) { return dir + "/" + name; }

// A lower path named by an overlay redirect of an entry of the directory whose lower path is `lower_dir`.
std::string resolve_redirect(const std::string& redirect, const std::optional<std::string>& lower_dir) {
  if (redirect.starts_with('/')) return redirect == "/" ? std::string() : redirect;
  return child(lower_dir.value_or(""), redirect);
}

class Builder {
 public:
  Builder(const std::string& parent, const std::string& changes, const std::string& out, ObjectStore::Batch& batch)
      : parent_(parent), changes_(changes), out_(out), batch_(batch) {}

  BuildStats run() {
    if (!parent_.empty()) copy_tree(parent_, out_, kOneThread);
    struct stat st {};
    if (lstat(changes_.c_str(), &st) != 0) fail_sys("stat {}", changes_);
    merge_dir("", std::optional<std::string>(""));
    apply_attrs(out_, st, own_xattrs(read_xattrs(changes_)), true);
    return stats_;
  }

 private:
  // Applies the upper directory at `rel` to the same path of the output; `lower` is the parent
  // tree's directory it merges with (none for an opaque or new one).
  void merge_dir(const std::string& rel, const std::optional<std::string>& lower) {
    std::string dir = changes_ + rel;
    Fd dfd = open_dir(dir);
    std::vector<std::string> names;
    {
      DIR* d = fdopendir(dup(dfd.get()));
      if (!d) fail_sys("open {}", dir);
      while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(std::move(n));
      }
      closedir(d);
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) entry(dfd.get(), rel, n, lower);
  }

  void entry(int dfd, const std::string& rel, const std::string& name, const std::optional<std::string>& lower) {
    std::string r = child(rel, name), src = changes_ + r, dst = out_ + r;
    struct stat st {};
    if (fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) fail_sys("stat {}", src);
    bool layered = !parent_.empty();
    if (layered && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {  // a whiteout
      remove_any(dst);
      ++stats_.whiteouts;
      return;
    }
    Xattrs xs = read_xattrs(src);
    Xattrs own = own_xattrs(xs);
    if (S_ISDIR(st.st_mode)) {
      auto redirect = layered ? xattr(xs, kRedirectXattr) : std::nullopt;
      bool opaque = layered && xattr(xs, "trusted.overlay.opaque") == std::string("y");
      std::optional<std::string> below;
      if (layered && !opaque) below = redirect ? resolve_redirect(*redirect, lower) : child(lower.value_or(""), name);
      struct stat cur {};
      bool merge = !redirect && !opaque && lstat(dst.c_str(), &cur) == 0 && S_ISDIR(cur.st_mode);
      if (!merge) {
        remove_any(dst);
        if (mkdir(dst.c_str(), 0700) != 0) fail_sys("create {}", dst);
        // A renamed directory: its content is the parent's at the old path.
        struct stat old {};
        if (redirect && lstat((parent_ + *below).c_str(), &old) == 0 && S_ISDIR(old.st_mode))
          copy_tree(parent_ + *below, dst, kOneThread);
        else if (!redirect) below.reset();
      }
      merge_dir(r, below);
      apply_attrs(dst, st, own, true);
      return;
    }
    // Every other kind replaces what the parent had there.
    if (S_ISREG(st.st_mode)) {
      if (auto linked = linked_.find(st.st_ino); linked != linked_.end()) {
        remove_any(dst);
        if (link(linked->second.c_str(), dst.c_str()) != 0) fail_sys("link {} to {}", dst, linked->second);
        return;
      }
      regular(dfd, name, r, st, xs, lower);
      apply_attrs(dst, st, own, false);
      if (st.st_nlink > 1) linked_.emplace(st.st_ino, dst);
      return;
    }
    remove_any(dst);
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = readlinkat(dfd, name.c_str(), target.data(), target.size());
      if (n < 0) fail_sys("read the symlink {}", src);
      target.resize(static_cast<size_t>(n));
      if (symlink(target.c_str(), dst.c_str()) != 0) fail_sys("create the symlink {}", dst);
    } else if (mknod(dst.c_str(), st.st_mode, st.st_rdev) != 0) {
      fail_sys("create {}", dst);
    }
    apply_attrs(dst, st, own, false);
  }

  // The output's file for the upper's regular file `name` (attributes applied by the caller).
  void regular(int dfd, const std::string& name, const std::string& r, const struct stat& st, const Xattrs& xs,
               const std::optional<std::string>& lower) {
    std::string src = changes_ + r, dst = out_ + r;
    if (!parent_.empty() && xattr(xs, kMetacopyXattr)) {
      // A metadata-only copy-up: the data is still the parent's file at the lower path.
      auto redirect = xattr(xs, kRedirectXattr);
      std::string from = redirect ? resolve_redirect(*redirect, lower) : child(lower.value_or(""), name);
      std::string lower_file = parent_ + from;
      struct stat lst {};
      if (lstat(lower_file.c_str(), &lst) != 0 || !S_ISREG(lst.st_mode))
        fail(Errc::kFailure, "composefs: the metadata-only copy-up {} has no lower file at {}", src, lower_file);
      auto object = xattr(read_xattrs(lower_file), kRedirectXattr);
      remove_any(dst);
      if (!object) {  // an empty plain file below
        Fd f(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!f) fail_sys("create {}", dst);
      } else {
        std::string hex = ObjectStore::hex_of_redirect(*object);
        if (hex.empty()) fail(Errc::kInvalidInput, "composefs: {} redirects to '{}', not an object", lower_file, *object);
        make_stub(dst, static_cast<uint64_t>(st.st_size), hex);
      }
      ++stats_.metacopies;
      return;
    }
    remove_any(dst);
    if (st.st_size == 0) {
      Fd f(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!f) fail_sys("create {}", dst);
      return;
    }
    ObjectRef ref = batch_.add(dfd, name, src);
    make_stub(dst, ref.size, ref.hex);
    ++stats_.stubs;
  }

  std::string parent_, changes_, out_;
  ObjectStore::Batch& batch_;
  std::map<ino_t, std::string> linked_;  // upper inode with more names → its output path
  BuildStats stats_;
};

void collect(const std::string& dir, std::map<std::string, uint64_t>& out) {
  DIR* d = opendir(dir.c_str());
  if (!d) fail_sys("open {}", dir);
  std::vector<std::pair<std::string, unsigned char>> entries;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") entries.emplace_back(std::move(n), e->d_type);
  }
  closedir(d);
  for (const auto& [n, type] : entries) {
    std::string p = path_join(dir, n);
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) fail_sys("stat {}", p);
    if (S_ISDIR(st.st_mode)) {
      collect(p, out);
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;
    char buf[128];
    ssize_t len = lgetxattr(p.c_str(), kRedirectXattr, buf, sizeof buf);
    if (len < 0) {
      if (errno == ENODATA || errno == ENOTSUP) continue;
      fail_sys("read {} of {}", kRedirectXattr, p);
    }
    std::string hex = ObjectStore::hex_of_redirect(std::string(buf, static_cast<size_t>(len)));
    if (hex.empty()) fail(Errc::kInvalidInput, "composefs: {} redirects to '{}', not an object", p, std::string(buf, len));
    out.emplace(hex, static_cast<uint64_t>(st.st_size));
  }
}

}  // namespace

BuildStats build_metadata_tree(const std::string& parent, const std::string& changes, const std::string& out,
                               ObjectStore::Batch& batch) {
  return Builder(parent, changes, out, batch).run();
}

std::vector<ObjectRef> tree_objects(const std::string& meta) {
  std::map<std::string, uint64_t> found;
  collect(meta, found);
  std::vector<ObjectRef> out;
  out.reserve(found.size());
  for (const auto& [hex, size] : found) out.push_back({hex, size});
  return out;
}

}  // namespace cowbench::snap::composefs
