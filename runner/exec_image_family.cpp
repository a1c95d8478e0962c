// The executor of kFamily workloads (image-family): for each K of the plan, the first K members of
// a synthetic image family imported into the backend, one container per image started together,
// each reading its image's startup set; disk of all K images and their containers, page cache of
// the reads.
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "runner/container_snapshot.h"
#include "runner/executor.h"
#include "runner/hygiene.h"
#include "runner/image_files.h"
#include "runner/layer_disk.h"
#include "runner/run_hooks.h"
#include "runner/together.h"

namespace cowbench {
namespace {

// One member of the family, imported: its top layer and the read set its container runs.
struct Member {
  std::string ref, top;
  nlohmann::json plan;
  int64_t read_bytes = 0;
};

class FamilyExecutor final : public ShapeExecutor {
 public:
  using ShapeExecutor::ShapeExecutor;

  std::vector<rep::Run> run(Backend& b, Planned& p, int repeat) override {
    uint64_t seed = p.plan.at("seed").get<uint64_t>();
    int most = 0;
    for (const auto& k : p.plan.at("counts")) most = std::max(most, k.get<int>());
    // Imported outside any measurement; later repeats find the layers committed (by chain id).
    std::vector<Member> members = import_members(b, seed, most);
    std::vector<rep::Run> out;
    for (const auto& k : p.plan.at("counts")) {
      if (ctx_.stop) break;
      out.push_back(run_k(b, p, repeat, members, k.get<int>()));
    }
    return out;
  }

 private:
  std::vector<Member> import_members(Backend& b, uint64_t seed, int most) {
    std::vector<Member> out;
    for (int m = 1; m <= most; ++m) {
      Member mb;
      mb.ref = wl::family_member_ref(m, seed);
      RunConfig c = ctx_.cfg;
      c.image = mb.ref;
      c.fresh = false;
      PreparedImage pi = make_image_importer(c)(*b.sn, b.name);
      if (!pi.cached) log::info("image-family: imported {} into {} in {:.1f} s", mb.ref, b.name, pi.import_ns / 1e9);
      mb.top = pi.top;
      auto it = ctx_.family_plans.find(mb.ref);
      if (it == ctx_.family_plans.end())
        it = ctx_.family_plans.emplace(mb.ref, wl::startup_read_plan(list_image_files(*b.sn, mb.top, ctx_.containers), seed)).first;
      mb.plan = it->second;
      mb.read_bytes = mb.plan.value("bytes", int64_t{0});
      out.push_back(std::move(mb));
    }
    return out;
  }

  rep::Run run_k(Backend& b, Planned& p, int repeat, const std::vector<Member>& members, int k) {
    rep::Run run = ctx_.new_run(b, fmt::format("{}/{}", p.name, k), repeat);
    run.cache = "cold";  // the page cache is measured from a dropped cache, whatever --cache says
    // Declared before anything that may throw, so that the containers' snapshots go with it.
    std::vector<ContainerSnapshot> containers;
    std::vector<const nlohmann::json*> plans;
    std::vector<std::string> tops;
    int64_t read_bytes = 0;
    int64_t t0 = monotonic_ns();
    for (int i = 0; i < k; ++i) {
      const Member& m = members[static_cast<size_t>(i)];
      containers.emplace_back(*b.sn, m.top, ctx_.containers);
      plans.push_back(&m.plan);
      tops.push_back(m.top);
      read_bytes += m.read_bytes;
    }
    int64_t prepare_ns = monotonic_ns() - t0;
    // What preparing wrote (whole trees for copy) is on disk and out of the cache before the
    // reads, so that the growth is what the K containers read and nothing else.
    b.sn->quiesce();
    ::sync();
    drop_caches();
    std::optional<int64_t> cached_before = meminfo_kb({"Cached"});
    std::optional<int64_t> cached_after = run_together(ctx_, b, containers, *p.w, plans, run);
    run.setup_ns = prepare_ns;
    run.page_cache_bytes = page_cache_growth_bytes(cached_before, cached_after);
    nlohmann::json layers = layer_disk(*b.sn, tops);
    nlohmann::json image_bytes = layers.at("layer_bytes");
    int64_t container_bytes = std::max<int64_t>(0, run.upper_bytes);
    run.extra = {{"images", k},
                 {"image_bytes", image_bytes},
                 {"container_bytes", container_bytes},
                 {"disk_bytes", image_bytes.is_null() ? nlohmann::json(nullptr)
                                                      : nlohmann::json(image_bytes.get<int64_t>() + container_bytes)},
                 {"read_bytes", read_bytes},
                 {"sharing", {{"disk", b.spec->caps.disk_sharing}, {"page_cache", b.spec->caps.cache_sharing}}}};
    containers.clear();  // removed now, by their destructors (failures are logged)
    return run;
  }
};

}  // namespace

std::unique_ptr<Executor> make_family_executor(RunContext& ctx) { return std::make_unique<FamilyExecutor>(ctx); }

}  // namespace cowbench
