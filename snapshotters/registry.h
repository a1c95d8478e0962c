// The backend registry: names → factories, capabilities and a host probe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "snapshotters/snapshotter.h"

namespace cowbench::snap {

// Backend parameters from the command line ("metacopy=on", "fsync=0", ...).
using BackendOptions = std::map<std::string, std::string>;

struct Availability {
  bool available = false;
  std::string reason;  // why not, when unavailable; what was checked, when available
};

struct OptionDoc {
  std::string name;
  std::string values;  // e.g. "on|off"
  std::string help;
};

struct BackendSpec {
  std::string name;
  std::string description;
  Capabilities caps;
  std::vector<OptionDoc> options;
  // Tries a real operation under `workdir` (a trial mount, a clone, opening /dev/fuse) and
  // says whether the backend can work there. Leaves nothing behind.
  std::function<Availability(const std::string& workdir)> probe;
  // Where the kernel decides whether option values work (overlay mount options): a trial like
  // `probe`'s with `options`, run on a host where `probe` succeeded; unavailable then means
  // the options are refused, and the reason names the option and says why. Null for backends
  // whose create() checks every option value itself. Leaves nothing behind.
  std::function<Availability(const std::string& workdir, const BackendOptions& options)> try_options;
  // Opens (or creates) the backend's snapshots under `root`. Throws kInvalidInput for an
  // unknown option, kUnsupported when `root` cannot hold this backend.
  std::function<std::unique_ptr<Snapshotter>(const std::string& root, const BackendOptions& options)> create;
  // Whether `cowbench run` without --backends runs it (when available); false keeps a backend
  // to --backends, the conformance suite and the tests that go over every backend.
  bool in_default_run = true;
};

class Registry {
 public:
  // Adds a backend; a second one with the same name is a programming error (throws).
  void add(BackendSpec spec);
  // Throws kInvalidInput "unknown backend 'x' (known: ...)".
  const BackendSpec& get(const std::string& name) const;
  const BackendSpec* find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, BackendSpec> specs_;
};

// Registers every backend built into cowbench. Explicit (not static self-registration) so
// that the linker keeps them in static libraries.
void register_builtin_backends(Registry& registry);

// A registry with the built-in backends, made once.
const Registry& builtin_registry();

// Checks `options` against the backend's documented options; throws kInvalidInput naming
// the unknown option and the valid ones.
void check_options(const BackendSpec& spec, const BackendOptions& options);

// Parses "k=v,k2=v2" (a bare "k" means "k=on").
BackendOptions parse_options(const std::string& text);

}  // namespace cowbench::snap
