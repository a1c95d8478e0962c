// Unit tests of ebpf/bpf_util's reading of libbpf's log: which program a failed object load
// stopped at and the verifier's reason, in the form libbpf 1.1 prints them.
#include "ebpf/bpf_util.h"

#include <gtest/gtest.h>

#include <string>

namespace cowbench::test {
namespace {

using ebpf::load_failure;

// The shape of libbpf's messages when the verifier refuses a program (seen on Linux 6.18.44
// with libbpf 1.1: a program, a global function and a bpf_loop callback over 512 bytes).
const std::string kRefusedLog =
    "libbpf: prog 'cb_xfs_cow_remap': BPF program load failed: Permission denied\n"
    "libbpf: prog 'cb_xfs_cow_remap': -- BEGIN PROG LOAD LOG --\n"
    "Func#1 ('account_range') is safe for any args that match its prototype\n"
    "combined stack size of 3 calls is 592. Too large\n"
    "processed 211511 insns (limit 1000000) max_states_per_insn 22 total_states 7576 peak_states 12487 mark_read 0\n"
    "-- END PROG LOAD LOG --\n"
    "libbpf: prog 'cb_xfs_cow_remap': failed to load: -13\n"
    "libbpf: failed to load object 'copyup'\n"
    "libbpf: failed to load BPF skeleton 'copyup': -13\n";

TEST(LoadFailure, NamesTheProgramAndTheVerifiersReason) {
  auto f = load_failure(kRefusedLog);
  EXPECT_EQ(f.program, "cb_xfs_cow_remap");
  EXPECT_EQ(f.reason, "combined stack size of 3 calls is 592. Too large");
}

TEST(LoadFailure, TheLastFailedProgramAndItsOwnLog) {
  // An earlier program's log (it loaded) comes first; the failure is the later one.
  std::string log =
      "libbpf: prog 'cb_sys_exit': -- BEGIN PROG LOAD LOG --\nR1 type=ctx expected=fp\nprocessed 12 insns\n"
      "-- END PROG LOAD LOG --\n"
      "libbpf: prog 'cb_fuse_end': -- BEGIN PROG LOAD LOG --\n"
      "0: (79) r1 = *(u64 *)(r1 +0)\ninvalid mem access 'scalar'\nverification time 30 usec\nstack depth 8\n"
      "-- END PROG LOAD LOG --\n"
      "libbpf: prog 'cb_fuse_end': failed to load: -13\n";
  auto f = load_failure(log);
  EXPECT_EQ(f.program, "cb_fuse_end");
  EXPECT_EQ(f.reason, "invalid mem access 'scalar'");
}

TEST(LoadFailure, EmptyWhereTheLogDoesNotSay) {
  auto none = load_failure("libbpf: failed to load object 'copyup'\n");
  EXPECT_TRUE(none.program.empty());
  EXPECT_TRUE(none.reason.empty());
  // A program named without a verifier log (libbpf refused it before the kernel saw it).
  auto no_log = load_failure("libbpf: prog 'cb_copy_up_entry': failed to load: -22\n");
  EXPECT_EQ(no_log.program, "cb_copy_up_entry");
  EXPECT_TRUE(no_log.reason.empty());
}

}  // namespace
}  // namespace cowbench::test
