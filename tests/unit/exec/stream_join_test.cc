// Stream-stream joins: matches across batches in either arrival order, no duplicates, eviction
// behind the watermarks, late rows, LEFT OUTER null rows, and state round trips.
#include "sluice/exec/stream_join.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "sluice/pipeline/state_store.h"
#include "sluice/sql/parser.h"
#include "event_rows.h"

namespace sluice::exec {
namespace {

using testing::Event;
using testing::kMinute;

constexpr const char* kInner =
    "SELECT a.k, a.v AS lv, b.v AS rv "
    "FROM STREAM(l) WATERMARK ts DELAY OF INTERVAL 1 MINUTE a "
    "JOIN STREAM(r) WATERMARK ts DELAY OF INTERVAL 1 MINUTE b "
    "ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL 10 MINUTES";

class StreamJoinTest : public ::testing::Test {
 protected:
  testing::EventSource events_;
  sql::SourceFile file_;
  std::vector<sql::Statement> statements_;
  std::unique_ptr<SelectPlan> plan_;

  arrow::Result<std::unique_ptr<StreamJoin>> make(const std::string& select) {
    file_ = sql::SourceFile{"t.sql", "CREATE OR REFRESH STREAMING TABLE t AS " + select + ";"};
    statements_ = sql::parse_statements(file_).ValueOrDie();
    auto lookup = [this](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return events_.schema(); };
    ARROW_ASSIGN_OR_RAISE(auto p, SelectPlan::make(*statements_[0].dataset->query, file_, lookup));
    plan_ = std::make_unique<SelectPlan>(std::move(p));
    return StreamJoin::make(*plan_);
  }

  std::unique_ptr<StreamJoin> join(const std::string& select = kInner) {
    auto j = make(select);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.MoveValueUnsafe();
  }

  std::shared_ptr<arrow::RecordBatch> batch(const std::vector<Event>& events) { return events_.batch(events); }

  std::vector<std::string> feed(StreamJoin& j, JoinSide side, const std::vector<Event>& events, int64_t* late = nullptr) {
    auto r = j.consume(side, *batch(events));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    if (late) *late += r->late_rows;
    return rows_of(*r->output);
  }

  static std::vector<std::string> rows_of(const arrow::RecordBatch& out) {
    std::vector<std::string> rows;
    for (int64_t i = 0; i < out.num_rows(); ++i) {
      std::string row;
      for (int c = 0; c < out.num_columns(); ++c) {
        row += (c ? "," : "") + out.column(c)->GetScalar(i).ValueOrDie()->ToString();
      }
      rows.push_back(row);
    }
    std::sort(rows.begin(), rows.end());
    return rows;
  }
};

using Rows = std::vector<std::string>;

TEST_F(StreamJoinTest, MatchesAcrossBatchesInEitherOrder) {
  auto j = join();
  EXPECT_EQ(feed(*j, JoinSide::kLeft, {{"x", 10, 1}, {"y", 10, 2}}), Rows{});
  EXPECT_EQ(feed(*j, JoinSide::kRight, {{"x", 15, 100}, {"x", 19, 101}, {"z", 18, 102}}),
            (Rows{"x,1,100", "x,1,101"}));
  // A left row arriving after its right partners.
  EXPECT_EQ(feed(*j, JoinSide::kLeft, {{"x", 9, 3}}), (Rows{"x,3,100", "x,3,101"}));
  EXPECT_EQ(feed(*j, JoinSide::kRight, {{"y", 20, 103}}), (Rows{"y,2,103"}));
}

TEST_F(StreamJoinTest, EmitsEachPairOnce) {
  auto j = join();
  Rows all;
  for (auto rows : {feed(*j, JoinSide::kLeft, {{"x", 10, 1}}), feed(*j, JoinSide::kRight, {{"x", 11, 100}}),
                    feed(*j, JoinSide::kLeft, {{"x", 9, 2}}), feed(*j, JoinSide::kRight, {{"x", 12, 101}}),
                    feed(*j, JoinSide::kRight, {}), feed(*j, JoinSide::kLeft, {})}) {
    all.insert(all.end(), rows.begin(), rows.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (Rows{"x,1,100", "x,1,101", "x,2,100", "x,2,101"}));
}

TEST_F(StreamJoinTest, EvictsRowsTheOtherWatermarkPassed) {
  auto j = join();
  feed(*j, JoinSide::kLeft, {{"x", 10, 1}});
  feed(*j, JoinSide::kRight, {{"q", 20, 100}});  // right watermark 19: left row (10 + 10) stays
  EXPECT_EQ(j->state_rows(), 2);
  feed(*j, JoinSide::kRight, {{"q", 22, 101}});  // right watermark 21 > 20: left row goes
  EXPECT_EQ(j->state().left_rows->num_rows(), 0);
  feed(*j, JoinSide::kLeft, {{"w", 30, 2}});  // left watermark 29: right rows at 20, 22 go
  EXPECT_EQ(j->state().right_rows->num_rows(), 0);
  EXPECT_EQ(j->state().left_rows->num_rows(), 1);
}

TEST_F(StreamJoinTest, LateRowsAreDroppedAndCounted) {
  auto j = join();
  int64_t late = 0;
  // Per batch, as Spark does: rows are judged against the watermark before their batch.
  feed(*j, JoinSide::kRight, {{"x", 30, 100}, {"x", 28, 101}, {"x", 31, 102}}, &late);  // none late yet
  EXPECT_EQ(late, 0);
  EXPECT_EQ(j->watermark(JoinSide::kRight), 30 * kMinute);  // 31 - 1
  feed(*j, JoinSide::kRight, {{"x", 29, 103}, {"x", 33, 104}}, &late);  // 29 < 30: late
  EXPECT_EQ(late, 1);
  EXPECT_EQ(feed(*j, JoinSide::kLeft, {{"x", 25, 1}}, &late), (Rows{"x,1,100", "x,1,101", "x,1,102", "x,1,104"}));
}

TEST_F(StreamJoinTest, LeftOuterEmitsUnmatchedRowsOnceTheWatermarkPasses) {
  std::string q = kInner;
  q.replace(q.find(" JOIN "), 6, " LEFT JOIN ");
  auto j = join(q);
  feed(*j, JoinSide::kLeft, {{"x", 10, 1}, {"y", 10, 2}});
  EXPECT_EQ(feed(*j, JoinSide::kRight, {{"x", 12, 100}}), (Rows{"x,1,100"}));
  EXPECT_EQ(feed(*j, JoinSide::kRight, {{"q", 20, 101}}), Rows{});  // watermark 19: y may still match
  EXPECT_EQ(feed(*j, JoinSide::kRight, {{"q", 22, 102}}), (Rows{"y,2,null"}));  // 21 > 20: y never will
  EXPECT_EQ(feed(*j, JoinSide::kRight, {{"q", 40, 103}}), Rows{});  // once only; x matched
}

TEST_F(StreamJoinTest, RefusesJoinsWithoutTimeBoundOrWatermark) {
  auto no_bound = make(
      "SELECT a.k FROM STREAM(l) WATERMARK ts DELAY OF INTERVAL 1 MINUTE a "
      "JOIN STREAM(r) WATERMARK ts DELAY OF INTERVAL 1 MINUTE b ON a.k = b.k");
  ASSERT_FALSE(no_bound.ok());
  EXPECT_NE(no_bound.status().message().find("BETWEEN a.ts AND a.ts + INTERVAL"), std::string::npos);
  auto no_watermark = make("SELECT a.k FROM STREAM(l) a JOIN STREAM(r) WATERMARK ts DELAY OF INTERVAL 1 MINUTE b "
                           "ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL 10 MINUTES");
  ASSERT_FALSE(no_watermark.ok());
  EXPECT_NE(no_watermark.status().message().find("needs a watermark; 'l' has none"), std::string::npos);
}

TEST_F(StreamJoinTest, BoundFromComparisonsWithOffsets) {
  auto j = make(
      "SELECT a.k FROM STREAM(l) WATERMARK ts DELAY OF INTERVAL 1 MINUTE a "
      "JOIN STREAM(r) WATERMARK ts DELAY OF INTERVAL 1 MINUTE b "
      "ON a.k = b.k AND a.ts <= b.ts + INTERVAL 5 MINUTES AND b.ts < a.ts + INTERVAL 3 MINUTES");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  const auto& bound = *plan_->join_time_bound();
  EXPECT_EQ(bound.left_time, "a.ts");
  EXPECT_EQ(bound.right_time, "b.ts");
  EXPECT_EQ(bound.lower_micros, -5 * kMinute);
  EXPECT_EQ(bound.upper_micros, 3 * kMinute);
}

TEST_F(StreamJoinTest, StateRoundTripGivesTheUninterruptedOutput) {
  const std::vector<std::pair<JoinSide, std::vector<Event>>> steps = {
      {JoinSide::kLeft, {{"x", 10, 1}, {"y", 11, 2}}}, {JoinSide::kRight, {{"x", 14, 100}, {"y", 30, 101}}},
      {JoinSide::kLeft, {{"x", 12, 3}, {"y", 25, 4}}}, {JoinSide::kRight, {{"x", 20, 102}, {"y", 33, 103}}},
      {JoinSide::kLeft, {{"x", 40, 5}}},               {JoinSide::kRight, {{"x", 45, 104}}}};
  Rows uninterrupted, resumed;
  auto a = join();
  for (const auto& [side, events] : steps) {
    auto rows = feed(*a, side, events);
    uninterrupted.insert(uninterrupted.end(), rows.begin(), rows.end());
  }
  const auto dir = std::filesystem::temp_directory_path() / "sluice_stream_join_test";
  std::filesystem::remove_all(dir);
  pipeline::StateStore left_store(dir / "left"), right_store(dir / "right");
  auto b = join();
  for (size_t i = 0; i < steps.size(); ++i) {
    auto rows = feed(*b, steps[i].first, steps[i].second);
    resumed.insert(resumed.end(), rows.begin(), rows.end());
    if (i == 2) {  // save, forget, load into a new operator
      const pipeline::TxnVersions progress{{"app", 7}};
      const auto& st = b->state();
      ASSERT_TRUE(left_store.save(progress, WindowState{st.left_max_time, {}, st.left_rows}).ok());
      ASSERT_TRUE(right_store.save(progress, WindowState{st.right_max_time, {}, st.right_rows}).ok());
      b = join();
      pipeline::StateStore l2(dir / "left"), r2(dir / "right");
      auto left = l2.load(progress).ValueOrDie();
      auto right = r2.load(progress).ValueOrDie();
      ASSERT_TRUE(left && right);
      ASSERT_TRUE(b->restore({left->watermark, right->watermark, left->open_rows, right->open_rows}).ok());
    }
  }
  std::sort(uninterrupted.begin(), uninterrupted.end());
  std::sort(resumed.begin(), resumed.end());
  EXPECT_EQ(resumed, uninterrupted);
  // x@20 (102) arrives late
  EXPECT_EQ(uninterrupted, (Rows{"x,1,100", "x,3,100", "x,5,104", "y,4,101", "y,4,103"}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::exec
