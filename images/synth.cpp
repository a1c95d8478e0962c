// Synthetic images: deterministic OCI layouts from a profile and a seed (see synth.h).
//
// The `dockerhub` profile's shape follows the published characterisations of Docker Hub:
//  - N. Zhao, V. Tarasov, H. Albahar, A. Anwar, L. Rupprecht, D. Skourtis, A. S. Warke,
//    M. Mohamed, A. R. Butt, "Large-Scale Analysis of the Docker Hub Dataset", IEEE CLUSTER
//    2019 (doi:10.1109/CLUSTER.2019.8891000), 167 TB of uncompressed images; extended as
//    "Large-Scale Analysis of Docker Images and Performance Implications for Container
//    Storage Systems", IEEE TPDS 32(4), 2021 (doi:10.1109/TPDS.2020.3034517).
// Taken from them: layers are mostly small and many images have few layers, with a long tail
// of deep images; files are dominated by small files while a few large files hold most of
// the bytes; file-level redundancy is very high — "only 3% of the files in images are
// unique" (3.2% after deduplication, abstract), most of it across images.
// Not taken from them (our approximations, chosen to reproduce those shapes; the bucket
// weights below are not figures from the papers): the exact layer-count and file-size
// weights, and the within-image duplicate ratio of 25% (a single image sees only a part of
// the cross-image redundancy the 3% figure measures).
#include "images/synth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/prng.h"
#include "images/changeset.h"
#include "images/layout_writer.h"
#include "images/synth_gen.h"

namespace cowbench::img {
namespace {

using namespace synth_gen;

bool is_static_elf(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  unsigned char h[64];
  if (pread(fd.get(), h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return false;
  if (std::memcmp(h, "\x7f" "ELF", 4) != 0 || h[4] != 2 || h[5] != 1) return false;  // ELF64, little-endian
  uint64_t phoff;
  uint16_t phentsize, phnum;
  std::memcpy(&phoff, h + 32, 8);
  std::memcpy(&phentsize, h + 54, 2);
  std::memcpy(&phnum, h + 56, 2);
  if (phentsize < 4 || phnum > 256) return false;
  for (uint16_t i = 0; i < phnum; ++i) {
    uint32_t type = 0;
    if (pread(fd.get(), &type, 4, static_cast<off_t>(phoff + uint64_t{i} * phentsize)) != 4) return false;
    if (type == 3) return false;  // PT_INTERP: dynamically linked
  }
  return true;
}

std::string file_digest(const std::string& path) {
  auto src = open_file_source(path);
  Sha256 h;
  char buf[65536];
  while (size_t n = src->read(buf, sizeof buf)) h.update(buf, n);
  return h.digest();
}

// The busybox to copy in, or "" (kRequire: throws when there is none).
std::string usable_busybox(const SynthOptions& o) {
  if (o.shell == ShellMode::kNone) return "";
  if (is_static_elf(o.busybox)) return o.busybox;
  if (o.shell == ShellMode::kRequire)
    fail(Errc::kUnsupported, "a shell was required but {} is not a statically linked busybox (install busybox-static)",
         o.busybox);
  return "";
}


void profile_tiny(Gen& g, const std::string& busybox) {
  // Layer 1: a small distro with every entry kind.
  g.begin_layer("base");
  skeleton(g);
  if (!busybox.empty()) add_shell(g, busybox);
  for (int i = 1; i <= 5; ++i)
    g.file(fmt::format("usr/bin/tool{}", i), g.content(Kind::kBinary, 20'000 + g.rng().below(180'000)), 0755);
  g.file("usr/bin/su-like", g.content(Kind::kBinary, 30'000), 04755);
  g.hardlink("usr/bin/tool-link", "usr/bin/tool1");
  g.file("usr/lib/libfoo.so.1.2.3", g.content(Kind::kBinary, 300'000), 0644);
  g.symlink("usr/lib/libfoo.so.1", "libfoo.so.1.2.3");
  g.symlink("usr/lib/libfoo.so", "libfoo.so.1");
  g.file("etc/app.conf", g.content(Kind::kText, 2'000), 0640, 0, 42, {{"user.cowbench.tag", "tiny"}});
  for (int i = 1; i <= 20; ++i)
    g.file(fmt::format("usr/share/doc/pkg{}/copyright", i), g.content(Kind::kText, 1'000 + g.rng().below(7'000)));
  g.dir("var/cache/app");
  for (const char* n : {"a", "b", "c"}) g.file(std::string("var/cache/app/") + n, g.content(Kind::kText, 3'000));
  g.dir("opt/old/sub");
  g.file("opt/old/sub/x", g.content(Kind::kText, 500));
  g.file("opt/old/y", g.content(Kind::kText, 600));
  g.dir("home/user", 0750, 1000, 1000);
  g.file("home/user/.profile", g.content(Kind::kText, 300), 0644, 1000, 1000);
  g.file("srv/big.db", g.content(Kind::kDatabase, 1 << 20), 0600, 999, 999);
  g.fifo("run/ctl.fifo", 0620);
  g.end_layer();

  // Layer 2: edits, deletions, an opaque directory, replacements.
  g.begin_layer("changes");
  g.file("etc/hostname", Content{Kind::kText, 5, 20});
  g.whiteout("usr/share/doc/pkg3");
  g.whiteout("etc/group");
  g.dir("var/cache/app");
  g.opaque("var/cache/app");
  g.file("var/cache/app/fresh", g.content(Kind::kText, 1'500));
  g.file("opt/old", g.content(Kind::kText, 700));  // a file replaces a directory
  g.dir("usr/local/app", 0755, 1000, 1000);
  for (int i = 0; i < 5; ++i)
    g.file(fmt::format("usr/local/app/mod{}.py", i), g.content(Kind::kText, 2'000 + g.rng().below(4'000)), 0644, 1000, 1000);
  g.dir("etc", 0751);
  g.symlink("usr/bin/tool5", "tool1");  // a symlink replaces a file
  g.end_layer();

  // Layer 3: links to lower files, recreations, duplicates.
  g.begin_layer("app");
  g.hardlink("usr/bin/tool1-copy", "usr/bin/tool1");
  g.file("etc/group", Content{Kind::kText, 6, 520});
  g.dir("opt/new");  // a directory where nothing was
  g.file("opt/new/data", g.content(Kind::kRandom, 4'096));
  g.whiteout("usr/bin/tool-link");
  g.dir("home/user/data", 0755, 1000, 1000);
  const Content license{Kind::kText, 42, 5'000};
  for (int i = 0; i < 10; ++i) g.file(fmt::format("home/user/data/LICENSE.{}", i), license, 0644, 1000, 1000);
  g.whiteout("opt/old");
  g.dir("opt/old");  // a directory replaces the file that replaced a directory
  g.file("opt/old/z", g.content(Kind::kText, 100));
  g.end_layer();
}

void profile_default(Gen& g, const std::string& busybox) {
  Prng& r = g.rng();
  const std::vector<Bucket> kBinSizes = {{16 << 10, 64 << 10, 60}, {64 << 10, 256 << 10, 30},
                                         {256 << 10, 1 << 20, 9},  {1 << 20, 4 << 20, 1}};
  // Layer 1 (~75 MB): a distro-like base.
  g.begin_layer("base system");
  skeleton(g);
  if (!busybox.empty()) add_shell(g, busybox);
  for (int i = 0; i < 250; ++i) g.file("usr/bin/" + make_name(r), g.content(Kind::kBinary, pick(r, kBinSizes)), 0755);
  g.file("usr/bin/passwd", g.content(Kind::kBinary, 60'000), 04755);
  g.hardlink("usr/bin/perl5.36", g.some_file());
  g.dir("usr/lib/x86_64-linux-gnu");
  for (int i = 0; i < 120; ++i) {
    std::string n = "usr/lib/x86_64-linux-gnu/lib" + make_name(r) + ".so";
    uint64_t major = r.below(4);
    std::string real = fmt::format("{}.{}.{}.{}", n, major, r.below(20), r.below(10));
    g.file(real, g.content(Kind::kBinary, 32'000 + r.below(400'000)));
    g.symlink(fmt::format("{}.{}", n, major), real.substr(real.rfind('/') + 1));
  }
  const Content gpl{Kind::kText, 7, 18'000};
  for (int i = 0; i < 250; ++i) {
    std::string d = "usr/share/doc/" + make_name(r) + std::to_string(i);
    if (r.below(100) < 40) g.file(d + "/copyright", gpl);  // the same license text, many times
    else g.file(d + "/copyright", g.content(Kind::kText, 1'000 + r.below(5'000)));
    g.file(d + "/changelog.Debian", g.content(Kind::kText, 2'000 + r.below(14'000)));
  }
  for (int i = 0; i < 400; ++i)
    g.file(fmt::format("usr/share/man/man1/{}.{}.1", make_name(r), i), g.content(Kind::kText, 1'000 + r.below(3'000)));
  for (int i = 0; i < 150; ++i)
    g.file(fmt::format("etc/{}.conf", make_name(r) + std::to_string(i)), g.content(Kind::kText, 100 + r.below(4'000)));
  for (int i = 0; i < 600; ++i)
    g.file(fmt::format("var/lib/dpkg/info/{}{}.{}", make_name(r), i, i % 2 ? "list" : "md5sums"),
           g.content(Kind::kText, 200 + r.below(8'000)));
  g.end_layer();

  // Layer 2 (~55 MB): a language runtime's packages: many small files.
  g.begin_layer("python packages");
  for (int p = 0; p < 150; ++p) {
    std::string pkg = "usr/lib/python3.11/" + make_name(r) + std::to_string(p);
    for (uint64_t f = 0, n = 5 + r.below(20); f < n; ++f) {
      std::string mod = make_name(r) + std::to_string(f);
      g.file(pkg + "/" + mod + ".py", g.content(Kind::kText, 1'000 + r.below(24'000)));
      if (f % 2 == 0) g.file(pkg + "/__pycache__/" + mod + ".cpython-311.pyc", g.content(Kind::kBinary, 2'000 + r.below(18'000)));
    }
  }
  for (int i = 0; i < 20; ++i)
    g.file(fmt::format("usr/lib/python3.11/lib-dynload/_{}.so", make_name(r) + std::to_string(i)),
           g.content(Kind::kBinary, 100'000 + r.below(900'000)));
  g.end_layer();

  // Layer 3 (~35 MB): an application with node_modules-like dependencies.
  g.begin_layer("application");
  std::vector<Content> licenses;
  for (int i = 0; i < 5; ++i) licenses.push_back(g.content(Kind::kText, 1'000 + r.below(10'000)));
  for (int p = 0; p < 400; ++p) {
    std::string pkg = "app/node_modules/" + make_name(r) + std::to_string(p);
    g.file(pkg + "/package.json", g.content(Kind::kText, 500 + r.below(1'500)), 0644, 1000, 1000);
    g.file(pkg + "/LICENSE", licenses[r.below(licenses.size())], 0644, 1000, 1000);
    g.file(pkg + "/README.md", g.content(Kind::kText, 1'000 + r.below(9'000)), 0644, 1000, 1000);
    for (uint64_t f = 0, n = 1 + r.below(12); f < n; ++f)
      g.file(fmt::format("{}/lib/{}.js", pkg, make_name(r) + std::to_string(f)), g.content(Kind::kText, 2'000 + r.below(14'000)),
             0644, 1000, 1000);
  }
  g.file("app/bin/server", g.content(Kind::kBinary, 8 << 20), 0755, 1000, 1000);
  for (int i = 0; i < 10; ++i) g.file(fmt::format("app/static/asset{}.bin", i), g.content(Kind::kRandom, 200'000));
  g.end_layer();

  // Layer 4 (~45 MB): data: a database and its write-ahead log, some blobs.
  g.begin_layer("data");
  g.dir("var/lib/db", 0700, 999, 999);
  g.file("var/lib/db/main.db", g.content(Kind::kDatabase, 32 << 20), 0600, 999, 999);
  g.file("var/lib/db/main.db-wal", g.content(Kind::kDatabase, 4 << 20), 0600, 999, 999);
  for (int i = 0; i < 4; ++i) g.file(fmt::format("srv/data/blob-{}.bin", i), g.content(Kind::kBinary, 1 << 20));
  g.end_layer();

  // Layer 5 (~2 MB): configuration: edits, deletions, an opaque cache directory.
  g.begin_layer("configuration");
  for (int i = 0; i < 20; ++i)
    if (std::string f = g.some_file(); !f.empty() && f.starts_with("etc/")) g.file(f, g.content(Kind::kText, 200 + r.below(3'000)));
  for (int i = 0; i < 30; ++i)
    if (std::string f = g.some_file(); !f.empty() && f.starts_with("usr/share/doc/")) g.whiteout(f.substr(0, f.rfind('/')));
  for (int i = 0; i < 20; ++i)
    if (std::string f = g.some_file(); !f.empty() && f.starts_with("usr/lib/python3.11/")) g.whiteout(f);
  g.dir("var/cache/apt");
  g.opaque("var/cache/apt");
  for (int i = 0; i < 10; ++i) g.file(fmt::format("var/cache/apt/pkgcache{}.bin", i), g.content(Kind::kBinary, 50'000));
  for (int i = 0; i < 5; ++i) g.file(fmt::format("var/log/app{}.log", i), g.content(Kind::kText, 100'000));
  g.dir("app/node_modules", 0750, 1000, 1000);
  g.file("usr/bin/newgrp", g.content(Kind::kBinary, 40'000), 02755);
  g.end_layer();
}

void profile_dockerhub(Gen& g, const std::string& busybox) {
  Prng& r = g.rng();
  // Layers per image: most images have a handful, a long tail goes deep (weights ‰).
  const std::vector<Bucket> kLayers = {{1, 2, 40},  {2, 3, 60},  {3, 5, 170},  {5, 8, 270},
                                       {8, 12, 220}, {12, 17, 140}, {17, 26, 70}, {26, 41, 30}};
  // Image size (uncompressed): mostly small (weights ‰); capped at 400 MB to stay quick.
  const std::vector<Bucket> kImageBytes = {{5 << 20, 50 << 20, 300}, {50 << 20, 150 << 20, 350},
                                           {150 << 20, 300 << 20, 250}, {300 << 20, 400 << 20, 100}};
  // File sizes: small files dominate the count, large ones the bytes (weights ‰).
  const std::vector<Bucket> kFileBytes = {{0, 512, 300},          {512, 4 << 10, 250},       {4 << 10, 16 << 10, 180},
                                          {16 << 10, 64 << 10, 120}, {64 << 10, 256 << 10, 80}, {256 << 10, 1 << 20, 45},
                                          {1 << 20, 4 << 20, 18},  {4 << 20, 16 << 20, 6},    {16 << 20, 64 << 20, 1}};
  constexpr uint64_t kDuplicatePercent = 25;
  const char* const kRoots[] = {"usr/lib", "usr/share", "opt", "app", "var/lib", "usr/local/lib", "etc"};
  const Kind kKinds[] = {Kind::kText, Kind::kText, Kind::kBinary, Kind::kBinary, Kind::kRandom};

  uint64_t layers = pick(r, kLayers);
  uint64_t budget = pick(r, kImageBytes);
  // The base layer takes 30-60% of the bytes; the rest is split unevenly, many layers tiny.
  std::vector<uint64_t> share(layers, 0);
  share[0] = layers == 1 ? budget : budget * (30 + r.below(31)) / 100;
  uint64_t rest = budget - share[0];
  std::vector<uint64_t> weight(layers, 0);
  uint64_t total_weight = 0;
  for (uint64_t i = 1; i < layers; ++i) total_weight += weight[i] = r.below(100) < 40 ? 1 : 1 + r.below(100);
  for (uint64_t i = 1; i < layers; ++i) share[i] = total_weight ? rest * weight[i] / total_weight : 0;

  for (uint64_t l = 0; l < layers; ++l) {
    g.begin_layer(fmt::format("layer {}", l + 1));
    if (l == 0) {
      skeleton(g);
      if (!busybox.empty()) add_shell(g, busybox);
    }
    if (l > 0 && r.below(100) < 30)  // some layers delete what earlier ones made
      for (uint64_t k = 1 + r.below(20); k > 0; --k)
        if (std::string f = g.some_file(); !f.empty()) g.whiteout(f);
    std::string root = std::string(kRoots[r.below(std::size(kRoots))]) + "/" + make_name(r) + std::to_string(l);
    std::vector<std::string> dirs = {root};
    uint64_t used = 0;
    for (uint64_t n = 0; used < share[l] || n == 0; ++n) {
      if (r.below(100) < 15 && dirs.size() < 400) dirs.push_back(dirs[r.below(dirs.size())] + "/" + make_name(r));
      std::string path = fmt::format("{}/{}{}", dirs[r.below(dirs.size())], make_name(r), n);
      const Content* dup = r.below(100) < kDuplicatePercent ? g.some_content() : nullptr;
      Content c = dup ? *dup : g.content(kKinds[r.below(std::size(kKinds))], std::min(pick(r, kFileBytes), share[l] - std::min(share[l], used) + 1));
      g.file(path, c, r.below(100) < 10 ? 0755 : 0644);
      used += c.size + 512;
    }
    g.end_layer();
  }
}

// The `family` profile: member M (1..kFamilyMembers) of a family of images built on one
// base, the situation cross-image sharing is about. Layers:
//   1 base      one distro-like base, byte-identical in every member (as images built FROM one
//               base share its layers: Docker Hub's images mostly derive from a handful of
//               official bases, which is why layer sharing pays at all);
//   2 runtime   one of two language runtimes, byte-identical in the members that use it (odd
//               members A, even ones B); both vendor the same crypto library at different paths:
//               byte-identical content in two *different* layers;
//   3 app       the member's own application, unique, that vendors one library byte-identical in
//               every member (the same library vendored into each app's tree), in its own layer.
// So file content repeats across layers and images (Zhao et al., CLUSTER 2019, found only 3 % of
// the files of Docker Hub images unique, most of the redundancy across images, and containerd
// #13307/#13308 (2026) ask for cross-image deduplication of 20-30 GB images), while the layers
// themselves are shared only where an image was built on the same one. No shell: the members
// carry only what the family needs, so that they share nothing with other images in one store.
// Sizes are ours, chosen to keep 8 imported members a matter of seconds: base ~25 MB (about
// 18 MB of it binaries, libraries and configuration, which a start reads), runtime ~11 MB
// (3 MB of it the shared library), app ~5 MB (2 MB of it the vendored library).
constexpr int kFamilyMembers = 64;

// "family-M" → M, or 0 for any other profile name.
int family_member(const std::string& profile) {
  if (!profile.starts_with("family-")) return 0;
  std::string n = profile.substr(7);
  int m = 0;
  auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), m);
  if (n.empty() || ec != std::errc() || end != n.data() + n.size() || n[0] == '0' || m < 1 || m > kFamilyMembers) return 0;
  return m;
}

void profile_family(Gen& g, uint64_t seed, int member) {
  Prng& r = g.rng();
  const std::vector<Bucket> kBinSizes = {{16 << 10, 64 << 10, 60}, {64 << 10, 256 << 10, 35}, {256 << 10, 1 << 20, 5}};
  g.reseed(seed ^ 0xba5eULL);
  g.begin_layer("family base");
  skeleton(g);
  for (int i = 0; i < 120; ++i) g.file("usr/bin/" + make_name(r) + std::to_string(i), g.content(Kind::kBinary, pick(r, kBinSizes)), 0755);
  g.dir("usr/lib/x86_64-linux-gnu");
  for (int i = 0; i < 60; ++i) {
    std::string n = fmt::format("usr/lib/x86_64-linux-gnu/lib{}{}.so", make_name(r), i);
    std::string real = fmt::format("{}.{}.{}", n, r.below(4), r.below(20));
    g.file(real, g.content(Kind::kBinary, 32'000 + r.below(200'000)));
    g.symlink(n, real.substr(real.rfind('/') + 1));
  }
  for (int i = 0; i < 80; ++i)
    g.file(fmt::format("etc/{}{}.conf", make_name(r), i), g.content(Kind::kText, 100 + r.below(3'000)));
  for (int i = 0; i < 200; ++i)
    g.file(fmt::format("usr/share/doc/{}{}/changelog", make_name(r), i), g.content(Kind::kText, 2'000 + r.below(30'000)));
  g.end_layer();

  // The library both runtimes vendor, and the one every app vendors: fixed content.
  const Content crypto{Kind::kBinary, seed ^ 0xc0ffeeULL, 3 << 20};
  const Content vendored{Kind::kBinary, seed ^ 0x7e4d0ULL, 2 << 20};
  bool a = member % 2 == 1;
  g.reseed(seed ^ (a ? 0xa11aULL : 0xb11bULL));
  g.begin_layer(a ? "runtime A" : "runtime B");
  std::string rt = a ? "usr/lib/runa" : "usr/lib/runb";
  g.file(a ? "usr/bin/runa" : "usr/bin/runb", g.content(Kind::kBinary, a ? 4 << 20 : 5 << 20), 0755);
  for (int p = 0; p < 30; ++p)
    for (int f = 0; f < 10; ++f)
      g.file(fmt::format("{}/{}{}/{}{}.mod", rt, make_name(r), p, make_name(r), f), g.content(Kind::kText, 1'000 + r.below(12'000)));
  g.file(a ? "usr/lib/x86_64-linux-gnu/libcrypto.so.3" : "usr/lib/runb/vendor/libcrypto.so.3", crypto);
  g.end_layer();

  g.reseed(seed ^ (0x5ca1eULL + static_cast<uint64_t>(member) * 0x9e3779b97f4a7c15ULL));
  g.begin_layer(fmt::format("app {}", member));
  std::string app = fmt::format("app{}", member);
  g.dir(app, 0755, 1000, 1000);
  g.file(app + "/bin/service", g.content(Kind::kBinary, 2 << 20), 0755, 1000, 1000);
  for (int i = 0; i < 100; ++i)
    g.file(fmt::format("{}/lib/{}{}.js", app, make_name(r), i), g.content(Kind::kText, 2'000 + r.below(26'000)), 0644, 1000, 1000);
  g.file(app + "/lib/vendor/libvendored.so.2", vendored, 0644, 1000, 1000);
  g.file(app + "/etc/service.conf", g.content(Kind::kText, 1'500), 0644, 1000, 1000);
  g.end_layer();
}

using ProfileFn = void (*)(Gen&, const std::string&);
const std::map<std::string, ProfileFn>& profiles() {
  static const std::map<std::string, ProfileFn> p = {
      {"tiny", profile_tiny}, {"default", profile_default}, {"dockerhub", profile_dockerhub}};
  return p;
}

}  // namespace

const char* shell_mode_name(ShellMode m) noexcept {
  switch (m) {
    case ShellMode::kAuto: return "auto";
    case ShellMode::kNone: return "none";
    case ShellMode::kRequire: return "require";
  }
  return "?";
}

ShellMode parse_shell_mode(const std::string& s) {
  for (auto m : {ShellMode::kAuto, ShellMode::kNone, ShellMode::kRequire})
    if (s == shell_mode_name(m)) return m;
  fail(Errc::kInvalidInput, "shell mode '{}' is not one of auto, none, require", s);
}

std::vector<std::string> synth_profiles() {
  std::vector<std::string> out;
  for (const auto& [n, f] : profiles()) out.push_back(n);
  out.push_back("family-M");
  return out;
}

bool is_synth_profile(const std::string& name) { return profiles().count(name) > 0 || family_member(name) > 0; }

std::string synth_cache_key(const SynthOptions& o) {
  std::string busybox = family_member(o.profile) > 0 ? "" : usable_busybox(o);  // family members have no shell
  std::string shell = busybox.empty() ? "nosh" : "bb" + file_digest(busybox).substr(7, 12);
  return fmt::format("{}-{}-{}-{}-v{}", o.profile, o.seed, compression_name(o.compression), shell, kGeneratorVersion);
}

SynthResult synth_image(const SynthOptions& o, const std::string& out_dir) {
  if (!is_synth_profile(o.profile)) {
    std::string known;
    for (const auto& n : synth_profiles()) known += (known.empty() ? "" : ", ") + n;
    fail(Errc::kInvalidInput, "unknown synthetic profile '{}' (profiles: {}; family-M takes M from 1 to {})", o.profile,
         known, kFamilyMembers);
  }
  if (o.compression == Compression::kAuto) fail(Errc::kInvalidInput, "synthetic layers need gzip, zstd or none");
  if (int member = family_member(o.profile); member > 0) {
    Gen g(o, out_dir);
    profile_family(g, o.seed, member);
    return g.finish("", o.profile);
  }
  std::string busybox = usable_busybox(o);
  Gen g(o, out_dir);
  profiles().at(o.profile)(g, busybox);
  return g.finish(busybox.empty() ? "" : "/bin/sh", o.profile);
}

}  // namespace cowbench::img
