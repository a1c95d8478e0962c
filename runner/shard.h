// Shards of the run matrix (`cowbench run --shard I/N`): which workloads one shard runs.
#pragma once

#include <string>
#include <vector>

namespace cowbench {

// Shard `index` (0-based, as Kubernetes' JOB_COMPLETION_INDEX) of `count`.
struct Shard {
  int index = 0;
  int count = 1;
};

// Parses "I/N" with 0 <= I < N (both decimal integers, N at most 1000). Throws
// Error(kInvalidInput) naming the text and what is wrong.
Shard parse_shard(const std::string& text);

// The workloads of `workloads` that shard `s` runs, in their order in `workloads`. Shards split
// by workload, never by backend, so that every backend of a workload runs on the same shard
// (and the scheduler interleaves and rotates them as in an unsharded run). The assignment
// depends only on the names: sorted by name (byte order), the k-th goes to shard k mod N, so
// that every host computes the same split and shard sizes differ by at most one workload.
// Throws Error(kInvalidInput) when the shard gets none (N larger than the number of workloads),
// naming N and the workload count.
std::vector<std::string> shard_workloads(const std::vector<std::string>& workloads, const Shard& s);

}  // namespace cowbench
