// libFuzzer target: one input is one layer blob (tar, tar+gzip, tar+zstd), read and applied into a fresh directory.
// Any escape from that directory aborts, so the fuzzer reports it like a crash.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "common/error.h"
#include "common/fs.h"
#include "images/apply.h"
#include "images/file_index.h"
#include "images/layer_reader.h"

namespace {

using namespace cowbench;

// BASE/root is where layers go; BASE/sentinel/file must never change and BASE must never
// hold anything else.
struct Sandbox {
  std::string base, root, sentinel;
  Sandbox() {
    char tmpl[] = "/tmp/cowbench-fuzz.XXXXXX";
    if (!mkdtemp(tmpl)) std::abort();
    base = tmpl;
    root = base + "/root";
    sentinel = base + "/sentinel";
    make_dirs(sentinel);
    write_file_atomic(sentinel + "/file", "precious\n", 0644, false);
  }
  ~Sandbox() {
    try {
      remove_tree(base);
    } catch (...) {
    }
  }

  void check() const {
    std::set<std::string> names;
    for (const std::string& dir : {base, sentinel}) {
      DIR* d = opendir(dir.c_str());
      if (!d) std::abort();
      while (dirent* de = readdir(d)) names.insert(dir + "/" + de->d_name);
      closedir(d);
    }
    std::set<std::string> want = {base + "/.", base + "/..", root, sentinel, sentinel + "/.", sentinel + "/..", sentinel + "/file"};
    if (names != want || read_file(sentinel + "/file") != "precious\n") {
      for (const auto& n : names) std::fprintf(stderr, "found %s\n", n.c_str());
      std::fprintf(stderr, "a layer wrote outside its root\n");
      std::abort();
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Sandbox box;
  std::string_view blob(reinterpret_cast<const char*>(data), size);
  img::Limits limits;
  limits.max_entry_size = 1 << 20;
  limits.max_layer_bytes = 16 << 20;
  limits.max_entries = 4096;
  img::LayerExpect expect{"fuzz", "", static_cast<int64_t>(size), "", img::Compression::kAuto};
  img::ApplyOptions options;
  options.devices = img::DevicePolicy::kSkip;
  options.preserve_owners = geteuid() == 0;

  remove_tree(box.root);
  make_dirs(box.root);
  bool applied = false;
  img::LayerStats stats;
  try {
    img::LayerReader reader(img::memory_source(blob), expect, limits);
    stats = img::apply_layer(reader, box.root, options);
    applied = true;
  } catch (const Error&) {
  }
  box.check();
  // Differential check: the in-memory indexer must agree with what the applier made (as
  // root, where owners are kept, and when no device node was skipped).
  try {
    img::IndexBuilder b;
    img::LayerReader reader(img::memory_source(blob), expect, limits);
    b.add_layer(reader);
    if (applied && options.preserve_owners && stats.skipped == 0) {
      img::FileIndex want = b.take();
      std::string diff = img::diff_index(want, img::index_directory(box.root));
      if (!diff.empty()) {
        std::fprintf(stderr, "the indexer and the applier disagree:\n%s", diff.c_str());
        std::abort();
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
