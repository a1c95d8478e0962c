// The composefs backend: the composefs model built by cowbench itself — file contents once in a
// content-addressed object store, per-snapshot metadata trees of sparse metacopy/redirect stubs,
// mounted as overlayfs data-only lower layers.
#pragma once

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "composefs" to the registry.
//
// Layout of the backend root ROOT (the work directory's composefs directory):
//   ROOT/objects/ab/cdef…            the object store (composefs/object_store.h), shared by every
//                                    image imported into ROOT; dedupes by SHA-256
//   ROOT/snapshots/<id>/fs, work     an active snapshot's upper and work dir (a parentless one's
//                                    plain tree)
//   ROOT/snapshots/<id>/meta         a committed snapshot's metadata tree (composefs/metadata_tree.h);
//                                    in the EROFS form the mount point of
//   ROOT/snapshots/<id>/meta.erofs   the tree packed into an EROFS image
//   ROOT/snapshots/<id>/meta.build   while an EROFS-form commit runs: a tmpfs the tree is made on
//                                    before it is packed (where tmpfs keeps user.* xattrs: 6.6+)
//   ROOT/snapshots/<id>/objects      its manifest: every object the metadata tree refers to
//
// Layers map to *one flattened metadata tree per committed snapshot* (as composefs makes one
// image per container root file system), not one tree per layer stacked as META1:META2:…: a
// commit copies the parent's metadata tree (stubs only, no data) and applies the layer's
// upper to it, resolving whiteouts, opaque and renamed directories and metadata-only copy-ups.
// So every mount has exactly two lower layers whatever the chain's depth (the 500-layer limit of
// overlayfs never applies, and a lookup never walks N layers), the metadata of each image is
// whole and self-contained (what the EROFS form packs into one image), and identical files in
// any layer or image resolve to one object: one inode, one copy on disk, one in the page cache.
// The price: a commit costs a copy of the parent's metadata (O(files), no data), and N layers
// hold N metadata trees (sparse files: inodes, no data blocks).
//
// Mounts: a parentless snapshot is a bind mount of its fs dir (ro for a view); on a parent P
// an active snapshot mounts
//   overlay lowerdir=<P's meta>::ROOT/objects,upperdir=fs,workdir=work,metacopy=on,redirect_dir=on
// (ROOT/objects a data-only lower layer, Linux 6.5+), a view the same without upper and work
// (read-only). Copy-ups happen in the upper as on overlayfs: a chmod/chown/utimes copies
// metadata only, the first write the data (from the object).
//
// Integrity policy (option verify): every object a commit stores is hashed on the way in (its
// name is its digest); a commit that finds its digest already stored checks the stored one's
// size (and its content when its mtime stamp moved). The first prepare or view on a committed
// P after the backend opens (in `cowbench run`: the image listing's view, before any
// measurement) checks every object P's manifest names: verify=stat (the default) stats each
// (missing, wrong size or a moved mtime stamp followed by a wrong digest is an error),
// verify=digest hashes each; later prepares on P trust that check while the backend stays open
// (the store changes only through it), so containers do not pay a stat per object each. A
// damaged store is kInvalidInput (exit 2) naming the object and its digest, and nothing is left
// mounted or created.
//
// Durability (option sync): as the other backends, layer data is not synced by default (a
// crash can leave an object short: the size check finds it); sync=on adds one syncfs per commit
// before its objects get their names. The snapshot records are always written durably.
//
// Forms of the metadata trees (option metadata): erofs, the default where EROFS images work
// here (probe_erofs_metadata), packs each committed tree with mkfs.erofs into meta.erofs (its
// stubs compressed, so that a hole costs an index entry, not zero blocks: ErofsFiles::kStubs) and
// mounts it read-only on meta when a mount or commit first needs it, until the snapshot is
// removed or the backend closes — one image file per layer on disk, as composefs ships;
// dir keeps the tree as a directory of sparse stubs (an inode each). The form is a snapshot's
// own, told by its files, so a root made in one form opens in the other.
void register_composefs(Registry& registry);

// The trial behind availability: trusted xattrs on `workdir`'s file system, then an overlay
// with a data-only lower layer (metacopy=on), read back through it and appended to (the data
// copied up). Needs root; leaves nothing behind.
Availability probe_composefs(const std::string& workdir);

// Whether metadata trees can be EROFS images here (option metadata=erofs): probe_erofs, then
// the same trial with the tree packed as commits pack it (compressed stubs) and mounted.
Availability probe_erofs_metadata(const std::string& workdir);

}  // namespace cowbench::snap
