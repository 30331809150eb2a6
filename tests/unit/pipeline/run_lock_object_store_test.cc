// The run lock on an object store (no flock): scale-out workers (heartbeats plus joins of the run
// lease's chain) and exclusive runs keep each other out both ways, a leader lease elects one
// worker, another takes over when it ends or after its ttl, and a worker that finds an
// exclusive run started behind its back ends (exit 75). Run on a LocalStore instance other than
// the process's local store, so RunLock takes the object-store path, written through the
// ObjectStore interface only, as on S3.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <thread>
#include <vector>

#include "../temp_dir.h"
#include "sluice/common/ids.h"
#include "sluice/pipeline/run_lock.h"
#include "sluice/pipeline/run_member.h"
#include "sluice/storage/local_store.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int64_t kTtlMs = 400;  // renewals and leader attempts every 100 ms

class ObjectStoreRunLockTest : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("SLUICE_RUN_LEASE_TTL_MS", std::to_string(kTtlMs).c_str(), 1); }
  void TearDown() override { ::unsetenv("SLUICE_RUN_LEASE_TTL_MS"); }

  sluice::testing::TempDir dir_;
  std::shared_ptr<storage::ObjectStore> store_ = std::make_shared<storage::LocalStore>();
  PipelineConfig config_ = [this] {
    PipelineConfig c;
    c.name = "shop";
    c.dir = dir_.path() / "pipe";
    c.storage = dir_.path() / "bucket" / "shop";
    c.objects = store_;
    return c;
  }();
  fs::path system() const { return config_.storage / "system"; }

  // A generation of a lease chain or a heartbeat as a process on another host wrote it.
  void put_record(const fs::path& path, int64_t renewed_ms, nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json j = {{"pid", 1},          {"host", "elsewhere"}, {"started_ms", 0},   {"command", "sluice run x"},
                        {"mode", "scale-out"}, {"pipeline", "shop"},  {"renewed_ms", renewed_ms}, {"ttl_ms", kTtlMs},
                        {"released", false}};
    j.update(extra);
    ASSERT_TRUE(store_->put(path.string(), j.dump()).ok());
  }

  nlohmann::json newest(const fs::path& dir) {
    auto gens = lease::generations(*store_, dir).ValueOrDie();
    return nlohmann::json::parse(store_->read(lease::generation_path(dir, gens.back())).ValueOrDie());
  }

  template <typename F>
  static bool eventually(F condition, milliseconds timeout = milliseconds(5000)) {
    const auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return condition();
  }
};

TEST_F(ObjectStoreRunLockTest, ScaleOutWorkersShareTheStorageAndAnExclusiveRunIsRefusedNamingThem) {
  auto a = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(RunMember::live(*store_, system() / "run_members").ValueOrDie().size(), 2u);
  // Each join is a generation of the run lease's chain; the second copies the first's start.
  EXPECT_EQ(newest(system() / "run_lease").at("scale_out_since"), 0);
  auto exclusive = RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {"--once"}});
  ASSERT_FALSE(exclusive.ok());
  const auto& m = exclusive.status().message();
  EXPECT_NE(m.find("another sluice run is using storage"), std::string::npos) << m;
  // Both workers named (one process here: its pid twice).
  const auto named = fmt::format("pid {} on host ", ::getpid());
  const auto first = m.find(named);
  ASSERT_NE(first, std::string::npos) << m;
  EXPECT_NE(m.find(named, first + 1), std::string::npos) << m;
  EXPECT_NE(m.find("scale-out run of pipeline 'shop'"), std::string::npos) << m;
  EXPECT_NE(m.find("this run is exclusive"), std::string::npos) << m;
}

TEST_F(ObjectStoreRunLockTest, AWorkerIsRefusedWhileAnExclusiveRunHoldsTheLease) {
  auto exclusive = RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {"--once"}});
  ASSERT_TRUE(exclusive.ok()) << exclusive.status().ToString();
  auto worker = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  ASSERT_FALSE(worker.ok());
  const auto& m = worker.status().message();
  EXPECT_NE(m.find(fmt::format("exclusive run of pipeline 'shop': sluice run {} --once", config_.dir.string())),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("this run is one"), std::string::npos) << m;
  // The refused worker left no heartbeat behind.
  EXPECT_TRUE(RunMember::live(*store_, system() / "run_members").ValueOrDie().empty());
}

TEST_F(ObjectStoreRunLockTest, AnExclusiveRunStartsOnceEveryWorkerHasEnded) {
  {
    auto a = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
    auto b = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
    ASSERT_TRUE(a.ok() && b.ok());
    a->reset();
    EXPECT_FALSE(RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {}}).ok());
  }
  auto exclusive = RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {}});
  ASSERT_TRUE(exclusive.ok()) << exclusive.status().ToString();
  // And a worker after the exclusive run begins a new scale-out.
  exclusive->reset();
  auto worker = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  ASSERT_TRUE(worker.ok()) << worker.status().ToString();
  EXPECT_GT(newest(system() / "run_lease").at("scale_out_since").get<int64_t>(), 0);
}

TEST_F(ObjectStoreRunLockTest, AWorkerOnAnotherHostBlocksAnExclusiveRunUntilItsHeartbeatExpires) {
  put_record(system() / "run_members" / "elsewhere-1-abc.json", now_millis());
  auto refused = RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("pid 1 on host elsewhere"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(eventually([&] { return RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {}}).ok(); }));
}

TEST_F(ObjectStoreRunLockTest, AnExclusiveRunThatFindsAWorkerAfterTakingTheLeaseReleasesItAndIsRefused) {
  // The start-up race: a worker wrote its heartbeat and read the chain before the exclusive
  // run's generation was there. The exclusive run's second look finds it.
  int asked = 0;
  RunLeaseOptions options;
  options.record_json = R"({"pid": 2, "mode": "exclusive"})";
  options.excluded_by = [&]() -> arrow::Result<std::string> {
    return ++asked == 1 ? std::string() : std::string(R"({"pid": 3, "mode": "scale-out"})");
  };
  LeaseHolder holder;
  auto lease = RunLease::acquire(store_, system() / "run_lease", options, &holder);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(*lease, nullptr);
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(nlohmann::json::parse(holder.record_json).at("pid"), 3);
  // Its generation is released at once: the worker's next renewal does not take it for a run.
  EXPECT_TRUE(newest(system() / "run_lease").at("released").get<bool>());
}

TEST_F(ObjectStoreRunLockTest, WorkersAndAnExclusiveRunStartingAtOnceNeverBothRun) {
  // Two workers and an exclusive run start together, many times: either the exclusive run runs
  // alone, or the workers do (both may be refused in a close race, never both admitted). A run
  // not admitted is refused as such (not an I/O error), and some round admits someone.
  int admitted_rounds = 0;
  for (int round = 0; round < 15; ++round) {
    std::atomic<int> ready{0};
    std::vector<std::optional<arrow::Result<std::unique_ptr<RunLock>>>> out(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&, i] {
        ++ready;
        while (ready.load() < 3) {
        }
        out[i].emplace(RunLock::acquire(config_, i == 0 ? RunLockMode::kExclusive : RunLockMode::kShared, {"sluice", {}}));
      });
    }
    for (auto& t : threads) t.join();
    const bool exclusive = out[0]->ok();
    const bool worker = out[1]->ok() || out[2]->ok();
    EXPECT_FALSE(exclusive && worker) << "round " << round;
    if (exclusive || worker) ++admitted_rounds;
    for (auto& o : out) {
      if (o->ok()) continue;
      EXPECT_TRUE(o->status().IsInvalid()) << "round " << round << ": " << o->status().ToString();
      EXPECT_NE(o->status().message().find("another sluice run is using storage"),
                std::string::npos)
          << "round " << round << ": " << o->status().ToString();
    }
    for (auto& o : out) {
      if (o->ok()) (*o)->reset();  // ended cleanly: the next round starts free
    }
  }
  EXPECT_GT(admitted_rounds, 0);
}

TEST_F(ObjectStoreRunLockTest, OneWorkerLeadsWithATermAndAnotherTakesOverWhenItEnds) {
  auto a = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  auto b = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->leads().ValueOr(false), true);
  EXPECT_EQ((*a)->leads().ValueOr(false), true);  // keeps leading
  EXPECT_EQ((*b)->leads().ValueOr(true), false);
  EXPECT_EQ(newest(system() / "leader_lease").at("pid"), ::getpid());
  a->reset();  // released: the other takes over at its next attempt, not after the ttl
  EXPECT_TRUE(eventually([&] { return (*b)->leads().ValueOr(false); }, milliseconds(kTtlMs)));
  EXPECT_GE(newest(system() / "leader_lease").at("renewed_ms").get<int64_t>(), 0);
}

TEST_F(ObjectStoreRunLockTest, ALeaderKilledOnAnotherHostIsTakenOverAfterItsTtl) {
  auto worker = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  ASSERT_TRUE(worker.ok());
  const auto renewed = now_millis();
  put_record(lease::generation_path(system() / "leader_lease", 4), renewed);
  EXPECT_EQ((*worker)->leads().ValueOr(true), false);
  ASSERT_TRUE(eventually([&] { return (*worker)->leads().ValueOr(false); }));
  EXPECT_GE(now_millis(), renewed + kTtlMs);
  const auto term = newest(system() / "leader_lease");
  EXPECT_EQ(term.at("pid"), ::getpid());
  EXPECT_EQ(lease::generations(*store_, system() / "leader_lease").ValueOrDie(), std::vector<int64_t>{5});
}

TEST_F(ObjectStoreRunLockTest, ALeaderLeaseTheStoreCannotReachIsRetriedThenAnErrorAfterTheTtl) {
  auto worker = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  ASSERT_TRUE(worker.ok());
  // A file where the lease folder belongs: listing it fails, as an unreachable store would.
  ASSERT_TRUE(store_->put((system() / "leader_lease").string(), "x").ok());
  auto first = (*worker)->leads();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(*first);
  arrow::Status failed;
  ASSERT_TRUE(eventually([&] {
    auto leads = (*worker)->leads();
    failed = leads.status();
    return !leads.ok();
  }));
  EXPECT_NE(failed.message().find("cannot take or test the leader lease in"), std::string::npos) << failed.ToString();
  EXPECT_NE(failed.message().find("check that the store is reachable"), std::string::npos) << failed.ToString();
}

TEST_F(ObjectStoreRunLockTest, AWorkerThatFindsAnExclusiveRunStartedBehindItsBackEnds) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = RunLock::acquire(config_, RunLockMode::kShared, {"child", {}});
    if (!lock.ok()) std::_Exit(1);
    while (true) ::pause();  // its heartbeat thread renews until it finds the chain taken
  }
  ASSERT_TRUE(eventually([&] { return !lease::generations(*store_, system() / "run_lease").ValueOrDie().empty(); }));
  // An exclusive run that took the chain while the worker did not renew (as after a stall).
  const auto gens = lease::generations(*store_, system() / "run_lease").ValueOrDie();
  put_record(lease::generation_path(system() / "run_lease", gens.back() + 1), now_millis(), {{"mode", "exclusive"}});
  int status = 0;
  const bool ended = eventually([&] { return ::waitpid(child, &status, WNOHANG) == child; });
  if (!ended) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  ASSERT_TRUE(ended);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 75);
}

}  // namespace
}  // namespace sluice::pipeline
