// The composefs backend's content-addressed object store (see object_store.h).
#include "snapshotters/composefs/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <set>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sha256.h"

namespace cowbench::snap::composefs {
namespace {

constexpr const char* kStaging = ".staging";

bool is_hex(std::string_view s) { return s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

// Makes a stored object read-only and attribute-free: 0444, root:root, no xattrs, the store's mtime.
void normalise(int fd, const std::string& what) {
  if (fchown(fd, 0, 0) != 0) fail_sys("chown {}", what);
  if (fchmod(fd, 0444) != 0) fail_sys("chmod {}", what);
  std::vector<char> names(4096);
  ssize_t n = flistxattr(fd, names.data(), names.size());
  if (n < 0 && errno == ERANGE) {
    n = flistxattr(fd, nullptr, 0);
    if (n > 0) {
      names.resize(static_cast<size_t>(n));
      n = flistxattr(fd, names.data(), names.size());
    }
  }
  for (ssize_t i = 0; i < n;) {
    const char* name = names.data() + i;
    if (fremovexattr(fd, name) != 0 && errno != ENODATA) fail_sys("remove xattr {} of {}", name, what);
    i += static_cast<ssize_t>(strlen(name)) + 1;
  }
  timespec t[2] = {{ObjectStore::kObjectMtime, 0}, {ObjectStore::kObjectMtime, 0}};
  if (futimens(fd, t) != 0) fail_sys("set the times of {}", what);
}

}  // namespace

std::string hash_fd(int fd, uint64_t& size, const std::string& what) {
  Sha256 h;
  std::vector<char> buf(1 << 20);
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf.data(), buf.size(), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_sys("read {}", what);
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    off += n;
  }
  size = h.size();
  return h.hex();
}

std::string format_manifest(const std::vector<ObjectRef>& refs) {
  std::string out;
  for (const auto& r : refs) out += fmt::format("{} {}\n", r.hex, r.size);
  return out;
}

std::vector<ObjectRef> parse_manifest(const std::string& text, const std::string& what) {
  std::vector<ObjectRef> out;
  size_t start = 0, line = 1;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string l = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    size_t sp = l.find(' ');
    ObjectRef r;
    if (sp == 64) r.hex = l.substr(0, 64);
    char* end = nullptr;
    std::string size = sp == std::string::npos ? "" : l.substr(sp + 1);
    r.size = std::strtoull(size.c_str(), &end, 10);
    if (r.hex.empty() || !is_hex(r.hex) || size.empty() || *end != 0)
      fail(Errc::kInvalidInput, "{} line {} is not 'SHA256 SIZE': '{}'", what, line, l);
    out.push_back(std::move(r));
    if (nl == std::string::npos) break;
    start = nl + 1;
    ++line;
  }
  return out;
}

ObjectStore::ObjectStore(std::string dir, bool sync) : dir_(std::move(dir)), sync_(sync) {
  make_dirs(dir_, 0700);
  // Staged files belong to commits that never finished: no name points at them.
  remove_tree(path_join(dir_, kStaging));
  make_dirs(path_join(dir_, kStaging), 0700);
}

std::string ObjectStore::path_of(const std::string& hex) const {
  return fmt::format("{}/{}/{}", dir_, hex.substr(0, 2), hex.substr(2));
}

std::string ObjectStore::redirect_of(const std::string& hex) { return fmt::format("/{}/{}", hex.substr(0, 2), hex.substr(2)); }

std::string ObjectStore::hex_of_redirect(const std::string& redirect) {
  if (redirect.size() != 66 || redirect[0] != '/' || redirect[3] != '/') return {};
  std::string hex = redirect.substr(1, 2) + redirect.substr(4);
  return is_hex(hex) ? hex : std::string();
}

std::string ObjectStore::staging_path(uint64_t seq) const {
  return fmt::format("{}/{}/{}-{}", dir_, kStaging, getpid(), seq);
}

ObjectRef ObjectStore::Batch::add(int dirfd, const std::string& name, const std::string& what) {
  Fd f(openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!f) fail_sys("open {}", what);
  ObjectRef r;
  r.hex = hash_fd(f.get(), r.size, what);
  std::lock_guard lock(store_->mu_);
  if (sizes_.count(r.hex)) return r;
  std::string obj = store_->path_of(r.hex);
  struct stat st {};
  if (::stat(obj.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != r.size)
      fail(Errc::kInvalidInput,
           "composefs object store {} is damaged: object {} (sha256:{}) is {} bytes, not {} (remove the backend's "
           "directory and import again)",
           store_->dir_, obj, r.hex, st.st_size, r.size);
    if (st.st_mtim.tv_sec != kObjectMtime || st.st_mtim.tv_nsec != 0) store_->verify({r}, VerifyMode::kDigest, what);
  } else {
    // A second name for the file's inode: the data is not copied, and the file stays where it
    // is until the commit succeeds.
    std::string staged = store_->staging_path(++store_->batch_seq_);
    if (linkat(dirfd, name.c_str(), AT_FDCWD, staged.c_str(), 0) != 0) fail_sys("link {} into {}", what, staged);
    staged_.emplace(r.hex, staged);
    new_bytes_ += r.size;
  }
  sizes_.emplace(r.hex, r.size);
  ++store_->refs_[r.hex];  // held by the batch until the snapshot's manifest holds it
  return r;
}

void ObjectStore::Batch::publish() {
  if (staged_.empty()) return;
  for (const auto& [hex, path] : staged_) {
    Fd f(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!f) fail_sys("open {}", path);
    normalise(f.get(), path);
  }
  if (store_->sync_) {
    Fd d = open_dir(store_->dir_);
    if (syncfs(d.get()) != 0) fail_sys("sync {}", store_->dir_);
  }
  std::lock_guard lock(store_->mu_);
  for (auto it = staged_.begin(); it != staged_.end();) {
    std::string obj = store_->path_of(it->first);
    std::string sub = obj.substr(0, obj.rfind('/'));
    if (mkdir(sub.c_str(), 0755) != 0 && errno != EEXIST) fail_sys("create {}", sub);
    if (rename(it->second.c_str(), obj.c_str()) != 0) fail_sys("store {}", obj);
    it = staged_.erase(it);
  }
}

ObjectStore::Batch::~Batch() {
  if (!store_) return;
  for (const auto& [hex, path] : staged_)
    if (unlink(path.c_str()) != 0) log::warn("cannot remove the staged object {}: {}", path, strerror(errno));
  std::vector<ObjectRef> held;
  for (const auto& [hex, size] : sizes_) held.push_back({hex, size});
  try {
    store_->release(held);
  } catch (const std::exception& e) {
    log::warn("composefs object store {}: {}", store_->dir_, e.what());
  }
}

void ObjectStore::verify(const std::vector<ObjectRef>& refs, VerifyMode mode, const std::string& what) const {
  auto bad = [&](const ObjectRef& r, const std::string& why) {
    fail(Errc::kInvalidInput,
         "composefs object store {} is damaged: object {} (sha256:{}, needed by {}) {} (remove the backend's "
         "directory and import again)",
         dir_, path_of(r.hex), r.hex, what, why);
  };
  for (const auto& r : refs) {
    std::string obj = path_of(r.hex);
    struct stat st {};
    if (::stat(obj.c_str(), &st) != 0) {
      if (errno == ENOENT) bad(r, "is missing");
      fail_sys("stat {}", obj);
    }
    if (!S_ISREG(st.st_mode)) bad(r, "is not a regular file");
    if (static_cast<uint64_t>(st.st_size) != r.size) bad(r, fmt::format("is {} bytes, not {}", st.st_size, r.size));
    bool stamped = st.st_mtim.tv_sec == kObjectMtime && st.st_mtim.tv_nsec == 0;
    if (mode == VerifyMode::kStat && stamped) continue;
    Fd f(open(obj.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!f) fail_sys("open {}", obj);
    uint64_t size = 0;
    if (hash_fd(f.get(), size, obj) != r.hex)
      bad(r, stamped ? "does not match its digest" : "was written to: its content does not match its digest");
  }
}

void ObjectStore::hold(const std::vector<ObjectRef>& refs) {
  std::lock_guard lock(mu_);
  for (const auto& r : refs) ++refs_[r.hex];
}

void ObjectStore::release(const std::vector<ObjectRef>& refs) {
  std::lock_guard lock(mu_);
  for (const auto& r : refs) {
    auto it = refs_.find(r.hex);
    if (it == refs_.end() || --it->second > 0) continue;
    refs_.erase(it);
    std::string obj = path_of(r.hex);
    if (unlink(obj.c_str()) != 0 && errno != ENOENT) fail_sys("remove the unused object {}", obj);
  }
}

uint64_t ObjectStore::sweep() {
  std::lock_guard lock(mu_);
  uint64_t removed = 0;
  Fd root = open_dir(dir_);
  DIR* d = fdopendir(dup(root.get()));
  if (!d) fail_sys("open {}", dir_);
  std::vector<std::string> subs;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() == 2 && is_hex(n)) subs.push_back(n);
  }
  closedir(d);
  for (const auto& sub : subs) {
    std::string dir = path_join(dir_, sub);
    DIR* s = opendir(dir.c_str());
    if (!s) fail_sys("open {}", dir);
    std::vector<std::string> unused;
    while (dirent* e = readdir(s)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (!refs_.count(sub + n)) unused.push_back(n);
    }
    closedir(s);
    for (const auto& n : unused) {
      std::string obj = path_join(dir, n);
      if (unlink(obj.c_str()) != 0) fail_sys("remove the unused object {}", obj);
      ++removed;
    }
  }
  return removed;
}

ObjectStore::Totals ObjectStore::totals() const {
  std::lock_guard lock(mu_);
  Totals t;
  for (const auto& [hex, n] : refs_) {
    struct stat st {};
    if (::stat(path_of(hex).c_str(), &st) != 0) continue;
    ++t.objects;
    t.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return t;
}

}  // namespace cowbench::snap::composefs
