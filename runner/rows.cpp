// The rows of a run: --variant parsing, the checks of names and options, the rows in order (see rows.h).
#include "runner/rows.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"

namespace cowbench {
namespace {

// What the work directory holds besides the rows' directories (scheduler, image importer, gc;
// gc also removes scratch.* directories).
constexpr const char* kReservedNames[] = {"containers", "images", "import-mnt", "tmp"};
constexpr size_t kMaxVariantName = 64;

std::string options_text(const snap::BackendOptions& options) {
  std::string out;
  for (const auto& [k, v] : options) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

// Why `name` cannot name a variant's directory, or "".
std::string unsafe_name_reason(const std::string& name) {
  if (name.empty()) return "it is empty";
  if (name.size() > kMaxVariantName) return fmt::format("it is longer than {} characters", kMaxVariantName);
  auto ok = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!ok(name.front())) return "it must start with a letter or a digit";
  for (char c : name)
    if (!ok(c) && c != '.' && c != '_' && c != '-')
      return fmt::format("'{}' is not allowed (letters, digits, '.', '_' and '-' only: it names a directory)",
                         std::string(1, c));
  return "";
}

// check_options, its error prefixed with `what`.
void check_row_options(const snap::BackendSpec& spec, const snap::BackendOptions& options, const std::string& what) {
  try {
    snap::check_options(spec, options);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: {}", what, e.what()));
  }
}

}  // namespace

Variant parse_variant(const std::string& text) {
  auto usage = [&](const char* why) {
    fail(Errc::kInvalidInput, "--variant takes NAME=BACKEND:KEY=VALUE[,KEY=VALUE...], not '{}': {}", text, why);
  };
  auto eq = text.find('=');
  if (eq == std::string::npos) usage("no '=' after the name");
  if (eq == 0) usage("no name before '='");
  auto colon = text.find(':', eq + 1);
  if (colon == std::string::npos) usage("no ':' after the backend");
  if (colon == eq + 1) usage("no backend between '=' and ':'");
  Variant v;
  v.name = text.substr(0, eq);
  v.backend = text.substr(eq + 1, colon - eq - 1);
  try {
    v.options = snap::parse_options(text.substr(colon + 1));
  } catch (const Error& e) {
    usage(e.what());
  }
  return v;
}

std::string describe_row(const RowSpec& row) {
  std::string opts = options_text(row.options);
  if (row.variant) return fmt::format("variant {} ({}{}{})", row.name, row.spec->name, opts.empty() ? "" : " ", opts);
  return opts.empty() ? row.name : fmt::format("{} ({})", row.name, opts);
}

std::vector<RowSpec> plan_rows(const std::vector<std::string>& backends,
                               const std::map<std::string, snap::BackendOptions>& backend_options,
                               const std::vector<Variant>& variants, const snap::Registry& registry) {
  std::vector<std::string> known = registry.names();
  auto is_backend = [&](const std::string& n) { return registry.find(n) != nullptr; };
  // The variants first: each a safe, unique, new name on a known backend with its options.
  std::map<std::string, const Variant*> by_name;
  for (const auto& v : variants) {
    if (std::string why = unsafe_name_reason(v.name); !why.empty())
      fail(Errc::kInvalidInput, "--variant {}: '{}' cannot name a variant: {}", v.name, v.name, why);
    if (is_backend(v.name))
      fail(Errc::kInvalidInput, "--variant {}: '{}' is a backend's name; give the variant a name of its own", v.name, v.name);
    if (v.name == "all")
      fail(Errc::kInvalidInput, "--variant all: 'all' means every backend in --backends; pick another name");
    if (std::find(std::begin(kReservedNames), std::end(kReservedNames), v.name) != std::end(kReservedNames) ||
        v.name.starts_with("scratch."))
      fail(Errc::kInvalidInput, "--variant {}: '{}' is a directory the work directory uses for itself; pick another name",
           v.name, v.name);
    if (!by_name.emplace(v.name, &v).second)
      fail(Errc::kInvalidInput, "--variant {}: two variants are named '{}'", v.name, v.name);
    const snap::BackendSpec* spec = registry.find(v.backend);
    if (!spec)
      fail(Errc::kInvalidInput, "--variant {}: unknown backend '{}' (known: {})", v.name, v.backend, fmt::join(known, ", "));
    check_row_options(*spec, v.options, "--variant " + v.name);
  }

  std::vector<RowSpec> rows;
  std::set<std::string> listed;
  auto add_backend = [&](const std::string& name, bool required) {
    RowSpec r;
    r.name = name;
    r.spec = &registry.get(name);
    if (auto it = backend_options.find(name); it != backend_options.end()) r.options = it->second;
    r.required = required;
    rows.push_back(std::move(r));
  };
  auto add_variant = [&](const Variant& v) {
    RowSpec r;
    r.name = v.name;
    r.spec = registry.find(v.backend);
    r.options = v.options;
    r.variant = true;
    r.required = true;  // defined by name on the command line
    rows.push_back(std::move(r));
  };
  // `all`: every backend, the ones a default run leaves out too.
  bool all = backends.size() == 1 && backends.front() == "all";
  if (!all && std::find(backends.begin(), backends.end(), "all") != backends.end())
    fail(Errc::kInvalidInput, "--backends all stands alone: it already names every backend");
  if (!all)
    for (const auto& name : backends) {
      if (!listed.insert(name).second) fail(Errc::kInvalidInput, "--backends names '{}' twice", name);
      if (is_backend(name)) {
        add_backend(name, true);
      } else if (auto it = by_name.find(name); it != by_name.end()) {
        add_variant(*it->second);
      } else {
        std::string vs;
        for (const auto& v : variants) vs += (vs.empty() ? "" : ", ") + v.name;
        fail(Errc::kInvalidInput, "unknown backend '{}' (known: {}{})", name, fmt::join(known, ", "),
             vs.empty() ? "; no --variant defines it" : "; variants: " + vs);
      }
    }
  if (backends.empty() || all)
    for (const auto& name : known)
      if (all || registry.get(name).in_default) add_backend(name, false);
  // Variants defined but not listed run too (after the listed rows).
  for (const auto& v : variants)
    if (!listed.count(v.name)) add_variant(v);

  for (const auto& [name, opts] : backend_options) {
    if (by_name.count(name))
      fail(Errc::kInvalidInput, "--backend-opt {}: {} is a variant; its options go in its --variant", name, name);
    auto row = std::find_if(rows.begin(), rows.end(), [&name = name](const RowSpec& r) { return r.name == name; });
    if (row == rows.end()) {
      if (!is_backend(name))
        fail(Errc::kInvalidInput, "--backend-opt {}: unknown backend '{}' (known: {})", name, name, fmt::join(known, ", "));
      fail(Errc::kInvalidInput, "options given for backend '{}', which is not in this run", name);
    }
    check_row_options(*row->spec, opts, "--backend-opt " + name);
  }
  return rows;
}

namespace {

nlohmann::json definition(const std::string& backend, const snap::BackendOptions& options) {
  return {{"backend", backend}, {"options", options}};
}

std::string variant_file(const std::string& workdir, const std::string& name) {
  return path_join(path_join(workdir, name), kVariantFile);
}

}  // namespace

std::string variant_dir_conflict(const std::string& workdir, const RowSpec& row) {
  if (!row.variant) return "";
  std::string file = variant_file(workdir, row.name);
  if (access(file.c_str(), F_OK) != 0) return "";  // a new directory (or one a run left before recording it)
  nlohmann::json had = nlohmann::json::parse(read_file(file), nullptr, false);
  nlohmann::json now = definition(row.spec->name, row.options);
  if (had == now) return "";
  return fmt::format("{} holds the snapshots of variant {} defined as {}, not {}; remove {} (its imported image goes "
                     "with it) or give this definition another name",
                     path_join(workdir, row.name), row.name, had.is_discarded() ? "unreadable" : had.dump(), now.dump(),
                     path_join(workdir, row.name));
}

void record_variant_dir(const std::string& workdir, const RowSpec& row) {
  if (!row.variant) return;
  write_file_atomic(variant_file(workdir, row.name), definition(row.spec->name, row.options).dump(2) + "\n");
}

std::vector<Variant> recorded_variants(const std::string& workdir) {
  std::vector<Variant> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(workdir, ec)) {
    if (!e.is_directory(ec)) continue;
    std::string file = path_join(e.path().string(), kVariantFile);
    if (access(file.c_str(), F_OK) != 0) continue;
    try {
      nlohmann::json j = nlohmann::json::parse(read_file(file));
      out.push_back({e.path().filename().string(), j.at("backend").get<std::string>(),
                     j.at("options").get<snap::BackendOptions>()});
    } catch (const std::exception&) {
      continue;  // not readable: not one we can open
    }
  }
  return out;
}

nlohmann::json variants_json(const std::vector<Variant>& variants) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& v : variants) out[v.name] = definition(v.backend, v.options);
  return out;
}

}  // namespace cowbench
