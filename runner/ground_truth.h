// Ground truth for copy-up: what the writable layer of a finished container actually holds.
#pragma once

#include <time.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/copyup_kinds.h"
#include "common/mount.h"

namespace cowbench {

// The regular files of the image below a container: absolute path inside it → size.
using LowerFiles = std::map<std::string, int64_t>;

struct CopyupTruth {
  int64_t files = 0;  // regular files copied up (file-granular; 0 for the others: BlockCowTruth)
  int64_t bytes = 0;  // bytes copied: their lower size (the upper size for a renamed file); none for a
                      // file copied up metadata-only
  int64_t metadata_only = 0;  // of `files`, those copied up metadata-only (overlay metacopy=on:
                              // trusted.overlay.metacopy, no data bytes)
  int64_t dropped = 0;  // of `files`, lower files copied up and then deleted, gone from the upper
                        // again (deleted_copyups(): backends that copy a file up to delete it)
  int64_t cloned = 0;        // of `files`, those whose data was cloned: the upper file shares data
                             // extents with its lower file (FIEMAP, see file_copyups)
  int64_t cloned_bytes = 0;  // of `bytes`, those files' bytes
};

// The copy-ups by kind: cloned, metadata only, and the rest (data copied).
CopyupKinds kinds_of(const CopyupTruth& t);

// The directory that receives a container's writes, read off its mounts: the overlay
// upperdir (kernel or FUSE), else the bind mount's source. Empty if there is none.
std::string writable_dir(const std::vector<Mount>& mounts);

// File-granular backends: the regular files of `upper` that came from a lower layer — they
// carry an origin xattr set at copy-up and kept by renames (trusted.overlay.origin; for
// fuse-overlayfs user.fuseoverlayfs.origin) or sit at a path that exists below (`lower`).
// Bytes: the origin's size — fuse-overlayfs's origin is a path; the kernel's is a file handle,
// opened on the file system of the nearest of `lowers` when given — else the lower size at
// the path, else the upper size. Kinds: metadata only when the upper file carries
// trusted.overlay.metacopy; cloned when an extent of it flagged FIEMAP_EXTENT_SHARED lies on
// disk within an extent of its lower file (the origin, else the file at its path in the
// nearest of `lowers` that has one; any shared extent when neither opens); else data copied.
// A clone rewritten whole since shares nothing any more and counts as copied. Known overcount: a file made new and renamed over a lower
// path (dpkg's status) counts as a copy-up.
//
// unionfs-fuse (`meta_dir`: its whiteout directory, unionfs_meta_dir()) records no origin: a
// lower file it copied up and the container renamed is a file at a path not below that
// matches a lower file its whiteouts hide (<meta_dir>/<path>_HIDDEN~ hides <path> and what is
// below it) in size and in mtime — its copy-up sets the copy's mtime to the lower file's in
// whole seconds (utime), so the copy's nanoseconds are 0 (the lower mtime is read from
// `lowers`, nearest first; without them size alone decides). Each hidden lower file matches
// once; meta_dir itself holds no copies. Known miss: a renamed copy whose data or mtime the
// container then changed.
CopyupTruth file_copyups(const std::string& upper, const LowerFiles& lower, const std::vector<std::string>& lowers = {},
                         const std::string& meta_dir = {});

// unionfs-fuse's whiteout directory (<upperdir>/.unionfs-fuse, kUnionfsMetaDir) when `mounts` hold a unionfs-fuse
// mount with a writable branch, else "".
std::string unionfs_meta_dir(const std::vector<Mount>& mounts);

// The lower directories of a container's overlay mounts (lowerdir=, nearest first).
std::vector<std::string> lower_dirs(const std::vector<Mount>& mounts);

// For backends that copy a lower file up before they delete it (fuse-overlayfs: its unlink
// brings the file into the upper, then renames it away leaving a whiteout): the lower regular
// files the container deleted, as the upper shows them — hidden by a whiteout at their path or
// at a parent's (a character device 0:0, or a `.wh.NAME` file), or below a directory made
// opaque, with nothing at their own path, and not renamed (no upper file names them in its
// user.fuseoverlayfs.origin, which holds the lower path; the kernel overlay's origin is a file
// handle, so there a renamed file counts as deleted). files = dropped = their number, bytes =
// their lower sizes.
CopyupTruth deleted_copyups(const std::string& upper, const LowerFiles& lower);

// Adds `more` into `into`, field by field.
void add(CopyupTruth& into, const CopyupTruth& more);

// Extent-granular backends (reflink, btrfs) copy no file up: block CoW instead.
//
// What a lower file of the container's writable tree inherited from the parent: right after
// prepare the tree is the parent's clone (a FICLONE of every file, a btrfs snapshot), so its
// inode, size and data extents are the parent's data as the container got it, all of it shared.
struct InheritedFile {
  uint64_t ino = 0;
  uint32_t generation = 0;  // FS_IOC_GETVERSION (0 when the file system has none)
  int64_t size = 0;
  uint64_t block = 4096;  // st_blksize: the inherited end is the size rounded up to it
  std::vector<std::pair<uint64_t, uint64_t>> data;  // [start, end) with data (FIEMAP), below the inherited end
  struct timespec ctime {};  // st_ctim as inherited: a file it still has was not written since
};
using InheritedExtents = std::map<std::string, InheritedFile>;  // path inside the container → file

// Reads the lower files (`lower`) of the writable tree `root` as inherited: call it after
// prepare and before the container starts. Files that are not regular there are left out.
InheritedExtents inherited_extents(const std::string& root, const LowerFiles& lower);

struct BlockCowTruth {
  int64_t files = 0;        // inherited files with CoW or new data
  int64_t cow_extents = 0;  // their extents of their own (FIEMAP, not shared) over inherited data
  int64_t cow_bytes = 0;    // the bytes of those extents over inherited data: shared data rewritten
  int64_t new_extents = 0;  // their extents of their own beyond the inherited end or in its holes
  int64_t new_bytes = 0;    // ... and those bytes: new data, not CoW
};

// Block CoW of the container's tree `root` after its run, file by file against `before`
// (inherited_extents() of the same tree): the extents a lower file now has of its own (FIEMAP
// without the shared flag, up to its size rounded up to a block), split at the inherited data —
// over it is CoW, beyond the inherited end or in a hole new data. A file whose ctime is still
// the inherited one was not written (every data write, mmap stores and direct I/O included,
// updates it; on Linux 6.13+ the stat that read it makes the next update a new value, and before
// that the hygiene ahead of the run outlasts a timestamp tick), so its extents are not read
// again. The parent's own copy is not
// read: after the write its blocks may be its alone, so its shared flag no longer tells what the
// child shared. Left out: files deleted, or replaced by another inode (a rename over them: a new
// file); data btrfs keeps inline in metadata (never flagged shared, so small inline files are not
// seen); preallocated extents (FIEMAP_EXTENT_UNWRITTEN: no data was written).
BlockCowTruth extent_cow(const std::string& root, const InheritedExtents& before);

}  // namespace cowbench
