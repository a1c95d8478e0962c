// Checks on report output shared by the report tests: JSON Schema validation and rendering in headless Chromium.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cowbench::test {

// What a command printed (stdout and stderr, interleaved) and its exit code (-1: killed).
struct Output {
  int code = -1;
  std::string out;
};
// Runs the cowbench binary (COWBENCH_BIN) with these arguments.
Output run_cowbench(const std::vector<std::string>& args);

// A file of the source tree (COWBENCH_SOURCE_DIR), e.g. source_path("docs/results.schema.json").
std::string source_path(const std::string& rel);

// Why results cannot be validated against docs/results.schema.json here (no python3, or
// python3 without its jsonschema module — Debian: python3-jsonschema), or nullopt.
std::optional<std::string> schema_skip_reason();
// "" when the document at `json_path` is valid against docs/results.schema.json, else
// every validation error, one per line.
std::string schema_errors(const std::string& json_path);

// Why headless Chromium cannot run here (Debian: chromium), or nullopt.
std::optional<std::string> chromium_skip_reason();

// What the browser laid out for one <svg> of a page.
struct DrawnChart {
  std::string label;  // its aria-label
  double width = 0, height = 0;  // its box on the page
  int marks = 0;      // rect, path, circle and line elements whose bounding box is not empty
  int texts = 0;      // text elements with a non-empty box
};
struct Rendered {
  std::string dom;                 // the serialized DOM (--dump-dom) of the page itself
  std::vector<DrawnChart> charts;  // measured by a probe script run on a copy of the page
};
// Loads `html_path` in headless Chromium (fresh profile, no network services), dumps its DOM,
// and measures every <svg> with getBBox() in a copy that carries a probe script (the report
// itself has none). Fails the current test (ADD_FAILURE) when Chromium fails.
Rendered render_in_chromium(const std::string& html_path, const std::string& scratch);
// Takes a screenshot of the top `height` pixels of the page at `width`; true on success.
bool screenshot(const std::string& html_path, const std::string& png_path, int width, int height, const std::string& scratch);

}  // namespace cowbench::test
