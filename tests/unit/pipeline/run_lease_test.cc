// The run lease (the run lock on an object store), on the local ObjectStore: it is written only
// through the ObjectStore interface, so the same put-if-absent chain runs on every store.
#include "sluice/pipeline/run_lease.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "../temp_dir.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

class RunLeaseTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  fs::path lease_dir() const { return dir_.path() / "system" / "run_lease"; }

  RunLeaseOptions options(int64_t pid, const std::string& host = "") const {
    RunLeaseOptions o;
    o.ttl = std::chrono::milliseconds(60'000);
    nlohmann::json j = {{"pid", pid}, {"command", "sluice run p"}, {"pipeline", "p"}};
    if (!host.empty()) j["host"] = host;
    o.record_json = j.dump();
    return o;
  }

  std::vector<std::string> generations() const {
    auto listed = storage::local_store()->list(lease_dir().string());
    std::vector<std::string> names;
    for (const auto& o : listed.ValueOrDie()) names.push_back(o.name);
    return names;
  }
};

TEST_F(RunLeaseTest, SecondAcquireIsRefusedWithTheHoldersRecord) {
  LeaseHolder holder;
  auto first = RunLease::acquire(storage::local_store(), lease_dir(), options(::getpid()), &holder);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_NE(*first, nullptr);
  auto second = RunLease::acquire(storage::local_store(), lease_dir(), options(1), &holder);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, nullptr);
  EXPECT_EQ(nlohmann::json::parse(holder.record_json).at("pid"), ::getpid());
  EXPECT_EQ(holder.generation, 0);
}

TEST_F(RunLeaseTest, ReleaseLetsTheNextRunStartAtOnceAndOldGenerationsAreDeleted) {
  LeaseHolder holder;
  {
    auto first = RunLease::acquire(storage::local_store(), lease_dir(), options(::getpid()), &holder);
    ASSERT_TRUE(first.ok() && *first);
  }
  EXPECT_EQ(generations(), std::vector<std::string>{"00000000000000000001.json"});  // the release
  auto next = RunLease::acquire(storage::local_store(), lease_dir(), options(::getpid()), &holder);
  ASSERT_TRUE(next.ok() && *next) << holder.record_json;
  EXPECT_EQ(generations(), std::vector<std::string>{"00000000000000000002.json"});
}

TEST_F(RunLeaseTest, ALeaseNotRenewedWithinItsTtlIsTakenOver) {
  // A holder on another host that stopped renewing a minute ago.
  nlohmann::json stale = {{"pid", 1},           {"host", "elsewhere"}, {"renewed_ms", 0},
                          {"ttl_ms", 20'000},   {"released", false}};
  ASSERT_TRUE(storage::local_store()->put((lease_dir() / "00000000000000000007.json").string(), stale.dump()).ok());
  LeaseHolder holder;
  auto taken = RunLease::acquire(storage::local_store(), lease_dir(), options(::getpid()), &holder);
  ASSERT_TRUE(taken.ok() && *taken);
  EXPECT_EQ(generations(), std::vector<std::string>{"00000000000000000008.json"});
}

TEST_F(RunLeaseTest, ALiveLeaseOnAnotherHostIsNotTaken) {
  nlohmann::json live = {{"pid", 1}, {"host", "elsewhere"}, {"renewed_ms", int64_t{1} << 50},
                         {"ttl_ms", 20'000}, {"released", false}};
  ASSERT_TRUE(storage::local_store()->put((lease_dir() / "00000000000000000003.json").string(), live.dump()).ok());
  LeaseHolder holder;
  auto refused = RunLease::acquire(storage::local_store(), lease_dir(), options(::getpid()), &holder);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(*refused, nullptr);
  EXPECT_EQ(holder.generation, 3);
}

}  // namespace
}  // namespace sluice::pipeline
