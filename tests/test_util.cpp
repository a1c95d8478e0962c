// Test helpers (see test_util.h).
#include "tests/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "common/error.h"
#include "common/loop.h"
#include "common/mount.h"
#include "runner/run_hooks.h"
#include "snapshotters/probe_util.h"

namespace cowbench::test {
namespace {

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what + ": " + std::strerror(errno));
}

void list_into(const std::string& root, const std::string& rel, Tree& out) {
  std::string full = rel.empty() ? root : root + "/" + rel;
  struct stat st {};
  check(lstat(full.c_str(), &st) == 0, "lstat " + full);
  Entry e;
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  if (S_ISREG(st.st_mode)) {
    e.type = 'f';
    e.data = read_file(full);
  } else if (S_ISDIR(st.st_mode)) {
    e.type = 'd';
  } else if (S_ISLNK(st.st_mode)) {
    e.type = 'l';
    char buf[4096];
    ssize_t n = readlink(full.c_str(), buf, sizeof buf);
    check(n >= 0, "readlink " + full);
    e.data.assign(buf, static_cast<size_t>(n));
    e.mode = 0;  // symlink modes carry no meaning
  } else {
    e.type = S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : 's';
    e.data = std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
  }
  out[rel] = e;
  if (e.type != 'd') return;
  DIR* d = opendir(full.c_str());
  check(d != nullptr, "opendir " + full);
  std::vector<std::string> names;
  while (dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  for (const auto& n : names) list_into(root, rel.empty() ? n : rel + "/" + n, out);
}

std::string describe(const Entry& e) {
  std::ostringstream s;
  s << e.type << " " << std::oct << e.mode << std::dec << " " << e.uid << ":" << e.gid;
  if (!e.data.empty()) s << " '" << (e.data.size() > 40 ? e.data.substr(0, 40) + "..." : e.data) << "'";
  return s.str();
}

}  // namespace

std::optional<std::string> root_skip_reason() {
  if (auto why = snap::needs_root_reason()) return "root-only test: " + *why;
  return std::nullopt;
}

std::string scratch_root() {
  std::string p = "/var/tmp/cowbench-test";
  make_dirs(p, 0755);
  return p;
}

Tree list_tree(const std::string& root) {
  Tree t;
  list_into(root, "", t);
  return t;
}

std::string dump_tree(const Tree& t) {
  std::string out;
  for (const auto& [p, e] : t) out += "  /" + p + "  " + describe(e) + "\n";
  return out;
}

std::string diff_trees(const Tree& expected, const Tree& actual) {
  std::string out;
  for (const auto& [p, e] : expected) {
    auto it = actual.find(p);
    if (it == actual.end())
      out += "missing /" + p + " (" + describe(e) + ")\n";
    else if (!(it->second == e))
      out += "differs /" + p + ": expected " + describe(e) + ", got " + describe(it->second) + "\n";
  }
  for (const auto& [p, e] : actual)
    if (!expected.count(p)) out += "extra /" + p + " (" + describe(e) + ")\n";
  return out;
}

Applier create_file(std::string path, std::string content, mode_t mode) {
  return [=](const std::string& root) {
    std::string full = root + "/" + path;
    int fd = open(full.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    check(fd >= 0, "create " + full);
    ssize_t n = write(fd, content.data(), content.size());
    close(fd);
    check(n == static_cast<ssize_t>(content.size()), "write " + full);
    check(chmod(full.c_str(), mode) == 0, "chmod " + full);
  };
}

Applier create_dir(std::string path, mode_t mode) {
  return [=](const std::string& root) {
    std::string full = root + "/" + path;
    check(mkdir(full.c_str(), mode) == 0, "mkdir " + full);
    check(chmod(full.c_str(), mode) == 0, "chmod " + full);
  };
}

Applier remove_all(std::string path) {
  return [=](const std::string& root) { remove_tree(root + "/" + path); };
}

Applier rename_path(std::string from, std::string to) {
  return [=](const std::string& root) {
    std::string a = root + "/" + from, b = root + "/" + to;
    if (rename(a.c_str(), b.c_str()) == 0) return;
    check(errno == EXDEV, "rename " + a);
    // As mv(1): copy the tree, then delete the source.
    Tree t = list_tree(a);
    for (const auto& [rel, e] : t) {
      std::string dst = rel.empty() ? b : b + "/" + rel;
      if (e.type == 'd') check(mkdir(dst.c_str(), e.mode) == 0 || errno == EEXIST, "mkdir " + dst);
      else if (e.type == 'f') create_file(dst.substr(root.size() + 1), e.data, e.mode)(root);
      else if (e.type == 'l') check(symlink(e.data.c_str(), dst.c_str()) == 0, "symlink " + dst);
      check(lchown(dst.c_str(), e.uid, e.gid) == 0, "lchown " + dst);
      if (e.type == 'd') check(chmod(dst.c_str(), e.mode) == 0, "chmod " + dst);
    }
    remove_tree(a);
  };
}

Applier chown_path(std::string path, uid_t uid, gid_t gid) {
  return [=](const std::string& root) {
    std::string full = root + "/" + path;
    check(lchown(full.c_str(), uid, gid) == 0, "chown " + full);
  };
}

Applier chmod_path(std::string path, mode_t mode) {
  return [=](const std::string& root) {
    std::string full = root + "/" + path;
    check(chmod(full.c_str(), mode) == 0, "chmod " + full);
  };
}

Applier symlink_to(std::string target, std::string path) {
  return [=](const std::string& root) {
    std::string full = root + "/" + path;
    check(symlink(target.c_str(), full.c_str()) == 0, "symlink " + full);
  };
}

Applier apply_all(std::vector<Applier> appliers) {
  return [=](const std::string& root) {
    for (const auto& a : appliers) a(root);
  };
}

void with_mounted(const std::vector<Mount>& mounts, const std::string& scratch,
                  const std::function<void(const std::string&)>& fn) {
  TempDir target(scratch, "mnt");
  ScopedMount m(mounts, target.path());
  fn(target.path());
  m.close();
}

Applier distro_image(bool with_shell) {
  return [with_shell](const std::string& root) {
    for (const char* d : {"bin", "lib", "lib64", "etc", "usr", "usr/lib", "var", "var/db", "proc", "dev"})
      create_dir(d)(root);
    if (with_shell) {
      for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
               {"/bin/dash", "bin/sh"}, {"/lib/x86_64-linux-gnu/libc.so.6", "lib/libc.so.6"},
               {"/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"}})
        if (access(from.c_str(), R_OK) == 0) create_file(to, read_file(from), 0755)(root);
      make_dirs(root + "/lib/x86_64-linux-gnu");
      symlink("/lib/libc.so.6", (root + "/lib/x86_64-linux-gnu/libc.so.6").c_str());
    }
    for (int i = 0; i < 40; ++i) create_file("bin/tool" + std::to_string(i), std::string(20000 + i * 100, 'b'), 0755)(root);
    for (int i = 0; i < 40; ++i) create_file("usr/lib/lib" + std::to_string(i) + ".so", std::string(300000 + i, 'l'))(root);
    for (int i = 0; i < 60; ++i) create_file("etc/conf" + std::to_string(i), "key=value " + std::to_string(i) + "\n")(root);
    for (int i = 0; i < 4; ++i) create_file("var/db/table" + std::to_string(i), std::string((2 + i) << 20, 'd'))(root);
  };
}

CliResult run_cli(const std::string& binary, const std::string& args) {
  CliResult r;
  FILE* p = popen((binary + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::unique_ptr<HostLock> hold_host_lock() {
  HostLockOptions o;
  o.on_wait = [](const std::string& line) { fmt::print(stderr, "test: {}\n", line); };
  auto lock = std::make_unique<HostLock>(o);
  lock->share_with_children();
  return lock;
}

std::string left_behind(const std::string& dir) {
  std::string out;
  for (const auto& m : mounts_under(dir)) out += "mounted: " + m + "\n";
  for (const auto& l : loops_backed_under(dir)) out += "attached: " + l.device + " (" + l.backing_file + ")\n";
  return out;
}

rep::Results run_matrix_quietly(const RunConfig& cfg) {
  RunHooks hooks;
  hooks.import_image = make_image_importer(cfg);
  hooks.make_tracer = make_tracer_factory();
  hooks.progress = [](const std::string&, int, int) {};
  std::atomic<bool> stop{false};
  return run_matrix(cfg, hooks, stop);
}

PreparedImage import_distro_image(snap::Snapshotter& sn, const std::string& name, const std::string& scratch, bool with_shell) {
  PreparedImage p;
  p.top = name;
  try {
    sn.stat(p.top);
    p.cached = true;
    return p;
  } catch (const Error&) {
  }
  with_mounted(sn.prepare(p.top + "-active", ""), scratch, distro_image(with_shell));
  sn.commit(p.top, p.top + "-active");
  return p;
}

ScopedEnv::ScopedEnv(const char* name, const char* value) : name_(name) {
  if (const char* old = std::getenv(name)) old_ = old;
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
}

ScopedEnv::~ScopedEnv() {
  if (old_)
    setenv(name_, old_->c_str(), 1);
  else
    unsetenv(name_);
}

}  // namespace cowbench::test
