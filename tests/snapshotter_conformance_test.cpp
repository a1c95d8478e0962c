// The snapshotter conformance suite (containerd's SnapshotterSuite cases), run on every registered backend.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using snap::Info;
using snap::Kind;

template <typename F>
std::optional<Errc> error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return std::nullopt;
}

// A parameter: a backend's name, or a backend with options that change its semantics,
// "overlayfs[metacopy=on]" (the options as --backend-opt takes them).
struct Param {
  std::string backend;
  snap::BackendOptions options;
};
Param parse_param(const std::string& p) {
  auto bracket = p.find('[');
  if (bracket == std::string::npos) return {p, {}};
  return {p.substr(0, bracket), snap::parse_options(p.substr(bracket + 1, p.size() - bracket - 2))};
}

// The name of a parameter in test names and directories: "overlayfs_metacopy_on_".
std::string param_label(const std::string& p) {
  std::string n = p;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "conf-" + param_label(GetParam()));
    const auto& spec = snap::builtin_registry().get(param().backend);
    auto a = spec.probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << GetParam() << " is unavailable here: " << a.reason;
    if (!param().options.empty() && spec.try_options) {
      auto o = spec.try_options(tmp_->path(), param().options);
      if (!o.available) GTEST_SKIP() << GetParam() << ": the kernel refuses the options here: " << o.reason;
    }
    try {
      sn_ = spec.create(path_join(tmp_->path(), "root"), param().options);
    } catch (const Error& e) {
      // A backend option that needs what the host lacks (a scratch XFS: mkfs.xfs, loop devices).
      if (e.code() == Errc::kUnsupported && !param().options.empty()) GTEST_SKIP() << GetParam() << ": " << e.what();
      throw;
    }
  }

  static Param param() { return parse_param(GetParam()); }

  void TearDown() override {
    if (sn_) sn_->close();
    sn_.reset();
    if (tmp_) {
      auto left = mounts_under(tmp_->path());
      EXPECT_TRUE(left.empty()) << "left mounted: " << left.front();
      for (const auto& m : left) unmount(m);
    }
  }

  std::string scratch() { return tmp_->path(); }

  // prepare(key, parent) → mount → apply → unmount → commit(name).
  void layer(const std::string& name, const std::string& parent, const Applier& apply) {
    std::string key = name + "-active";
    auto mounts = sn_->prepare(key, parent);
    with_mounted(mounts, scratch(), apply);
    sn_->commit(name, key);
  }

  // The tree the appliers make, in order, on an empty 0755 directory.
  Tree expected(const std::vector<Applier>& layers) {
    TempDir d(scratch(), "expected");
    chmod(d.path().c_str(), 0755);
    for (const auto& a : layers) a(d.path());
    return list_tree(d.path());
  }

  // What a view on `parent` shows.
  Tree view_of(const std::string& parent) {
    std::string key = "check-view-" + std::to_string(++views_);
    Tree t;
    with_mounted(sn_->view(key, parent), scratch(), [&](const std::string& dir) { t = list_tree(dir); });
    sn_->remove(key);
    return t;
  }

  void expect_view(const std::string& parent, const std::vector<Applier>& layers) {
    Tree want = expected(layers);
    Tree got = view_of(parent);
    std::string diff = diff_trees(want, got);
    EXPECT_TRUE(diff.empty()) << "view of '" << parent << "' on " << GetParam() << " differs:\n"
                              << diff << "expected:\n"
                              << dump_tree(want) << "got:\n"
                              << dump_tree(got);
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<snap::Snapshotter> sn_;
  int views_ = 0;
};

const Applier kBase = apply_all({create_dir("etc"), create_file("etc/hosts", "127.0.0.1 localhost\n"),
                                 create_dir("usr", 0755), create_dir("usr/bin"),
                                 create_file("usr/bin/tool", "#!/bin/sh\necho tool\n", 0755),
                                 symlink_to("usr/bin", "bin")});

TEST_P(Conformance, Basic) {
  auto mounts = sn_->prepare("preparing", "");
  ASSERT_FALSE(mounts.empty());
  with_mounted(mounts, scratch(), kBase);
  sn_->commit("committed", "preparing");
  Info ci = sn_->stat("committed");
  EXPECT_EQ(ci.kind, Kind::kCommitted);
  EXPECT_EQ(ci.parent, "");
  EXPECT_EQ(error_of([&] { sn_->stat("preparing"); }), Errc::kNotFound) << "the key must be gone after commit";

  Applier next = apply_all({create_file("etc/hosts", "10.0.0.1 other\n"), create_file("new", "new file"),
                            remove_all("usr/bin/tool")});
  auto m2 = sn_->prepare("nextlayer", "committed");
  with_mounted(m2, scratch(), [&](const std::string& dir) {
    std::string diff = diff_trees(expected({kBase}), list_tree(dir));
    EXPECT_TRUE(diff.empty()) << "the new active snapshot must show its parent:\n" << diff;
    next(dir);
  });
  sn_->commit("committed2", "nextlayer");
  EXPECT_EQ(sn_->stat("committed2").parent, "committed");
  expect_view("committed2", {kBase, next});
  expect_view("committed", {kBase});

  std::map<std::string, Kind> seen;
  sn_->walk([&](const Info& i) { seen[i.name] = i.kind; });
  EXPECT_EQ(seen, (std::map<std::string, Kind>{{"committed", Kind::kCommitted}, {"committed2", Kind::kCommitted}}));
  EXPECT_GE(sn_->usage("committed").inodes, 5);
}

TEST_P(Conformance, StatActive) {
  with_mounted(sn_->prepare("prepare-1", "", {{"l", "v"}}), scratch(), kBase);
  Info i = sn_->stat("prepare-1");
  EXPECT_EQ(i.name, "prepare-1");
  EXPECT_EQ(i.kind, Kind::kActive);
  EXPECT_EQ(i.parent, "");
  EXPECT_EQ(i.labels, (snap::Labels{{"l", "v"}}));
  EXPECT_GT(i.created_ns, 0);
}

TEST_P(Conformance, StatCommitted) {
  layer("committed-1", "", kBase);
  Info i = sn_->stat("committed-1");
  EXPECT_EQ(i.name, "committed-1");
  EXPECT_EQ(i.kind, Kind::kCommitted);
  EXPECT_EQ(i.parent, "");
}

TEST_P(Conformance, Transitivity) {
  layer("l1", "", create_file("foo", "foo\n"));
  layer("l2", "l1", create_file("foo", "bar\n"));
  Info i = sn_->stat("l2");
  EXPECT_EQ(i.parent, "l1");
  EXPECT_EQ(sn_->stat("l1").parent, "");
  expect_view("l2", {create_file("foo", "bar\n")});
  expect_view("l1", {create_file("foo", "foo\n")});
}

TEST_P(Conformance, PrepareViewFailing) {
  layer("base", "", kBase);
  sn_->view("view-1", "base");
  EXPECT_EQ(error_of([&] { sn_->prepare("view-1", "base"); }), Errc::kAlreadyExists);
  EXPECT_EQ(error_of([&] { sn_->view("view-1", "base"); }), Errc::kAlreadyExists);
  EXPECT_EQ(error_of([&] { sn_->view("view-2", "no-such-parent"); }), Errc::kNotFound);
  EXPECT_EQ(error_of([&] { sn_->prepare("child", "view-1"); }), Errc::kFailedPrecondition);
  EXPECT_EQ(error_of([&] { sn_->commit("c", "view-1"); }), Errc::kFailedPrecondition);
  EXPECT_EQ(error_of([&] { sn_->prepare("base", ""); }), Errc::kAlreadyExists);
  EXPECT_EQ(error_of([&] { sn_->prepare("", ""); }), Errc::kInvalidInput);
  // Failed calls leave nothing behind: only base and view-1 exist.
  int n = 0;
  sn_->walk([&](const Info&) { ++n; });
  EXPECT_EQ(n, 2);
  EXPECT_EQ(sn_->stat("view-1").kind, Kind::kView);
}

TEST_P(Conformance, Update) {
  sn_->prepare("active", "", {{"a", "1"}, {"b", "2"}});
  Info before = sn_->stat("active");
  Info u = before;
  u.labels = {{"a", "10"}};
  Info after = sn_->update(u, {"labels.a", "labels.b"});
  EXPECT_EQ(after.labels, (snap::Labels{{"a", "10"}}));
  EXPECT_GT(after.updated_ns, before.updated_ns);
  EXPECT_EQ(after.created_ns, before.created_ns);
  EXPECT_EQ(sn_->stat("active").labels, after.labels);

  u.labels = {{"c", "3"}};
  EXPECT_EQ(sn_->update(u).labels, (snap::Labels{{"c", "3"}}));
  EXPECT_EQ(error_of([&] { sn_->update(u, {"name"}); }), Errc::kInvalidInput);
  EXPECT_EQ(error_of([&] { sn_->update(u, {"parent"}); }), Errc::kInvalidInput);
  Info missing = u;
  missing.name = "missing";
  EXPECT_EQ(error_of([&] { sn_->update(missing); }), Errc::kNotFound);
  Info wrong_kind = u;
  wrong_kind.kind = Kind::kCommitted;
  EXPECT_EQ(error_of([&] { sn_->update(wrong_kind); }), Errc::kInvalidInput);
}

TEST_P(Conformance, Remove) {
  layer("committed-1", "", kBase);
  sn_->prepare("active-1", "committed-1");
  sn_->view("view-1", "committed-1");
  EXPECT_EQ(error_of([&] { sn_->remove("committed-1"); }), Errc::kFailedPrecondition);
  sn_->remove("active-1");
  sn_->remove("view-1");
  sn_->remove("committed-1");
  EXPECT_EQ(error_of([&] { sn_->stat("committed-1"); }), Errc::kNotFound);
  EXPECT_EQ(error_of([&] { sn_->remove("committed-1"); }), Errc::kNotFound);
  int n = 0;
  sn_->walk([&](const Info&) { ++n; });
  EXPECT_EQ(n, 0);
}

TEST_P(Conformance, Walk) {
  layer("c1", "", kBase);
  layer("c2", "c1", create_file("x", "x"));
  sn_->prepare("a1", "c2", {{"role", "container"}});
  sn_->view("v1", "c1");
  std::map<std::string, std::pair<Kind, std::string>> seen;
  sn_->walk([&](const Info& i) { seen[i.name] = {i.kind, i.parent}; });
  std::map<std::string, std::pair<Kind, std::string>> want{{"c1", {Kind::kCommitted, ""}},
                                                           {"c2", {Kind::kCommitted, "c1"}},
                                                           {"a1", {Kind::kActive, "c2"}},
                                                           {"v1", {Kind::kView, "c1"}}};
  EXPECT_EQ(seen, want);
}

TEST_P(Conformance, LayerFileUpdate) {
  // The same file rewritten in every layer, longer and shorter, then truncated.
  std::vector<Applier> layers{create_file("foo", std::string(5000, 'a')), create_file("foo", "short"),
                              create_file("foo", std::string(70000, 'c'), 0600), create_file("foo", "")};
  std::string parent;
  for (size_t i = 0; i < layers.size(); ++i) {
    std::string name = "layer-" + std::to_string(i);
    layer(name, parent, layers[i]);
    parent = name;
    expect_view(name, std::vector<Applier>(layers.begin(), layers.begin() + static_cast<long>(i) + 1));
  }
}

TEST_P(Conformance, RemoveDirectoryInLowerLayer) {
  Applier l1 = apply_all({create_dir("lib"), create_dir("lib/foo"), create_file("lib/foo/a", "a"),
                          create_file("lib/b", "b"), create_dir("keep"), create_file("keep/c", "c")});
  Applier l2 = apply_all({remove_all("lib"), create_dir("lib"), create_file("lib/new", "new")});
  layer("l1", "", l1);
  layer("l2", "l1", l2);
  expect_view("l2", {l1, l2});
  expect_view("l1", {l1});
}

TEST_P(Conformance, Chown) {
  Applier l1 = apply_all({create_dir("opt"), create_file("opt/a", "a"), chown_path("opt", 1000, 1000),
                          chown_path("opt/a", 1000, 1000)});
  Applier l2 = apply_all({chown_path("opt/a", 2000, 3000), chown_path("opt", 1, 1), create_file("opt/b", "b"),
                          chown_path("opt/b", 4000, 4000)});
  layer("l1", "", l1);
  layer("l2", "l1", l2);
  expect_view("l2", {l1, l2});
}

TEST_P(Conformance, DirectoryPermissionOnCommit) {
  Applier l1 = apply_all({create_dir("dir-1", 0700), chown_path("dir-1", 1000, 1000), create_dir("dir-2", 0700),
                          create_file("dir-2/f", "f", 0600), create_dir("sticky", 01777)});
  Applier l2 = apply_all({create_file("dir-1/g", "g"), create_dir("dir-2/sub", 0750), create_dir("dir-3", 0711)});
  layer("l1", "", l1);
  layer("l2", "l1", l2);
  expect_view("l2", {l1, l2});
}

TEST_P(Conformance, RemoveIntermediateSnapshot) {
  layer("base", "", kBase);
  layer("intermediate", "base", create_file("i", "i"));
  layer("top", "intermediate", create_file("t", "t"));
  EXPECT_EQ(error_of([&] { sn_->remove("intermediate"); }), Errc::kFailedPrecondition);
  EXPECT_EQ(error_of([&] { sn_->remove("base"); }), Errc::kFailedPrecondition);
  expect_view("top", {kBase, create_file("i", "i"), create_file("t", "t")});
  sn_->remove("top");
  sn_->remove("intermediate");
  sn_->remove("base");
  int n = 0;
  sn_->walk([&](const Info&) { ++n; });
  EXPECT_EQ(n, 0);
}

TEST_P(Conformance, DeletedFilesInChildSnapshot) {
  Applier l1 = apply_all({create_file("a", "a"), create_file("b", "b"), create_file("c", "c"), create_dir("d"),
                          create_file("d/e", "e")});
  Applier l2 = apply_all({remove_all("a"), remove_all("c"), remove_all("d")});
  layer("l1", "", l1);
  layer("l2", "l1", l2);
  layer("l3", "l2", create_file("z", "z"));
  expect_view("l3", {l1, l2, create_file("z", "z")});
  expect_view("l1", {l1});
}

TEST_P(Conformance, MoveFileFromLowerLayer) {
  Applier l1 = apply_all({create_dir("a"), create_file("a/b", "content of b"), create_dir("a/c"),
                          create_file("a/c/d", "d")});
  Applier l2 = apply_all({rename_path("a/b", "b"), rename_path("a/c/d", "a/d")});
  layer("l1", "", l1);
  layer("l2", "l1", l2);
  expect_view("l2", {l1, l2});
}

TEST_P(Conformance, ViewReadonly) {
  layer("base", "", kBase);
  with_mounted(sn_->view("view", "base"), scratch(), [&](const std::string& dir) {
    std::string existing = dir + "/etc/hosts";
    int fd = open(existing.c_str(), O_WRONLY);
    EXPECT_LT(fd, 0) << "opening a file in a view for writing must fail";
    if (fd >= 0) close(fd);
    EXPECT_EQ(errno, EROFS);
    std::string fresh = dir + "/newfile";
    fd = open(fresh.c_str(), O_WRONLY | O_CREAT, 0644);
    EXPECT_LT(fd, 0) << "creating a file in a view must fail";
    if (fd >= 0) close(fd);
    EXPECT_EQ(errno, EROFS);
    EXPECT_NE(mkdir((dir + "/newdir").c_str(), 0755), 0);
  });
}

TEST_P(Conformance, StatInWalk) {
  layer("c1", "", kBase);
  sn_->prepare("a1", "c1", {{"x", "y"}});
  sn_->view("v1", "c1");
  int n = 0;
  sn_->walk([&](const Info& i) {
    Info s = sn_->stat(i.name);
    EXPECT_EQ(s.name, i.name);
    EXPECT_EQ(s.kind, i.kind);
    EXPECT_EQ(s.parent, i.parent);
    EXPECT_EQ(s.labels, i.labels);
    ++n;
  });
  EXPECT_EQ(n, 3);
}

TEST_P(Conformance, CloseTwice) {
  sn_->prepare("a", "");
  sn_->close();
  EXPECT_NO_THROW(sn_->close());
  EXPECT_EQ(error_of([&] { sn_->prepare("b", ""); }), Errc::kFailedPrecondition);
  EXPECT_EQ(error_of([&] { sn_->stat("a"); }), Errc::kFailedPrecondition);
}

TEST_P(Conformance, RootPermission) {
  with_mounted(sn_->prepare("active", ""), scratch(), [&](const std::string& dir) {
    struct stat st {};
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u) << "a new snapshot's root must be 0755";
    EXPECT_TRUE(S_ISDIR(st.st_mode));
  });
}

TEST_P(Conformance, Rename) {
  Applier l1 = apply_all({create_dir("dir1"), create_file("dir1/f1", "f1"), create_dir("dir1/sub"),
                          create_file("dir1/sub/f2", "f2"), create_file("top", "t")});
  Applier l2 = apply_all({rename_path("dir1", "dir2"), rename_path("top", "dir2/top")});
  layer("l1", "", l1);
  layer("l2", "l1", l2);
  expect_view("l2", {l1, l2});
}

// A chain of n layers, each rewriting /bottom and adding its own file, mounts whole.
void check_many_layers(Conformance& t, int n, const std::function<void(const std::string&, const std::string&, const Applier&)>& layer,
                       const std::function<void(const std::string&, const std::vector<Applier>&)>& expect) {
  std::vector<Applier> all;
  std::string parent;
  for (int i = 0; i < n; ++i) {
    std::string name = "layer-" + std::to_string(i);
    Applier a = apply_all({create_file("bottom", std::to_string(i)), create_file("f-" + std::to_string(i), name)});
    layer(name, parent, a);
    all.push_back(a);
    parent = name;
  }
  expect(parent, all);
  (void)t;
}

TEST_P(Conformance, 128LayersMount) {
  check_many_layers(
      *this, 128, [&](const std::string& n, const std::string& p, const Applier& a) { layer(n, p, a); },
      [&](const std::string& top, const std::vector<Applier>& all) {
        // Active snapshots must mount too, not only views.
        sn_->prepare("on-top", top);
        Tree want = expected(all);
        with_mounted(sn_->mounts("on-top"), scratch(), [&](const std::string& dir) {
          std::string diff = diff_trees(want, list_tree(dir));
          EXPECT_TRUE(diff.empty()) << diff;
        });
        expect_view(top, all);
      });
}

// More layers than overlayfs stacks in one mount (500): must still mount.
TEST_P(Conformance, 600LayersMount) {
  check_many_layers(
      *this, 600, [&](const std::string& n, const std::string& p, const Applier& a) { layer(n, p, a); },
      [&](const std::string& top, const std::vector<Applier>& all) {
        sn_->prepare("on-top", top);
        Tree want = expected(all);
        with_mounted(sn_->mounts("on-top"), scratch(), [&](const std::string& dir) {
          std::string diff = diff_trees(want, list_tree(dir));
          EXPECT_TRUE(diff.empty()) << diff;
          EXPECT_EQ(read_file(dir + "/bottom"), "599");
          create_file("bottom", "written on top")(dir);
          EXPECT_EQ(read_file(dir + "/bottom"), "written on top");
        });
      });
}

// A backend root that cannot be used (read-only file system) is refused with a clear error.
TEST_P(Conformance, UnusableRootIsRefused) {
  std::string ro = path_join(scratch(), "ro");
  make_dirs(ro);
  ScopedMount m({Mount{"bind", ro, {"ro"}}}, ro);
  try {
    snap::builtin_registry().get(param().backend).create(path_join(ro, "root"), param().options);
    ADD_FAILURE() << "a root on a read-only mount must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(ro), std::string::npos) << "the error must name the path: " << e.what();
  }
  EXPECT_EQ(mounts_under(ro).size(), 1u) << "nothing but the test's own mount may stay";
  m.close();
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) { return param_label(info.param); }

// Every registered backend, then the documented option sets that change what a backend's
// snapshots hold or how they read (as containerd runs its overlay suite with them): overlayfs
// copying up metadata only (metacopy files in committed layers, read through the layers above),
// with the inode index, and with redirected directories (a renamed lower directory is not copied).
std::vector<std::string> params() {
  std::vector<std::string> out = snap::builtin_registry().names();
  for (const char* p : {"overlayfs[metacopy=on]", "overlayfs[index=on]", "overlayfs[redirect_dir=on]"}) out.push_back(p);
  // composefs's other form of metadata trees (the default is EROFS images where they work).
  out.push_back("composefs[metadata=dir]");
  // And overlayfs with every layer on one cloning file system (copy-up by clone).
  out.insert(out.end(), {"overlayfs[fs=xfs]", "overlayfs[fs=btrfs]"});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(params()), param_name);

}  // namespace
}  // namespace cowbench::test
