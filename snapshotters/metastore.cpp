// Crash-safe snapshot metadata (see metastore.h).
#include "snapshotters/metastore.h"

#include <dirent.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"

namespace cowbench::snap {
namespace {

using nlohmann::json;

Kind kind_from(const std::string& s, const std::string& file) {
  if (s == "active") return Kind::kActive;
  if (s == "view") return Kind::kView;
  if (s == "committed") return Kind::kCommitted;
  fail(Errc::kInvalidInput, "snapshot metadata {}: unknown kind '{}'", file, s);
}

json to_json(const Record& r) {
  return json{{"id", r.id},
              {"name", r.info.name},
              {"parent", r.info.parent},
              {"kind", kind_name(r.info.kind)},
              {"labels", r.info.labels},
              {"created_ns", r.info.created_ns},
              {"updated_ns", r.info.updated_ns}};
}

Record from_json(const json& j, const std::string& file) {
  Record r;
  r.id = j.at("id").get<uint64_t>();
  r.info.name = j.at("name").get<std::string>();
  r.info.parent = j.at("parent").get<std::string>();
  r.info.kind = kind_from(j.at("kind").get<std::string>(), file);
  r.info.labels = j.at("labels").get<Labels>();
  r.info.created_ns = j.at("created_ns").get<int64_t>();
  r.info.updated_ns = j.at("updated_ns").get<int64_t>();
  return r;
}

}  // namespace

MetaStore::MetaStore(std::string dir, bool sync) : dir_(std::move(dir)), sync_(sync) {
  make_dirs(dir_, 0700);
  DIR* d = opendir(dir_.c_str());
  if (!d) fail_sys("open metadata directory {}", dir_);
  std::vector<std::string> files;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.ends_with(".json")) files.push_back(n);
    // Leftover temp files of an interrupted write: the rename never happened.
    else if (n.find(".json.tmp.") != std::string::npos) unlink(path_join(dir_, n).c_str());
  }
  closedir(d);
  for (const auto& n : files) {
    std::string file = path_join(dir_, n);
    Record r;
    try {
      r = from_json(json::parse(read_file(file)), file);
    } catch (const json::exception& e) {
      fail(Errc::kInvalidInput, "snapshot metadata {} is corrupt: {}", file, e.what());
    }
    max_id_ = std::max(max_id_, r.id);
    by_name_[r.info.name] = std::move(r);
  }
}

std::string MetaStore::file_for(uint64_t id) const { return path_join(dir_, std::to_string(id) + ".json"); }

const Record* MetaStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

const Record& MetaStore::get(const std::string& name, std::string_view what) const {
  const Record* r = find(name);
  if (!r) fail(Errc::kNotFound, "{} '{}' does not exist", what, name);
  return *r;
}

uint64_t MetaStore::next_id(uint64_t taken_max) {
  max_id_ = std::max(max_id_, taken_max) + 1;
  return max_id_;
}

void MetaStore::put(const Record& r, const std::string& old_name) {
  write_file_atomic(file_for(r.id), to_json(r).dump(), 0600, sync_);
  if (!old_name.empty() && old_name != r.info.name) by_name_.erase(old_name);
  by_name_[r.info.name] = r;
  max_id_ = std::max(max_id_, r.id);
}

void MetaStore::erase(const Record& r) {
  std::string file = file_for(r.id);
  if (unlink(file.c_str()) != 0 && errno != ENOENT) fail_sys("remove snapshot metadata {}", file);
  by_name_.erase(r.info.name);
}

bool MetaStore::has_children(const std::string& name) const {
  for (const auto& [n, r] : by_name_)
    if (r.info.parent == name) return true;
  return false;
}

std::vector<Record> MetaStore::chain(const std::string& parent) const {
  std::vector<Record> out;
  for (std::string p = parent; !p.empty();) {
    const Record& r = get(p, "parent");
    out.push_back(r);
    p = r.info.parent;
    if (out.size() > by_name_.size()) fail(Errc::kFailure, "snapshot metadata in {} has a parent cycle at '{}'", dir_, p);
  }
  return out;
}

std::vector<Record> MetaStore::all() const {
  std::vector<Record> out;
  out.reserve(by_name_.size());
  for (const auto& [n, r] : by_name_) out.push_back(r);
  return out;
}

std::vector<uint64_t> MetaStore::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [n, r] : by_name_) out.push_back(r.id);
  return out;
}

}  // namespace cowbench::snap
