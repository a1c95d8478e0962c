// The rows of a run: plain backends and variants (one backend under a name of its own, with an option set).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "snapshotters/registry.h"

namespace cowbench {

// `--variant NAME=BACKEND:K=V[,K=V...]`: the registered backend BACKEND with these options, run
// as a row of its own named NAME. A variant has its own directory under the work directory
// (WORKDIR/NAME: its own snapshots and imported image, since options can change the layout on
// disk), is interleaved and rotated like a backend, and is NAME in results and reports.
struct Variant {
  std::string name;
  std::string backend;
  snap::BackendOptions options;
  bool operator==(const Variant&) const = default;
};

// Parses "NAME=BACKEND:K=V[,K=V...]" (a bare K means K=on, as in --backend-opt; no options at
// all is allowed: "plain=overlayfs:"). Throws kInvalidInput naming the text when NAME, BACKEND or
// the ':' is missing. Looks at no registry: plan_rows checks the names.
Variant parse_variant(const std::string& text);

// One row of the matrix, as the scheduler opens it.
struct RowSpec {
  std::string name;                         // runs[].backend: the backend's name, or the variant's
  const snap::BackendSpec* spec = nullptr;  // the backend the row runs on (capabilities, probe, create)
  snap::BackendOptions options;             // --backend-opt of a plain backend; a variant's options
  bool variant = false;
  // Asked for by name (in an explicit --backends, or as a --variant): unavailable here, it fails
  // the run (kUnsupported) instead of being skipped with a warning.
  bool required = false;
};

// "variant ovl-meta (overlayfs metacopy=on)", "overlayfs (metacopy=on)", "overlayfs": a row in messages.
std::string describe_row(const RowSpec& row);

// The rows of a run, in order: those `backends` names (backends or variants; empty: every
// registered backend, then every variant), then the variants it does not name, in the order
// given. Throws kInvalidInput naming the culprit for: a variant name that is not a safe
// directory name ([A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters), is a registered backend's
// name or one the work directory uses for itself (containers, images, import-mnt, tmp); two
// variants with one name; a variant of an unknown backend, or with an option its backend does
// not have (check_options); a name in `backends` that is neither a backend nor a variant, or is
// there twice; backend options (--backend-opt) for a name that is not a plain backend of the run.
// Opens, probes and creates nothing.
std::vector<RowSpec> plan_rows(const std::vector<std::string>& backends,
                               const std::map<std::string, snap::BackendOptions>& backend_options,
                               const std::vector<Variant>& variants, const snap::Registry& registry);

// results.json's config.variants: {NAME: {"backend": BACKEND, "options": {K: V}}}; {} for none.
nlohmann::json variants_json(const std::vector<Variant>& variants);

// A variant's directory, WORKDIR/NAME, says what made it in WORKDIR/NAME/variant.json
// ({"backend": B, "options": {K: V}}), so that a later run with another definition under the same
// name does not reuse snapshots laid out for other options, and `cowbench gc` knows the backend.
inline constexpr const char* kVariantFile = "variant.json";
// Why the variant `row` cannot use its directory under `workdir`: it holds snapshots of another
// definition (naming both); "" when it is free or holds this one's. Plain rows: always "".
std::string variant_dir_conflict(const std::string& workdir, const RowSpec& row);
// Writes WORKDIR/NAME/variant.json for a variant row (after its directory exists).
void record_variant_dir(const std::string& workdir, const RowSpec& row);
// The variants' directories under `workdir`, read back: name → (backend, options); a directory
// whose variant.json cannot be read is left out.
std::vector<Variant> recorded_variants(const std::string& workdir);

}  // namespace cowbench
