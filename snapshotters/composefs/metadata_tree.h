// The composefs backend's metadata trees: a snapshot's whole file tree with every regular file
// a sparse stub that points at its content in the object store.
#pragma once

#include <string>
#include <vector>

#include "snapshotters/composefs/object_store.h"

namespace cowbench::snap::composefs {

// The overlay xattrs of a stub (trusted.overlay.metacopy, empty; trusted.overlay.redirect,
// "/ab/cdef…": its object in a data-only lower layer).
inline constexpr const char* kMetacopyXattr = "trusted.overlay.metacopy";
inline constexpr const char* kRedirectXattr = "trusted.overlay.redirect";

struct BuildStats {
  uint64_t stubs = 0;       // regular files made stubs from the upper's data
  uint64_t metacopies = 0;  // metadata-only copy-ups of the upper made stubs of the parent's object
  uint64_t whiteouts = 0;   // deletions applied
};

// Builds the flattened metadata tree of a committed snapshot in `out` (an existing, empty
// directory): the parent's metadata tree `parent` ("" for none) with the snapshot's changes
// `changes` applied — an overlay upper directory written through a mount whose lower layers
// were `parent` and the objects, or, without a parent, the snapshot's plain tree. Overlay
// semantics are resolved here, so that the result reads as one layer: whiteouts (0/0 character
// devices) delete, opaque directories replace, redirected (renamed) directories take the
// parent's tree at their redirect, a metadata-only copy-up (trusted.overlay.metacopy) keeps the
// parent's object under the upper's attributes, and trusted.overlay.* bookkeeping (origin,
// impure, ...) is dropped. Every other regular file with data goes into the store through
// `batch` (linked, not copied: once the batch is published those inodes are the store's, and
// the caller removes `changes`) and becomes a stub:
// sparse, of the file's size, with the metacopy and redirect xattrs. Empty files stay plain
// empty files (they need no object). Modes, owners, times (ns), xattrs, symlinks, hard links,
// device nodes and fifos are kept. Throws cowbench::Error naming the path that failed; a
// partial `out` is the caller's to remove.
BuildStats build_metadata_tree(const std::string& parent, const std::string& changes, const std::string& out,
                               ObjectStore::Batch& batch);

// The objects a metadata tree refers to, each once, sorted by digest; a stub whose redirect
// is not an object of the store's layout is kInvalidInput naming it.
std::vector<ObjectRef> tree_objects(const std::string& meta);

}  // namespace cowbench::snap::composefs
