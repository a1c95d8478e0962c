// EROFS images: made from a directory with mkfs.erofs, checked, mounted read-only (file-backed or on a loop device), and the host probe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/loop.h"
#include "common/mount.h"
#include "snapshotters/registry.h"

namespace cowbench::snap {

// The mkfs.erofs program: `program` when given (a path or a name), else mkfs.erofs from PATH,
// /sbin or /usr/sbin; nullopt when there is none.
std::optional<std::string> find_mkfs_erofs(const std::string& program = "");

// Makes the EROFS image `out_file` of the tree `source_dir` with mkfs.erofs (erofs-utils 1.5
// and later): uncompressed, every file's own mtime kept (--preserve-mtime), owners and modes
// as they are, every extended attribute kept (trusted.overlay.* included: opaque directories,
// redirects, metacopy), device nodes kept as they are — an overlay whiteout (a character
// device 0:0) stays a whiteout. mkfs writes OUT_FILE.tmp, which is renamed over `out_file`
// only once mkfs succeeded; on failure nothing is left. Returns the image's size in bytes.
// Throws kUnsupported when mkfs.erofs is missing (naming the package, erofs-utils), kFailure
// with mkfs's own words when it fails. `mkfs`: as find_mkfs_erofs's `program`.
//
// `files` = kStubs: the tree's regular files are metacopy stubs whose data is never read from
// the image (overlayfs reads it from a data-only layer), holes only: they are compressed (lz4,
// 1 MiB physical clusters, tails packed into the inode) so that a hole costs an index entry,
// not blocks. mkfs.erofs 1.5 stores holes as data: uncompressed, a 1 GiB stub takes 1 GiB; as
// chunk-based files (--chunksize) every stub whose size is not a multiple of the chunk still
// takes a block of its own (a 2018-file tree of stubs, 81 MB in all: 6.8 MB at 4 KiB chunks,
// 22.5 MB at 64 KiB); compressed, the same tree makes a 0.9 MB image, and a 1 GiB stub 4.8 MB
// in 0.25 s (measured with erofs-utils 1.5 on the development VM). Mounting such an image needs
// the kernel's EROFS decompression (CONFIG_EROFS_FS_ZIP, on by default).
enum class ErofsFiles { kData, kStubs };
uint64_t build_erofs_image(const std::string& source_dir, const std::string& out_file, const std::string& mkfs = "",
                           ErofsFiles files = ErofsFiles::kData);

// Checks `image` before it is mounted: the EROFS magic at byte 1024, a block size the
// kernel mounts (512 B .. 64 KiB) and a file that holds every block its superblock counts
// (the kernel mounts a truncated image and fails its reads later, with EIO). Throws
// kInvalidInput naming the image and what is wrong (kNotFound when it does not exist).
void check_erofs_image(const std::string& image);

// How an EROFS image reaches the kernel.
//  - kFile: file-backed (Linux 6.12+, CONFIG_EROFS_FS_BACKED_BY_FILE): mount(2) with the
//    image file itself as the source, no block device in between;
//  - kLoop: a loop device over the image (LoopDevice, direct I/O where the work directory's
//    file system allows it), for kernels that want a block device.
enum class ErofsSource { kFile, kLoop };
// "file" or "loop".
const char* erofs_source_name(ErofsSource s) noexcept;

// An EROFS image mounted read-only on a directory; unmounted (and its loop device detached)
// when the object dies.
class ErofsMount {
 public:
  // Checks the image (check_erofs_image), then mounts it read-only on `mountpoint` (an
  // existing directory): file-backed where the kernel takes a file as the source, else on a
  // loop device. Which way worked is remembered for the process, so a kernel without
  // file-backed mounts is asked once. Throws kInvalidInput for a bad image (naming it),
  // kUnsupported when the kernel has no EROFS (or no loop devices), kFailure naming the image
  // and the kernel's reason otherwise. On failure nothing stays mounted or attached.
  ErofsMount(const std::string& image, const std::string& mountpoint);
  ErofsMount(const ErofsMount&) = delete;
  ErofsMount& operator=(const ErofsMount&) = delete;
  ~ErofsMount();

  const std::string& image() const noexcept { return image_; }
  const std::string& mountpoint() const noexcept { return mount_.target(); }
  ErofsSource source() const noexcept { return source_; }
  // The loop device (kLoop), else empty.
  std::string loop_device() const { return loop_ ? loop_->path() : std::string(); }
  // "file-backed" or "loop device /dev/loopN (direct-io)": how it is mounted, for logs and reasons.
  std::string how() const;

  // Unmounts and detaches now; throws on failure (the destructor only logs). A second call is a no-op.
  void close();

 private:
  std::string image_;
  ErofsSource source_ = ErofsSource::kFile;
  std::unique_ptr<LoopDevice> loop_;
  ScopedMount mount_;
};

// Whether EROFS layer images work under `workdir`: CAP_SYS_ADMIN; EROFS in the kernel
// (/proc/filesystems, else a loadable module erofs.ko under /lib/modules/`uname -r`); mkfs.erofs
// (`mkfs` as find_mkfs_erofs's `program`); then a trial: an image of a tiny tree holding a file
// with an xattr and an overlay whiteout, mounted (ErofsMount), read back and unmounted. The
// reason says what is missing, or how images mount here ("file-backed", "loop device").
// Leaves nothing behind.
Availability probe_erofs(const std::string& workdir, const std::string& mkfs = "");

}  // namespace cowbench::snap
