// `cowbench gc`: unmount, detach and remove whatever a killed run left in a work directory.
#pragma once

#include <string>
#include <vector>

namespace cowbench {

struct GcReport {
  std::vector<std::string> unmounted;
  std::vector<std::string> detached;  // loop devices
  std::vector<std::string> removed;   // directories and files
  std::vector<std::string> errors;    // what could not be undone, and why
};

// Cleans `workdir`: unmounts every mount at or below it (deepest first), detaches loop
// devices backed by files below it, removes the stale snapshots of killed runs from every
// backend's and variant's store (a variant's directory names its backend: rows.h), scratch
// directories (probe dirs, tmp/, containers/, import-mnt/) and empty cowbench container
// cgroups. With `everything` it also removes the work directory itself, caches included. A
// missing workdir is not an error.
GcReport collect_garbage(const std::string& workdir, bool everything);

}  // namespace cowbench
