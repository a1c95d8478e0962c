// `cowbench gc` (see gc.h).
#include "runner/gc.h"

#include <dirent.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/loop.h"
#include "common/mount.h"
#include "runner/cgroup.h"
#include "runner/rows.h"
#include "snapshotters/snapshot_keys.h"
#include "snapshotters/registry.h"

namespace cowbench {
namespace {

// Directories of a work dir that hold only per-run scratch state.
bool is_scratch(const std::string& name) {
  return name.starts_with(".probe-") || name == "tmp" || name == "containers" || name == "import-mnt" ||
         name.starts_with("scratch.");
}

}  // namespace

GcReport collect_garbage(const std::string& workdir, bool everything) {
  GcReport report;
  struct stat st {};
  if (stat(workdir.c_str(), &st) != 0) return report;
  char* real = realpath(workdir.c_str(), nullptr);
  std::string dir = real ? real : workdir;
  free(real);

  for (const auto& m : mounts_under(dir)) {
    try {
      unmount(m);
      report.unmounted.push_back(m);
    } catch (const Error& e) {
      report.errors.push_back(e.what());
    }
  }
  for (const auto& l : loops_backed_under(dir)) {
    try {
      detach_loop(l.device);
      report.detached.push_back(l.device + " (" + l.backing_file + ")");
    } catch (const Error& e) {
      report.errors.push_back(e.what());
    }
  }

  // Snapshots of killed runs inside each backend's store (containers, listings, layers).
  if (!everything) {
    const snap::Registry& registry = snap::builtin_registry();
    // The backends' directories, and the variants' (each opened with its backend and options).
    std::vector<Variant> rows;
    for (const auto& name : registry.names()) rows.push_back({name, name, {}});
    for (auto& v : recorded_variants(dir))
      if (registry.find(v.backend)) rows.push_back(std::move(v));
    for (const auto& row : rows) {
      const std::string& name = row.name;
      std::string root = path_join(dir, name);
      if (stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      try {
        auto sn = registry.get(row.backend).create(root, row.options);
        for (const auto& key : snap::remove_stale_snapshots(*sn)) report.removed.push_back(name + " snapshot " + key);
      } catch (const Error& e) {
        if (e.code() != Errc::kUnsupported) report.errors.push_back(fmt::format("{}: {}", name, e.what()));
      }
    }
  }

  std::vector<std::string> victims;
  if (everything) {
    victims.push_back(dir);
  } else {
    // Scratch dirs at the top and in every backend root one level down.
    auto scan = [&](const std::string& d, int depth, auto&& self) -> void {
      DIR* h = opendir(d.c_str());
      if (!h) return;
      std::vector<std::string> subdirs;
      while (dirent* e = readdir(h)) {
        std::string n = e->d_name;
        if (n == "." || n == ".." || e->d_type != DT_DIR) continue;
        if (is_scratch(n))
          victims.push_back(path_join(d, n));
        else
          subdirs.push_back(path_join(d, n));
      }
      closedir(h);
      if (depth > 0)
        for (const auto& s : subdirs) self(s, depth - 1, self);
    };
    scan(dir, 1, scan);
  }
  // Container cgroups of killed runs: rmdir only succeeds on empty ones, so a running
  // cowbench elsewhere keeps its own.
  try {
    for (const auto& c : remove_stale_cgroups(detect_cgroup_layout())) report.removed.push_back(c);
  } catch (const Error& e) {
    report.errors.push_back(e.what());
  }
  for (const auto& v : victims) {
    try {
      remove_tree(v);
      report.removed.push_back(v);
    } catch (const Error& e) {
      report.errors.push_back(e.what());
    }
  }
  return report;
}

}  // namespace cowbench
