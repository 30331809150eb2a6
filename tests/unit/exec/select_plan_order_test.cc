// SelectPlan's query shapes: ORDER BY ... NULLS FIRST / NULLS LAST place nulls as written (Spark's
// default otherwise: first when ascending, last when descending); t.* EXCEPT over a join; what a
// FROM subquery may hold.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
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

arrow::Result<SelectPlan> shape_plan(const std::string& query) {
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS " + query + ";"};
  auto statements = sql::parse_statements(file);
  EXPECT_TRUE(statements.ok()) << statements.status().message();
  std::map<std::string, std::shared_ptr<arrow::Schema>> schemas{
      {"t", arrow::schema({arrow::field("k", arrow::utf8()), arrow::field("a", arrow::int64())})},
      {"u", arrow::schema({arrow::field("k", arrow::utf8()), arrow::field("b", arrow::float64())})}};
  return SelectPlan::make(*(*statements)[0].dataset->query, file,
                          [&](const std::string& name) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
                            return schemas.at(name);
                          });
}

// Spark's df.join(other, "k") as SQL: the key once, then each side's other columns.
TEST(SelectPlanShapeTest, QualifiedStarExceptOverAJoinDropsThatSidesColumn) {
  auto plan = shape_plan("SELECT l.k, l.* EXCEPT (k), r.* EXCEPT (k) FROM t AS l JOIN u AS r ON l.k = r.k");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->output_schema()->ToString(), "k: string\na: int64\nb: double");
  auto wrong = shape_plan("SELECT l.* EXCEPT (b) FROM t AS l JOIN u AS r ON l.k = r.k");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("EXCEPT names 'b', which is not a column"), std::string::npos);
}

// Inlining a FROM subquery keeps one source: a UNION ALL there is refused, not half-planned.
TEST(SelectPlanShapeTest, UnionAllInAFromSubqueryIsRefused) {
  auto plan = shape_plan("SELECT * FROM (SELECT k FROM t UNION ALL SELECT k FROM u) WHERE k > 'a'");
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("a subquery in FROM may not hold UNION ALL yet"), std::string::npos);
  auto cte = shape_plan("WITH both AS (SELECT k FROM t UNION ALL SELECT k FROM u) SELECT * FROM both");
  ASSERT_FALSE(cte.ok());
  EXPECT_NE(cte.status().message().find("'both' holds UNION ALL; reading it inline is not supported yet"),
            std::string::npos);
}

// A view or CTE read inline keeps only its source and row stages: its DISTINCT or DISTINCT ON
// would be lost, so reading it inline is refused (as a FROM subquery holding them is).
TEST(SelectPlanShapeTest, DistinctInAnInlinedQueryIsRefused) {
  for (const char* q : {"WITH d AS (SELECT DISTINCT ON (k) k, a FROM t) SELECT * FROM d",
                        "WITH d AS (SELECT DISTINCT k FROM t) SELECT k FROM d"}) {
    auto plan = shape_plan(q);
    ASSERT_FALSE(plan.ok()) << q;
    EXPECT_NE(plan.status().message().find("'d' aggregates, deduplicates (DISTINCT / DISTINCT ON)"),
              std::string::npos)
        << plan.status().message();
  }
  ASSERT_TRUE(shape_plan("WITH d AS (SELECT k, a FROM t WHERE a > 1) SELECT * FROM d").ok());
}

// UNION ALL types a numeric column by Spark's wider type of its branches: t.a (bigint) with
// u.b (double) is double, so u's 2.5 is not truncated to t's bigint (unionByName with missing
// columns puts the other side first, which made that order matter).
TEST(SelectPlanShapeTest, UnionAllWidensNumericColumns) {
  auto plan = shape_plan("SELECT k, a FROM t UNION ALL SELECT k, b FROM u");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->output_schema()->ToString(), "k: string\na: double");
  auto swapped = shape_plan("SELECT k, b FROM u UNION ALL SELECT k, a FROM t");
  ASSERT_TRUE(swapped.ok()) << swapped.status().message();
  EXPECT_EQ(swapped->output_schema()->ToString(), "k: string\nb: double");
}

}  // namespace
}  // namespace sluice::exec
