// Writes the fuzz seed corpus: valid layers of every kind and compression, the hostile samples, small synthetic layers.
#include <cstdio>
#include <filesystem>
#include <string>

#include "common/fs.h"
#include "images/image.h"
#include "images/synth.h"
#include "tests/image_samples.h"

using namespace cowbench;
using namespace cowbench::test;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::string out = argv[1];
  make_dirs(out);
  int n = 0;
  auto put = [&](const std::string& name, const std::string& blob) {
    write_file_atomic(path_join(out, fmt::format("{:03}-{}", n++, name)), blob, 0644, false);
  };
  LayerSpec valid = LayerSpec()
                        .dir("etc").file("etc/passwd", "root:x:0:0::/root:/bin/sh\n").file("etc/shadow", "x", 0640, 0, 42)
                        .dir("usr/bin").file("usr/bin/tool", std::string(3000, 't'), 04755).hardlink("usr/bin/t2", "usr/bin/tool")
                        .symlink("bin", "usr/bin").symlink("usr/bin/rel", "../bin/tool").add(tar_entry("run/fifo", 'p', 0600))
                        .whiteout("etc/old").dir("var/cache").opaque("var/cache").file("var/cache/x", "x");
  for (auto c : {img::Compression::kNone, img::Compression::kGzip, img::Compression::kZstd})
    put(std::string("valid-") + img::compression_name(c), layer_blob(valid, c));
  for (const auto& s : hostile_samples("/tmp/cowbench-fuzz-outside")) put("hostile-" + s.name, s.blob);

  TempDir tmp("/tmp", "fuzz-corpus");
  img::SynthOptions o;
  o.profile = "tiny";
  o.shell = img::ShellMode::kNone;
  img::SynthResult r = img::synth_image(o, path_join(tmp.path(), "tiny"));
  for (const auto& f : std::filesystem::directory_iterator(path_join(r.dir, "blobs/sha256")))
    if (f.file_size() <= 65536) put("synth-" + f.path().filename().string().substr(0, 12), read_file(f.path()));
  std::printf("wrote %d seeds to %s\n", n, out.c_str());
  return 0;
}
