// The built-in workloads: startup, append-log, db-random-write, metadata, pkg-install,
// containerd-bench and scale-out; exec:CMD is workloads/exec.cpp's.
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "common/clock.h"
#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "common/prng.h"
#include "common/sha256.h"
#include "snapshotters/snapshot_keys.h"
#include "snapshotters/snapshotter.h"
#include "workloads/exec.h"
#include "workloads/io_engine.h"
#include "workloads/workload.h"

namespace cowbench::wl {
namespace {

using nlohmann::json;

// Times one operation into the outcome.
template <typename F>
void timed(Outcome& o, F&& f) {
  int64_t t = monotonic_ns();
  f();
  o.latencies_ns.push_back(monotonic_ns() - t);
  ++o.ops;
}

// Deterministic choice of up to n items (order kept stable by path).
FileList pick(const FileList& from, size_t n, Prng& rng) {
  FileList v = from;
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  if (v.size() > n) v.resize(n);
  std::sort(v.begin(), v.end(), [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  return v;
}

FileList filter(const FileList& files, uint64_t min_size) {
  FileList out;
  for (const auto& f : files)
    if (f.size >= min_size) out.push_back(f);
  return out;
}

json paths_of(const FileList& files) {
  json a = json::array();
  for (const auto& f : files) a.push_back({{"path", f.path}, {"size", f.size}});
  return a;
}

std::vector<std::string> plan_paths(const json& plan, const char* key) {
  std::vector<std::string> out;
  for (const auto& f : plan.at(key)) out.push_back(f.is_string() ? f.get<std::string>() : f.at("path").get<std::string>());
  return out;
}

// Reads every file of the plan's `files` list through the I/O engine into the digest.
Outcome read_all(const json& plan) {
  Outcome o;
  IoEngine io;
  Sha256 d;
  uint64_t bytes = 0;
  for (const auto& path : plan_paths(plan, "files")) {
    timed(o, [&] {
      d.update(path);
      bytes += io.read_file(path, [&](const char* p, size_t n) { d.update({p, n}); });
    });
  }
  o.digest = d.hex();
  o.extra["bytes_read"] = bytes;
  o.extra["io_engine"] = io.engine();
  return o;
}

// The read set a process start touches: executables, libraries, configuration.
json startup_plan(const FileList& files, uint64_t seed, size_t max_files, uint64_t max_bytes) {
  FileList boot;
  for (const auto& f : files) {
    const std::string& p = f.path;
    if (p.find("/bin/") != std::string::npos || p.find("/lib") != std::string::npos || p.starts_with("/etc/"))
      boot.push_back(f);
  }
  if (boot.empty()) boot = files;
  if (boot.empty()) fail(Errc::kInvalidInput, "the image has no regular files to read");
  Prng rng(seed);
  FileList chosen = pick(boot, max_files, rng);
  FileList capped;
  uint64_t total = 0;
  for (const auto& f : chosen) {
    if (total + f.size > max_bytes && !capped.empty()) continue;
    total += f.size;
    capped.push_back(f);
  }
  return {{"files", paths_of(capped)}, {"bytes", total}};
}

class Startup final : public Workload {
 public:
  std::string name() const override { return "startup"; }
  std::string description() const override {
    return "HelloBench-like start: read the binaries, libraries and config files a process start touches";
  }
  json plan(const FileList& files, uint64_t seed) const override { return startup_read_plan(files, seed); }
  Outcome run(const json& plan) const override { return read_all(plan); }
};

class AppendLog final : public Workload {
 public:
  std::string name() const override { return "append-log"; }
  std::string description() const override {
    return "append small records (100-200 B) to existing large files from lower layers, then fdatasync";
  }
  json plan(const FileList& files, uint64_t seed) const override {
    FileList big = filter(files, 256 << 10);
    if (big.empty()) big = filter(files, 4096);
    if (big.empty()) fail(Errc::kInvalidInput, "append-log: the image has no file of 4 KiB or more");
    Prng rng(seed);
    return {{"files", paths_of(pick(big, 16, rng))}, {"records", 400}, {"seed", seed}};
  }
  std::vector<std::string> modified_lower_files(const json& plan) const override { return plan_paths(plan, "files"); }
  Outcome run(const json& plan) const override {
    Outcome o;
    IoEngine io;
    Sha256 d;
    Prng rng(plan.at("seed").get<uint64_t>());
    int records = plan.at("records").get<int>();
    for (const auto& path : plan_paths(plan, "files")) {
      Fd fd(open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
      if (!fd) fail_sys("open {} for append", path);
      for (int i = 0; i < records; ++i) {
        std::string rec = fmt::format("{} record {} {}\n", path, i, rng.text(100 + rng.below(100)));
        d.update(rec);
        timed(o, [&] { io.write_at(fd.get(), -1, rec, path); });
      }
      timed(o, [&] { io.sync(fd.get(), true, path); });
    }
    o.digest = d.hex();
    o.extra["io_engine"] = io.engine();
    return o;
  }
};

class DbRandomWrite final : public Workload {
 public:
  std::string name() const override { return "db-random-write"; }
  std::string description() const override {
    return "4 KiB random writes into large existing files, fsync at the end (a database in a container)";
  }
  json plan(const FileList& files, uint64_t seed) const override {
    FileList big = filter(files, 1 << 20);
    if (big.empty()) fail(Errc::kInvalidInput, "db-random-write: the image has no file of 1 MiB or more");
    Prng rng(seed);
    FileList chosen = pick(big, 8, rng);
    json writes = json::array();
    for (int i = 0; i < 2048; ++i) {
      const auto& f = chosen[rng.below(chosen.size())];
      uint64_t blocks = f.size / 4096;
      writes.push_back({{"path", f.path}, {"offset", rng.below(blocks) * 4096}});
    }
    return {{"files", paths_of(chosen)}, {"writes", writes}, {"seed", seed}};
  }
  std::vector<std::string> modified_lower_files(const json& plan) const override {
    std::set<std::string> used;
    for (const auto& w : plan.at("writes")) used.insert(w.at("path").get<std::string>());
    return {used.begin(), used.end()};
  }
  Outcome run(const json& plan) const override {
    Outcome o;
    IoEngine io;
    Sha256 d;
    Prng rng(plan.at("seed").get<uint64_t>());
    std::map<std::string, Fd> open_files;
    for (const auto& w : plan.at("writes")) {
      std::string path = w.at("path").get<std::string>();
      int64_t off = w.at("offset").get<int64_t>();
      std::string block = rng.text(4096);
      d.update(fmt::format("{}@{}", path, off));
      d.update(block);
      timed(o, [&] {
        auto it = open_files.find(path);
        if (it == open_files.end()) {
          Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
          if (!fd) fail_sys("open {} for writing", path);
          it = open_files.emplace(path, std::move(fd)).first;
        }
        io.write_at(it->second.get(), off, block, path);
      });
    }
    for (auto& [path, fd] : open_files) timed(o, [&, &path = path, &fd = fd] { io.sync(fd.get(), false, path); });
    o.digest = d.hex();
    o.extra["io_engine"] = io.engine();
    o.extra["bytes_written"] = 4096 * plan.at("writes").size();
    return o;
  }
};

class Metadata final : public Workload {
 public:
  std::string name() const override { return "metadata"; }
  std::string description() const override {
    return "chmod, chown and utimes on many lower files (metadata-only copy-up where the backend has it)";
  }
  json plan(const FileList& files, uint64_t seed) const override {
    if (files.empty()) fail(Errc::kInvalidInput, "metadata: the image has no regular files");
    Prng rng(seed);
    return {{"files", paths_of(pick(files, 500, rng))}};
  }
  std::vector<std::string> modified_lower_files(const json& plan) const override { return plan_paths(plan, "files"); }
  Outcome run(const json& plan) const override {
    Outcome o;
    Sha256 d;
    int i = 0;
    for (const auto& path : plan_paths(plan, "files")) {
      timed(o, [&] {
        if (chmod(path.c_str(), 0640) != 0) fail_sys("chmod {}", path);
      });
      timed(o, [&] {
        if (lchown(path.c_str(), 1000 + i % 10, 1000) != 0) fail_sys("chown {}", path);
      });
      timed(o, [&] {
        timespec t[2] = {{1700000000, 0}, {1700000000 + i, 0}};
        if (utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0) fail_sys("utimes {}", path);
      });
      struct stat st {};
      if (lstat(path.c_str(), &st) != 0) fail_sys("stat {}", path);
      d.update(fmt::format("{} {:o} {} {} {}\n", path, st.st_mode & 07777, st.st_uid, st.st_gid, st.st_mtim.tv_sec));
      ++i;
    }
    o.digest = d.hex();
    return o;
  }
};

class PkgInstall final : public Workload {
 public:
  std::string name() const override { return "pkg-install"; }
  std::string description() const override {
    return "install a package: create 1000 small files in 40 new dirs, delete 75 and rename 50 lower files";
  }
  json plan(const FileList& files, uint64_t seed) const override {
    if (files.size() < 50) fail(Errc::kInvalidInput, "pkg-install: the image needs at least 50 files, it has {}", files.size());
    Prng rng(seed);
    FileList chosen = pick(files, 125, rng);
    json del = json::array(), ren = json::array();
    for (size_t i = 0; i < chosen.size(); ++i) (i % 5 < 3 ? del : ren).push_back(chosen[i].path);
    return {{"root", fmt::format("/opt/pkg-{}", seed % 100000)}, {"dirs", 40}, {"files", 1000},
            {"delete", del}, {"rename", ren}, {"seed", seed}};
  }
  std::vector<std::string> modified_lower_files(const json& plan) const override { return plan_paths(plan, "rename"); }
  Outcome run(const json& plan) const override {
    Outcome o;
    IoEngine io;
    Sha256 d;
    Prng rng(plan.at("seed").get<uint64_t>());
    std::string root = plan.at("root").get<std::string>();
    int dirs = plan.at("dirs").get<int>(), nfiles = plan.at("files").get<int>();
    timed(o, [&] { make_dirs(root); });
    for (int i = 0; i < dirs; ++i) {
      std::string dir = fmt::format("{}/d{}", root, i);
      timed(o, [&] {
        if (mkdir(dir.c_str(), 0755) != 0) fail_sys("mkdir {}", dir);
      });
    }
    for (int i = 0; i < nfiles; ++i) {
      std::string path = fmt::format("{}/d{}/f{}", root, i % dirs, i);
      std::string content = rng.text(1024 + rng.below(7 * 1024));
      d.update(path);
      d.update(content);
      timed(o, [&] {
        Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd) fail_sys("create {}", path);
        io.write_at(fd.get(), 0, content, path);
      });
    }
    for (const auto& path : plan_paths(plan, "delete")) {
      d.update("rm " + path);
      timed(o, [&] {
        if (unlink(path.c_str()) != 0) fail_sys("delete {}", path);
      });
    }
    for (const auto& path : plan_paths(plan, "rename")) {
      d.update("mv " + path);
      timed(o, [&] {
        if (rename(path.c_str(), (path + ".moved").c_str()) != 0) fail_sys("rename {}", path);
      });
    }
    o.digest = d.hex();
    o.extra["io_engine"] = io.engine();
    return o;
  }
};

// containerd's snapshot benchsuite layer pattern: 16 layers × 10 files × 1 MiB.
class ContainerdBench final : public Workload {
 public:
  std::string name() const override { return "containerd-bench"; }
  std::string description() const override {
    return "containerd benchsuite: 16 layers x 10 files x 1 MiB (updates/creates/removes), prepare, apply, commit timed";
  }
  Shape shape() const override { return Shape::kSnapshotter; }
  json plan(const FileList&, uint64_t seed) const override {
    Prng rng(seed);
    std::vector<std::string> existing;
    json layers = json::array();
    int counter = 0;
    for (int i = 0; i < 16; ++i) {
      int updates = 0, creates = 10, removes = 0;
      if (i > 0 && i % 3 == 0) {
        updates = 5, creates = 4, removes = 1;
      } else if (i > 0 && i % 2 == 0) {
        updates = 4, creates = 4, removes = 2;
      }
      json ops = json::array();
      for (int u = 0; u < updates; ++u)
        ops.push_back({{"op", "update"}, {"path", existing[rng.below(existing.size())]}, {"bytes", rng.text(4)}});
      for (int r = 0; r < removes; ++r) {
        size_t k = rng.below(existing.size());
        ops.push_back({{"op", "remove"}, {"path", existing[k]}});
        existing.erase(existing.begin() + static_cast<long>(k));
      }
      for (int c = 0; c < creates; ++c) {
        std::string p = fmt::format("/file-{}", counter++);
        ops.push_back({{"op", "create"}, {"path", p}});
        existing.push_back(p);
      }
      // An update of a file removed earlier in the same layer would fail: updates come first.
      layers.push_back(ops);
    }
    return {{"layers", layers}, {"file_size", 1 << 20}, {"seed", seed}};
  }
  Outcome run_on_snapshotter(snap::Snapshotter& sn, const std::string&, const json& plan, const std::string& scratch,
                             const LayerHooks& hooks) const override {
    Outcome o;
    Sha256 d;
    Prng rng(plan.at("seed").get<uint64_t>());
    size_t file_size = plan.at("file_size").get<size_t>();
    std::string tag = snap::mint_key(snap::KeyKind::kLayer);
    std::string parent;
    std::vector<std::string> committed;
    std::string active;  // prepared, not committed yet
    json prepare_ns = json::array(), apply_ns = json::array(), commit_ns = json::array();
    int64_t lower_updates = 0, lower_removes = 0;
    TempDir target(scratch, "cbench");
    try {
      int i = 0;
      for (const auto& layer : plan.at("layers")) {
        std::string key = fmt::format("{}-active-{}", tag, i), name = fmt::format("{}-layer-{}", tag, i);
        int64_t t0 = monotonic_ns();
        auto mounts = sn.prepare(key, parent);
        active = key;
        int64_t t1 = monotonic_ns();
        if (hooks.before_apply) hooks.before_apply(mounts);
        int64_t t1b = monotonic_ns();
        std::set<std::string> updated;
        {
          ScopedMount m(mounts, target.path());
          for (const auto& op : layer) {
            std::string path = target.path() + op.at("path").get<std::string>();
            std::string kind = op.at("op").get<std::string>();
            d.update(kind + " " + op.at("path").get<std::string>());
            if (kind == "create") {
              std::string content = rng.text(file_size);
              write_file_atomic(path, content, 0644, false);
            } else if (kind == "update") {
              Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
              if (!fd) fail_sys("open {}", path);
              std::string b = op.at("bytes").get<std::string>();
              if (pwrite(fd.get(), b.data(), b.size(), static_cast<off_t>(file_size / 2)) != static_cast<ssize_t>(b.size()))
                fail_sys("update {}", path);
              updated.insert(path);
            } else if (unlink(path.c_str()) != 0) {
              fail_sys("remove {}", path);
            } else {
              ++lower_removes;  // removes only name files of earlier layers
            }
          }
          m.close();
        }
        int64_t t2 = monotonic_ns();
        if (hooks.after_apply) hooks.after_apply();
        int64_t t3 = monotonic_ns();
        sn.commit(name, key);
        active.clear();
        int64_t t4 = monotonic_ns();
        lower_updates += static_cast<int64_t>(updated.size());
        committed.push_back(name);
        parent = name;
        prepare_ns.push_back(t1 - t0);
        apply_ns.push_back(t2 - t1b);
        commit_ns.push_back(t4 - t3);
        o.latencies_ns.push_back((t1 - t0) + (t2 - t1b) + (t4 - t3));  // the hooks' time left out
        ++o.ops;
        ++i;
      }
    } catch (...) {
      try {
        if (!active.empty()) sn.remove(active);
        for (auto it = committed.rbegin(); it != committed.rend(); ++it) sn.remove(*it);
      } catch (const std::exception& e) {
        log::warn("containerd-bench: removing its layers after an error: {}", e.what());
      }
      throw;
    }
    o.extra["prepare_ns"] = prepare_ns;
    o.extra["apply_ns"] = apply_ns;
    o.extra["commit_ns"] = commit_ns;
    o.extra["lower_files_updated"] = lower_updates;
    o.extra["lower_files_removed"] = lower_removes;
    o.extra["file_size"] = file_size;
    o.extra["top"] = parent;
    o.layers = LayerWork{lower_updates, lower_removes, static_cast<int64_t>(file_size), committed};
    o.digest = d.hex();
    return o;
  }
};

class ScaleOut final : public Workload {
 public:
  std::string name() const override { return "scale-out"; }
  std::string description() const override {
    return "N containers (1, 2, 4, 8, 16) of one image started together, each reading the same files: "
           "snapshot rate, page-cache and disk growth with N";
  }
  Shape shape() const override { return Shape::kScaleOut; }
  json plan(const FileList& files, uint64_t seed) const override {
    json p = startup_plan(files, seed, 200, 32 << 20);
    p["containers"] = {1, 2, 4, 8, 16};
    return p;
  }
  Outcome run(const json& plan) const override { return read_all(plan); }
};

class ImageFamily final : public Workload {
 public:
  std::string name() const override { return "image-family"; }
  std::string description() const override {
    return "K images of a family (1, 2, 4, 8: shared base, shared runtimes, vendored duplicates), one container "
           "each reading its startup set: disk and page cache of all K, per added image";
  }
  Shape shape() const override { return Shape::kFamily; }
  // The run's own image plays no part: the family's members are synthetic images of their own.
  json plan(const FileList&, uint64_t seed) const override { return {{"counts", {1, 2, 4, 8}}, {"seed", seed}}; }
  json plan_facts(const json& plan) const override {
    return {{"counts", plan.at("counts")}, {"images", family_member_ref(0, plan.at("seed").get<uint64_t>())}};
  }
  Outcome run(const json& plan) const override { return read_all(plan); }
};

}  // namespace

std::string family_member_ref(int member, uint64_t seed) {
  return member > 0 ? fmt::format("synth:family-{}@{}", member, seed) : fmt::format("synth:family-M@{}", seed);
}

json startup_read_plan(const FileList& files, uint64_t seed) { return startup_plan(files, seed, 1000, 128 << 20); }

std::vector<std::string> Workload::modified_lower_files(const json&) const { return {}; }
json Workload::plan_facts(const json&) const { return json::object(); }
Outcome Workload::run(const json&) const {
  fail(Errc::kFailure, "workload {} does not run inside a container", name());
}
Outcome Workload::run_on_snapshotter(snap::Snapshotter&, const std::string&, const json&, const std::string&,
                                     const LayerHooks&) const {
  fail(Errc::kFailure, "workload {} does not run on a snapshotter", name());
}

json to_json(const Outcome& o) {
  return {{"ops", o.ops}, {"latencies_ns", o.latencies_ns}, {"digest", o.digest},
          {"exit_code", o.exit_code}, {"stderr_tail", o.stderr_tail}, {"extra", o.extra}, {"wall_ns", o.wall_ns}};
}

Outcome outcome_from_json(const json& j) {
  Outcome o;
  o.ops = j.at("ops").get<int64_t>();
  o.latencies_ns = j.at("latencies_ns").get<std::vector<int64_t>>();
  o.digest = j.at("digest").get<std::string>();
  o.exit_code = j.value("exit_code", 0);
  o.stderr_tail = j.value("stderr_tail", "");
  o.extra = j.value("extra", json::object());
  o.wall_ns = j.value("wall_ns", int64_t{-1});
  return o;
}

std::unique_ptr<Workload> make_workload(const std::string& name) {
  if (name.starts_with("exec:")) {
    if (name.size() == 5) fail(Errc::kInvalidInput, "workload 'exec:' needs a command, e.g. exec:'ls /'");
    return make_exec_workload({name.substr(5), "", ""}, std::chrono::milliseconds(0));
  }
  if (name == "startup") return std::make_unique<Startup>();
  if (name == "append-log") return std::make_unique<AppendLog>();
  if (name == "db-random-write") return std::make_unique<DbRandomWrite>();
  if (name == "metadata") return std::make_unique<Metadata>();
  if (name == "pkg-install") return std::make_unique<PkgInstall>();
  if (name == "containerd-bench") return std::make_unique<ContainerdBench>();
  if (name == "scale-out") return std::make_unique<ScaleOut>();
  if (name == "image-family") return std::make_unique<ImageFamily>();
  std::string known;
  for (const auto& [n, d] : workload_catalog()) known += (known.empty() ? "" : ", ") + n;
  fail(Errc::kInvalidInput, "unknown workload '{}' (known: {}, exec:CMD)", name, known);
}

std::vector<std::pair<std::string, std::string>> workload_catalog() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* n :
       {"startup", "append-log", "db-random-write", "metadata", "pkg-install", "containerd-bench", "scale-out", "image-family"}) {
    auto w = make_workload(n);
    out.emplace_back(n, w->description());
  }
  out.emplace_back("exec:CMD", make_exec_workload({"CMD", "", ""}, std::chrono::milliseconds(0))->description());
  return out;
}

std::vector<std::string> default_workloads() {
  return {"startup", "append-log", "db-random-write", "metadata", "pkg-install"};
}

}  // namespace cowbench::wl
