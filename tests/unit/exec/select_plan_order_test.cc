// ORDER BY ... NULLS FIRST / NULLS LAST place nulls as written (Spark's default otherwise:
// first when ascending, last when descending).
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "sluice/exec/select_plan.h"
#include "sluice/sql/parser.h"

namespace sluice::exec {
namespace {

std::string ordered(const std::string& order_by) {
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS SELECT x FROM t ORDER BY " + order_by + ";"};
  auto statements = sql::parse_statements(file);
  EXPECT_TRUE(statements.ok()) << statements.status().message();
  auto schema = arrow::schema({arrow::field("x", arrow::int64())});
  auto plan = SelectPlan::make(*(*statements)[0].dataset->query, file,
                               [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return schema; });
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  arrow::Int64Builder b;
  EXPECT_TRUE(b.AppendNull().ok());
  EXPECT_TRUE(b.Append(2).ok());
  EXPECT_TRUE(b.Append(1).ok());
  auto table = arrow::Table::Make(schema, {*b.Finish()});
  auto out = plan->run([&](const PlanSource&) -> arrow::Result<std::shared_ptr<arrow::Table>> { return table; });
  EXPECT_TRUE(out.ok()) << out.status().message();
  return (*out)->column(0)->ToString();
}

// The printed column of these values (nullopt: null).
std::string column(const std::vector<std::optional<int64_t>>& values) {
  arrow::Int64Builder b;
  for (const auto& v : values) EXPECT_TRUE((v ? b.Append(*v) : b.AppendNull()).ok());
  return arrow::ChunkedArray(*b.Finish()).ToString();
}

TEST(SelectPlanOrderTest, NullsPlacementAsWritten) {
  EXPECT_EQ(ordered("x"), ordered("x NULLS FIRST"));
  EXPECT_EQ(ordered("x DESC"), ordered("x DESC NULLS LAST"));
  EXPECT_EQ(ordered("x"), column({std::nullopt, 1, 2}));
  EXPECT_EQ(ordered("x NULLS LAST"), column({1, 2, std::nullopt}));
  EXPECT_EQ(ordered("x DESC NULLS FIRST"), column({std::nullopt, 2, 1}));
}

}  // namespace
}  // namespace sluice::exec
