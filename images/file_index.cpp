// The content of an image's merged view (see file_index.h).
#include "images/file_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

#include "common/error.h"
#include "common/fd.h"
#include "images/changeset.h"

namespace cowbench::img {
namespace {

int64_t to_ns(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

std::string describe(const FileInfo& f) {
  std::string s = fmt::format("{} {:o} {}:{}", f.type, f.mode, f.uid, f.gid);
  if (f.type == 'f') s += fmt::format(" {} bytes {}", f.size, f.sha256.substr(0, 19));
  if (!f.target.empty()) s += " -> " + f.target;
  return s;
}

void index_into(int dirfd, const std::string& rel, dev_t dev, FileIndex& out) {
  for (const auto& n : dir_names(dirfd, "/" + rel)) {
    std::string path = join_path(rel, n);
    struct stat st {};
    if (fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) fail_sys("stat /{}", path);
    FileInfo f;
    f.mode = st.st_mode & 07777;
    f.uid = st.st_uid;
    f.gid = st.st_gid;
    f.mtime_ns = to_ns(st.st_mtim);
    if (S_ISREG(st.st_mode)) {
      f.type = 'f';
      f.size = static_cast<uint64_t>(st.st_size);
      Fd fd(openat(dirfd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) fail_sys("open /{}", path);
      Sha256 h;
      std::vector<char> buf(1 << 20);
      for (;;) {
        ssize_t r = ::read(fd.get(), buf.data(), buf.size());
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail_sys("read /{}", path);
        if (r == 0) break;
        h.update(buf.data(), static_cast<size_t>(r));
      }
      f.sha256 = h.digest();
    } else if (S_ISDIR(st.st_mode)) {
      f.type = 'd';
    } else if (S_ISLNK(st.st_mode)) {
      f.type = 'l';
      f.mode = 0;
      std::string target(4096, '\0');
      ssize_t r = readlinkat(dirfd, n.c_str(), target.data(), target.size());
      if (r < 0) fail_sys("readlink /{}", path);
      target.resize(static_cast<size_t>(r));
      f.target = std::move(target);
    } else {
      f.type = S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : 's';
      if (f.type == 'c' || f.type == 'b') f.target = fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev));
    }
    out.entries[path] = f;
    if (f.type == 'd' && st.st_dev == dev) {
      Fd sub(openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) fail_sys("open /{}", path);
      index_into(sub.get(), path, dev, out);
    }
  }
}

}  // namespace

size_t FileIndex::count(char type) const {
  size_t n = 0;
  for (const auto& [p, f] : entries) n += f.type == type;
  return n;
}

uint64_t FileIndex::file_bytes() const {
  uint64_t n = 0;
  for (const auto& [p, f] : entries)
    if (f.type == 'f') n += f.size;
  return n;
}

nlohmann::json to_json(const FileIndex& index) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [p, f] : index.entries) {
    nlohmann::json j = {{"type", std::string(1, f.type)}, {"mode", f.mode}, {"uid", f.uid}, {"gid", f.gid},
                        {"mtime_ns", f.mtime_ns}};
    if (f.type == 'f') {
      j["size"] = f.size;
      j["sha256"] = f.sha256;
    }
    if (!f.target.empty()) j["target"] = f.target;
    files[p] = std::move(j);
  }
  return {{"files", std::move(files)}};
}

FileIndex file_index_from_json(const nlohmann::json& j) {
  FileIndex out;
  try {
    for (const auto& [p, v] : j.at("files").items()) {
      FileInfo f;
      std::string type = v.at("type").get<std::string>();
      if (type.size() != 1) fail(Errc::kInvalidInput, "file index: bad type '{}' of {}", type, p);
      f.type = type[0];
      f.mode = v.at("mode").get<uint32_t>();
      f.uid = v.at("uid").get<uint32_t>();
      f.gid = v.at("gid").get<uint32_t>();
      f.mtime_ns = v.value("mtime_ns", int64_t{0});
      f.size = v.value("size", uint64_t{0});
      f.sha256 = v.value("sha256", "");
      f.target = v.value("target", "");
      out.entries[p] = std::move(f);
    }
  } catch (const nlohmann::json::exception& e) {
    fail(Errc::kInvalidInput, "file index: {}", e.what());
  }
  return out;
}

FileIndex index_directory(const std::string& root) {
  Fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) fail_sys("open {}", root);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) fail_sys("stat {}", root);
  FileIndex out;
  out.entries[""] = FileInfo{'d', st.st_mode & 07777, st.st_uid, st.st_gid, 0, "", "", to_ns(st.st_mtim)};
  index_into(fd.get(), "", st.st_dev, out);
  return out;
}

std::string diff_index(const FileIndex& expected, const FileIndex& actual, bool mtimes) {
  std::string out;
  for (const auto& [p, e] : expected.entries) {
    auto it = actual.entries.find(p);
    if (it == actual.entries.end()) {
      out += fmt::format("missing /{} ({})\n", p, describe(e));
      continue;
    }
    FileInfo a = it->second, b = e;
    if (a.type == 'd' || !mtimes) a.mtime_ns = b.mtime_ns = 0;
    if (!(a == b)) {
      out += fmt::format("differs /{}: expected {}, got {}", p, describe(e), describe(it->second));
      if (a.mtime_ns != b.mtime_ns) out += fmt::format(" (mtime {} vs {})", e.mtime_ns, it->second.mtime_ns);
      out += "\n";
    }
  }
  for (const auto& [p, a] : actual.entries)
    if (!expected.entries.count(p)) out += fmt::format("extra /{} ({})\n", p, describe(a));
  return out;
}

IndexBuilder::IndexBuilder() { index_.entries[""] = FileInfo{'d', 0755, 0, 0, 0, "", "", 0}; }

void IndexBuilder::begin_layer() { written_.clear(); }

void IndexBuilder::add_layer(LayerReader& layer) {
  begin_layer();
  TarEntry e;
  while (layer.next(e)) apply(layer, e);
  layer.finish();
}

void IndexBuilder::erase_tree(const std::string& path) {
  auto& m = index_.entries;
  m.erase(path);
  std::string prefix = path + "/";
  for (auto it = m.lower_bound(prefix); it != m.end() && it->first.compare(0, prefix.size(), prefix) == 0;)
    it = m.erase(it);
}

// The real path of directory `dir` (symlinks in it followed beneath the root, as openat2's
// RESOLVE_BENEATH does), made with 0755 parents where missing. An absolute symlink or a ".."
// above the root is refused, as the applier refuses it.
std::string IndexBuilder::resolve_dir(LayerReader& r, const std::string& dir, const std::string& entry, bool* missing) {
  if (missing) *missing = false;
  std::deque<std::string> todo;
  for (size_t start = 0; start < dir.size();) {
    size_t slash = dir.find('/', start);
    if (slash == std::string::npos) slash = dir.size();
    todo.push_back(dir.substr(start, slash - start));
    start = slash + 1;
  }
  std::string cur;
  int hops = 0;
  while (!todo.empty()) {
    std::string comp = std::move(todo.front());
    todo.pop_front();
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      if (cur.empty()) r.fail_entry(entry, Errc::kInvalidInput, fmt::format("'{}' leads outside the root", dir));
      cur = split_path(cur).first;
      continue;
    }
    std::string next = join_path(cur, comp);
    auto it = index_.entries.find(next);
    if (it == index_.entries.end()) {
      if (missing) {
        *missing = true;
        return "";
      }
      index_.entries[next] = FileInfo{'d', 0755, 0, 0, 0, "", "", 0};
      written_.add(next);
      cur = next;
      continue;
    }
    if (it->second.type == 'l') {
      const std::string& t = it->second.target;
      if (++hops > 40) r.fail_entry(entry, Errc::kInvalidInput, fmt::format("'{}' runs into a symlink loop", dir));
      if (t.starts_with("/"))
        r.fail_entry(entry, Errc::kInvalidInput, fmt::format("'{}' leads outside the root (through a symlink)", dir));
      std::deque<std::string> parts;
      for (size_t start = 0; start <= t.size();) {
        size_t slash = t.find('/', start);
        if (slash == std::string::npos) slash = t.size();
        parts.push_back(t.substr(start, slash - start));
        start = slash + 1;
      }
      todo.insert(todo.begin(), parts.begin(), parts.end());
      continue;
    }
    if (it->second.type != 'd')
      r.fail_entry(entry, Errc::kInvalidInput, fmt::format("a component of '{}' is not a directory", dir));
    cur = next;
  }
  return cur;
}

void IndexBuilder::apply(LayerReader& r, const TarEntry& e) {
  auto& m = index_.entries;
  auto [parent, name] = split_path(e.path);
  if (name == kOpaqueMarker) {
    std::string d = resolve_dir(r, parent, e.path);
    std::string prefix = d.empty() ? "" : d + "/";
    for (auto it = m.lower_bound(prefix); it != m.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      if (!it->first.empty() && !written_.contains_or_above(it->first))
        it = m.erase(it);
      else
        ++it;
    }
    return;
  }
  if (std::string_view(name).starts_with(kWhiteoutPrefix)) {
    std::string hidden = name.substr(kWhiteoutPrefix.size());
    if (hidden.empty() || hidden == "." || hidden == "..")
      r.fail_entry(e.path, Errc::kInvalidInput, "whiteout of an invalid name");
    bool missing = false;
    std::string target = join_path(resolve_dir(r, parent, e.path, &missing), hidden);
    if (!missing && !written_.contains_or_above(target)) erase_tree(target);
    return;
  }
  FileInfo f{entry_type_char(e.type), e.mode, e.uid, e.gid, 0, "", "", to_ns(e.mtime)};
  if (e.path.empty()) {
    m[""] = f;
    return;
  }
  std::string p = join_path(resolve_dir(r, parent, e.path), name);
  switch (e.type) {
    case EntryType::kDir: {
      auto it = m.find(p);
      if (it == m.end() || it->second.type != 'd') erase_tree(p);
      m[p] = f;
      break;
    }
    case EntryType::kFile: {
      // A sparse file's holes are zeros the reader does not hand out: hash them in place.
      static const std::string kZeros(65536, '\0');
      Sha256 h;
      uint64_t pos = 0;
      auto zeros_to = [&](uint64_t to) {
        for (; pos < to; pos += std::min<uint64_t>(to - pos, kZeros.size()))
          h.update(kZeros.data(), std::min<uint64_t>(to - pos, kZeros.size()));
      };
      r.read_data([&](uint64_t off, const char* data, size_t n) {
        if (off < pos || off + n > e.size) r.fail_entry(e.path, Errc::kInvalidInput, "corrupt sparse map");
        zeros_to(off);
        h.update(data, n);
        pos += n;
      });
      zeros_to(e.size);
      f.size = e.size;
      f.sha256 = h.digest();
      erase_tree(p);
      m[p] = f;
      break;
    }
    case EntryType::kSymlink:
      f.mode = 0;
      f.target = e.link;
      erase_tree(p);
      m[p] = f;
      break;
    case EntryType::kHardlink: {
      auto [tparent, tname] = split_path(e.link);
      bool missing = false;
      std::string tp = join_path(resolve_dir(r, tparent, e.path, &missing), tname);
      auto it = missing ? m.end() : m.find(tp);
      if (it == m.end())
        r.fail_entry(e.path, Errc::kInvalidInput, fmt::format("hard link target '{}' does not exist", e.link));
      if (it->second.type == 'd')
        r.fail_entry(e.path, Errc::kInvalidInput, fmt::format("hard link to the directory '{}'", e.link));
      if (tp == p) break;
      FileInfo copy = it->second;
      erase_tree(p);
      m[p] = copy;
      break;
    }
    case EntryType::kChar:
    case EntryType::kBlock:
    case EntryType::kFifo:
      f.type = e.type == EntryType::kFifo ? 'p' : f.type;
      if (e.type != EntryType::kFifo) f.target = fmt::format("{}:{}", e.dev_major, e.dev_minor);
      erase_tree(p);
      m[p] = f;
      break;
  }
  written_.add(p);
}

}  // namespace cowbench::img
