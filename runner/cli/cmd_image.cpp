// CLI commands about images: `image synth` (a synthetic OCI layout), `image inspect REF`, `image pack` (layers → OCI).
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "images/image.h"
#include "images/pack.h"
#include "images/synth.h"
#include "runner/cli/command.h"

namespace cowbench {
namespace {

struct SynthArgs {
  std::string profile = "default";
  uint64_t seed = 1;
  std::string out;
  std::string shell = "auto";
  std::string compression = "gzip";
  std::string manifest;
};

img::Compression parse_compression(const std::string& s) {
  for (auto c : {img::Compression::kGzip, img::Compression::kZstd, img::Compression::kNone})
    if (s == img::compression_name(c)) return c;
  fail(Errc::kInvalidInput, "--compression {}: not one of gzip, zstd, none", s);
}

int run_synth(const SynthArgs& a) {
  img::SynthOptions o;
  o.profile = a.profile;
  o.seed = a.seed;
  o.shell = img::parse_shell_mode(a.shell);
  o.compression = parse_compression(a.compression);
  img::SynthResult r = img::synth_image(o, a.out);
  if (!a.manifest.empty()) write_file_atomic(a.manifest, img::to_json(r.expected).dump(1), 0644, false);
  std::cout << fmt::format("wrote {} (profile {}, seed {}): {} layers, {:.1f} MB uncompressed, {:.1f} MB compressed\n",
                           r.dir, o.profile, o.seed, r.layers, r.uncompressed_bytes / 1e6, r.compressed_bytes / 1e6);
  std::cout << fmt::format("manifest {}\nshell: {}\nuse it as --image oci:{}\n", r.manifest_digest,
                           r.shell.empty() ? "none" : r.shell + " (busybox from the host)", r.dir);
  return 0;
}

struct InspectArgs {
  std::string ref;
  std::string workdir = kDefaultWorkdir;
  std::string platform;
  bool json = false;
};

int run_inspect(const InspectArgs& a) {
  img::ImageRef ref = img::parse_ref(a.ref);
  img::Image image = img::open_image(ref, path_join(a.workdir, "images"), {a.platform});
  img::FileIndex merged;
  auto layers = img::summarize_layers(image, &merged);

  nlohmann::json j = {{"ref", a.ref},
                      {"format", image.format},
                      {"location", image.location},
                      {"manifest", image.manifest.digest},
                      {"config", image.config_digest},
                      {"platform", image.platform.str()},
                      {"shell", image.declared_shell()},
                      {"top_chain_id", image.top_chain_id()}};
  nlohmann::json jl = nlohmann::json::array();
  uint64_t packed = 0, unpacked = 0;
  for (const auto& s : layers) {
    packed += static_cast<uint64_t>(std::max<int64_t>(s.info.blob.size, 0));
    unpacked += s.uncompressed_size;
    jl.push_back({{"digest", s.info.blob.digest},
                  {"diff_id", s.info.diff_id},
                  {"chain_id", s.info.chain_id},
                  {"media_type", s.info.blob.media_type},
                  {"compression", img::compression_name(s.compression)},
                  {"size", s.info.blob.size},
                  {"uncompressed_size", s.uncompressed_size},
                  {"entries", s.entries},
                  {"files", s.files},
                  {"dirs", s.dirs},
                  {"symlinks", s.symlinks},
                  {"hardlinks", s.hardlinks},
                  {"specials", s.specials},
                  {"whiteouts", s.whiteouts},
                  {"opaque_dirs", s.opaques},
                  {"file_bytes", s.file_bytes}});
  }
  j["layers"] = jl;
  j["size"] = packed;
  j["uncompressed_size"] = unpacked;
  j["merged"] = {{"files", merged.count('f')},
                 {"dirs", merged.count('d')},
                 {"symlinks", merged.count('l')},
                 {"file_bytes", merged.file_bytes()}};
  if (a.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} ({} at {})\n", a.ref, image.format, image.location);
  std::cout << fmt::format("manifest {}\nconfig   {}\nplatform {}, shell: {}\n", image.manifest.digest, image.config_digest,
                           image.platform.str(), image.declared_shell().empty() ? "not declared" : image.declared_shell());
  std::cout << fmt::format("{:>3} {:<19} {:>6} {:>10} {:>10} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6}\n", "#", "digest", "comp",
                           "size", "unpacked", "files", "dirs", "links", "hard", "wh", "opq");
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& s = layers[i];
    std::cout << fmt::format("{:>3} {:<19} {:>6} {:>10} {:>10} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6}\n", i + 1,
                             s.info.blob.digest.substr(0, 19), img::compression_name(s.compression), s.info.blob.size,
                             s.uncompressed_size, s.files, s.dirs, s.symlinks, s.hardlinks, s.whiteouts, s.opaques);
  }
  std::cout << fmt::format("total: {} layers, {:.1f} MB stored, {:.1f} MB unpacked; merged view: {} files ({:.1f} MB), {} "
                           "directories, {} symlinks\n",
                           layers.size(), packed / 1e6, unpacked / 1e6, merged.count('f'), merged.file_bytes() / 1e6,
                           merged.count('d'), merged.count('l'));
  std::cout << fmt::format("top chain id {}\n", image.top_chain_id());
  return 0;
}

struct PackArgs {
  std::vector<std::string> layers;
  std::string out;
  std::string tag;
  std::string compression = "gzip";
  std::string devices = "skip";
};

int run_pack(const PackArgs& a) {
  img::PackOptions o;
  o.layers = a.layers;
  o.out = a.out;
  o.tag = a.tag;
  o.compression = parse_compression(a.compression);
  o.devices = img::parse_device_policy(a.devices);
  img::PackResult r = img::pack_image(o);
  if (r.skipped_devices > 0) {
    std::string names;
    for (const auto& p : r.skipped_device_paths) names += (names.empty() ? "" : ", ") + p;
    if (r.skipped_devices > r.skipped_device_paths.size()) names += ", ...";
    fmt::print(stderr, "cowbench: skipped {} device node{} ({}); --devices allow to keep them\n", r.skipped_devices,
               r.skipped_devices == 1 ? "" : "s", names);
  }
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const auto& l = r.layers[i];
    std::cout << fmt::format("layer {} {} ({}): {} entries, {:.1f} MB, {:.1f} MB stored\n", i + 1, l.source,
                             l.directory ? "directory" : "tar", l.entries, l.uncompressed_size / 1e6, l.size / 1e6);
  }
  std::cout << fmt::format("wrote {}: manifest {}\nuse it as --image oci:{}{}\n", r.dir, r.manifest_digest, r.dir,
                           a.tag.empty() ? "" : ":" + a.tag);
  return 0;
}

}  // namespace

void add_image_commands(CLI::App& app, Commands& out) {
  auto* image = app.add_subcommand("image", "synthetic images, image inspection, images packed from tarballs and directories");
  image->require_subcommand(1);

  auto sa = std::make_shared<SynthArgs>();
  std::string profiles;
  for (const auto& p : img::synth_profiles()) profiles += (profiles.empty() ? "" : "|") + p;
  auto* synth = image->add_subcommand("synth", "write a synthetic image as an OCI layout (same seed, same bytes)");
  synth->add_option("--profile", sa->profile, profiles)->capture_default_str();
  synth->add_option("--seed", sa->seed, "PRNG seed")->capture_default_str();
  synth->add_option("--out", sa->out, "directory to create (must not exist or be empty)")->required();
  synth->add_option("--shell", sa->shell, "auto|none|require: copy the host's static busybox in as /bin/sh")
      ->capture_default_str();
  synth->add_option("--compression", sa->compression, "gzip|zstd|none")->capture_default_str();
  synth->add_option("--manifest", sa->manifest, "also write the expected merged view (JSON) to this file");
  out.push_back({synth, [sa] { return run_synth(*sa); }});

  auto ia = std::make_shared<InspectArgs>();
  auto* inspect = image->add_subcommand("inspect", "layers, sizes, file counts and whiteouts of an image (verified)");
  inspect->add_option("ref", ia->ref,
                      "oci:DIR[:TAG] | docker-archive:FILE | synth:PROFILE[@SEED] | rootfs:FILE.tar[.gz|.zst] | dir:PATH")
      ->required();
  inspect->add_option("--workdir", ia->workdir, "work directory (synthetic images are cached in WORKDIR/images)")
      ->capture_default_str();
  inspect->add_option("--platform", ia->platform, "os/arch[/variant] to pick from a multi-platform index (default: this host)");
  inspect->add_flag("--json", ia->json, "print one JSON object");
  out.push_back({inspect, [ia] { return run_inspect(*ia); }});

  auto pa = std::make_shared<PackArgs>();
  auto* pack = image->add_subcommand("pack", "build a multi-layer OCI image layout from tarballs and directories, in order");
  pack->add_option("--layer", pa->layers, "a layer, bottom first: a tar file (.tar, .tar.gz, .tar.zst) or a directory (repeatable)")
      ->required();
  pack->add_option("--out", pa->out, "the OCI layout directory to create (must not exist or be empty)")->required();
  pack->add_option("--tag", pa->tag, "tag the image (use it as oci:OUT:TAG)");
  pack->add_option("--compression", pa->compression, "gzip|zstd|none")->capture_default_str();
  pack->add_option("--devices", pa->devices, "device nodes in the layers: skip (left out, counted), refuse or allow")
      ->capture_default_str()
      ->check(CLI::IsMember({"refuse", "skip", "allow"}));
  out.push_back({pack, [pa] { return run_pack(*pa); }});
}

}  // namespace cowbench
