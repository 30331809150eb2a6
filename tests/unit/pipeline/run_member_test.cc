// A scale-out worker's reads of the run lease chain on a store that fails or races: a failing
// read is the store's error (not "the chain moved on"), and a generation deleted between the
// listing and the read (a concurrent join superseding it) is listed again, not a failed renewal.
// The store is a LocalStore; FaultyStore passes every call through, and either fails the reads
// of one object (as an S3 5xx would) or, right after listing the chain, does what a concurrent
// join does (writes the next generation and deletes the listed one).
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "../temp_dir.h"
#include "sluice/common/ids.h"
#include "sluice/pipeline/run_member.h"
#include "sluice/storage/local_store.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int64_t kMemberTtlMs = 400;  // renewals every 100 ms

class FaultyStore : public storage::ObjectStore {
 public:
  std::string fail_reads_of;  // reads of this object fail with a 503
  // After a listing of this folder (at most one every 50 ms) a join supersedes the newest.
  fs::path race_in;
  mutable std::atomic<int> races{0};

  const char* scheme() const override { return inner_.scheme(); }
  std::string display(const std::string& path) const override { return inner_.display(path); }
  arrow::Result<std::vector<storage::ObjectInfo>> list(
      const std::string& dir, const std::string& start_after) const override {
    auto listed = inner_.list(dir, start_after);
    if (!listed.ok() || race_in.empty() || dir != race_in.string()) return listed;
    const auto now = now_millis();
    if (now - last_race_ms_ < 50) return listed;  // the worker's immediate second look sees no race
    auto gens = lease::generations(inner_, race_in);
    if (!gens.ok() || gens->empty()) return listed;
    const auto newest = lease::generation_path(race_in, gens->back());
    auto text = inner_.read(newest);
    if (!text.ok()) return listed;
    auto& self = const_cast<FaultyStore&>(*this);
    (void)self.inner_.put_if_absent(lease::generation_path(race_in, gens->back() + 1), *text);
    (void)self.inner_.remove(newest);
    last_race_ms_ = now;
    ++races;
    return listed;
  }
  arrow::Result<std::optional<storage::ObjectInfo>> head(const std::string& path) const override {
    return inner_.head(path);
  }
  arrow::Result<std::string> read(const std::string& path) const override {
    if (path == fail_reads_of) return arrow::Status::IOError("503 Service Unavailable (SlowDown)");
    return inner_.read(path);
  }
  arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> open_input(
      const std::string& path) const override {
    return inner_.open_input(path);
  }
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> open_output(
      const std::string& path) override {
    return inner_.open_output(path);
  }
  arrow::Status finish_output(const std::string& path, arrow::io::OutputStream& out) override {
    return inner_.finish_output(path, out);
  }
  arrow::Result<storage::PutResult> put_if_absent(const std::string& path,
                                                  const std::string& content) override {
    return inner_.put_if_absent(path, content);
  }
  arrow::Status put(const std::string& path, const std::string& content) override {
    return inner_.put(path, content);
  }
  arrow::Status remove(const std::string& path) override { return inner_.remove(path); }

 private:
  storage::LocalStore inner_;
  mutable std::atomic<int64_t> last_race_ms_{0};
};

class RunMemberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("SLUICE_RUN_LEASE_TTL_MS", std::to_string(kMemberTtlMs).c_str(), 1);
  }
  void TearDown() override { ::unsetenv("SLUICE_RUN_LEASE_TTL_MS"); }

  RunLeaseOptions options() const {
    RunLeaseOptions o;
    o.record_json = R"({"pid": 7, "host": "here", "mode": "scale-out"})";
    return o;
  }

  sluice::testing::TempDir dir_;
  std::shared_ptr<FaultyStore> store_ = std::make_shared<FaultyStore>();
  fs::path lease_dir_ = dir_.path() / "system" / "run_lease";
  fs::path members_dir_ = dir_.path() / "system" / "run_members";
};

TEST_F(RunMemberTest, AFailingReadOfTheChainIsTheStoresErrorNamingTheObject) {
  // A released exclusive generation: a worker may join after it, once it can read it.
  const auto gen = lease::generation_path(lease_dir_, 0);
  ASSERT_TRUE(store_->put(gen, R"({"pid": 1, "mode": "exclusive", "released": true})").ok());
  store_->fail_reads_of = gen;
  LeaseHolder holder;
  auto member = RunMember::join(store_, lease_dir_, members_dir_, options(), &holder);
  ASSERT_FALSE(member.ok());
  EXPECT_TRUE(member.status().IsIOError());
  EXPECT_NE(member.status().message().find(gen), std::string::npos) << member.status().ToString();
  EXPECT_NE(member.status().message().find("503"), std::string::npos) << member.status().ToString();
  EXPECT_EQ(member.status().message().find("moved on"), std::string::npos)
      << member.status().ToString();
  // Not joined: nothing written into the chain, and the heartbeat is gone again.
  EXPECT_EQ(lease::generations(*store_, lease_dir_).ValueOrDie(), std::vector<int64_t>{0});
  EXPECT_TRUE(RunMember::live(*store_, members_dir_).ValueOrDie().empty());
}

TEST_F(RunMemberTest, AGenerationDeletedByAConcurrentJoinIsListedAgainNotAFailedRenewal) {
  // In a child: before the fix every renewal failed on the deleted generation and the worker
  // ended with exit 75 ("cannot renew ... heartbeat") after its ttl. "threadsafe": the child
  // is a fresh process, not a fork of one with threads running.
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        store_->race_in = lease_dir_;  // the chain is empty: the join itself sees no race
        LeaseHolder holder;
        auto member = RunMember::join(store_, lease_dir_, members_dir_, options(), &holder);
        if (!member.ok() || *member == nullptr) std::exit(2);
        const auto deadline = steady_clock::now() + milliseconds(10 * kMemberTtlMs);
        while (store_->races.load() < 8 && steady_clock::now() < deadline) {  // 8 renewals: 2 ttls
          std::this_thread::sleep_for(milliseconds(10));
        }
        const int races = store_->races.load();
        member->reset();
        std::exit(races >= 8 ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
  GTEST_FLAG_SET(death_test_style, style);
}

TEST_F(RunMemberTest, AHeartbeatThatCannotBeReadIsNotTakenForGone) {
  // A failed read of a live member's heartbeat (a 5xx) is an error for whoever asks (an
  // exclusive run, forget), not "deleted since the listing": before, live() skipped it and the
  // exclusive one went on beside the member.
  LeaseHolder holder;
  auto member = RunMember::join(store_, lease_dir_, members_dir_, options(), &holder);
  ASSERT_TRUE(member.ok() && *member != nullptr) << member.status().ToString();
  auto listed = store_->list(members_dir_.string(), "");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  const auto heartbeat = (members_dir_ / listed->front().name).string();
  store_->fail_reads_of = heartbeat;
  auto live = RunMember::live(*store_, members_dir_);
  ASSERT_FALSE(live.ok()) << "a heartbeat that could not be read was taken for gone";
  EXPECT_NE(live.status().message().find(heartbeat), std::string::npos) << live.status().ToString();
  store_->fail_reads_of.clear();
  live = RunMember::live(*store_, members_dir_);
  ASSERT_TRUE(live.ok()) << live.status().ToString();
  EXPECT_EQ(live->size(), 1u);
  member->reset();
  live = RunMember::live(*store_, members_dir_);
  ASSERT_TRUE(live.ok());
  EXPECT_TRUE(live->empty());  // deleted on a clean exit: absent, skipped
}

// The same read in RunLease::acquire (an exclusive run, a leader attempt): a generation that
// cannot be read may hold the lease, so it is an error, never "gone: take the next one".
using RunLeaseReadTest = RunMemberTest;

TEST_F(RunLeaseReadTest, AGenerationThatCannotBeReadIsNotTakenOver) {
  const auto gen = lease::generation_path(lease_dir_, 0);
  const nlohmann::json held = {{"pid", 1},
                               {"host", "elsewhere"},
                               {"mode", "exclusive"},
                               {"renewed_ms", now_millis()},
                               {"ttl_ms", kMemberTtlMs},
                               {"released", false}};
  ASSERT_TRUE(store_->put(gen, held.dump()).ok());
  store_->fail_reads_of = gen;
  RunLeaseOptions o;
  o.record_json = R"({"pid": 9, "mode": "exclusive"})";
  LeaseHolder holder;
  auto lease = RunLease::acquire(store_, lease_dir_, o, &holder);
  ASSERT_FALSE(lease.ok());
  EXPECT_TRUE(lease.status().IsIOError());
  EXPECT_NE(lease.status().message().find(gen), std::string::npos) << lease.status().ToString();
  EXPECT_EQ(lease::generations(*store_, lease_dir_).ValueOrDie(), std::vector<int64_t>{0});
  // Readable again: the live holder is found.
  store_->fail_reads_of.clear();
  lease = RunLease::acquire(store_, lease_dir_, o, &holder);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(*lease, nullptr);
  EXPECT_EQ(holder.generation, 0);
}

}  // namespace
}  // namespace sluice::pipeline
