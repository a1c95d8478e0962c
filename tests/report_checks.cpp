// Checks on report output shared by the report tests (see report_checks.h).
#include "tests/report_checks.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace cowbench::test {
namespace {

// Runs argv (PATH searched) under `timeout`, capturing stdout; stderr goes to `err_path`.
Output run_program(std::vector<std::string> argv, const std::string& err_path = "/dev/null", int timeout_s = 180) {
  argv.insert(argv.begin(), {"timeout", "--kill-after=5", std::to_string(timeout_s)});
  int fds[2];
  Output o;
  if (pipe2(fds, O_CLOEXEC) != 0) return o;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) dup2(err, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::array<char, 65536> buf{};
  ssize_t n;
  while ((n = read(fds[0], buf.data(), buf.size())) > 0) o.out.append(buf.data(), static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

// The first of `names` that runs with `probe_args` and exits 0, or "".
std::string find_program(const std::vector<std::string>& names, const std::vector<std::string>& probe_args) {
  for (const auto& n : names) {
    std::vector<std::string> argv{n};
    argv.insert(argv.end(), probe_args.begin(), probe_args.end());
    if (run_program(argv, "/dev/null", 60).code == 0) return n;
  }
  return "";
}

const std::string& python() {
  static const std::string p = find_program({"/usr/bin/python3", "python3"}, {"-c", "import jsonschema"});
  return p;
}

const std::string& chromium() {
  static const std::string c = find_program({"chromium", "chromium-browser"}, {"--version"});
  return c;
}

constexpr const char* kValidator = R"(import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = sorted(cls(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
for e in errors:
    print("/" + "/".join(map(str, e.absolute_path)) + ": " + e.message[:300])
sys.exit(1 if errors else 0)
)";

// Every measured <svg> of the page, appended as JSON in <pre id="cowbench-probe">.
constexpr const char* kProbe = R"(<script>
(function () {
  var out = [];
  document.querySelectorAll('svg').forEach(function (s) {
    var box = s.getBoundingClientRect(), marks = 0, texts = 0;
    s.querySelectorAll('rect,path,circle,line').forEach(function (e) {
      var b = e.getBBox();
      if (b.width > 0 || b.height > 0) marks++;
    });
    s.querySelectorAll('text').forEach(function (e) {
      var b = e.getBBox();
      if (b.width > 0 && b.height > 0) texts++;
    });
    out.push({label: s.getAttribute('aria-label') || '', width: box.width, height: box.height, marks: marks, texts: texts});
  });
  var pre = document.createElement('pre');
  pre.id = 'cowbench-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
)";

std::vector<std::string> chromium_args(const std::string& scratch) {
  static int profile = 0;
  std::string dir = path_join(scratch, "chromium-profile-" + std::to_string(++profile));
  make_dirs(dir);
  return {chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
          "--user-data-dir=" + dir};
}

std::string unescape_text(std::string s) {
  for (auto [from, to] : {std::pair{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&amp;", "&"}})
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + 1)) s.replace(p, std::string(from).size(), to);
  return s;
}

}  // namespace

Output run_cowbench(const std::vector<std::string>& args) {
  std::vector<std::string> argv{COWBENCH_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, "/dev/stdout");
}

std::string source_path(const std::string& rel) { return path_join(COWBENCH_SOURCE_DIR, rel); }

std::optional<std::string> schema_skip_reason() {
  if (python().empty()) return "no python3 with the jsonschema module (Debian: python3-jsonschema; scripts/install-deps.sh installs it)";
  return std::nullopt;
}

std::string schema_errors(const std::string& json_path) {
  Output o = run_program({python(), "-c", kValidator, source_path("docs/results.schema.json"), json_path}, "/dev/stdout");
  if (o.code == 0) return "";
  return o.out.empty() ? "validator exited with " + std::to_string(o.code) : o.out;
}

std::optional<std::string> chromium_skip_reason() {
  if (chromium().empty()) return "no headless Chromium (Debian: chromium; scripts/install-deps.sh installs it)";
  return std::nullopt;
}

Rendered render_in_chromium(const std::string& html_path, const std::string& scratch) {
  Rendered r;
  std::vector<std::string> argv = chromium_args(scratch);
  argv.insert(argv.end(), {"--dump-dom", "file://" + html_path});
  Output plain = run_program(argv, path_join(scratch, "chromium-dom.log"));
  if (plain.code != 0) ADD_FAILURE() << "chromium --dump-dom exited " << plain.code;
  r.dom = plain.out;

  std::string page = read_file(html_path);
  size_t end = page.rfind("</body>");
  page.insert(end == std::string::npos ? page.size() : end, kProbe);
  std::string probed = path_join(scratch, "probed.html");
  write_file_atomic(probed, page, 0644, false);
  argv = chromium_args(scratch);
  argv.insert(argv.end(), {"--dump-dom", "file://" + probed});
  Output o = run_program(argv, path_join(scratch, "chromium-probe.log"));
  size_t a = o.out.find("<pre id=\"cowbench-probe\">"), b = o.out.find("</pre>", a);
  if (o.code != 0 || a == std::string::npos || b == std::string::npos) {
    ADD_FAILURE() << "the probe found nothing (chromium exited " << o.code << ")";
    return r;
  }
  a += std::string("<pre id=\"cowbench-probe\">").size();
  auto j = nlohmann::json::parse(unescape_text(o.out.substr(a, b - a)), nullptr, false);
  if (!j.is_array()) {
    ADD_FAILURE() << "probe output is not JSON: " << o.out.substr(a, b - a);
    return r;
  }
  for (const auto& c : j)
    r.charts.push_back({c.value("label", ""), c.value("width", 0.0), c.value("height", 0.0), c.value("marks", 0), c.value("texts", 0)});
  return r;
}

bool screenshot(const std::string& html_path, const std::string& png_path, int width, int height, const std::string& scratch) {
  std::vector<std::string> argv = chromium_args(scratch);
  argv.insert(argv.end(), {"--force-device-scale-factor=1", "--window-size=" + std::to_string(width) + "," + std::to_string(height),
                           "--screenshot=" + png_path, "file://" + html_path});
  return run_program(argv, path_join(scratch, "chromium-shot.log")).code == 0;
}

}  // namespace cowbench::test
