// Packs a directory tree into a layer tar (see dir_layer.h).
#include "images/dir_layer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <utility>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"

namespace cowbench::img {
namespace {

class DirPacker {
 public:
  DirPacker(std::string root, LayerWriter& out, const DirLayerOptions& o) : root_(std::move(root)), out_(out), opt_(o) {}

  DirLayerStats run() {
    struct stat st {};
    if (::lstat(root_.c_str(), &st) != 0) {
      if (errno == ENOENT) fail(Errc::kInvalidInput, "directory {} does not exist", root_);
      fail_sys("stat {}", root_);
    }
    if (!S_ISDIR(st.st_mode)) fail(Errc::kInvalidInput, "{} is not a directory", root_);
    entry("", st);
    return std::move(st_);
  }

 private:
  std::string full(const std::string& rel) const { return rel.empty() ? root_ : path_join(root_, rel); }

  std::vector<std::string> children(const std::string& rel) {
    std::string path = full(rel);
    DIR* d = ::opendir(path.c_str());
    if (!d) fail_sys("open directory {}", path);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* de = ::readdir(d)) {
      std::string_view n = de->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) {
      errno = err;
      fail_sys("read directory {}", path);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::vector<std::pair<std::string, std::string>> xattrs(const std::string& path) {
    std::vector<std::pair<std::string, std::string>> out;
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n <= 0) return out;  // none, or a file system without xattrs
    std::string names(static_cast<size_t>(n), '\0');
    n = ::llistxattr(path.c_str(), names.data(), names.size());
    if (n < 0) return out;
    names.resize(static_cast<size_t>(n));
    for (size_t pos = 0; pos < names.size();) {
      std::string name = names.c_str() + pos;
      pos += name.size() + 1;
      if (name.empty() || name.starts_with("trusted.overlay.")) continue;  // overlay's own bookkeeping
      ssize_t vn = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
      if (vn < 0) continue;
      std::string value(static_cast<size_t>(vn), '\0');
      vn = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (vn < 0) continue;
      value.resize(static_cast<size_t>(vn));
      out.emplace_back(std::move(name), std::move(value));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  void entry(const std::string& rel, const struct stat& st) {
    std::string path = full(rel);
    TarEntry e;
    e.path = rel;
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime = st.st_mtim;
    if (S_ISSOCK(st.st_mode)) {
      ++st_.skipped_sockets;
      return;
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      if (opt_.devices == DevicePolicy::kRefuse)
        fail(Errc::kInvalidInput, "{}: {} device {}:{} refused (device policy: refuse; use skip or allow)", path,
             S_ISCHR(st.st_mode) ? "character" : "block", major(st.st_rdev), minor(st.st_rdev));
      if (opt_.devices == DevicePolicy::kSkip) {
        if (++st_.skipped_devices <= kMaxNamedDevices) st_.skipped_device_paths.push_back("/" + rel);
        return;
      }
    }
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, first] = links_.try_emplace({st.st_dev, st.st_ino}, rel);
      if (!first) {
        e.type = EntryType::kHardlink;
        e.link = it->second;
        out_add(e);
        ++st_.hardlinks;
        return;
      }
    }
    e.xattrs = xattrs(path);
    if (S_ISREG(st.st_mode)) {
      e.type = EntryType::kFile;
      e.size = static_cast<uint64_t>(st.st_size);
      Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) fail_sys("open {}", path);
      out_add(e);
      std::vector<char> buf(1 << 20);
      uint64_t left = e.size;
      while (left > 0) {
        ssize_t n = ::read(fd.get(), buf.data(), std::min<uint64_t>(left, buf.size()));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_sys("read {}", path);
        if (n == 0) fail(Errc::kFailure, "{} shrank while it was packed", path);
        out_.data(buf.data(), static_cast<size_t>(n));
        left -= static_cast<uint64_t>(n);
      }
      ++st_.files;
      st_.file_bytes += e.size;
    } else if (S_ISDIR(st.st_mode)) {
      e.type = EntryType::kDir;
      out_add(e);
      ++st_.dirs;
      for (const auto& name : children(rel)) {
        std::string child = rel.empty() ? name : rel + "/" + name;
        struct stat cs {};
        if (::lstat(full(child).c_str(), &cs) != 0) fail_sys("stat {}", full(child));
        entry(child, cs);
      }
    } else if (S_ISLNK(st.st_mode)) {
      e.type = EntryType::kSymlink;
      std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
      ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
      if (n < 0) fail_sys("readlink {}", path);
      target.resize(static_cast<size_t>(n));
      e.link = target;
      out_add(e);
      ++st_.symlinks;
    } else {
      e.type = S_ISCHR(st.st_mode) ? EntryType::kChar : S_ISBLK(st.st_mode) ? EntryType::kBlock : EntryType::kFifo;
      e.dev_major = major(st.st_rdev);
      e.dev_minor = minor(st.st_rdev);
      out_add(e);
      ++st_.specials;
    }
  }

  void out_add(const TarEntry& e) {
    out_.add(e);
    ++st_.entries;
  }

  std::string root_;
  LayerWriter& out_;
  DirLayerOptions opt_;
  DirLayerStats st_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

}  // namespace

DirLayerStats write_dir_layer(const std::string& dir, LayerWriter& out, const DirLayerOptions& options) {
  return DirPacker(dir, out, options).run();
}

}  // namespace cowbench::img
