// Mounting fuse-overlayfs: the daemon as an owned child, its lifetime tied to the mount, dead daemons named.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/fd.h"
#include "common/mount.h"

namespace cowbench {

// The Mount::type of a fuse-overlayfs mount (as containerd names it); the kernel shows it
// as "fuse.fuse-overlayfs".
inline constexpr const char* kFuseOverlayfsType = "fuse3.fuse-overlayfs";

// The environment variable that overrides the fuse-overlayfs program (an executable path).
inline constexpr const char* kFuseOverlayfsEnv = "COWBENCH_FUSE_OVERLAYFS";

// The fuse-overlayfs program to run: $COWBENCH_FUSE_OVERLAYFS when set, else the first
// executable "fuse-overlayfs" in $PATH. Throws kUnsupported "fuse-overlayfs not installed
// (apt-get install fuse-overlayfs)" or, for a bad override, naming the variable and path.
std::string fuse_overlayfs_binary();

// Opens /dev/fuse read-write (close-on-exec); throws kUnsupported "/dev/fuse: <why>".
Fd open_fuse_device();

// Mounts fuse-overlayfs on `target` (called by mount_all for Mount::type kFuseOverlayfsType).
// m.options: lowerdir= (required, nearest first), upperdir=, workdir= and any other
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
// Errors: kUnsupported (no program, no /dev/fuse, no FUSE in the kernel), kInvalidInput (no
// lowerdir; an option fuse-overlayfs ignores), kFailure (the daemon exited or did not answer
// within a timeout: its exit status and stderr are in the message). On failure nothing stays
// mounted and no daemon runs.
void mount_fuse_overlayfs(const Mount& m, const std::string& target);

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
