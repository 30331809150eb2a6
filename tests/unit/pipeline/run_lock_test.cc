// The run lock of a pipeline's storage: a second run is refused at once with the holder named,
// scale-out runs share it, and a holder that dies (SIGKILL) blocks nobody.
#include "sluice/pipeline/run_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>

#include "../temp_dir.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/sql_runner.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

class RunLockTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  PipelineConfig config_ = [this] {
    PipelineConfig c;
    c.name = "shop";
    c.dir = dir_.path() / "pipe";
    c.storage = dir_.path() / "storage";
    return c;
  }();
};

TEST_F(RunLockTest, SecondExclusiveRunIsRefusedNamingTheHolder) {
  auto first = RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {"--once"}});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {}});
  ASSERT_FALSE(second.ok());
  const auto& m = second.status().message();
  EXPECT_NE(m.find("another sluice run is using storage"), std::string::npos) << m;
  EXPECT_NE(m.find(fmt::format("pid {} on host ", ::getpid())), std::string::npos) << m;
  EXPECT_NE(m.find(fmt::format("exclusive run of pipeline 'shop': sluice run {} --once", config_.dir.string())),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("Two runs of one pipeline would both fail"), std::string::npos) << m;
  EXPECT_NE(m.find("group_mode => 'subscribe'"), std::string::npos) << m;
  // A scale-out run is refused too while an exclusive one holds the storage.
  EXPECT_FALSE(RunLock::acquire(config_, RunLockMode::kShared, {"sluice run pipe", {}}).ok());
}

TEST_F(RunLockTest, ReleasedWhenTheHolderEnds) {
  {
    auto first = RunLock::acquire(config_, RunLockMode::kExclusive, {"one", {}});
    ASSERT_TRUE(first.ok());
  }
  EXPECT_TRUE(RunLock::acquire(config_, RunLockMode::kExclusive, {"two", {}}).ok());
  EXPECT_TRUE(RunLock::holders(config_.storage).empty());  // its record left with it
}

TEST_F(RunLockTest, ScaleOutRunsShareTheLockAndOneOfThemLeads) {
  auto a = RunLock::acquire(config_, RunLockMode::kShared, {"a", {}});
  auto b = RunLock::acquire(config_, RunLockMode::kShared, {"b", {}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(RunLock::holders(config_.storage).size(), 2u);
  EXPECT_FALSE(RunLock::acquire(config_, RunLockMode::kExclusive, {"c", {}}).ok());
  EXPECT_EQ((*a)->leads().ValueOr(false), true);
  EXPECT_EQ((*a)->leads().ValueOr(false), true);  // keeps leading
  EXPECT_EQ((*b)->leads().ValueOr(true), false);
  a->reset();  // the leader ends: the other takes over
  EXPECT_EQ((*b)->leads().ValueOr(false), true);
}

TEST_F(RunLockTest, HolderKilledWithSigkillBlocksNobody) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = RunLock::acquire(config_, RunLockMode::kExclusive, {"child run", {}});
    char c = lock.ok() ? '1' : '0';
    (void)::write(ready[1], &c, 1);
    while (true) ::pause();  // killed by the parent, never cleans up
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, '1');
  auto refused = RunLock::acquire(config_, RunLockMode::kExclusive, {"parent run", {}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(fmt::format("pid {} ", child)), std::string::npos)
      << refused.status().message();
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  auto after = RunLock::acquire(config_, RunLockMode::kExclusive, {"parent run", {}});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  // The dead run's record is gone, and only the live holder is named.
  auto holders = RunLock::holders(config_.storage);
  ASSERT_EQ(holders.size(), 1u);
  EXPECT_EQ(holders[0].pid, ::getpid());
  EXPECT_EQ(holders[0].command, fmt::format("parent run run {}", config_.dir.string()));
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_F(RunLockTest, HolderOfAnotherPipelineIsNamedAndTheMessageSaysSo) {
  auto first = RunLock::acquire(config_, RunLockMode::kExclusive, {"sluice", {}});
  ASSERT_TRUE(first.ok());
  auto other = config_;
  other.name = "clicks";
  auto refused = RunLock::acquire(other, RunLockMode::kExclusive, {"sluice", {}});
  ASSERT_FALSE(refused.ok());
  const auto& m = refused.status().message();
  EXPECT_NE(m.find("exclusive run of pipeline 'shop'"), std::string::npos) << m;
  EXPECT_EQ(m.find("Two runs of one pipeline"), std::string::npos) << m;
  EXPECT_NE(m.find("give one of them its own 'storage:'"), std::string::npos) << m;
}

TEST_F(RunLockTest, RecordNamesFlagsButNoValues) {
  auto lock = RunLock::acquire(config_, RunLockMode::kExclusive, {"/usr/bin/sluice", {"--bootstrap-servers"}});
  ASSERT_TRUE(lock.ok());
  auto holders = RunLock::holders(config_.storage);
  ASSERT_EQ(holders.size(), 1u);
  EXPECT_EQ(holders[0].command, fmt::format("/usr/bin/sluice run {} --bootstrap-servers", config_.dir.string()));
}

TEST_F(RunLockTest, LeaderLockThatCannotBeOpenedIsAnErrorNotAnotherLeader) {
  auto lock = RunLock::acquire(config_, RunLockMode::kShared, {"sluice", {}});
  ASSERT_TRUE(lock.ok());
  // A directory where the leader lock file belongs: open(O_RDWR) fails (EISDIR), as EACCES would.
  fs::create_directories(config_.storage / "system" / "leader.lock");
  auto leads = (*lock)->leads();
  ASSERT_FALSE(leads.ok());
  const auto& m = leads.status().message();
  EXPECT_NE(m.find("leader.lock"), std::string::npos) << m;
  EXPECT_NE(m.find("let the user running sluice read and write"), std::string::npos) << m;
}

arrow::Result<Graph> graph_of(const std::string& sql) {
  std::vector<sql::SourceFile> files;
  files.push_back({"p.sql", sql});
  return build_graph(std::move(files));
}

TEST(RunLockModeTest, SharedOnlyForContinuousSqlRunsWhoseEveryKafkaReadSubscribes) {
  auto all = graph_of(
      "CREATE STREAMING TABLE a AS SELECT * FROM STREAM read_kafka(topic => 't', group_mode => 'subscribe');\n"
      "CREATE STREAMING TABLE b AS SELECT * FROM STREAM(a);");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_TRUE(every_kafka_read_joins_a_group(*all));
  RunShape shape{.continuous = true, .sql_reads_scale_out = every_kafka_read_joins_a_group(*all)};
  EXPECT_EQ(run_lock_mode(shape), RunLockMode::kShared);
  auto once = shape;
  once.continuous = false;  // --once / triggered
  EXPECT_EQ(run_lock_mode(once), RunLockMode::kExclusive);
  // A `bronze:` list reads every partition in every process (assign mode).
  auto bronze = shape;
  bronze.bronze_list = true;
  EXPECT_EQ(run_lock_mode(bronze), RunLockMode::kExclusive);
  // --full-refresh resets tables the other processes are writing.
  auto refresh = shape;
  refresh.full_refresh = true;
  EXPECT_EQ(run_lock_mode(refresh), RunLockMode::kExclusive);

  auto mixed = graph_of(
      "CREATE STREAMING TABLE a AS SELECT * FROM STREAM read_kafka(topic => 't', group_mode => 'subscribe');\n"
      "CREATE STREAMING TABLE c AS SELECT * FROM STREAM read_kafka(topic => 'u');");
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  EXPECT_FALSE(every_kafka_read_joins_a_group(*mixed));
}

TEST(RunLockModeTest, EverySpellingOfGroupModeTheRunAcceptsCounts) {
  // The aliases read_kafka accepts (camelCase as in Databricks), any case of the value.
  for (const char* arg : {"groupMode => 'subscribe'", "group_mode => 'Subscribe'", "groupMode => 'SUBSCRIBE'"}) {
    auto g = graph_of(
        fmt::format("CREATE STREAMING TABLE a AS SELECT * FROM STREAM read_kafka(subscribe => 't', {});", arg));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_TRUE(every_kafka_read_joins_a_group(*g)) << arg;
  }
  auto assign =
      graph_of("CREATE STREAMING TABLE a AS SELECT * FROM STREAM read_kafka(topic => 't', groupMode => 'assign');");
  ASSERT_TRUE(assign.ok());
  EXPECT_FALSE(every_kafka_read_joins_a_group(*assign));
}

}  // namespace
}  // namespace sluice::pipeline
