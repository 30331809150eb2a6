// The maintenance lock of a table on an object store (no flock): shared holders (table append,
// sql DML, optimize, vacuum) run beside each other, as under a shared flock, and `sluice forget`
// (exclusive) runs only when none is live, and keeps them out while it runs. The store is a
// LocalStore instance other than storage::local_store(), so the LogStore takes it for an object
// store (LogStore::is_local): the lease and heartbeat objects are written as on S3.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "../temp_dir.h"
#include "sluice/delta/log_store.h"
#include "sluice/pipeline/maintenance_lock.h"
#include "sluice/storage/local_store.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

class MaintenanceLockObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "t" / "_delta_log");
    std::ofstream(dir_.path() / "t" / "_delta_log" / "00000000000000000000.json") << "{}\n";
    store_ = std::make_shared<delta::LogStore>(objects_, (dir_.path() / "t").string());
    ASSERT_FALSE(store_->is_local());
  }
  arrow::Result<std::unique_ptr<MaintenanceLock>> take(MaintenanceLockMode mode, const std::string& command) {
    return MaintenanceLock::acquire(*store_, "t", mode, command);
  }
  sluice::testing::TempDir dir_;
  std::shared_ptr<storage::ObjectStore> objects_ = std::make_shared<storage::LocalStore>();
  std::shared_ptr<delta::LogStore> store_;
};

TEST_F(MaintenanceLockObjectStoreTest, SharedHoldersRunBesideEachOtherAndKeepForgetOut) {
  auto first = take(MaintenanceLockMode::kShared, "table append");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = take(MaintenanceLockMode::kShared, "table optimize");
  ASSERT_TRUE(second.ok()) << second.status().ToString();  // before: the lease refused the second
  auto forget = take(MaintenanceLockMode::kExclusive, "forget");
  ASSERT_FALSE(forget.ok());
  EXPECT_NE(forget.status().message().find("`sluice table append`"), std::string::npos) << forget.status().message();
  first->reset();
  forget = take(MaintenanceLockMode::kExclusive, "forget");
  ASSERT_FALSE(forget.ok()) << "one shared holder is still live";
  second->reset();
  forget = take(MaintenanceLockMode::kExclusive, "forget");
  ASSERT_TRUE(forget.ok()) << forget.status().ToString();
}

TEST_F(MaintenanceLockObjectStoreTest, ForgetKeepsSharedHoldersOutUntilItEnds) {
  auto forget = take(MaintenanceLockMode::kExclusive, "forget");
  ASSERT_TRUE(forget.ok()) << forget.status().ToString();
  auto append = take(MaintenanceLockMode::kShared, "table append");
  ASSERT_FALSE(append.ok());
  EXPECT_NE(append.status().message().find("`sluice forget`"), std::string::npos) << append.status().message();
  auto other = take(MaintenanceLockMode::kExclusive, "forget");
  ASSERT_FALSE(other.ok());
  forget->reset();
  append = take(MaintenanceLockMode::kShared, "table append");
  ASSERT_TRUE(append.ok()) << append.status().ToString();
  // The refused holders left no heartbeat behind: only the live one is there.
  int heartbeats = 0;
  for (const auto& e : fs::directory_iterator(dir_.path() / "t" / "_sluice_maintenance" / "members")) {
    heartbeats += e.path().extension() == ".json";
  }
  EXPECT_EQ(heartbeats, 1);
}

}  // namespace
}  // namespace sluice::pipeline
