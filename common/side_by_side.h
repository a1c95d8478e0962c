// Independent jobs run a few at a time: fn(0) … fn(n-1) on up to `width` threads.
#pragma once

#include <cstddef>
#include <functional>

namespace cowbench {

// Calls fn(i) for every i in [0, n), each once, on at most `width` threads (the calling thread
// is one of them); the jobs are taken in order of i. Returns when all have ended. When jobs
// throw, the others still run, and the exception of the lowest i is rethrown. When no thread
// can be started, the calling thread runs them all.
void side_by_side(size_t n, unsigned width, const std::function<void(size_t)>& fn);

}  // namespace cowbench
