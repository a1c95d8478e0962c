// Lists an imported image's regular files (see image_files.h).
#include "runner/image_files.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/snapshot_keys.h"

namespace cowbench {
namespace {

void list_files(const std::string& root, const std::string& rel, wl::FileList& out) {
  std::string dir = rel.empty() ? root : root + rel;
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  for (const auto& n : names) {
    std::string p = rel + "/" + n;
    struct stat st {};
    if (lstat((root + p).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (p == "/proc" || p == "/sys" || p == "/dev") continue;
      list_files(root, p, out);
    } else if (S_ISREG(st.st_mode)) {
      out.push_back({p, static_cast<uint64_t>(st.st_size), st.st_mode});
    }
  }
}

}  // namespace

wl::FileList list_image_files(snap::Snapshotter& sn, const std::string& top, const std::string& scratch) {
  std::string key = snap::mint_key(snap::KeyKind::kListing);
  wl::FileList files;
  auto mounts = sn.view(key, top);
  try {
    TempDir target(scratch, "list");
    ScopedMount m(mounts, target.path());
    list_files(target.path(), "", files);
    m.close();
  } catch (...) {
    sn.remove(key);
    throw;
  }
  sn.remove(key);
  std::sort(files.begin(), files.end(), [](const wl::FileEntry& a, const wl::FileEntry& b) { return a.path < b.path; });
  return files;
}

}  // namespace cowbench
