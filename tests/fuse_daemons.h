// Test helpers for the FUSE daemon backends (fuse-overlayfs, unionfs-fuse): their running daemons, their mounts' writable layer, bounded waits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/mount.h"

namespace cowbench::test {

// The contents of a file; "" when it cannot be read.
std::string slurp(const std::string& path);

// Running processes whose comm starts with `comm` that serve files under `dir`: one of their
// open files, their cwd or their root (a chrooted unionfs-fuse) is below it.
std::vector<pid_t> daemons_under(const std::string& dir, const std::string& comm);

// The upperdir= of a snapshot's mounts.
std::string upper_of(const std::vector<Mount>& mounts);

// Runs fn on a thread of its own and waits at most `limit`: a hang fails the test instead
// of hanging it. Returns fn's result, or nullopt after the limit.
template <typename T>
std::optional<T> bounded(std::chrono::milliseconds limit, std::function<T()> fn) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  std::thread([p, fn = std::move(fn)] { p->set_value(fn()); }).detach();
  if (f.wait_for(limit) != std::future_status::ready) return std::nullopt;
  return f.get();
}

}  // namespace cowbench::test
