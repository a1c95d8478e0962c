// The composefs backend's content-addressed object store: file contents stored once, by digest.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace cowbench::snap::composefs {

// One object a metadata tree refers to: its SHA-256 (64 hex digits) and size in bytes.
struct ObjectRef {
  std::string hex;
  uint64_t size = 0;

  bool operator==(const ObjectRef&) const = default;
};

// How much a check of referenced objects reads (the backend option verify=).
enum class VerifyMode {
  // Each object must exist as a regular file of the recorded size and still carry the store's
  // mtime stamp (kObjectMtime, set when it was stored; a write to it by hand moves it); an
  // object whose stamp moved is hashed, and fails when its content no longer matches its name.
  // Costs one stat per object.
  kStat,
  // Every object is hashed (reads all its data): damage that kept size and mtime is found too.
  kDigest,
};

// The store lays objects out as DIR/ab/cdef… (the digest's first two hex digits name a
// sub-directory): the layout an overlay data-only lower layer is addressed with, so that a
// metadata file's trusted.overlay.redirect is "/ab/cdef…". Objects are read-only (0444, root,
// no xattrs, mtime kObjectMtime); a metadata tree carries every file attribute.
//
// New objects come in through a Batch (one per commit): each file is hashed and hard-linked
// into DIR/.staging/ (its data is not copied: it is the file the layer wrote), or left alone
// when the store already has its digest (dedupe, shared by every image imported into the
// store); publish() normalises the staged objects and makes them durable (one syncfs, with
// `sync`) before it renames them to their names, so that with sync a crash never leaves a named object
// with content it does not have, and a failed commit leaves its upper as it was.
//
// Objects are reference-counted by the snapshots that hold them (hold/release, from the
// snapshots' manifests); release deletes an object no snapshot holds any more. Thread-safe.
class ObjectStore {
 public:
  // The mtime every stored object carries: an object whose mtime differs was written to.
  static constexpr int64_t kObjectMtime = 0;

  // Creates DIR (and DIR/.staging) if missing; removes what a killed commit left staged.
  ObjectStore(std::string dir, bool sync);
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  const std::string& dir() const noexcept { return dir_; }
  // DIR/ab/cdef….
  std::string path_of(const std::string& hex) const;
  // "/ab/cdef…": the object's path inside the store, as trusted.overlay.redirect names it.
  static std::string redirect_of(const std::string& hex);
  // The digest behind a redirect written by redirect_of; empty when `redirect` is not one.
  static std::string hex_of_redirect(const std::string& redirect);

  class Batch {
   public:
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    // Removes what was staged and never published.
    ~Batch();

    // Takes the regular file `name` in directory `dirfd` (its data): hashes it, and links it
    // into the staging area when the digest is new (publish() then changes the inode's owner,
    // mode, xattrs and mtime: the caller must have read them); nothing when the store (or this
    // batch) already has it. An existing object of that
    // digest with another size, or whose mtime stamp moved and whose content no longer hashes
    // to its name, is a damaged store: kInvalidInput naming it.
    ObjectRef add(int dirfd, const std::string& name, const std::string& what);
    // New objects (not deduplicated) and their bytes, so far.
    uint64_t new_objects() const noexcept { return staged_.size(); }
    uint64_t new_bytes() const noexcept { return new_bytes_; }
    // Normalises the staged objects, makes them durable (syncfs, with sync) and renames them
    // to their names.
    void publish();

   private:
    friend class ObjectStore;
    explicit Batch(ObjectStore& store) : store_(&store) {}
    ObjectStore* store_;
    std::map<std::string, std::string> staged_;  // hex → staged path
    std::map<std::string, uint64_t> sizes_;      // hex → size, of every object seen in the batch
    uint64_t new_bytes_ = 0;
    uint64_t seq_ = 0;
  };
  Batch batch() { return Batch(*this); }

  // Checks that every object in `refs` is in the store with its content (see VerifyMode).
  // Throws kInvalidInput naming the first bad object (its path and digest) and what is wrong
  // with it ("missing", "is 5 bytes, not 12", "content does not match its digest").
  void verify(const std::vector<ObjectRef>& refs, VerifyMode mode, const std::string& what) const;

  // A snapshot holds `refs` (each digest once) / no longer holds them; release deletes the
  // objects that nothing holds any more.
  void hold(const std::vector<ObjectRef>& refs);
  void release(const std::vector<ObjectRef>& refs);
  // Deletes every object nothing holds (what a killed commit or remove left); returns how many.
  uint64_t sweep();
  // Allocated bytes and count of the objects in the store.
  struct Totals {
    uint64_t objects = 0, bytes = 0;
  };
  Totals totals() const;

 private:
  std::string staging_path(uint64_t seq) const;

  std::string dir_;
  bool sync_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> refs_;  // hex → snapshots holding it
  uint64_t batch_seq_ = 0;
};

// The SHA-256 hex digest of the open file `fd` from its start (reads all of it); `size` is set
// to the bytes read.
std::string hash_fd(int fd, uint64_t& size, const std::string& what);

// A manifest (the objects one metadata tree refers to): one "HEX SIZE" line each.
std::string format_manifest(const std::vector<ObjectRef>& refs);
// Throws kInvalidInput naming `what` for a malformed line.
std::vector<ObjectRef> parse_manifest(const std::string& text, const std::string& what);

}  // namespace cowbench::snap::composefs
