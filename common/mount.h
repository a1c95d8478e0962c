// Mount descriptions (as containerd's mount.Mount) and the code that performs and undoes them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cowbench {

// A mount a snapshotter asks for; mounting it is the caller's job, so that mount cost is
// timed apart from snapshot cost.
//   type "overlay": options lowerdir=A:B (nearest parent first; "A::D" adds D as a data-only
//                   lower layer, Linux 6.5+), upperdir=, workdir=, any
//                   overlay option (metacopy=on, index=off, volatile, ro ...)
//   type "bind":    source is a directory; options may hold "ro" and "rbind"
//   type "fuse3.fuse-overlayfs", "fuse.unionfs-fuse": runs the fuse-overlayfs or unionfs-fuse
//                   daemon (common/fuse_mount.h)
//   any other type: passed to mount(2) with the options joined by commas (flags such as
//                   "ro", "nosuid", "nodev", "noexec" become mount flags)
struct Mount {
  std::string type;
  std::string source;
  std::vector<std::string> options;

  bool operator==(const Mount&) const = default;
};

// Of an overlay's options, those that decide how its lower layers read rather than how its
// upper one is written: metacopy= (a lower file marked metacopy reads its data from the layer
// below only with metacopy=on) and redirect_dir= (directories renamed by a mount with
// redirect_dir=on). A read-only overlay of layers made with them must be mounted with them too.
std::vector<std::string> lower_layer_options(const std::vector<std::string>& options);

// "type source opt1,opt2" for logs and error messages.
std::string to_string(const Mount& m);

// Mounts every element of `mounts` on `target`, in order (later ones stack on earlier
// ones). Overlay mounts use the new mount API (fsopen/fsconfig) and pass each lower layer
// with "lowerdir+" where the kernel has it, so that hundreds of layers mount; the kernel's
// own message (from the fs context log) is in the error. On failure nothing stays mounted.
void mount_all(const std::vector<Mount>& mounts, const std::string& target);

// Unmounts `target`. A busy mount is retried briefly, then lazily detached (MNT_DETACH);
// an unmounted target is not an error. Throws on other failures.
void unmount(const std::string& target);

// Every mount point at or below `path` (from /proc/self/mountinfo), deepest first.
std::vector<std::string> mounts_under(const std::string& path);

// One line of /proc/self/mountinfo.
struct MountEntry {
  std::string mount_point;    // unescaped ("\040" is a space)
  std::string fs_type;
  std::string source;         // unescaped
  std::string options;        // per-mount options (rw, noatime, ...)
  std::string super_options;  // the filesystem's options
  // The super block's device (field 3, "major:minor"): on btrfs not the st_dev of the
  // files, which is per subvolume.
  unsigned dev_major = 0;
  unsigned dev_minor = 0;
};
// Parses mountinfo text (proc(5)), one entry per well-formed line, in mount order.
std::vector<MountEntry> parse_mountinfo(std::string_view text);
// Of `mounts`, the one holding the absolute, resolved path `real_path`: the longest mount
// point that is a prefix of it, the last such in mount order; an empty entry when none is.
MountEntry mount_holding(const std::vector<MountEntry>& mounts, const std::string& real_path);
// The mount holding `path` (resolved with realpath), from /proc/self/mountinfo; an empty entry
// when it cannot be read. Throws kFailure with the errno when the path cannot be resolved
// (ENOENT: it does not exist).
MountEntry mount_of(const std::string& path);

// Owns mounts on a target directory: mounts in the constructor, unmounts in the destructor.
class ScopedMount {
 public:
  ScopedMount() = default;
  ScopedMount(const std::vector<Mount>& mounts, std::string target);
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;
  ScopedMount(ScopedMount&& o) noexcept;
  ScopedMount& operator=(ScopedMount&& o) noexcept;
  ~ScopedMount();

  const std::string& target() const noexcept { return target_; }
  bool mounted() const noexcept { return layers_ > 0; }
  // Unmounts now; throws on failure (the destructor only logs).
  void close();

 private:
  std::string target_;
  size_t layers_ = 0;
};

}  // namespace cowbench
