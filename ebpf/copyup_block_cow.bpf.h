/* Part of copyup.bpf.c (included there, after the maps and helpers): block CoW and new data on XFS and btrfs. */
/* --- block CoW ------------------------------------------------------------------------- */

/* What one written range of an inherited file turned out to be (account_range). */
struct range_ctx {
  struct cb_block_key key;
  __u64 first, last; /* blocks [first, last) of the range */
  __u64 data_end;    /* blocks below it held the inherited data (the size rounded up), but for the holes */
  __u64 hole_s[CB_MAX_HOLES], hole_e[CB_MAX_HOLES]; /* in blocks */
  __u32 holes;
  __u32 cow_source; /* a CoW event: its blocks in the inherited data are CoW; else only new data counts */
  __u64 phys;       /* the disk block the range's first block goes to (cb_block_chunk.phys) */
};

/* What account_chunk() adds up over a range. Kept in a per-CPU map, not in the loop's context:
 * the verifier tracks no values in map memory, so the loop's states converge. (Per CPU is
 * enough: the tracepoints run with preemption off, and none of them fires in an interrupt.) */
struct range_sums {
  __u64 cow, fresh_new, again; /* blocks: first rewrite of inherited data, first write of new data, seen before */
  __u64 untracked;             /* chunks counted without the once-per-block check (cow_blocks full) */
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct range_sums);
} range_scratch SEC(".maps");

/* A new cow_blocks entry's value. Global (in .bss), not on account_chunk's stack: its 264 bytes
 * there put the stack of a program, account_range() and this callback together over the
 * verifier's 512-byte limit (refused as "combined stack size of 3 calls is 592" on Linux 6.18.44). */
static struct cb_block_chunk no_blocks_seen;

/* Bits [lo, hi) of a 64-bit word, 0 <= lo <= hi <= 64. */
static __always_inline __u64 bit_range(__u64 lo, __u64 hi) {
  if (lo >= hi) return 0;
  __u64 upto = hi >= 64 ? ~0ULL : (1ULL << hi) - 1;
  return upto & ~((1ULL << lo) - 1);
}

/* Blocks [a, b) as bits of the chunk starting at block `base`. */
static __always_inline __u64 chunk_bits(__u64 a, __u64 b, __u64 base) {
  __u64 lo = a > base ? a - base : 0, hi = b > base ? b - base : 0;
  return bit_range(lo < 64 ? lo : 64, hi < 64 ? hi : 64);
}

/* One 64-block chunk of the range (a bpf_loop callback): which of its blocks are counted for
 * the first time, and as what. */
static long account_chunk(__u64 i, void *arg) {
  struct range_ctx *c = arg;
  __u64 chunk = (c->first >> 6) + i, base = chunk << 6;
  if (base >= c->last) return 1;
  __u64 mask = chunk_bits(c->first, c->last, base);
  __u64 data = chunk_bits(0, c->data_end, base);
#pragma unroll
  for (int h = 0; h < CB_MAX_HOLES; h++)
    if (h < c->holes) data &= ~chunk_bits(c->hole_s[h], c->hole_e[h], base);
  if (!c->cow_source) mask &= ~data; /* writeback of data blocks is CoW, seen by the CoW events */
  if (!mask) return 0;
  __u32 zero = 0;
  struct range_sums *sum = bpf_map_lookup_elem(&range_scratch, &zero);
  if (!sum) return 1;
  c->key.chunk = (__u32)chunk;
  struct cb_block_chunk *b = lookup_or_insert(&cow_blocks, &c->key, &no_blocks_seen);
  __u64 fresh = mask;
  if (b) {
    /* (not atomic: a file's writeback does not run on two CPUs at once) */
    fresh = mask & ~b->seen;
    b->seen |= mask;
    for (int j = 0; j < 64; j++)
      if (mask & (1ULL << j)) b->phys[j] = (__u32)(c->phys + (base + j - c->first));
  } else {
    sum->untracked++;
  }
  sum->cow += __builtin_popcountll(fresh & data);
  sum->fresh_new += __builtin_popcountll(fresh & ~data);
  sum->again += __builtin_popcountll(mask & ~fresh);
  return 0;
}

/* One ring buffer record of block CoW or new data. */
static __always_inline void cow_record(struct inode *inode, __u64 ino, __u32 dev, __u64 bytes, __u64 offset, __u32 type) {
  struct cb_event *e = bpf_ringbuf_reserve(&events, sizeof *e, 0);
  if (!e) {
    count(CB_C_LOST, 1);
    return;
  }
  __builtin_memset(e, 0, sizeof *e);
  e->ts_ns = bpf_ktime_get_ns();
  e->bytes = bytes;
  e->ino = ino;
  e->dev = dev;
  e->offset = offset;
  e->syscall = -1;
  e->type = type;
  e->extents = 1;
  fill_task(e);
  fill_names(e, inode);
  submit(e);
}

/* One written range of a file, in and out of account_range(). */
struct cb_acct {
  __u64 ino, offset, bytes;
  __u64 phys; /* disk address of offset, bytes (any unit-consistent space of the file system) */
  __u32 dev, bits, generation, cow_source;
  __u64 cow_bytes, new_bytes; /* out: what to record */
};

/* Accounts bytes [offset, offset + bytes) of a file the container wrote, as its writeback (or
 * CoW remap) reached the file system. For a file inherited from the parent (`inherited`, as
 * user space found it at begin()), each block counts once: the first time it is written, as
 * CoW when it held inherited data and as new data beyond the inherited end or in a hole;
 * later writes of it (btrfs writes every extent anew) count as rewrites. cow_source: the event
 * is a CoW (XFS remap, btrfs ordered extent); other events (XFS writeback into the data fork)
 * only add new data. A file without an entry (beyond the map's bound, or a new inode that reused
 * an inherited number) counts whole as CoW when the event is one. Sets a->cow_bytes and
 * a->new_bytes for the caller's records. A global function: the verifier checks it once, apart
 * from the programs that call it. */
__noinline int account_range(struct cb_acct *a) {
  if (!a || !a->bytes) return 0;
  struct cb_file_key k = {.ino = a->ino, .dev = a->dev};
  struct cb_inherited *in = bpf_map_lookup_elem(&inherited, &k);
  if (in && (in->flags & CB_INH_GENERATION) && a->generation != in->generation) in = NULL;
  struct cb_cow_file *f;
  if (!in) {
    if (!a->cow_source) return 0;
    count(CB_C_COW_UNSIZED, 1);
    count(CB_C_COW_EXTENTS, 1);
    count(CB_C_COW_BYTES, a->bytes);
    f = lookup_or_zero(&cow_files, &k, struct cb_cow_file);
    if (f) {
      __sync_fetch_and_add(&f->extents, 1);
      __sync_fetch_and_add(&f->bytes, a->bytes);
    }
    a->cow_bytes = a->bytes;
    return 0;
  }
  __u32 bits = a->bits;
  if (bits < 9 || bits > 16) bits = 12;
  __u64 bs = 1ULL << bits;
  struct range_ctx c = {};
  c.key.ino = a->ino;
  c.key.dev = a->dev;
  c.first = a->offset >> bits;
  c.last = (a->offset + a->bytes + bs - 1) >> bits;
  c.data_end = (in->size + bs - 1) >> bits;
  c.cow_source = a->cow_source;
  c.phys = a->phys >> bits;
  __u32 holes = in->holes;
  c.holes = holes < CB_MAX_HOLES ? holes : CB_MAX_HOLES;
#pragma unroll
  for (int h = 0; h < CB_MAX_HOLES; h++) {
    c.hole_s[h] = in->hole_start[h] >> bits;
    c.hole_e[h] = in->hole_end[h] >> bits;
  }
  __u32 zero = 0;
  struct range_sums *sum = bpf_map_lookup_elem(&range_scratch, &zero);
  if (!sum) return 0;
  __builtin_memset(sum, 0, sizeof *sum);
  __u64 chunks = ((c.last - 1) >> 6) - (c.first >> 6) + 1;
  const __u64 max_chunks = 1 << 16; /* 4M blocks (16 GiB of 4 KiB blocks) per event */
  bpf_loop(chunks < max_chunks ? (__u32)chunks : (__u32)max_chunks, account_chunk, &c, 0);
  struct range_sums t = *sum;
  if (chunks > max_chunks) {
    /* The rest of a huge event: by position only (holes and the once-per-block check left out). */
    __u64 from = ((c.first >> 6) + max_chunks) << 6;
    __u64 data_to = c.data_end < c.last ? c.data_end : c.last;
    __u64 cow = data_to > from ? data_to - from : 0;
    if (c.cow_source) t.cow += cow;
    t.fresh_new += (c.last - from) - cow;
    t.untracked += chunks - max_chunks;
  }
  if (t.untracked) count(CB_C_BLOCKS_UNTRACKED, t.untracked);
  if (t.again) count(CB_C_REWRITE_BYTES, t.again << bits);
  if (!t.cow && !t.fresh_new) return 0;
  f = lookup_or_zero(&cow_files, &k, struct cb_cow_file);
  a->cow_bytes = t.cow << bits;
  a->new_bytes = t.fresh_new << bits;
  if (t.cow) {
    count(CB_C_COW_EXTENTS, 1);
    count(CB_C_COW_BYTES, a->cow_bytes);
    if (f) {
      __sync_fetch_and_add(&f->extents, 1);
      __sync_fetch_and_add(&f->bytes, a->cow_bytes);
    }
  }
  if (t.fresh_new) {
    count(CB_C_NEW_EXTENTS, 1);
    count(CB_C_NEW_BYTES, a->new_bytes);
    if (f) __sync_fetch_and_add(&f->new_bytes, a->new_bytes);
  }
  return 0;
}

/* account_range() of one event of `inode`, then its records. */
static __always_inline void account(struct inode *inode, __u64 ino, __u32 dev, __u64 offset, __u64 bytes, __u64 phys,
                                    bool cow_source) {
  struct cb_acct a = {.ino = ino, .offset = offset, .bytes = bytes, .phys = phys, .dev = dev, .cow_source = cow_source};
  a.bits = BPF_CORE_READ(inode, i_blkbits);
  a.generation = BPF_CORE_READ(inode, i_generation);
  account_range(&a);
  if (a.cow_bytes) cow_record(inode, ino, dev, a.cow_bytes, offset, CB_EV_COW);
  if (a.new_bytes) cow_record(inode, ino, dev, a.new_bytes, offset, CB_EV_NEW_DATA);
}

/* Whether CoW on this file is the container's: it dirtied it (writeback may run elsewhere),
 * or the CoW happens in its own context (direct I/O), and the file was not made by it. */
static __always_inline bool container_cow(__u64 ino, __u32 dev) {
  struct cb_file_key k = {.ino = ino, .dev = dev};
  if (bpf_map_lookup_elem(&created, &k)) return false;
  return watched() || bpf_map_lookup_elem(&dirtied, &k);
}

SEC("tp_btf/xfs_reflink_cow_remap_from")
int BPF_PROG(cb_xfs_cow_remap, struct xfs_inode___cb *ip, struct xfs_bmbt_irec___cb *irec) {
  if (!window.cgroup_id || window.kind != CB_KIND_EXTENT) return 0;
  __u32 dev = BPF_CORE_READ(ip, i_vnode.i_sb, s_dev);
  if (dev != window.upper_dev) return 0;
  __u64 ino = BPF_CORE_READ(ip, i_vnode.i_ino);
  if (!container_cow(ino, dev)) return 0;
  __u32 bits = BPF_CORE_READ(ip, i_vnode.i_blkbits);
  __u64 blocks = BPF_CORE_READ(irec, br_blockcount);
  __u64 start = BPF_CORE_READ(irec, br_startoff);
  struct inode *inode = (struct inode *)((char *)ip + bpf_core_field_offset(struct xfs_inode___cb, i_vnode));
  __u64 disk = BPF_CORE_READ(irec, br_startblock); /* fs block (AG-encoded): contiguous within an AG */
  account(inode, ino, dev, start << bits, blocks << bits, disk << bits, true);
  return 0;
}

/* XFS writeback into the data fork (not through the CoW fork): how an inherited file gets new
 * blocks beyond its end or in its holes. (Blocks that go through the CoW fork are counted at
 * their remap above.) */
#define IOMAP_F_SHARED___cb 0x04 /* include/linux/iomap.h: the mapping is the CoW fork's */
SEC("tp_btf/iomap_add_to_ioend")
int BPF_PROG(cb_xfs_ioend, struct inode *inode, __u64 pos, unsigned int dirty_len, struct iomap *iomap) {
  if (!window.cgroup_id || window.kind != CB_KIND_EXTENT) return 0;
  if (BPF_CORE_READ(iomap, flags) & IOMAP_F_SHARED___cb) return 0; /* through the CoW fork: its remap counts it */
  __u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
  if (dev != window.upper_dev) return 0;
  __u64 ino = BPF_CORE_READ(inode, i_ino);
  if (!container_cow(ino, dev)) return 0;
  __u64 disk = BPF_CORE_READ(iomap, addr) + (pos - BPF_CORE_READ(iomap, offset)); /* bytes on the device */
  account(inode, ino, dev, pos, dirty_len, disk, false);
  return 0;
}

SEC("tp_btf/btrfs_ordered_extent_add")
int BPF_PROG(cb_btrfs_ordered, const struct btrfs_inode___cb *inode, const struct btrfs_ordered_extent___cb *ordered) {
  if (!window.cgroup_id || window.kind != CB_KIND_EXTENT) return 0;
  __u32 dev = BPF_CORE_READ(inode, vfs_inode.i_sb, s_dev);
  if (dev != window.upper_dev) return 0;
  /* NOCOW and PREALLOC ordered extents write in place: not CoW (but new data where they are
   * beyond the inherited end, e.g. into the container's own fallocate). */
  unsigned long flags = BPF_CORE_READ(ordered, flags);
  unsigned long in_place = 0;
  if (bpf_core_enum_value_exists(enum btrfs_ordered_extent_flag___cb, BTRFS_ORDERED_NOCOW___cb))
    in_place |= 1UL << bpf_core_enum_value(enum btrfs_ordered_extent_flag___cb, BTRFS_ORDERED_NOCOW___cb);
  if (bpf_core_enum_value_exists(enum btrfs_ordered_extent_flag___cb, BTRFS_ORDERED_PREALLOC___cb))
    in_place |= 1UL << bpf_core_enum_value(enum btrfs_ordered_extent_flag___cb, BTRFS_ORDERED_PREALLOC___cb);
  bool cow = !(flags & in_place);
  __u64 ino = BPF_CORE_READ(inode, vfs_inode.i_ino);
  if (!container_cow(ino, dev)) return 0;
  struct inode *vfs = (struct inode *)((char *)inode + bpf_core_field_offset(struct btrfs_inode___cb, vfs_inode));
  /* btrfs writes every extent anew: account_range tells CoW of inherited data from new data. */
  __u64 disk = 0; /* btrfs logical address of the extent (6.10 renamed start to disk_bytenr) */
  if (bpf_core_field_exists(ordered->disk_bytenr))
    disk = BPF_CORE_READ(ordered, disk_bytenr);
  else
    disk = BPF_CORE_READ((const struct btrfs_ordered_extent___old *)ordered, start);
  if (bpf_core_field_exists(ordered->offset)) disk += BPF_CORE_READ(ordered, offset);
  account(vfs, ino, dev, BPF_CORE_READ(ordered, file_offset), BPF_CORE_READ(ordered, num_bytes), disk, cow);
  return 0;
}

SEC("tp_btf/btrfs_inode_new")
int BPF_PROG(cb_btrfs_inode_new, const struct inode *inode) {
  if (!watched() || window.kind != CB_KIND_EXTENT) return 0;
  struct cb_file_key k = {.ino = BPF_CORE_READ(inode, i_ino), .dev = BPF_CORE_READ(inode, i_sb, s_dev)};
  if (k.dev != window.upper_dev) return 0;
  __u8 one = 1;
  bpf_map_update_elem(&created, &k, &one, BPF_ANY);
  return 0;
}
