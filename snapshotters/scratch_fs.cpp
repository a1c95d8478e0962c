// Scratch file systems on loop-mounted images (see scratch_fs.h).
#include "snapshotters/scratch_fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/program.h"
#include "snapshotters/fiemap.h"
#include "snapshotters/probe_util.h"

namespace cowbench::snap {
namespace {

// What it takes to make each scratch file system, one row per type.
struct FsKind {
  const char* type;
  const char* mkfs;
  const char* package;
  std::vector<std::string> mkfs_args;  // before the image path
  uint64_t probe_size;                 // a little above the smallest size mkfs accepts
  // mkfs's option for a sector size of N bytes ({} is N), given when the loop device's block
  // size is above 512 (mkfs.xfs picks 512 for an image file, which the device would refuse to
  // mount); empty where the default is never too small (btrfs: the page size).
  std::vector<std::string> sector_args;
};

const std::vector<FsKind>& fs_kinds() {
  static const std::vector<FsKind> kinds{
      {"xfs", "mkfs.xfs", "xfsprogs", {"-q", "-f", "-m", "reflink=1"}, uint64_t{300} << 20, {"-s", "size={}"}},
      {"btrfs", "mkfs.btrfs", "btrfs-progs", {"-q", "-f"}, uint64_t{128} << 20, {}},
  };
  return kinds;
}

const FsKind& fs_kind(const std::string& type) {
  for (const auto& k : fs_kinds())
    if (type == k.type) return k;
  fail(Errc::kInvalidInput, "no scratch file system '{}' (known: xfs, btrfs)", type);
}

// Asks the file system to discard its free space, which punches it out of the image file.
void trim(const std::string& mountpoint) noexcept {
  Fd fd(open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  fstrim_range range{0, ~uint64_t{0}, 0};
  if (!fd || ioctl(fd.get(), FITRIM, &range) != 0)
    log::debug("cannot trim {}: {}", mountpoint, std::strerror(errno));
}

// Waits (briefly) until the kernel has let go of the loop device behind `image`.
void wait_detached(const std::string& image) {
  using namespace std::chrono_literals;
  for (int i = 0; i < 200 && !loops_backed_under(image).empty(); ++i) std::this_thread::sleep_for(10ms);
}

bool parse_on_off(const std::string& backend, const std::string& name, const std::string& value) {
  if (value == "on") return true;
  if (value == "off") return false;
  fail(Errc::kInvalidInput, "{} option {} takes on|off, not '{}'", backend, name, value);
}

}  // namespace

ScratchFs::ScratchFs(const std::string& root, ScratchFsOptions options)
    : root_(root), path_(path_join(root, "store")), options_(std::move(options)) {
  fs_kind(options_.fs_type);
  make_dirs(root_, 0700);
  make_dirs(path_, 0700);
  if (is_mount_point(path_))
    fail(Errc::kFailedPrecondition,
         "{} is mounted already: another process uses this backend root, or a killed run left it (run cowbench gc)",
         path_);
  host_fs_ = fs_type_name_or(root_);
  std::string image = path_join(root_, fmt::format("cache.{}.img", options_.fs_type));
  bool cached = access(image.c_str(), F_OK) == 0;
  if (cached && !options_.cache) {
    if (unlink(image.c_str()) != 0) fail_sys("remove stale scratch image {}", image);
    cached = false;
  }
  if (!cached) {
    auto why = options_.trial(path_);
    if (!why) return;  // ROOT's own file system serves
    log::debug("{} at {} cannot serve ({}); making a scratch {}", host_fs_, root_, *why, options_.fs_type);
  }
  image_ = std::move(image);
  bool made = false;
  try {
    if (cached) {
      try {
        attach_and_mount();
        reused_ = true;
      } catch (const Error& e) {
        if (e.code() == Errc::kUnsupported) throw;
        log::warn("cannot mount the cached scratch image {} ({}); formatting it afresh", image_, e.what());
        teardown();
        if (unlink(image_.c_str()) != 0) fail_sys("remove broken scratch image {}", image_);
      }
    }
    if (!reused_) {
      made = true;
      make_image();
      attach_and_mount();
    }
    if (auto why = options_.trial(path_))
      fail(Errc::kUnsupported, "the scratch {} made for {} cannot serve: {}", options_.fs_type, root_, *why);
  } catch (...) {
    teardown();
    if (made) unlink(image_.c_str());
    throw;
  }
}

ScratchFs::~ScratchFs() {
  try {
    close();
  } catch (const std::exception& e) {
    log::warn("scratch file system at {}: {}", path_, e.what());
  }
}

void ScratchFs::make_image() {
  const FsKind& kind = fs_kind(options_.fs_type);
  std::optional<std::string> mkfs = find_program(options_.mkfs.empty() ? kind.mkfs : options_.mkfs);
  if (!mkfs) {
    if (!options_.mkfs.empty())
      fail(Errc::kUnsupported, "cannot make a scratch {} for {}: mkfs program {} is missing or not executable",
           kind.type, root_, options_.mkfs);
    fail(Errc::kUnsupported, "cannot make a scratch {} for {}: {} is not in PATH, /sbin or /usr/sbin (install {})",
         kind.type, root_, kind.mkfs, kind.package);
  }
  {
    Fd fd(open(image_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) fail_sys("create scratch image {}", image_);
    if (ftruncate(fd.get(), static_cast<off_t>(options_.size)) != 0)
      fail_sys("size scratch image {} to {} bytes", image_, options_.size);
    if (fd.close() != 0) fail_sys("close {}", image_);
  }
  std::vector<std::string> argv{*mkfs};
  argv.insert(argv.end(), kind.mkfs_args.begin(), kind.mkfs_args.end());
  if (uint32_t sector = loop_block_size(image_); sector > 512)
    for (const auto& a : kind.sector_args) argv.push_back(fmt::format(fmt::runtime(a), sector));
  argv.push_back(image_);
  ProgramResult r = run_program(argv);
  if (std::string how = program_failure(r.status); !how.empty()) {
    fail(Errc::kFailure, "cannot make a scratch {} of {} bytes for {}: {} failed ({}): {}", kind.type, options_.size,
         root_, *mkfs, how, one_line(r.output));
  }
}

void ScratchFs::attach_and_mount() {
  loop_ = std::make_unique<LoopDevice>(image_, options_.loop_mode);
  storage_ = StorageInfo{loop_->path(), image_, loop_->mode(), options_.fs_type, loop_->fallback_reason()};
  try {
    mount_ = ScopedMount({Mount{options_.fs_type, loop_->path(), {}}}, path_);
  } catch (const Error& e) {
    if (e.sys_errno() == ENODEV)
      throw Error(Errc::kUnsupported, fmt::format("the kernel has no {} file system ({})", options_.fs_type, e.what()),
                  ENODEV);
    throw;
  }
}

void ScratchFs::teardown() noexcept {
  try {
    mount_.close();
  } catch (const std::exception& e) {
    log::warn("{}", e.what());
  }
  if (loop_) {
    try {
      loop_->close();
      wait_detached(image_);
    } catch (const std::exception& e) {
      log::warn("{}", e.what());
    }
    loop_.reset();
  }
}

void ScratchFs::quiesce() {
  if (closed_ || image_.empty() || cannot_freeze_ || !mount_.mounted()) return;
  Fd fd(open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ioctl(fd.get(), FIFREEZE, 0) != 0) {
    cannot_freeze_ = true;
    log::warn("cannot freeze the scratch file system on {} ({}): it is not brought to rest before measurements", path_,
              std::strerror(errno));
    return;
  }
  if (ioctl(fd.get(), FITHAW, 0) != 0) fail_sys("thaw the scratch file system on {}", path_);
}

void ScratchFs::close() {
  if (closed_) return;
  closed_ = true;
  if (image_.empty()) return;
  if (options_.cache && mount_.mounted()) trim(path_);
  mount_.close();
  if (loop_) {
    auto loop = std::move(loop_);
    loop->close();
    wait_detached(image_);
  }
  if (!options_.cache && unlink(image_.c_str()) != 0 && errno != ENOENT) fail_sys("remove scratch image {}", image_);
}

uint64_t parse_size(const std::string& text, const std::string& what) {
  size_t used = 0;
  uint64_t n = 0;
  try {
    if (text.empty() || !isdigit(static_cast<unsigned char>(text[0]))) throw std::invalid_argument("number");
    n = std::stoull(text, &used);
  } catch (const std::exception&) {
    fail(Errc::kInvalidInput, "{}: '{}' is not a size (e.g. 300M, 8G)", what, text);
  }
  std::string unit = text.substr(used);
  for (char& c : unit) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB"))
    unit.resize(unit.size() - 2);
  else if (unit.size() == 2 && unit.back() == 'B')
    unit.pop_back();
  int shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : unit == "T" ? 40 : -1;
  if (shift < 0) fail(Errc::kInvalidInput, "{}: '{}' has an unknown unit (K, M, G or T)", what, text);
  if (n > (~uint64_t{0} >> shift)) fail(Errc::kInvalidInput, "{}: '{}' is too large", what, text);
  return n << shift;
}

std::vector<OptionDoc> scratch_option_docs(bool fs_choice) {
  std::vector<OptionDoc> docs;
  if (fs_choice) docs.push_back({"fs", "xfs|btrfs", "the scratch file system made when the root's own cannot clone (default xfs)"});
  docs.push_back({"size", "N[K|M|G|T]",
                  fmt::format("apparent size of a new sparse scratch image (default {}G; a cached one keeps its size)",
                              kDefaultScratchSize >> 30)});
  docs.push_back({"cache", "on|off",
                  "keep the scratch image at close and mount it again, committed snapshots intact, next time (default on)"});
  docs.push_back({"mkfs", "PATH", "the mkfs program for the scratch image (default mkfs.<fs> from PATH, /sbin, /usr/sbin)"});
  docs.push_back({"loop", "direct|buffered",
                  "how the scratch image's loop device reads and writes it: direct I/O, so that its blocks are not cached "
                  "a second time in the host's page cache (default direct; buffered, with a warning, where the work "
                  "directory's file system refuses O_DIRECT), or buffered, the kernel's default, for comparison"});
  return docs;
}

ScratchFsOptions parse_scratch_options(const std::string& backend, const BackendOptions& options,
                                       const std::string& default_fs) {
  ScratchFsOptions o;
  o.fs_type = default_fs;
  for (const auto& [k, v] : options) {
    if (k == "fs") {
      o.fs_type = v;
      try {
        fs_kind(v);
      } catch (const Error& e) {
        fail(Errc::kInvalidInput, "{} option fs: {}", backend, e.what());
      }
    } else if (k == "size") {
      o.size = parse_size(v, backend + " option size");
    } else if (k == "cache") {
      o.cache = parse_on_off(backend, k, v);
    } else if (k == "mkfs") {
      if (v.empty()) fail(Errc::kInvalidInput, "{} option mkfs needs a program", backend);
      o.mkfs = v;
    } else if (k == "loop") {
      if (v == "direct")
        o.loop_mode = LoopMode::kDirectIo;
      else if (v == "buffered")
        o.loop_mode = LoopMode::kBuffered;
      else
        fail(Errc::kInvalidInput, "{} option loop takes direct|buffered, not '{}'", backend, v);
    }
  }
  return o;
}

namespace {

Availability probe_scratch(const std::string& workdir, const std::string& name, const std::string& fs_type,
                           const FsTrial& trial) {
  if (auto why = needs_root_reason()) return {false, *why};
  try {
    ProbeDir dir(workdir, name);
    ScratchFsOptions o;
    o.fs_type = fs_type;
    o.size = fs_kind(fs_type).probe_size;
    o.cache = false;
    o.trial = trial;
    // Buffered: the mode does not decide whether the backend works (the block size is the
    // same), and a fallback warning belongs to the backend's own attach, in the mode asked for.
    o.loop_mode = LoopMode::kBuffered;
    ScratchFs fs(path_join(dir.path(), "root"), o);
    std::string what = fs.image().empty()
                           ? fmt::format("trial on the work directory's own {}", fs.host_fs())
                           : fmt::format("trial on a scratch {} on a loop device ({} cannot serve)", fs_type, fs.host_fs());
    fs.close();
    return {true, what};
  } catch (const Error& e) {
    return {false, e.what()};
  }
}

}  // namespace

ScratchStoreSnapshotter::ScratchStoreSnapshotter(std::unique_ptr<ScratchFs> scratch)
    : StoreSnapshotter(scratch->path()), scratch_(std::move(scratch)) {}

std::vector<Mount> ScratchStoreSnapshotter::mounts_of(const Record& r, const std::vector<Record>&) {
  return {Mount{"bind", fs_dir(r.id), {r.info.kind == Kind::kView ? "ro" : "rw", "rbind"}}};
}

Usage ScratchStoreSnapshotter::usage_of(const Record& r, const std::vector<Record>&) {
  ExtentUsage u = extent_usage(fs_dir(r.id));
  return Usage{static_cast<int64_t>(u.exclusive_bytes), static_cast<int64_t>(u.inodes),
               static_cast<int64_t>(u.shared_bytes)};
}

int64_t ScratchStoreSnapshotter::distinct_of(const std::vector<Record>& rs) {
  std::vector<std::string> dirs;
  for (const auto& r : rs) dirs.push_back(fs_dir(r.id));
  return static_cast<int64_t>(distinct_extent_bytes(dirs));
}

void ScratchStoreSnapshotter::close_storage() { scratch_->close(); }

BackendSpec scratch_backend_spec(ScratchBackend backend) {
  BackendSpec spec;
  spec.name = backend.name;
  spec.description = backend.description;
  spec.caps = Capabilities{Granularity::kExtent, false, true, backend.host_needs};
  spec.caps.disk_sharing = "extent";  // clones share blocks; each clone's files are inodes of their own,
  spec.caps.cache_sharing = "none";   // cached apart
  spec.options = scratch_option_docs(backend.fs_choice);
  spec.probe = [name = backend.name, fs = backend.default_fs, trial = backend.trial](const std::string& workdir) {
    return probe_scratch(workdir, name, fs, trial);
  };
  BackendSpec doc;  // what check_options reads: the name and the documented options
  doc.name = backend.name;
  doc.options = spec.options;
  spec.create = [b = std::move(backend), doc = std::move(doc)](const std::string& root, const BackendOptions& given) {
    check_options(doc, given);
    ScratchFsOptions o = parse_scratch_options(b.name, given, b.default_fs);
    o.trial = b.trial;
    return b.open(std::make_unique<ScratchFs>(root, std::move(o)));
  };
  return spec;
}

}  // namespace cowbench::snap
