// Mounting FUSE daemons (fuse-overlayfs, unionfs-fuse): the daemon as an owned child, its lifetime tied to the mount, dead daemons named.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/fd.h"
#include "common/mount.h"

namespace cowbench {

// The Mount::type of a fuse-overlayfs mount (as containerd names it); the kernel shows it
// as "fuse.fuse-overlayfs".
inline constexpr const char* kFuseOverlayfsType = "fuse3.fuse-overlayfs";

// The Mount::type of a unionfs-fuse mount; the kernel shows it as "fuse.unionfs-fuse" too.
inline constexpr const char* kUnionfsFuseType = "fuse.unionfs-fuse";

// unionfs-fuse 1.0's metadata directory at the top of each branch, where its whiteouts live:
// <branch>/.unionfs-fuse/<path>_HIDDEN~ (its manual, and later versions, say ".unionfs").
inline constexpr const char* kUnionfsMetaDir = ".unionfs-fuse";

// The environment variables that override the programs (an executable path).
inline constexpr const char* kFuseOverlayfsEnv = "COWBENCH_FUSE_OVERLAYFS";
inline constexpr const char* kUnionfsFuseEnv = "COWBENCH_UNIONFS_FUSE";

// True for the Mount types that mount_fuse() serves with a daemon of its own.
bool is_fuse_daemon_type(std::string_view type) noexcept;

// The fuse-overlayfs program to run: $COWBENCH_FUSE_OVERLAYFS when set, else the first
// executable "fuse-overlayfs" in $PATH. Throws kUnsupported "fuse-overlayfs not installed
// (apt-get install fuse-overlayfs)" or, for a bad override, naming the variable and path.
std::string fuse_overlayfs_binary();

// The unionfs-fuse program: $COWBENCH_UNIONFS_FUSE when set, else the first executable
// "unionfs-fuse" or "unionfs" (Debian installs both names) in $PATH. Errors as above
// ("unionfs-fuse not installed (apt-get install unionfs-fuse)").
std::string unionfs_fuse_binary();

// Where a FUSE daemon creates the files of its copy-ups, for the tracer: a copy-up is a
// regular file its daemon creates (open with O_CREAT that made it) below `dir` while it
// serves the container.
struct FuseCopyupSite {
  std::string dir;
  // 0: at any depth below dir; n > 0: exactly n levels below (fuse-overlayfs: 2, the files
  // are created in <workdir>/work/ and renamed into place).
  int depth = 0;
  // A top-level entry of `dir` whose files are not copies (unionfs-fuse's kUnionfsMetaDir,
  // where its whiteouts live); empty for none.
  std::string skip_top;
  // The daemon creates the container's new files at their final place below `dir` too
  // (unionfs-fuse): creates while it serves FUSE_CREATE or FUSE_MKNOD are not copy-ups.
  bool new_files_there = false;
};

// The copy-up site of a FUSE daemon mount (is_fuse_daemon_type(m.type)) with a writable
// layer; nullopt for other mounts and for read-only ones.
std::optional<FuseCopyupSite> fuse_copyup_site(const Mount& m);

// Opens /dev/fuse read-write (close-on-exec); throws kUnsupported "/dev/fuse: <why>".
Fd open_fuse_device();

// Mounts a FUSE daemon's file system on `target` (called by mount_all for the Mount types
// is_fuse_daemon_type() names): fuse-overlayfs as below; unionfs-fuse as its own section says.
//
// fuse-overlayfs (kFuseOverlayfsType). m.options: lowerdir= (required, nearest first), upperdir=, workdir= and any other
// fuse-overlayfs option, passed to the program with -o; "ro", "rw", "nosuid" and "noexec"
// are mount flags instead. Without upperdir the mount is read-only.
//
// How: this process opens /dev/fuse and mounts it on `target` itself (in this process's
// mount namespace, with default_permissions,allow_other,nodev,noatime as fuse-overlayfs would),
// then runs `fuse-overlayfs -f -o OPTS /dev/fd/3` as a child that it owns, and returns once
// the daemon has answered its first request. Layer paths are passed relative to their
// common directory (the daemon's working directory) so that thousands of layers fit in one
// argument. When this process is a container's init (pid 1 of a pid namespace, as in
// run_in_sandbox) or visibly not in the host's mount namespace, the daemon gets a mount
// namespace of its own (a slave copy, its copy of this mount detached), so that the
// container's pivot_root cannot re-root it onto its own mount: fuse-overlayfs resolves
// absolute paths (the upper dir, /proc/self/fd) while it serves. Elsewhere it shares this
// process's namespace, so that no copy of the namespace pins the host's other mounts.
// Lifetime: the kernel ends the connection at unmount and the daemon exits (unmount()
// reaps it); in a container it dies with the pid namespace; a mount left up when this
// process exits keeps its daemon in its own session (cowbench gc unmounts it). The daemon
// alone holds the FUSE fd, so a daemon that dies makes the mount fail (ENOTCONN), not hang.
//
// unionfs-fuse (kUnionfsFuseType). m.options: lowerdir= (the read-only branches, nearest
// first), upperdir= (the one writable branch, on top; none for a read-only view) and the
// daemon's own options (cow, hide_meta_files, max_files=N, statfs_omit_ro, and libfuse's:
// direct_io, kernel_cache, attr_timeout=S ...), passed with -o; "ro", "rw", "nosuid" and
// "noexec" go to libfuse as mount flags. Debian's unionfs-fuse 1.0 is a libfuse 2 program,
// which cannot be handed a mounted /dev/fuse fd: the daemon (a child this process owns, as
// above) mounts `target` itself (as root libfuse 2 calls mount(2) directly), in this process's
// mount namespace, which it shares. So that a container's pivot_root does not re-root it, it
// starts in the branches' common directory with -o chroot=./ (it chroots there once it has
// mounted, and a pivot_root moves only the processes whose root or cwd is the old root) and
// gets its branches as paths inside that directory. Returns once the mount is there and has
// answered a request.
//
// Errors (both): kUnsupported (no program, no /dev/fuse, no FUSE in the kernel), kInvalidInput
// (no lowerdir; an option fuse-overlayfs ignores; a branch path unionfs-fuse cannot parse),
// kFailure (the daemon exited or did not answer within a timeout: its exit status and stderr
// are in the message). On failure nothing stays mounted and no daemon runs.
void mount_fuse(const Mount& m, const std::string& target);

// Called by unmount(target) once the mount is gone: waits briefly for the daemons of the
// fuse mounts this process made on `target` to exit (the kernel ends their connection at
// unmount), kills those that do not, and reaps them together with any other daemon whose
// mount is gone. Never throws.
void release_fuse_daemons(const std::string& target) noexcept;

// Why the FUSE mount on `target` (its mount point as this process sees it now, e.g. "/"
// inside a container) no longer serves, or nullopt while it does. A daemon that died makes
// every operation on its mount fail with ENOTCONN; this names the daemon, how it ended
// (exit status or signal) and the tail of its stderr when this process started it.
std::optional<std::string> fuse_mount_failure(const std::string& target);

// Throws Error(kFailure, fuse_mount_failure(target), ENOTCONN) when the mount is dead.
void check_fuse_mount(const std::string& target);

}  // namespace cowbench
