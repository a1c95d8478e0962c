// Test helpers: root checks, scratch dirs, tree listings that dump on failure, layer appliers.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/mount.h"
#include "runner/host_lock.h"
#include "runner/run.h"
#include "snapshotters/snapshotter.h"

namespace cowbench::test {

// Why a root-only test cannot run here, or nullopt.
std::optional<std::string> root_skip_reason();

// Scratch space for tests on the machine's real disk (not tmpfs): /var/tmp/cowbench-test.
std::string scratch_root();

// One entry of a tree: enough to tell two trees apart.
struct Entry {
  char type = '?';  // f d l c b p s
  mode_t mode = 0;  // permission bits incl. setuid/sticky
  uid_t uid = 0;
  gid_t gid = 0;
  std::string data;  // file content, symlink target, "maj:min" for devices
  bool operator==(const Entry&) const = default;
};
using Tree = std::map<std::string, Entry>;  // relative path ("" = root) → entry

Tree list_tree(const std::string& root);
std::string dump_tree(const Tree& t);
// "" when equal, else the differences, one per line.
std::string diff_trees(const Tree& expected, const Tree& actual);

// A change applied to a directory (one layer's content).
using Applier = std::function<void(const std::string& root)>;
Applier create_file(std::string path, std::string content, mode_t mode = 0644);
Applier create_dir(std::string path, mode_t mode = 0755);
Applier remove_all(std::string path);
// rename(2), falling back to copy + delete on EXDEV as mv(1) does (overlay without redirect_dir).
Applier rename_path(std::string from, std::string to);
Applier chown_path(std::string path, uid_t uid, gid_t gid);
Applier chmod_path(std::string path, mode_t mode);
Applier symlink_to(std::string target, std::string path);
Applier apply_all(std::vector<Applier> appliers);

// A small distro-like image for container workloads: with_shell adds a real /bin/sh (the
// host's dash and its libc, for exec: workloads); then 40 binaries, 40 libraries, 60
// config files and four 2–5 MiB "database" files.
Applier distro_image(bool with_shell);

// What a test left under `dir`: mounts and loop devices backed by files there, one per line;
// "" when nothing.
std::string left_behind(const std::string& dir);

// Runs the cowbench binary with `args` (a shell command line); stdout and stderr together.
struct CliResult {
  int code = -1;  // exit status, -1 when it died
  std::string out;
};
CliResult run_cli(const std::string& binary, const std::string& args);

// The host-wide measuring lock (runner/host_lock.h), held while the returned object lives and
// shared with the programs the test starts (a `cowbench run` it starts borrows it instead of
// waiting for its own test). Every test that runs the matrix takes it in SetUp, so that it does
// not distort another measurement on this host nor is distorted by one; while another process
// holds it, this waits, saying so on stderr.
std::unique_ptr<HostLock> hold_host_lock();

// run_matrix as `cowbench run` wires it (the image importer of cfg.image and the tracer
// factory), without progress output: for tests that run real images end to end.
rep::Results run_matrix_quietly(const RunConfig& cfg);

// RunHooks::import_image for tests: the committed snapshot `name` holding distro_image(with_shell),
// made once per backend through a mount on a fresh directory under `scratch`, then reused.
PreparedImage import_distro_image(snap::Snapshotter& sn, const std::string& name, const std::string& scratch, bool with_shell);

// Sets (or, for a null value, unsets) an environment variable for the object's lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Mounts `mounts` on a fresh directory, runs fn(target), unmounts.
void with_mounted(const std::vector<Mount>& mounts, const std::string& scratch, const std::function<void(const std::string&)>& fn);

}  // namespace cowbench::test
