// Incremental materialized views: partial aggregates merged over several appends give what the
// whole query over all rows gives; queries that do not merge say why.
#include "sluice/pipeline/incremental_view.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "sluice/sql/parser.h"

namespace sluice::pipeline {
namespace {

class IncrementalViewTest : public ::testing::Test {
 protected:
  std::shared_ptr<arrow::Schema> source_ = arrow::schema({arrow::field("k", arrow::utf8()),
                                                          arrow::field("v", arrow::int64()),
                                                          arrow::field("x", arrow::float64())});
  sql::SourceFile file_;
  std::vector<sql::Statement> statements_;

  exec::SelectPlan plan(const std::string& select) {
    file_ = sql::SourceFile{"t.sql", "CREATE OR REFRESH MATERIALIZED VIEW t AS " + select + ";"};
    statements_ = sql::parse_statements(file_).ValueOrDie();
    auto lookup = [this](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return source_; };
    auto p = exec::SelectPlan::make(*statements_[0].dataset->query, file_, lookup);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.MoveValueUnsafe();
  }

  // Rows (k, v, x); a negative v or x stands for null.
  std::shared_ptr<arrow::RecordBatch> batch(const std::vector<std::tuple<std::string, int64_t, double>>& rows) {
    arrow::StringBuilder k;
    arrow::Int64Builder v;
    arrow::DoubleBuilder x;
    for (const auto& [key, value, real] : rows) {
      EXPECT_TRUE(k.Append(key).ok());
      EXPECT_TRUE((value < 0 ? v.AppendNull() : v.Append(value)).ok());
      EXPECT_TRUE((real < 0 ? x.AppendNull() : x.Append(real)).ok());
    }
    return arrow::RecordBatch::Make(source_, static_cast<int64_t>(rows.size()),
                                    {k.Finish().ValueOrDie(), v.Finish().ValueOrDie(), x.Finish().ValueOrDie()});
  }
};

TEST_F(IncrementalViewTest, MergedPartialsEqualFullRecompute) {
  auto p = plan(
      "SELECT k, count(*) AS n, count(v) AS nv, sum(v) AS s, min(v) AS lo, max(x) AS hi, avg(x) AS mean "
      "FROM src WHERE k <> 'skip' GROUP BY k HAVING count(*) > 1 ORDER BY k");
  ASSERT_FALSE(incremental_blocker(p).has_value());
  auto agg = MergeableAggregate::make(p).ValueOrDie();
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches = {
      batch({{"a", 1, 1.5}, {"b", -1, -1}, {"skip", 100, 100}, {"a", 5, 2.5}}),
      batch({{"b", -1, -1}, {"c", 7, 0.25}}),
      batch({{"c", 3, -1}, {"a", -1, 9.0}, {"b", 4, 8.0}}),
  };
  // Refresh by refresh: the stored partials merged with each new batch's.
  std::shared_ptr<arrow::RecordBatch> state = arrow::RecordBatch::MakeEmpty(agg.partial_schema()).ValueOrDie();
  for (const auto& b : batches) {
    auto partial = agg.partials_of(*b).ValueOrDie();
    state = agg.merge({state, partial}).ValueOrDie();
  }
  auto incremental = agg.finish(*state).ValueOrDie();
  auto all = arrow::Table::FromRecordBatches(source_, batches).ValueOrDie();
  auto full = p.run([&](const exec::PlanSource&) -> arrow::Result<std::shared_ptr<arrow::Table>> { return all; })
                  .ValueOrDie();
  ASSERT_EQ(incremental->num_rows(), 3);
  EXPECT_TRUE(incremental->Equals(*full)) << incremental->ToString() << "\nvs\n" << full->ToString();
  EXPECT_EQ(state->num_rows(), 3);  // one partial row per group
}

TEST_F(IncrementalViewTest, QueriesThatDoNotMergeSayWhy) {
  EXPECT_EQ(incremental_blocker(plan("SELECT k, count(DISTINCT v) AS n FROM src GROUP BY k")).value_or(""),
            "count(DISTINCT) does not merge from partial aggregates");
  EXPECT_EQ(incremental_blocker(plan("SELECT k, v FROM src")).value_or(""), "the query has no GROUP BY aggregation");
  EXPECT_EQ(incremental_blocker(plan("SELECT count(*) AS n FROM src")).value_or(""),
            "the query aggregates without GROUP BY keys");
  EXPECT_EQ(incremental_blocker(plan("SELECT k, stddev(x) AS d FROM src GROUP BY k")).value_or(""),
            "stddev does not merge from partial aggregates");
  EXPECT_EQ(incremental_blocker(plan("SELECT k, collect_list(x) AS l FROM src GROUP BY k")).value_or(""),
            "collect_list keeps every row of a group (no partial aggregate to merge)");
  // Which row DISTINCT ON keeps is not in the partials: the view refreshes fully.
  EXPECT_EQ(incremental_blocker(plan("SELECT DISTINCT ON (n) k, count(*) AS n FROM src GROUP BY k")).value_or(""),
            "the query has DISTINCT ON");
  EXPECT_EQ(incremental_blocker(plan("SELECT DISTINCT count(*) AS n FROM src GROUP BY k")).value_or(""),
            "the query has DISTINCT");
}

}  // namespace
}  // namespace sluice::pipeline
