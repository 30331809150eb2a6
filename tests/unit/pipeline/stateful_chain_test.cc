// Stateful operator chains through the streaming commit: a window aggregation, a dedup and a
// stream-stream join whose flow stops after a commit and starts again (a new commit, operators
// and chain, the state loaded from the table's last commit) give the same rows as a run that
// never stopped; and state saved the way earlier versions saved it restores into the chain.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "../exec/event_rows.h"
#include "../temp_dir.h"
#include "sluice/exec/stream_join.h"
#include "sluice/exec/window_aggregate.h"
#include "sluice/pipeline/flow_operators.h"
#include "sluice/pipeline/pipeline_identity.h"
#include "sluice/pipeline/state_store.h"
#include "sluice/pipeline/streaming_commit.h"
#include "sluice/pipeline/windowed_flow.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;
using exec::testing::Event;
using exec::testing::kMinute;
using Rows = std::vector<std::string>;
using Batches = std::vector<std::vector<Event>>;

constexpr const char* kUpstreamId = "upstream-table-id";

Rows rows_of(const arrow::RecordBatch& out) {
  Rows rows;
  for (int64_t i = 0; i < out.num_rows(); ++i) {
    std::string row;
    for (int c = 0; c < out.num_columns(); ++c) {
      row += (c ? "," : "") + out.column(c)->GetScalar(i).ValueOrDie()->ToString();
    }
    rows.push_back(row);
  }
  return rows;
}

Rows sorted(Rows rows) {
  std::sort(rows.begin(), rows.end());
  return rows;
}

class StatefulChainTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  exec::testing::EventSource events_;
  PipelineId pipeline_ = [this] {
    PipelineConfig config;
    config.name = "shop";
    config.dir = dir_.path() / "shop";
    config.storage = dir_.path() / "storage";
    return open_pipeline_identity(config, {}).ValueOrDie().identity.id;
  }();
  Expectations no_expectations_;
  DatasetReport report_;

  std::unique_ptr<StreamingCommit> open_commit(const fs::path& table, std::shared_ptr<arrow::Schema> schema) {
    StreamingCommitOptions o;
    o.pipeline = pipeline_;
    o.flow = "t_flow";
    o.table = "t";
    o.table_path = table;
    o.schema = std::move(schema);
    auto c = StreamingCommit::make(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.MoveValueUnsafe();
  }

  // One run of a windowed (or dedup) flow over a Delta upstream, as the flow runner assembles it.
  struct WindowRun {
    std::unique_ptr<StreamingCommit> commit;
    std::unique_ptr<WindowedFlow> windowed;
    std::unique_ptr<DeltaPositions> positions;
    std::unique_ptr<exec::OperatorChain> chain;
  };

  WindowRun start_window_run(const exec::SelectPlan& plan, const fs::path& table) {
    WindowRun run;
    run.commit = open_commit(table, plan.output_schema());
    WindowedFlowOptions wo;
    wo.table = "t";
    wo.policy = exec::WatermarkPolicy{kMinute, {}, exec::WatermarkStep::kPerBatch};
    auto windowed = WindowedFlow::make(plan, wo, *run.commit);
    EXPECT_TRUE(windowed.ok()) << windowed.status().ToString();
    run.windowed = windowed.MoveValueUnsafe();
    const auto app_id = run.commit->ids().delta(kUpstreamId);
    run.positions = std::make_unique<DeltaPositions>("src", app_id);
    FlowOperatorsSpec spec;
    spec.plan = &plan;
    spec.expectations = &no_expectations_;
    spec.schema = plan.output_schema();
    spec.report = &report_;
    spec.positions = run.positions.get();
    spec.windowed = run.windowed.get();
    spec.commit = run.commit.get();
    spec.upstream = "src";
    spec.app_id = app_id;
    auto chain = plan_flow_operators(std::move(spec));  // with the state of the last commit
    EXPECT_TRUE(chain.ok()) << chain.status().ToString();
    run.chain = chain.MoveValueUnsafe();
    return run;
  }

  // Batch i is upstream version i; the run commits after each batch. `restart_after`: the
  // flow stops after that commit and a new one continues from the table.
  Rows run_window_flow(const std::string& select, const Batches& batches, const fs::path& table,
                       std::optional<size_t> restart_after, int64_t* late_rows = nullptr) {
    const auto plan = events_.plan(select);
    Rows out;
    int64_t late = 0;
    auto run = start_window_run(plan, table);
    for (size_t i = 0; i < batches.size(); ++i) {
      auto rows = run.chain->push_rows(events_.batch(batches[i]), static_cast<int64_t>(i));
      EXPECT_TRUE(rows.ok()) << rows.status().ToString();
      if (!rows.ok()) return {};
      auto r = rows_of(**rows);
      out.insert(out.end(), r.begin(), r.end());
      auto* writer = run.commit->writer().ValueOrDie();
      EXPECT_TRUE(writer->write(**rows).ok());
      auto progress = run.commit->progress();
      progress.delta(kUpstreamId, DeltaReader::kOnly, DeltaVersion(static_cast<int64_t>(i)));
      auto committed = run.commit->commit(progress);
      EXPECT_TRUE(committed.ok()) << committed.status().ToString();
      if (restart_after == i) {
        late += run.windowed->late_rows();
        run = {};  // the old run ends before the new one opens the table
        run = start_window_run(plan, table);
        EXPECT_GT(run.windowed->state_rows(), 0) << "the restarted run has the state of the last commit";
      }
    }
    late += run.windowed->late_rows();
    if (late_rows) *late_rows = late;
    return out;
  }
};

constexpr const char* kTumbling =
    "SELECT k, window.start AS ws, count(*) AS n, sum(v) AS s FROM STREAM(src) "
    "WATERMARK ts DELAY OF INTERVAL 1 MINUTE GROUP BY k, window(ts, '5 minutes')";

TEST_F(StatefulChainTest, WindowAggregationRestartedAfterACommitGivesTheUninterruptedRunsRows) {
  const Batches batches = {{{"a", 1, 1}, {"b", 2, 2}, {"a", 4, 3}},
                           {{"a", 6, 4}, {"b", 7, 5}},
                           {{"a", 3, 6}, {"a", 12, 7}},  // a@3 is late (watermark 6)
                           {{"b", 20, 8}}};
  int64_t late_uninterrupted = 0, late_restarted = 0;
  const auto uninterrupted = run_window_flow(kTumbling, batches, dir_.path() / "a", std::nullopt, &late_uninterrupted);
  for (size_t restart_after : {0, 1, 2}) {
    const auto table = dir_.path() / ("b" + std::to_string(restart_after));
    const auto restarted = run_window_flow(kTumbling, batches, table, restart_after, &late_restarted);
    EXPECT_EQ(sorted(restarted), sorted(uninterrupted)) << "restart after batch " << restart_after;
    EXPECT_EQ(late_restarted, late_uninterrupted);
  }
  // Worked by hand: [0,5) a n=2 s=4, b n=1 s=2 close at watermark 6; [5,10) a n=1 s=4,
  // b n=1 s=5 at 11; [10,15) a n=1 s=7 at 19.
  Rows counts;
  for (const auto& row : uninterrupted) counts.push_back(row.substr(0, 1) + row.substr(row.find(',', 2)));
  EXPECT_EQ(sorted(counts), (Rows{"a,1,4", "a,1,7", "a,2,4", "b,1,2", "b,1,5"}));
  EXPECT_EQ(late_uninterrupted, 1);
}

TEST_F(StatefulChainTest, DedupRestartedAfterACommitDropsWhatTheFirstRunSaw) {
  const char* select = "SELECT DISTINCT k, ts, v FROM STREAM(src) WATERMARK ts DELAY OF INTERVAL 1 MINUTE";
  const Batches batches = {{{"a", 1, 1}, {"b", 2, 2}, {"a", 1, 1}},
                           {{"a", 1, 1}, {"c", 3, 3}},  // a@1 seen in the first batch
                           {{"b", 2, 2}, {"c", 3, 3}, {"d", 5, 4}},
                           {{"d", 5, 4}, {"e", 9, 5}}};
  const auto uninterrupted = run_window_flow(select, batches, dir_.path() / "a", std::nullopt);
  // The oracle: each (k, ts, v) once, in arrival order.
  ASSERT_EQ(uninterrupted.size(), 5u);
  for (size_t restart_after : {0, 1, 2}) {
    const auto table = dir_.path() / ("b" + std::to_string(restart_after));
    EXPECT_EQ(run_window_flow(select, batches, table, restart_after), uninterrupted)
        << "restart after batch " << restart_after;
  }
}

// The stream-stream join's chain (join, then nothing) through the streaming commit.
class StreamJoinChainTest : public StatefulChainTest {
 protected:
  static constexpr const char* kInner =
      "SELECT a.k, a.v AS lv, b.v AS rv "
      "FROM STREAM(l) WATERMARK ts DELAY OF INTERVAL 1 MINUTE a "
      "JOIN STREAM(r) WATERMARK ts DELAY OF INTERVAL 1 MINUTE b "
      "ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL 10 MINUTES";
  using Step = std::pair<int, std::vector<Event>>;  // input (0 left, 1 right), events

  struct JoinRun {
    std::unique_ptr<StreamingCommit> commit;
    std::unique_ptr<exec::OperatorChain> chain;
  };

  JoinRun start_join_run(const exec::SelectPlan& plan, const fs::path& table) {
    JoinRun run;
    run.commit = open_commit(table, plan.output_schema());
    run.chain = std::make_unique<exec::OperatorChain>();
    run.chain->add(exec::StreamJoinOperator::make(plan).ValueOrDie());
    run.commit->set_state(*run.chain);
    auto loaded = run.commit->load_state(run.commit->ids().recorded_in(run.commit->snapshot().get()));
    EXPECT_TRUE(loaded.ok()) << loaded.ToString();
    return run;
  }

  static SourceProgress progress_at(const StreamingCommit& c, int64_t version) {
    auto p = c.progress();
    p.delta("left-id", DeltaReader::kOnly, DeltaVersion(version));
    p.delta("right-id", DeltaReader::kOnly, DeltaVersion(version));
    return p;
  }

  Rows run_join_flow(const exec::SelectPlan& plan, const std::vector<Step>& steps, const fs::path& table,
                     std::optional<size_t> restart_after) {
    Rows out;
    auto run = start_join_run(plan, table);
    for (size_t i = 0; i < steps.size(); ++i) {
      auto batch = exec::OperatorBatch::from_source(events_.batch(steps[i].second));
      batch.input = steps[i].first;
      auto rows = run.chain->push(std::move(batch));
      EXPECT_TRUE(rows.ok()) << rows.status().ToString();
      if (!rows.ok()) return {};
      auto r = rows_of(*rows->rows);
      out.insert(out.end(), r.begin(), r.end());
      EXPECT_TRUE(run.commit->writer().ValueOrDie()->write(*rows->rows).ok());
      auto committed = run.commit->commit(progress_at(*run.commit, static_cast<int64_t>(i)));
      EXPECT_TRUE(committed.ok()) << committed.status().ToString();
      if (restart_after == i) {
        run = {};
        run = start_join_run(plan, table);
      }
    }
    return sorted(out);
  }

  const std::vector<Step> steps_ = {  // as in exec/stream_join_test.cc
      {0, {{"x", 10, 1}, {"y", 11, 2}}}, {1, {{"x", 14, 100}, {"y", 30, 101}}},
      {0, {{"x", 12, 3}, {"y", 25, 4}}}, {1, {{"x", 20, 102}, {"y", 33, 103}}},  // x@20: late
      {0, {{"x", 40, 5}}},               {1, {{"x", 45, 104}}}};
};

TEST_F(StreamJoinChainTest, JoinRestartedAfterACommitGivesTheUninterruptedRunsRows) {
  const auto plan = events_.plan(kInner);
  const auto uninterrupted = run_join_flow(plan, steps_, dir_.path() / "a", std::nullopt);
  // Worked by hand (each left row with the right rows 0-10 minutes after it, same key).
  EXPECT_EQ(uninterrupted, (Rows{"x,1,100", "x,3,100", "x,5,104", "y,4,101", "y,4,103"}));
  for (size_t restart_after = 0; restart_after + 1 < steps_.size(); ++restart_after) {
    const auto table = dir_.path() / ("b" + std::to_string(restart_after));
    EXPECT_EQ(run_join_flow(plan, steps_, table, restart_after), uninterrupted)
        << "restart after step " << restart_after;
  }
}

TEST_F(StreamJoinChainTest, TheChainNamesTheJoinsPartsAndRestoringNoneEmptiesIt) {
  const auto plan = events_.plan(kInner);
  exec::OperatorChain chain;
  chain.add(exec::StreamJoinOperator::make(plan).ValueOrDie());
  EXPECT_TRUE(chain.stateful());
  EXPECT_EQ(chain.state_parts(), (std::vector<std::string>{"left", "right"}));
  auto batch = exec::OperatorBatch::from_source(events_.batch(steps_[0].second));
  ASSERT_TRUE(chain.push(batch).ok());
  const auto& join = static_cast<const exec::StreamJoinOperator&>(*chain.operators()[0]).join();
  EXPECT_EQ(join.state_rows(), 2);
  ASSERT_EQ(chain.snapshot().ValueOrDie().size(), 2u);
  ASSERT_TRUE(chain.restore(std::nullopt).ok());
  EXPECT_EQ(join.state_rows(), 0);
  EXPECT_EQ(join.watermark(exec::JoinSide::kLeft), exec::StreamJoinState::kNoTime);
  batch.input = 2;
  auto third = chain.push(batch);
  ASSERT_FALSE(third.ok());
  EXPECT_NE(third.status().message().find("inputs 0 (left) and 1 (right)"), std::string::npos);
}

TEST_F(StreamJoinChainTest, StateSavedByEarlierVersionsRestoresIntoTheChain) {
  // Earlier versions saved the join's state from the flow's own loop: one StateStore per side
  // under <table>/_sluice_state/<flow>/{left,right}, labelled with the commit's progress.
  const auto plan = events_.plan(kInner);
  const auto table = dir_.path() / "t";
  auto join = exec::StreamJoin::make(plan).ValueOrDie();
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(join->consume(steps_[i].first == 0 ? exec::JoinSide::kLeft : exec::JoinSide::kRight,
                              *events_.batch(steps_[i].second))
                    .ok());
  }
  {
    auto commit = open_commit(table, plan.output_schema());
    const auto progress = progress_at(*commit, 2);
    const auto& st = join->state();
    const auto state_dir = table / "_sluice_state" / "t_flow";
    ASSERT_TRUE(StateStore(state_dir / "left").save(progress.positions(), {st.left_max_time, {}, st.left_rows}).ok());
    ASSERT_TRUE(StateStore(state_dir / "right").save(progress.positions(), {st.right_max_time, {}, st.right_rows}).ok());
    ASSERT_TRUE(commit->commit(progress).ok());
  }
  auto run = start_join_run(plan, table);
  const auto& restored = static_cast<const exec::StreamJoinOperator&>(*run.chain->operators()[0]).join();
  EXPECT_EQ(restored.state_rows(), join->state_rows());
  EXPECT_EQ(restored.watermark(exec::JoinSide::kLeft), join->watermark(exec::JoinSide::kLeft));
  EXPECT_EQ(restored.watermark(exec::JoinSide::kRight), join->watermark(exec::JoinSide::kRight));
  // And it continues as the old operator does.
  for (size_t i = 3; i < steps_.size(); ++i) {
    auto want = join->consume(steps_[i].first == 0 ? exec::JoinSide::kLeft : exec::JoinSide::kRight,
                              *events_.batch(steps_[i].second))
                    .ValueOrDie();
    auto batch = exec::OperatorBatch::from_source(events_.batch(steps_[i].second));
    batch.input = steps_[i].first;
    auto got = run.chain->push(std::move(batch)).ValueOrDie();
    EXPECT_EQ(sorted(rows_of(*got.rows)), sorted(rows_of(*want.output))) << "step " << i;
  }
}

TEST_F(StatefulChainTest, WindowStateSavedByEarlierVersionsRestoresIntoTheChain) {
  // Earlier versions saved a window's state from WindowedFlow: one StateStore under
  // <table>/_sluice_state/<flow>, labelled with the commit's progress.
  const auto plan = events_.plan(kTumbling);
  const auto table = dir_.path() / "t";
  auto op = exec::WindowAggregate::make(plan, exec::WatermarkPolicy{kMinute, {}, exec::WatermarkStep::kPerBatch})
                .ValueOrDie();
  auto rows = plan.apply_row_stages(*events_.batch({{"a", 1, 1}, {"b", 2, 2}, {"a", 6, 4}})).ValueOrDie();
  ASSERT_TRUE(op->consume(*rows, {"delta:src"}, std::vector<int32_t>(3, 0)).ok());
  {
    auto commit = open_commit(table, plan.output_schema());
    auto progress = commit->progress();
    progress.delta(kUpstreamId, DeltaReader::kOnly, DeltaVersion(0));
    ASSERT_TRUE(StateStore(table / "_sluice_state" / "t_flow").save(progress.positions(), op->state().ValueOrDie()).ok());
    ASSERT_TRUE(commit->commit(progress).ok());
  }
  auto run = start_window_run(plan, table);
  EXPECT_EQ(run.windowed->state_rows(), op->state_rows());
  EXPECT_EQ(run.windowed->watermark(), op->watermark());
  const std::vector<Event> next = {{"b", 8, 5}, {"a", 20, 6}};
  auto want = op->consume(*plan.apply_row_stages(*events_.batch(next)).ValueOrDie(), {"delta:src"},
                          std::vector<int32_t>(2, 0))
                  .ValueOrDie();
  auto got = run.chain->push_rows(events_.batch(next), 1).ValueOrDie();
  EXPECT_EQ(sorted(rows_of(*got)), sorted(rows_of(*want.output)));
  EXPECT_GT(got->num_rows(), 0);
}

}  // namespace
}  // namespace sluice::pipeline
