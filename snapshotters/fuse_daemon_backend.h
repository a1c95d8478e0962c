// What the FUSE daemon backends (fuse-overlayfs, unionfs-fuse) share: backend options handed to the daemon as -o flags, and their probe.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "snapshotters/overlay_layout.h"
#include "snapshotters/registry.h"

namespace cowbench::snap {

// How a backend option's value is checked and handed to the daemon.
enum class DaemonOptionForm {
  kBit,      // 0|1 → name=V
  kFlag,     // on|off → name when on
  kSeconds,  // a non-negative decimal number → name=V
  kCount,    // a positive whole number → name=V
};

// One backend option of a daemon, named as the daemon names it; each was checked to be known
// to the daemon's version on Debian 12 and to have the effect its help says.
struct DaemonOption {
  const char* name;
  DaemonOptionForm form;
  const char* help;
};

// The BackendSpec rows (name, values, help) of `table`.
std::vector<OptionDoc> daemon_option_docs(std::span<const DaemonOption> table);

// The daemon's -o options for `options` (their names already checked by check_options), in
// the order given. Throws kInvalidInput naming the backend, option, values and the bad value.
std::vector<std::string> daemon_options(const std::string& backend, std::span<const DaemonOption> table,
                                        const BackendOptions& options);

// Makes a FUSE daemon backend's snapshotter under `root`, its options already turned into the daemon's.
using DaemonSnapshotterMaker =
    std::function<std::unique_ptr<Snapshotter>(const std::string& root, std::vector<std::string> daemon_options)>;

// The create function of a FUSE daemon backend: checks the options against the backend's
// spec (by `backend`, in the built-in registry) and `table`, checks that the program is there
// (`binary()`: a missing program is named before anything is created), then calls `make`.
std::function<std::unique_ptr<Snapshotter>(const std::string&, const BackendOptions&)> fuse_daemon_create(
    const std::string& backend, std::span<const DaemonOption> table, std::function<std::string()> binary,
    DaemonSnapshotterMaker make);

// The probe of a FUSE daemon backend: root, its program (`binary()` throws kUnsupported with the
// reason when it is missing), /dev/fuse, then a real trial mount with a copy-up under `workdir`
// (trial_copy_up with `describe`). An available reason names the program's path. Leaves nothing behind.
Availability probe_fuse_daemon(const std::string& workdir, const std::string& backend,
                               const std::function<std::string()>& binary, const MergedMountFn& describe);

}  // namespace cowbench::snap
