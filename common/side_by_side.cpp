// A few independent jobs at a time (see side_by_side.h).
#include "common/side_by_side.h"

#include <atomic>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace cowbench {

void side_by_side(size_t n, unsigned width, const std::function<void(size_t)>& fn) {
  std::vector<std::exception_ptr> failures(n);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        failures[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < width && t < n; ++t) {
    try {
      threads.emplace_back(worker);
    } catch (const std::system_error&) {
      break;  // no thread to spare: the ones running (this one at least) take the rest
    }
  }
  worker();
  for (auto& t : threads) t.join();
  for (auto& f : failures)
    if (f) std::rethrow_exception(f);
}

}  // namespace cowbench
