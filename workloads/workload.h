// The Workload interface and the catalog of built-in container workloads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/mount.h"

namespace cowbench::snap {
class Snapshotter;
}

namespace cowbench::wl {

// A regular file of the image (the merged view of all its layers).
struct FileEntry {
  std::string path;  // absolute, inside the container ("/usr/bin/tool")
  uint64_t size = 0;
  uint32_t mode = 0;
};
using FileList = std::vector<FileEntry>;  // sorted by path

// What a kSnapshotter workload did to the snapshot chain, for the runner: the ground truth of
// its copy-ups and the layers it leaves for the runner to measure and remove.
struct LayerWork {
  int64_t lower_files_updated = 0;  // files of earlier layers written, summed over layers
  int64_t lower_files_removed = 0;  // files of earlier layers removed, summed over layers
  int64_t file_size = 0;            // the size of every file it writes
  std::vector<std::string> layers;  // the committed layers it made, parents first
};

// What a workload did. The digest covers the operations and every byte read, so that the
// same plan gives the same digest on every backend.
struct Outcome {
  int64_t ops = 0;
  std::vector<int64_t> latencies_ns;  // one per operation
  std::string digest;                 // hex sha256
  int exit_code = 0;                  // exec: the command's exit status
  std::string stderr_tail;            // exec: the last lines of its stderr
  int64_t wall_ns = -1;               // >= 0: the run's time as the workload measured it (exec --ready:
                                      // to the ready line), instead of run()'s whole time
  nlohmann::json extra = nlohmann::json::object();  // workload-specific figures for results.json
  std::optional<LayerWork> layers;                   // kSnapshotter workloads only (not serialised)
};
nlohmann::json to_json(const Outcome& o);
Outcome outcome_from_json(const nlohmann::json& j);

// What the runner does around each layer a kSnapshotter workload writes, outside the
// workload's timings (the tracer opens a window on the layer's writable snapshot). Either may
// be empty.
struct LayerHooks {
  std::function<void(const std::vector<Mount>& mounts)> before_apply;  // after prepare, before mounting
  std::function<void()> after_apply;                                  // after unmounting, before commit
};

// How the runner drives a workload.
enum class Shape {
  kContainer,    // run() once inside one container
  kSnapshotter,  // run_on_snapshotter(): snapshot operations on the host (layer building)
  kScaleOut,     // run() inside N containers started together, for N in plan["containers"]
  kFamily,       // for K in plan["counts"]: K images of plan["images"] imported, one container each,
                 // started together, each running run(startup_read_plan(its image's files))
};

// A workload: a deterministic plan (computed once from the image and a seed, identical for
// every backend) and the code that carries it out. run() executes inside the container after
// pivot_root, as its pid 1, so the image needs no cowbench binary.
class Workload {
 public:
  virtual ~Workload() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  virtual Shape shape() const { return Shape::kContainer; }
  // Chooses targets (files, offsets, names) from `files` with `seed`. Throws kInvalidInput
  // when the image cannot serve the workload (e.g. no file large enough), saying why.
  virtual nlohmann::json plan(const FileList& files, uint64_t seed) const = 0;
  // The lower files the plan modifies (paths): the expected copy-ups of a file-granular backend.
  virtual std::vector<std::string> modified_lower_files(const nlohmann::json& plan) const;
  // Facts of the plan for results.json's config.plans (exec: the full command, --ready).
  virtual nlohmann::json plan_facts(const nlohmann::json& plan) const;
  // True when run() ends itself at the run's timeout, to fail with what it saw: the container's
  // timeout is then only a backstop, a little later.
  virtual bool ends_at_timeout() const { return false; }
  // Carries out the plan inside the container (Shape kContainer / kScaleOut).
  virtual Outcome run(const nlohmann::json& plan) const;
  // Carries out the plan with snapshot operations on `parent` (Shape kSnapshotter); `scratch`
  // is a host directory for mount points. Outcome.layers says what it did: the files of earlier
  // layers it wrote (one copy-up each on a file-granular backend) and removed, and the layers
  // it committed, which the runner measures and removes.
  virtual Outcome run_on_snapshotter(snap::Snapshotter& sn, const std::string& parent, const nlohmann::json& plan,
                                     const std::string& scratch, const LayerHooks& hooks) const;
};

// The startup workload's read set of an image: executables, libraries and configuration
// (paths with /bin/ or /lib, or under /etc/), up to 1000 files and 128 MiB, chosen with `seed`.
nlohmann::json startup_read_plan(const FileList& files, uint64_t seed);

// The image reference of member `member` (1..64) of the image family `seed`
// ("synth:family-3@1"); member 0 gives the pattern ("synth:family-M@1").
std::string family_member_ref(int member, uint64_t seed);

// Makes a workload by name ("startup", ..., "exec:CMD"); throws kInvalidInput naming the
// known ones for an unknown name.
std::unique_ptr<Workload> make_workload(const std::string& name);
// Built-in names (exec:CMD not included) and their one-line descriptions.
std::vector<std::pair<std::string, std::string>> workload_catalog();
// The workloads `cowbench run` uses when none are given.
std::vector<std::string> default_workloads();

}  // namespace cowbench::wl
