// The FUSE daemons cowbench runs and their command lines (see fuse_daemon_args.h).
#include "common/fuse_daemon_args.h"

#include <sys/mount.h>
#include <unistd.h>

#include <climits>

#include "common/error.h"
#include "common/fs.h"
#include "common/text.h"

namespace cowbench {
namespace {

constexpr DaemonKind kKinds[] = {
    {kFuseOverlayfsType, "fuse-overlayfs", kFuseOverlayfsEnv, {"fuse-overlayfs", nullptr}, "fuse-overlayfs", false},
    {kUnionfsFuseType, "unionfs-fuse", kUnionfsFuseEnv, {"unionfs-fuse", "unionfs"}, "unionfs-fuse", true},
};

}  // namespace

const DaemonKind* find_daemon_kind(std::string_view type) noexcept {
  for (const auto& k : kKinds)
    if (k.type == type) return &k;
  return nullptr;
}

const DaemonKind& kind_of(std::string_view type) {
  if (const DaemonKind* k = find_daemon_kind(type)) return *k;
  fail(Errc::kInvalidInput, "no FUSE daemon serves mounts of type '{}'", type);
}

namespace {

// The longest directory that holds every path (all absolute), or "" when that is only "/".
std::string common_dir(const std::vector<std::string>& paths) {
  std::string common;  // with a trailing '/'
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    if (!p.starts_with('/')) return "";
    std::string parent = p.substr(0, p.rfind('/') + 1);
    if (i == 0) {
      common = parent;
      continue;
    }
    size_t n = 0;
    while (n < common.size() && n < parent.size() && common[n] == parent[n]) ++n;
    common.resize(common.rfind('/', n - 1) + 1);  // back to a whole component
  }
  if (common.size() <= 1) return "";
  common.pop_back();
  return common;
}

// unionfs-fuse's arguments: libfuse 2 mount flags as options, the daemon chrooted into the
// branches' common directory, the branches (writable first) as paths inside it.
//
// The chroot is given as "./" with the daemon started in that directory: unionfs-fuse 1.0
// counts the chroot path into each branch's path length, which its whiteout lookup uses as an
// offset into paths without it, so a longer chroot path would skip the first components of
// every path looked up (a chroot path must also have two characters at least). It chroots to
// "./", its working directory, once it has mounted.
void unionfs_args(DaemonArgs& a, const std::vector<std::string>& lowers, const std::string& upper,
                  const std::vector<std::string>& rest, const std::string& target) {
  std::vector<std::string> all = lowers;
  if (!upper.empty()) all.push_back(upper);
  std::string base = common_dir(all);
  a.cwd = base.empty() ? "/" : base;
  a.options = {"chroot=./", "fsname=unionfs-fuse", "subtype=unionfs-fuse", "allow_other", "nonempty",
               "noatime", "nodev"};
  a.options.push_back(a.flags & MS_RDONLY ? "ro" : "rw");
  a.options.push_back(a.flags & MS_NOSUID ? "nosuid" : "suid");
  if (a.flags & MS_NOEXEC) a.options.push_back("noexec");
  a.options.insert(a.options.end(), rest.begin(), rest.end());
  std::vector<std::string> branches;
  auto branch = [&](const std::string& p, const char* mode) {
    std::string in_root = base.empty() ? p : p.substr(base.size());
    if (in_root.find_first_of(":=") != std::string::npos)
      fail(Errc::kInvalidInput, "mount unionfs-fuse on {}: branch {} holds ':' or '=' (unionfs-fuse's separators)",
           target, p);
    branches.push_back(in_root + "=" + mode);
  };
  if (!upper.empty()) branch(upper, "RW");
  for (const auto& l : lowers) branch(l, "RO");
  a.operands = {join(branches, ":"), target};
}

}  // namespace

DaemonArgs daemon_args(const DaemonKind& kind, const Mount& m, const std::string& target) {
  DaemonArgs a;
  std::vector<std::string> lowers;
  std::string upper, work;
  std::vector<std::string> rest;
  for (const auto& opt : m.options) {
    if (opt.find(',') != std::string::npos)
      fail(Errc::kInvalidInput, "mount {} on {}: option '{}' holds a comma", kind.program, target, opt);
    if (opt == "ro") {
      a.flags |= MS_RDONLY;
    } else if (opt == "nosuid") {
      a.flags |= MS_NOSUID;
    } else if (opt == "noexec") {
      a.flags |= MS_NOEXEC;
    } else if (opt.starts_with("lowerdir=")) {
      lowers = split(opt.substr(9), ':');
    } else if (opt.starts_with("upperdir=")) {
      upper = opt.substr(9);
    } else if (opt.starts_with("workdir=")) {
      work = opt.substr(8);
    } else if (opt != "rw") {
      rest.push_back(opt);
    }
  }
  if (lowers.empty() || lowers.front().empty())
    fail(Errc::kInvalidInput, "mount {} on {}: no lowerdir in '{}'", kind.program, target, to_string(m));

  // Layers relative to their common directory: the one -o argument stays far below the
  // kernel's 128 KiB limit on an argument even with thousands of layers. Relative paths
  // (from this process's cwd) become absolute first.
  char here[PATH_MAX];
  if (!getcwd(here, sizeof here)) fail_sys("mount {} on {}: getcwd", kind.program, target);
  auto absolute = [&](std::string& p) {
    if (!p.empty() && !p.starts_with('/')) p = path_join(here, p);
  };
  for (auto& l : lowers) absolute(l);
  absolute(upper);
  absolute(work);
  if (kind.mounts_itself) {
    std::string where = target;
    absolute(where);
    unionfs_args(a, lowers, upper, rest, where);
    return a;
  }
  std::vector<std::string> all = lowers;
  if (!upper.empty()) all.push_back(upper);
  if (!work.empty()) all.push_back(work);
  std::string base = common_dir(all);
  auto rel = [&](const std::string& p) { return base.empty() ? p : p.substr(base.size() + 1); };
  if (!base.empty()) a.cwd = base;
  std::vector<std::string> rel_lowers;
  for (const auto& l : lowers) rel_lowers.push_back(rel(l));
  a.options.push_back("lowerdir=" + join(rel_lowers, ":"));
  if (!upper.empty()) a.options.push_back("upperdir=" + rel(upper));
  if (!work.empty()) a.options.push_back("workdir=" + rel(work));
  a.options.insert(a.options.end(), rest.begin(), rest.end());
  a.operands = {fmt::format("/dev/fd/{}", kDaemonFuseFd)};
  return a;
}

}  // namespace cowbench
