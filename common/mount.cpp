// Performing mount descriptions: overlay through the new mount API, bind mounts, the rest via mount(2).
#include "common/mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/log.h"
#include "common/text.h"

namespace cowbench {
namespace {

// Reads what the kernel logged into a filesystem context (lines "e overlay: ..." etc.).
std::string fs_context_log(int fsfd) {
  std::string out;
  char buf[512];
  while (true) {
    ssize_t n = ::read(fsfd, buf, sizeof buf - 1);
    if (n <= 0) break;
    buf[n] = 0;
    std::string line(buf, static_cast<size_t>(n));
    if (line.size() > 2 && line[1] == ' ') line = line.substr(2);
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();  // one line each
    if (line.empty()) continue;
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out;
}

[[noreturn]] void fail_fsconfig(int err, int fsfd, const std::string& what, const std::string& target) {
  std::string klog = fs_context_log(fsfd);
  fail_errno(err, "mount overlay on {}: {}{}", target, what, klog.empty() ? "" : " (kernel: " + klog + ")");
}

// The kernel stacks at most this many lower layers in one overlay (OVL_MAX_STACK).
constexpr size_t kOverlayMaxStack = 500;

// Builds a detached overlay mount (fsopen → fsconfig → fsmount) and returns its mount fd.
// `data`: data-only lower layers (below the lowers, "lowerdir=A::D" / "datadir+", Linux 6.5+).
Fd overlay_mount_fd(std::vector<std::string> lowers, const std::vector<std::string>& options, unsigned attrs,
                    const std::string& target, const std::vector<std::string>& data = {}) {
  // Deeper chains: the bottom layers become one read-only overlay, detached and passed
  // by /proc/self/fd, which the outer overlay pins (two levels: up to ~1000 layers).
  Fd nested;
  if (lowers.size() > kOverlayMaxStack) {
    std::vector<std::string> bottom(lowers.begin() + kOverlayMaxStack - 1, lowers.end());
    if (bottom.size() > kOverlayMaxStack)
      fail(Errc::kUnsupported, "mount overlay on {}: {} lower layers exceed what two stacked overlays hold ({})", target,
           lowers.size(), 2 * kOverlayMaxStack - 1);
    nested = overlay_mount_fd(std::move(bottom), lower_layer_options(options), MOUNT_ATTR_RDONLY, target);
    lowers.resize(kOverlayMaxStack - 1);
    lowers.push_back(fmt::format("/proc/self/fd/{}", nested.get()));
  }

  Fd fsfd(fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) {
    if (errno == ENODEV) fail(Errc::kUnsupported, "mount overlay on {}: the kernel has no overlay filesystem", target);
    fail_sys("fsopen overlay");
  }
  auto set_string = [&](const char* key, const std::string& value) {
    if (fsconfig(fsfd.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0)
      fail_fsconfig(errno, fsfd.get(), fmt::format("{}={}", key, value), target);
  };
  set_string("source", "overlay");
  // One fsconfig call per layer lifts the page-size limit of the option string (Linux >=
  // 6.8); older kernels take the whole colon-separated list at once.
  bool plus = true;
  for (size_t i = 0; i < lowers.size(); ++i) {
    if (fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "lowerdir+", lowers[i].c_str(), 0) == 0) continue;
    if (i == 0 && errno == EINVAL) {
      fs_context_log(fsfd.get());
      plus = false;
      break;
    }
    fail_fsconfig(errno, fsfd.get(), fmt::format("lowerdir+={}", lowers[i]), target);
  }
  if (plus) {
    for (const auto& d : data)
      if (fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "datadir+", d.c_str(), 0) != 0)
        fail_fsconfig(errno, fsfd.get(), fmt::format("datadir+={}", d), target);
  } else {
    std::string joined;
    for (const auto& l : lowers) joined += (joined.empty() ? "" : ":") + l;
    for (const auto& d : data) joined += "::" + d;
    set_string("lowerdir", joined);
  }
  for (const auto& opt : options) {
    auto eq = opt.find('=');
    if (eq == std::string::npos) {
      if (fsconfig(fsfd.get(), FSCONFIG_SET_FLAG, opt.c_str(), nullptr, 0) != 0)
        fail_fsconfig(errno, fsfd.get(), opt, target);
    } else {
      set_string(opt.substr(0, eq).c_str(), opt.substr(eq + 1));
    }
  }
  if (fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    fail_fsconfig(errno, fsfd.get(), "create", target);
  Fd mfd(fsmount(fsfd.get(), FSMOUNT_CLOEXEC, attrs));
  if (!mfd) fail_fsconfig(errno, fsfd.get(), "fsmount", target);
  return mfd;
}

void mount_overlay(const Mount& m, const std::string& target) {
  std::vector<std::string> lowers, data, options;
  unsigned attrs = 0;
  for (const auto& opt : m.options) {
    if (opt == "ro") {
      attrs |= MOUNT_ATTR_RDONLY;
    } else if (opt.starts_with("lowerdir=")) {
      // "A:B::D1::D2": lower layers, then data-only lower layers after "::".
      std::string all = opt.substr(9);
      size_t dd = all.find("::");
      lowers = split(all.substr(0, dd), ':');
      if (dd != std::string::npos)
        for (auto& d : split(all.substr(dd + 2), ':'))
          if (!d.empty()) data.push_back(std::move(d));
    } else if (opt != "rw") {
      options.push_back(opt);
    }
  }
  if (lowers.empty()) fail(Errc::kInvalidInput, "mount overlay on {}: no lowerdir in '{}'", target, to_string(m));
  Fd mfd = overlay_mount_fd(std::move(lowers), options, attrs, target, data);
  if (move_mount(mfd.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    fail_sys("mount overlay on {}: move_mount", target);
}

unsigned long flag_for(const std::string& opt) {
  if (opt == "ro") return MS_RDONLY;
  if (opt == "nosuid") return MS_NOSUID;
  if (opt == "nodev") return MS_NODEV;
  if (opt == "noexec") return MS_NOEXEC;
  if (opt == "noatime") return MS_NOATIME;
  if (opt == "relatime") return MS_RELATIME;
  if (opt == "rw") return 0;
  return ~0UL;
}

void mount_bind(const Mount& m, const std::string& target) {
  bool ro = std::find(m.options.begin(), m.options.end(), "ro") != m.options.end();
  if (::mount(m.source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    fail_sys("bind mount {} on {}", m.source, target);
  if (ro && ::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
    int err = errno;
    umount2(target.c_str(), MNT_DETACH);
    fail_errno(err, "remount {} read-only", target);
  }
}

void mount_generic(const Mount& m, const std::string& target) {
  unsigned long flags = 0;
  std::string data;
  for (const auto& opt : m.options) {
    unsigned long f = flag_for(opt);
    if (f != ~0UL) {
      flags |= f;
      continue;
    }
    if (!data.empty()) data += ',';
    data += opt;
  }
  if (::mount(m.source.c_str(), target.c_str(), m.type.c_str(), flags, data.empty() ? nullptr : data.c_str()) != 0)
    fail_sys("mount {} ({}) on {}", m.source, m.type, target);
}

std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (int k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// /proc/self/mountinfo's text; empty when it cannot be read (no /proc).
std::string self_mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::vector<std::string> lower_layer_options(const std::vector<std::string>& options) {
  std::vector<std::string> out;
  for (const auto& o : options)
    if (o.starts_with("metacopy=") || o.starts_with("redirect_dir=")) out.push_back(o);
  return out;
}

std::string to_string(const Mount& m) {
  std::string opts;
  for (const auto& o : m.options) {
    if (!opts.empty()) opts += ',';
    opts += o;
  }
  return fmt::format("{} {} {}", m.type, m.source, opts);
}

void mount_all(const std::vector<Mount>& mounts, const std::string& target) {
  size_t done = 0;
  try {
    for (const auto& m : mounts) {
      if (m.type == "overlay")
        mount_overlay(m, target);
      else if (m.type == "bind")
        mount_bind(m, target);
      else if (is_fuse_daemon_type(m.type))
        mount_fuse(m, target);
      else
        mount_generic(m, target);
      ++done;
    }
  } catch (...) {
    while (done-- > 0) umount2(target.c_str(), MNT_DETACH);
    throw;
  }
}

static void unmount_top(const std::string& target) {
  using namespace std::chrono_literals;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) return;
    if (errno == EINVAL || errno == ENOENT) return;  // not a mount point (any more)
    if (errno != EBUSY) fail_sys("unmount {}", target);
    std::this_thread::sleep_for(10ms);
  }
  log::warn("{} stayed busy; detaching it lazily", target);
  if (umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL) fail_sys("detach {}", target);
}

void unmount(const std::string& target) {
  unmount_top(target);
  release_fuse_daemons(target);  // a fuse daemon ends with its mount: reap it
}

std::vector<std::string> mounts_under(const std::string& path) {
  std::string prefix = path;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  std::vector<std::string> out;
  for (auto& e : parse_mountinfo(self_mountinfo())) {
    const std::string& mp = e.mount_point;
    if (mp == prefix || (mp.size() > prefix.size() && mp.compare(0, prefix.size(), prefix) == 0 && mp[prefix.size()] == '/'))
      out.push_back(std::move(e.mount_point));
  }
  // Deepest first; at equal depth the later (upper) mount first, as mountinfo lists them in order.
  std::reverse(out.begin(), out.end());
  std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
  });
  return out;
}

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional fields...] - fstype source super_options
    std::istringstream ls(line);
    std::string id, parent, devno, root, mp, opts, field;
    if (!(ls >> id >> parent >> devno >> root >> mp)) continue;
    ls >> opts;
    while (ls >> field && field != "-") {
    }
    MountEntry e;
    ls >> e.fs_type >> e.source >> e.super_options;
    if (sscanf(devno.c_str(), "%u:%u", &e.dev_major, &e.dev_minor) != 2) e.dev_major = e.dev_minor = 0;
    e.mount_point = unescape_mountinfo(mp);
    e.source = unescape_mountinfo(e.source);
    e.options = opts;
    out.push_back(std::move(e));
  }
  return out;
}

MountEntry mount_holding(const std::vector<MountEntry>& mounts, const std::string& real_path) {
  const MountEntry* best = nullptr;
  for (const auto& e : mounts) {
    const std::string& mp = e.mount_point;
    bool covers = mp == "/" || real_path == mp ||
                  (real_path.size() > mp.size() && real_path.compare(0, mp.size(), mp) == 0 &&
                   real_path[mp.size()] == '/');
    if (covers && (!best || mp.size() >= best->mount_point.size())) best = &e;
  }
  return best ? *best : MountEntry{};
}

MountEntry mount_of(const std::string& path) {
  char buf[PATH_MAX];
  if (!realpath(path.c_str(), buf)) fail_sys("{}", path);
  return mount_holding(parse_mountinfo(self_mountinfo()), buf);
}

ScopedMount::ScopedMount(const std::vector<Mount>& mounts, std::string target) : target_(std::move(target)) {
  mount_all(mounts, target_);
  layers_ = mounts.size();
}

ScopedMount::ScopedMount(ScopedMount&& o) noexcept
    : target_(std::move(o.target_)), layers_(std::exchange(o.layers_, 0)) {}

ScopedMount& ScopedMount::operator=(ScopedMount&& o) noexcept {
  if (this != &o) {
    try {
      close();
    } catch (const std::exception& e) {
      log::warn("{}", e.what());
    }
    target_ = std::move(o.target_);
    layers_ = std::exchange(o.layers_, 0);
  }
  return *this;
}

void ScopedMount::close() {
  while (layers_ > 0) {
    unmount(target_);
    --layers_;
  }
}

ScopedMount::~ScopedMount() {
  try {
    close();
  } catch (const std::exception& e) {
    log::error("leaving {} mounted: {}", target_, e.what());
  }
}

}  // namespace cowbench
