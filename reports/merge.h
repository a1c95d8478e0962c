// `cowbench merge`: one results document from the results of several shards or hosts.
#pragma once

#include <string>
#include <vector>

#include "reports/results.h"

namespace cowbench::rep {

// One input of a merge: the file it came from (for messages and config.merged_from) and its
// parsed results.
struct MergeInput {
  std::string path;
  Results results;
};

struct MergeOptions {
  // Inputs from different hosts are kept apart as testbeds (Results::testbeds, Run::testbed);
  // without it they are refused.
  bool allow_mixed_hosts = false;
};

// Whether two `host` objects describe the same machine: the same kernel, architecture, CPU
// model and count, memory and work-directory file system, and the same boot id where both
// record one (two identical machines differ there; containers of one machine share it).
bool same_host(const nlohmann::json& a, const nlohmann::json& b);
// What differs between two `host` objects, in words ("kernel 6.18.0 vs 6.1.0"); "" when
// same_host() holds.
std::string host_difference(const nlohmann::json& a, const nlohmann::json& b);

// Combines the inputs, in order, into one document: every run once, its config (the first
// input's, with the backends, workloads, plans and images of all, config.shard dropped and
// config.merged_from listing each input), trace mode and lost events, and with several hosts
// (allowed) one testbed per host, named after its hostname (or host1, host2...), every run
// naming its testbed. Throws Error(kInvalidInput), naming the files, when: there is no input;
// inputs come from different hosts without allow_mixed_hosts; they measured a different image,
// platform, seed or cache mode (their rows would not measure the same thing); or a (backend,
// workload, repeat) appears twice on one host (two shards that overlap, or a file given twice).
Results merge_results(const std::vector<MergeInput>& inputs, const MergeOptions& options);

}  // namespace cowbench::rep
