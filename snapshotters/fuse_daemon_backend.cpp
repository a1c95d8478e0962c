// What the FUSE daemon backends share (see fuse_daemon_backend.h).
#include "snapshotters/fuse_daemon_backend.h"

#include <regex>

#include "common/error.h"
#include "common/fuse_mount.h"
#include "snapshotters/probe_util.h"

namespace cowbench::snap {
namespace {

const char* form_values(DaemonOptionForm f) {
  switch (f) {
    case DaemonOptionForm::kBit: return "0|1";
    case DaemonOptionForm::kFlag: return "on|off";
    case DaemonOptionForm::kSeconds: return "SECONDS";
    case DaemonOptionForm::kCount: return "N";
  }
  return "";
}

bool valid(DaemonOptionForm f, const std::string& v) {
  switch (f) {
    case DaemonOptionForm::kBit: return v == "0" || v == "1";
    case DaemonOptionForm::kFlag: return v == "on" || v == "off";
    case DaemonOptionForm::kSeconds: return std::regex_match(v, std::regex(R"(\d+(\.\d+)?)"));
    case DaemonOptionForm::kCount: return std::regex_match(v, std::regex(R"([1-9]\d{0,8})"));
  }
  return false;
}

}  // namespace

std::vector<OptionDoc> daemon_option_docs(std::span<const DaemonOption> table) {
  std::vector<OptionDoc> out;
  for (const auto& o : table) out.push_back({o.name, form_values(o.form), o.help});
  return out;
}

std::vector<std::string> daemon_options(const std::string& backend, std::span<const DaemonOption> table,
                                        const BackendOptions& options) {
  std::vector<std::string> out;
  for (const auto& [k, v] : options) {
    for (const auto& o : table) {
      if (k != o.name) continue;
      if (!valid(o.form, v)) fail(Errc::kInvalidInput, "{} option {} takes {}, not '{}'", backend, k, form_values(o.form), v);
      if (o.form != DaemonOptionForm::kFlag)
        out.push_back(k + "=" + v);
      else if (v == "on")
        out.push_back(k);
    }
  }
  return out;
}

std::function<std::unique_ptr<Snapshotter>(const std::string&, const BackendOptions&)> fuse_daemon_create(
    const std::string& backend, std::span<const DaemonOption> table, std::function<std::string()> binary,
    DaemonSnapshotterMaker make) {
  return [backend, table, binary = std::move(binary), make = std::move(make)](const std::string& root,
                                                                              const BackendOptions& options) {
    check_options(builtin_registry().get(backend), options);
    auto daemon = daemon_options(backend, table, options);
    binary();
    return make(root, std::move(daemon));
  };
}

Availability probe_fuse_daemon(const std::string& workdir, const std::string& backend,
                               const std::function<std::string()>& binary, const MergedMountFn& describe) {
  if (auto why = needs_root_reason()) return {false, *why};
  std::string program;
  try {
    program = binary();
    open_fuse_device();
  } catch (const Error& e) {
    return {false, e.what()};
  }
  Availability a = trial_copy_up(workdir, backend, backend, describe);
  if (a.available) a.reason += " (" + program + ")";
  return a;
}

}  // namespace cowbench::snap
