// What the Markdown and HTML reports say, built once from the results: facts, findings in words, tables.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "reports/results.h"

namespace cowbench::rep {

// How reports name a row's backend: the backend, and in a document merged from several hosts
// its testbed too ("overlayfs @ runner-2"), so that no row mixes hosts.
std::string row_backend(const std::string& backend, const std::string& testbed);

// The runs of a document grouped for reports. Backends and workloads keep the order in which
// they first appear in the runs; scale-out points ("scale-out/4") are kept apart from the
// plain workloads, grouped by family and sorted by container count. In a merged document of
// several hosts the "backends" are row_backend() names: one per (backend, testbed).
class Grouped {
 public:
  explicit Grouped(const Results& r);

  const std::vector<std::string>& backends() const { return backends_; }
  const std::vector<std::string>& workloads() const { return workloads_; }  // plain workloads only
  const std::vector<std::string>& scale_families() const { return families_; }

  // The summary row of (backend, workload), or null when that pair never ran.
  const SummaryRow* row(const std::string& backend, const std::string& workload) const;
  // The ok runs of (backend, workload), in file order.
  std::vector<const Run*> ok_runs(const std::string& backend, const std::string& workload) const;
  // The scale-out points of `family` on `backend`: (containers, its workload name), ascending.
  std::vector<std::pair<int, std::string>> scale_points(const std::string& family, const std::string& backend) const;
  // The runs that failed, in file order.
  const std::vector<const Run*>& failed() const { return failed_; }
  // The ok run of (backend, workload) with the median wall time: the one whose latency
  // distribution stands for the pair. Null when none.
  const Run* representative(const std::string& backend, const std::string& workload) const;

 private:
  std::vector<std::string> backends_, workloads_, families_;
  std::map<std::pair<std::string, std::string>, SummaryRow> rows_;
  std::map<std::pair<std::string, std::string>, std::vector<const Run*>> ok_;
  std::map<std::string, std::map<std::string, std::vector<std::pair<int, std::string>>>> scale_;
  std::vector<const Run*> failed_;
};

// A table of already formatted cells, rendered by the Markdown and HTML writers alike.
struct Table {
  std::string title;    // e.g. the workload name
  std::string caption;  // one line under the title; may be empty
  std::vector<std::string> header;
  std::vector<bool> numeric;  // per column: right-aligned
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;  // footnotes, in order
};

struct ReportModel {
  std::vector<std::string> facts;     // tool, config, host, trace: one line each
  std::vector<std::string> findings;  // sentences with their numbers
  std::vector<Table> workloads;       // one per plain workload
  std::vector<Table> scale_out;       // one per scale-out family
  std::optional<Table> failures;      // failed runs and why
};

// Builds the model; deterministic for a given document (no clock, no locale).
ReportModel build_model(const Results& r, const Grouped& g);

// What the copy-up and CoW columns of the workload tables mean, and which backend does which:
// one paragraph, for the Markdown and HTML reports alike.
extern const char* const kCopyColumnsExplained;

}  // namespace cowbench::rep
