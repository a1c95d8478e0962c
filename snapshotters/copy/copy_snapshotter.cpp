// The copy backend (see copy_snapshotter.h).
#include "snapshotters/copy/copy_snapshotter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "common/tree_copy.h"
#include "snapshotters/probe_util.h"
#include "snapshotters/store_snapshotter.h"

namespace cowbench::snap {
namespace {

constexpr const char* kCopyName = "copy";

// snapshots/<id>/fs holds the whole tree of the snapshot; it is bind-mounted.
class CopySnapshotter final : public StoreSnapshotter {
 public:
  CopySnapshotter(const std::string& root, unsigned threads) : StoreSnapshotter(root), threads_(threads) {
    Availability a = probe_copy(root);
    if (!a.available) fail(Errc::kUnsupported, "copy cannot keep snapshots in {}: {}", root, a.reason);
    recover();
  }

  std::string_view backend() const noexcept override { return kCopyName; }

 protected:
  void create_storage(const Record& r, const std::vector<Record>& parents) override {
    std::string fs = fs_dir(r.id);
    if (mkdir(fs.c_str(), 0755) != 0) fail_sys("create {}", fs);
    if (chmod(fs.c_str(), 0755) != 0) fail_sys("chmod {}", fs);
    if (parents.empty()) return;
    TreeCopyOptions opts;
    opts.threads = threads_;
    copy_tree(fs_dir(parents.front().id), fs, opts);
  }

  std::vector<Mount> mounts_of(const Record& r, const std::vector<Record>&) override {
    return {Mount{"bind", fs_dir(r.id), {r.info.kind == Kind::kView ? "ro" : "rw", "rbind"}}};
  }

 private:
  unsigned threads_;
};

}  // namespace

Availability probe_copy(const std::string& workdir) {
  if (auto why = needs_root_reason()) return {false, *why};
  try {
    ProbeDir dir(workdir, "copy");
    auto src = dir.sub("src"), target = dir.sub("target");
    write_test_file(path_join(src, "f"), "x");
    ScopedMount m({Mount{"bind", src, {"rw", "rbind"}}}, target);
    write_test_file(path_join(target, "f"), "y");
    m.close();
    return {true, fmt::format("trial bind mount on {}", fs_type_name(workdir))};
  } catch (const Error& e) {
    return {false, fmt::format("trial bind mount on {} failed: {}", fs_type_name_or(workdir), e.what())};
  }
}

void register_copy(Registry& registry) {
  BackendSpec spec;
  spec.name = kCopyName;
  spec.description = "naive full copy of the parent tree on prepare (Docker vfs / containerd native baseline)";
  spec.caps = Capabilities{Granularity::kTree, false, true, "CAP_SYS_ADMIN for bind mounts, disk space for full copies"};
  spec.caps.disk_sharing = spec.caps.cache_sharing = "none";  // every container a copy of its own
  spec.options = {{"threads", "N", "copy worker threads (default: one per CPU)"}};
  spec.probe = probe_copy;
  spec.create = [](const std::string& root, const BackendOptions& options) -> std::unique_ptr<Snapshotter> {
    check_options(builtin_registry().get(kCopyName), options);
    unsigned threads = 0;
    if (auto it = options.find("threads"); it != options.end()) {
      try {
        size_t used = 0;
        unsigned long v = std::stoul(it->second, &used);
        if (used != it->second.size() || v == 0 || v > 1024) throw std::invalid_argument("range");
        threads = static_cast<unsigned>(v);
      } catch (const std::exception&) {
        fail(Errc::kInvalidInput, "copy option threads takes a number from 1 to 1024, not '{}'", it->second);
      }
    }
    return std::make_unique<CopySnapshotter>(root, threads);
  };
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
