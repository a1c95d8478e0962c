// N containers started together and collected together: what scale-out and image-family share.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/results.h"
#include "runner/container_snapshot.h"
#include "runner/run_context.h"
#include "workloads/workload.h"

namespace cowbench {

// Starts one sandbox per container — container i runs w.run(*plans[i]) in a cgroup of its own,
// started one after another from this thread, collected together — and fills `run`: wall_ns
// (from the first start to the last end), ops and their latencies, digest (the containers'
// one digest when they agree, else a digest of theirs in order), CPU, host load,
// disk.upper_bytes (summed over the containers' snapshots), and status "failed" with the
// first container's error. Throws kInterrupted on Ctrl-C. Returns the host's Cached (kB) read
// right after the last container ended, before anything else touches the page cache.
std::optional<int64_t> run_together(RunContext& ctx, Backend& b, const std::vector<ContainerSnapshot>& containers,
                                    const wl::Workload& w, const std::vector<const nlohmann::json*>& plans, rep::Run& run);

}  // namespace cowbench
