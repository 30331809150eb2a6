// SelectPlan's query shapes: ORDER BY ... NULLS FIRST / NULLS LAST place nulls as written (Spark's
// default otherwise: first when ascending, last when descending); t.* EXCEPT over a join; what a
// FROM subquery may hold; generators (explode, posexplode, inline, LATERAL VIEW) and what they refuse;
// count_if and the boolean aggregates; the list aggregates (collect_list, collect_set, max_by,
// min_by, percentile_approx) and what they refuse.
#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/exec/list_aggregates.h"
#include "sluice/exec/row_operators.h"
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

// Generators: a table of arrays, maps and arrays of structs, with a NULL and an empty one.
std::shared_ptr<arrow::Schema> generator_schema() {
  return arrow::schema({arrow::field("id", arrow::int64()), arrow::field("arr", arrow::list(arrow::int32())),
                        arrow::field("m", arrow::map(arrow::utf8(), arrow::int32())),
                        arrow::field("sts", arrow::list(arrow::struct_({arrow::field("a", arrow::int32()),
                                                                        arrow::field("b", arrow::utf8())})))});
}

std::shared_ptr<arrow::RecordBatch> generator_rows() {
  auto schema = generator_schema();
  auto column = [&](int i, const char* json) {
    return *arrow::json::ArrayFromJSONString(schema->field(i)->type(), json);
  };
  return arrow::RecordBatch::Make(
      schema, 3,
      {column(0, "[1, 2, 3]"), column(1, "[[10, null, 30], [], null]"),
       column(2, R"([[["k", 1], ["é", null]], null, []])"),
       column(3, R"([[{"a": 1, "b": "x"}, null], null, [{"a": null, "b": ""}]])")});
}

arrow::Result<SelectPlan> generator_plan(const std::string& query) {
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS " + query + ";"};
  ARROW_ASSIGN_OR_RAISE(auto statements, sql::parse_statements(file));
  return SelectPlan::make(*statements[0].dataset->query, file,
                          [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> {
                            return generator_schema();
                          });
}

// The query's rows, one "v|v|..." string each, and its schema's names.
std::vector<std::string> generated(const std::string& query, std::string* names = nullptr) {
  auto plan = generator_plan(query);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  auto table = plan->run([](const PlanSource&) -> arrow::Result<std::shared_ptr<arrow::Table>> {
    return arrow::Table::FromRecordBatches({generator_rows()});
  });
  EXPECT_TRUE(table.ok()) << table.status().message();
  if (!table.ok()) return {};
  auto batch = *(*table)->CombineChunksToBatch();
  if (names) {
    names->clear();
    for (const auto& f : batch->schema()->fields()) *names += (names->empty() ? "" : ",") + f->name();
  }
  std::vector<std::string> rows;
  for (int64_t r = 0; r < batch->num_rows(); ++r) {
    std::string row;
    for (const auto& c : batch->columns()) row += (row.empty() ? "" : "|") + (*c->GetScalar(r))->ToString();
    rows.push_back(row);
  }
  return rows;
}

using Rows = std::vector<std::string>;

TEST(GeneratorTest, ExplodeGivesARowPerElementAndNoneForNullOrEmpty) {
  std::string names;
  EXPECT_EQ(generated("SELECT id, explode(arr) FROM t", &names), (Rows{"1|10", "1|null", "1|30"}));
  EXPECT_EQ(names, "id,col");
  EXPECT_EQ(generated("SELECT explode_outer(arr) AS x, id FROM t", &names),
            (Rows{"10|1", "null|1", "30|1", "null|2", "null|3"}));
  EXPECT_EQ(names, "x,id");
}

TEST(GeneratorTest, PosexplodeNumbersFromZeroAndMapsGiveKeyAndValue) {
  std::string names;
  EXPECT_EQ(generated("SELECT id, posexplode(arr) AS (p, x) FROM t", &names), (Rows{"1|0|10", "1|1|null", "1|2|30"}));
  EXPECT_EQ(names, "id,p,x");
  EXPECT_EQ(generated("SELECT id, explode(m) FROM t", &names), (Rows{"1|k|1", "1|é|null"}));
  EXPECT_EQ(names, "id,key,value");
  EXPECT_EQ(generated("SELECT posexplode_outer(m), id FROM t", &names),
            (Rows{"0|k|1|1", "1|é|null|1", "null|null|null|2", "null|null|null|3"}));
  EXPECT_EQ(names, "pos,key,value,id");
}

TEST(GeneratorTest, InlineGivesTheStructsFieldsAndNullsForANullStruct) {
  std::string names;
  EXPECT_EQ(generated("SELECT id, inline(sts) FROM t", &names), (Rows{"1|1|x", "1|null|null", "3|null|"}));
  EXPECT_EQ(names, "id,a,b");
  EXPECT_EQ(generated("SELECT inline_outer(sts) AS (a2, b2), id FROM t"),
            (Rows{"1|x|1", "null|null|1", "null|null|2", "null||3"}));
}

TEST(GeneratorTest, LateralViewRowsAreFilteredByWhereAndChain) {
  std::string names;
  EXPECT_EQ(generated("SELECT id, v.x FROM t LATERAL VIEW explode(arr) v AS x WHERE x > 10", &names), (Rows{"1|30"}));
  EXPECT_EQ(names, "id,x");
  EXPECT_EQ(generated("SELECT id, x FROM t LATERAL VIEW OUTER explode(arr) v AS x WHERE id > 1"),
            (Rows{"2|null", "3|null"}));
  // Two views: every element of one with every entry of the other, per row.
  EXPECT_EQ(generated("SELECT id, x, key FROM t LATERAL VIEW explode(arr) a AS x LATERAL VIEW explode(m) b "
                      "WHERE x IS NOT NULL"),
            (Rows{"1|10|k", "1|10|é", "1|30|k", "1|30|é"}));
  EXPECT_EQ(generated("SELECT * FROM t LATERAL VIEW posexplode(arr) p WHERE pos = 2", &names).size(), 1u);
  EXPECT_EQ(names, "id,arr,m,sts,pos,col");
}

// Each generated row keeps the source row it came from (a streaming flow's lineage).
TEST(GeneratorTest, RowStagesGiveEachGeneratedRowItsInputRow) {
  auto plan = generator_plan("SELECT explode_outer(arr) FROM t WHERE id > 1 OR id = 1");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::shared_ptr<arrow::Array> input_rows;
  auto rows = plan->apply_row_stages(*generator_rows(), &input_rows);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ((*rows)->num_rows(), 5);
  EXPECT_EQ(input_rows->ToString(), (*arrow::json::ArrayFromJSONString(arrow::int64(), "[0, 0, 0, 1, 2]"))->ToString());
}

TEST(GeneratorTest, WhatSparkRefusesIsRefusedWithWhereAndWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"SELECT explode(arr), explode(m) FROM t", "q.sql:1:52: error: only one generator is allowed per SELECT"},
      {"SELECT 1 + explode(arr) FROM t", "explode is a generator: it makes rows"},
      {"SELECT id FROM t WHERE explode(arr) > 1", "explode is a generator"},
      {"SELECT id, explode(arr) FROM t GROUP BY id", "explode in a SELECT that aggregates is not supported yet"},
      {"SELECT posexplode(arr) AS x FROM t", "posexplode gives 2 columns (pos, col) but AS names 1"},
      {"SELECT explode(id) FROM t", "explode needs an ARRAY or a MAP, not BIGINT"},
      {"SELECT inline(arr) FROM t", "inline needs an ARRAY of STRUCTs, not ARRAY<INT>"},
      {"SELECT id FROM t LATERAL VIEW explode(arr) v AS id", "LATERAL VIEW column 'id' has the name of a column"},
      {"SELECT id FROM t LATERAL VIEW upper(arr) v AS x", "LATERAL VIEW takes a generator"},
      {"SELECT id AS (a, b) FROM t", "AS (a, b, ...) names the columns of a generator"},
      // Names compare ignoring case (Spark's); v.x names the view's columns only.
      {"SELECT ID FROM t LATERAL VIEW explode(arr) v AS Id", "LATERAL VIEW column 'Id' has the name of a column"},
      {"SELECT v.id FROM t LATERAL VIEW explode(arr) v AS x", "q.sql:1:38: error: LATERAL VIEW v has no column 'id'"},
      {"SELECT id, any_value(arr) FROM t GROUP BY id", "any_value over ARRAY<INT> is not supported yet"},
      {"SELECT id, first(m) FROM t GROUP BY id", "first over MAP<STRING, INT> is not supported yet"},
      {"SELECT id, last(sts[0]) FROM t GROUP BY id", "last over STRUCT<"},
      {"SELECT any_value(CAST(id AS DECIMAL(10, 2))) FROM t", "any_value over DECIMAL(10"},
  };
  for (const auto& [query, message] : cases) {
    auto plan = generator_plan(query);
    ASSERT_FALSE(plan.ok()) << query;
    EXPECT_NE(plan.status().message().find(message), std::string::npos) << query << ": " << plan.status().message();
  }
}

// LATERAL stays a non-reserved word (Spark's): a column or alias may be called lateral;
// LATERAL VIEW is told apart by its next word.
TEST(GeneratorTest, LateralIsNotReserved) {
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS SELECT lateral FROM t;"};
  auto statements = sql::parse_statements(file);
  ASSERT_TRUE(statements.ok()) << statements.status().message();
  auto schema = arrow::schema({arrow::field("lateral", arrow::int64())});
  auto plan = SelectPlan::make(*(*statements)[0].dataset->query, file,
                               [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return schema; });
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->output_schema()->field(0)->name(), "lateral");
  EXPECT_EQ(generated("SELECT lateral.id, x FROM t lateral LATERAL VIEW explode(arr) v AS x WHERE x > 10"),
            (Rows{"1|30"}));
}

// The view stage keeps a column only a WATERMARK reads (the pruning of the expansion's columns).
TEST(GeneratorTest, LateralViewKeepsTheWatermarkColumn) {
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS SELECT x FROM STREAM(t) WATERMARK ts DELAY OF "
                                "INTERVAL 1 MINUTE LATERAL VIEW explode(tags) v AS x;"};
  auto statements = sql::parse_statements(file);
  ASSERT_TRUE(statements.ok()) << statements.status().message();
  auto schema = arrow::schema({arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                               arrow::field("tags", arrow::list(arrow::int32()))});
  auto plan = SelectPlan::make(*(*statements)[0].dataset->query, file,
                               [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return schema; });
  ASSERT_TRUE(plan.ok()) << plan.status().message();
}

// One record with a large array: the expansion copies only the FROM columns a later clause reads
// (never the array itself unless selected), so its memory is the array's size, not its square
// (2,000 strings of 100 bytes copied once per element was 400 MB; 5,000 overflowed Take).
TEST(GeneratorTest, ALargeArrayIsNotCopiedOncePerElement) {
  constexpr int kElements = 2000;
  auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("tags", arrow::list(arrow::utf8()))});
  arrow::ListBuilder tags(arrow::default_memory_pool(), std::make_shared<arrow::StringBuilder>());
  auto& strings = static_cast<arrow::StringBuilder&>(*tags.value_builder());
  ASSERT_TRUE(tags.Append().ok());
  for (int i = 0; i < kElements; ++i) ASSERT_TRUE(strings.Append(std::string(96, 'a') + std::to_string(1000 + i)).ok());
  auto id = *arrow::json::ArrayFromJSONString(arrow::int64(), "[7]");
  auto batch = arrow::RecordBatch::Make(schema, 1, {id, *tags.Finish()});
  for (const std::string query : {"SELECT id, x FROM t LATERAL VIEW explode(tags) v AS x",
                                  "SELECT id, explode(tags) AS x FROM t",
                                  "SELECT id, p, x FROM t LATERAL VIEW posexplode(tags) v AS p, x WHERE p >= 0"}) {
    sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS " + query + ";"};
    auto statements = sql::parse_statements(file);
    ASSERT_TRUE(statements.ok()) << statements.status().message();
    auto plan = SelectPlan::make(*(*statements)[0].dataset->query, file,
                                 [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return schema; });
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    const int64_t before = arrow::default_memory_pool()->bytes_allocated();
    auto rows = plan->apply_row_stages(*batch, nullptr);
    ASSERT_TRUE(rows.ok()) << query << ": " << rows.status().message();
    ASSERT_EQ((*rows)->num_rows(), kElements) << query;
    const auto& x = static_cast<const arrow::StringArray&>(*(*rows)->GetColumnByName("x"));
    EXPECT_EQ(x.GetString(kElements - 1), std::string(96, 'a') + std::to_string(1000 + kElements - 1)) << query;
    EXPECT_EQ((*rows)->GetColumnByName("id")->null_count(), 0) << query;
    // Held by the result: the elements once (about 200 KB) and the ids, not 2,000 arrays.
    EXPECT_LT(arrow::default_memory_pool()->bytes_allocated() - before, 4 << 20) << query;
    EXPECT_LT(arrow::default_memory_pool()->max_memory(), 64 << 20) << query;
  }
}

// A selected column copied once per element past a bound (1 GiB in a batch) is refused with its
// name before any copy (it overflowed Arrow's Take after gigabytes).
TEST(GeneratorTest, ACopiedColumnPastTheBoundIsRefusedByName) {
  auto schema = arrow::schema({arrow::field("payload", arrow::utf8()), arrow::field("n", arrow::list(arrow::int32()))});
  arrow::StringBuilder payload;
  ASSERT_TRUE(payload.Append(std::string(2 << 20, 'p')).ok());
  arrow::ListBuilder n(arrow::default_memory_pool(), std::make_shared<arrow::Int32Builder>());
  ASSERT_TRUE(n.Append().ok());
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(static_cast<arrow::Int32Builder&>(*n.value_builder()).Append(i).ok());
  auto batch = arrow::RecordBatch::Make(schema, 1, {*payload.Finish(), *n.Finish()});
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS SELECT payload, x FROM t LATERAL VIEW explode(n) v AS x;"};
  auto statements = sql::parse_statements(file);
  ASSERT_TRUE(statements.ok()) << statements.status().message();
  auto plan = SelectPlan::make(*(*statements)[0].dataset->query, file,
                               [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return schema; });
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto rows = plan->apply_row_stages(*batch, nullptr);
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.status().message().find("a generator would copy column 'payload' once per generated row (1200 MiB"),
            std::string::npos)
      << rows.status().message();
}

// count_if, bool_and / every, bool_or / some / any, any_value in a GROUP BY: NULLs skipped, a
// group of only NULLs gives NULL (count_if: 0).
TEST(AggregateTest, CountIfAndBooleanAggregatesSkipNulls) {
  EXPECT_EQ(generated("SELECT id > 1 AS g, count_if(x > 10) AS c, bool_and(x > 10) AS a, every(x > 0) AS e, "
                      "bool_or(x > 10) AS o, some(x > 100) AS s, any(x IS NULL) AS n FROM t "
                      "LATERAL VIEW OUTER explode(arr) v AS x GROUP BY id > 1 ORDER BY g"),
            (Rows{"false|1|false|true|true|false|true", "true|0|null|null|null|null|true"}));
  EXPECT_EQ(generated("SELECT count_if(id > 1) AS c, any_value(id > 5) AS v FROM t"), (Rows{"2|false"}));
  auto wrong = generator_plan("SELECT count_if(id) FROM t");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("count_if needs a BOOLEAN, not BIGINT"), std::string::npos);
}

// A value as the list-aggregate tests print it: lists as [a,b], nulls as null.
std::string rendered(const arrow::Scalar& v) {
  if (!v.is_valid) return "null";
  if (v.type->id() == arrow::Type::LIST) {
    const auto& list = *static_cast<const arrow::ListScalar&>(v).value;
    std::string out = "[";
    for (int64_t i = 0; i < list.length(); ++i) out += (i ? "," : "") + rendered(**list.GetScalar(i));
    return out + "]";
  }
  return v.ToString();
}

std::vector<std::string> rendered_rows(const std::string& query) {
  auto plan = generator_plan(query);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  auto table = plan->run([](const PlanSource&) -> arrow::Result<std::shared_ptr<arrow::Table>> {
    return arrow::Table::FromRecordBatches({generator_rows()});
  });
  EXPECT_TRUE(table.ok()) << table.status().message();
  if (!table.ok()) return {};
  auto batch = *(*table)->CombineChunksToBatch();
  std::vector<std::string> rows;
  for (int64_t r = 0; r < batch->num_rows(); ++r) {
    std::string row;
    for (const auto& c : batch->columns()) row += (row.empty() ? "" : "|") + rendered(**c->GetScalar(r));
    rows.push_back(row);
  }
  return rows;
}

ListAggregate list_aggregate_of(ListAggregate::Kind kind, const std::string& name, std::vector<double> percentages = {},
                                bool array_result = false) {
  ListAggregate a;
  a.kind = kind;
  a.name = name;
  a.percentages = std::move(percentages);
  a.array_result = array_result;
  return a;
}

// The rows of LATERAL VIEW OUTER explode(arr): (1, 10), (1, NULL), (1, 30), (2, NULL), (3, NULL).
constexpr const char* kExploded = " FROM t LATERAL VIEW OUTER explode(arr) v AS x ";

// collect_list skips NULLs (a group of NULLs: an empty array), in arrival order; collect_set
// keeps each value once.
TEST(ListAggregateTest, CollectSkipsNullsAndSetsKeepEachValueOnce) {
  EXPECT_EQ(rendered_rows(std::string("SELECT id, collect_list(x) AS l, collect_set(x % 20) AS s, "
                                      "size(collect_list(x)) AS n") +
                          kExploded + "GROUP BY id ORDER BY id"),
            (Rows{"1|[10,30]|[10]|2", "2|[]|[]|0", "3|[]|[]|0"}));
  // Nested values too (Acero's hash_list takes none): each row's whole array.
  EXPECT_EQ(rendered_rows("SELECT id > 1 AS g, collect_list(arr) AS l FROM t GROUP BY id > 1 ORDER BY g"),
            (Rows{"false|[[10,null,30]]", "true|[[]]"}));
}

// max_by / min_by: the value of the last row read with the greatest / least ordering (Spark's
// MaxMinBy keeps its buffer only when the old ordering is strictly greater / less); rows whose
// ordering is NULL are skipped, and a group with no ordering gives NULL.
TEST(ListAggregateTest, MaxByAndMinByTakeTheLastExtremeAndSkipNullOrderings) {
  auto rows = *arrow::json::ArrayFromJSONString(arrow::list(arrow::int64()), "[[0, 1, 2, 3], [4], [5, 6]]");
  auto type = arrow::struct_({arrow::field("value", arrow::utf8()), arrow::field("ord", arrow::int64())});
  auto input = *arrow::json::ArrayFromJSONString(
      type, R"([["a", 1], ["b", 3], ["c", 3], ["d", null], ["e", null], ["f", 2], ["g", 2]])");
  const ListAggregate max_by = list_aggregate_of(ListAggregate::Kind::kMaxBy, "max_by");
  const ListAggregate min_by = list_aggregate_of(ListAggregate::Kind::kMinBy, "min_by");
  auto greatest = finish_list_aggregate(max_by, *rows, input, arrow::utf8());
  ASSERT_TRUE(greatest.ok()) << greatest.status().message();
  EXPECT_TRUE((*greatest)->Equals(*arrow::json::ArrayFromJSONString(arrow::utf8(), R"(["c", null, "g"])")))
      << (*greatest)->ToString();
  auto least = finish_list_aggregate(min_by, *rows, input, arrow::utf8());
  ASSERT_TRUE(least.ok()) << least.status().message();
  EXPECT_TRUE((*least)->Equals(*arrow::json::ArrayFromJSONString(arrow::utf8(), R"(["a", null, "g"])")))
      << (*least)->ToString();
  EXPECT_EQ(rendered_rows(std::string("SELECT id, max_by(x, -x) AS hi, min_by(id, x) AS lo") + kExploded +
                          "GROUP BY id ORDER BY id"),
            (Rows{"1|10|1", "2|null|null", "3|null|null"}));
}

// collect_set over one group of many distinct values beside many small groups (the shape that
// made a per-group hash-set reset cost the big group's size for every group): each group keeps
// the first row of each distinct non-NULL value, in arrival order, checked against a std::set
// model. Rows of the groups interleave; neighbouring groups share values; NULL values and a NULL
// row list (no rows) are among them.
TEST(ListAggregateTest, CollectSetOverOneHugeGroupBesideManySmallOnesMatchesAModel) {
  constexpr int64_t kBig = 100'000;  // distinct values of group 0
  constexpr int64_t kSmall = 20'000;  // groups of 4 rows after it
  std::vector<std::vector<int64_t>> group_rows(kSmall + 1);
  arrow::Int64Builder values;
  uint64_t seed = 42;
  auto next = [&] { return seed = seed * 6364136223846793005ULL + 1442695040888963407ULL, seed >> 33; };
  int64_t row = 0;
  auto add = [&](size_t g, std::optional<int64_t> v) {
    group_rows[g].push_back(row++);
    ASSERT_TRUE((v ? values.Append(*v) : values.AppendNull()).ok());
  };
  for (int64_t i = 0; i < kBig; ++i) {
    add(0, i % 7 == 3 ? std::nullopt : std::optional<int64_t>(static_cast<int64_t>(next() % (kBig * 2))));
    if (i % 5 == 0 && i / 5 < kSmall) {  // a small group's rows among the big one's
      const size_t g = static_cast<size_t>(i / 5) + 1;
      const auto v = static_cast<int64_t>(g % 5);  // neighbouring groups share values
      add(g, v);
      add(g, static_cast<int64_t>(next() % 3));
      add(g, v);
      add(g, g % 3 == 0 ? std::nullopt : std::optional<int64_t>(v + 1));
    }
  }
  std::shared_ptr<arrow::Array> input = *values.Finish();
  arrow::ListBuilder lists(arrow::default_memory_pool(), std::make_shared<arrow::Int64Builder>());
  auto& items = static_cast<arrow::Int64Builder&>(*lists.value_builder());
  for (size_t g = 0; g < group_rows.size(); ++g) {
    if (g == 7) {  // no rows at all: an empty set
      ASSERT_TRUE(lists.AppendNull().ok());
      continue;
    }
    ASSERT_TRUE(lists.Append().ok());
    ASSERT_TRUE(items.AppendValues(group_rows[g]).ok());
  }
  std::shared_ptr<arrow::Array> rows = *lists.Finish();
  const ListAggregate set = list_aggregate_of(ListAggregate::Kind::kCollectSet, "collect_set");
  auto out = finish_list_aggregate(set, *rows, input, arrow::list(arrow::int64()));
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ((*out)->length(), static_cast<int64_t>(group_rows.size()));
  const auto& sets = static_cast<const arrow::ListArray&>(**out);
  const auto& got = static_cast<const arrow::Int64Array&>(*sets.values());
  const auto& in = static_cast<const arrow::Int64Array&>(*input);
  int64_t big_size = 0;
  for (size_t g = 0; g < group_rows.size(); ++g) {
    std::vector<int64_t> want;
    std::set<int64_t> seen;
    if (g != 7) {
      for (int64_t r : group_rows[g]) {
        if (in.IsValid(r) && seen.insert(in.Value(r)).second) want.push_back(in.Value(r));
      }
    }
    const auto gi = static_cast<int64_t>(g);
    ASSERT_TRUE(sets.IsValid(gi)) << "group " << g;
    std::vector<int64_t> have;
    for (int64_t i = sets.value_offset(gi); i < sets.value_offset(gi + 1); ++i) have.push_back(got.Value(i));
    ASSERT_EQ(have, want) << "group " << g;
    if (g == 0) big_size = static_cast<int64_t>(have.size());
  }
  EXPECT_GT(big_size, kBig / 2);  // the model's shape: one group of many distinct values
}

// collect_set keeps -0.0 and 0.0 once, as 0.0 (Spark 4 normalises the zero); NaN stays NaN.
TEST(ListAggregateTest, CollectSetKeepsOneZeroAndNormalisesIt) {
  auto rows = *arrow::json::ArrayFromJSONString(arrow::list(arrow::int64()), "[[0, 1, 2, 3], [4, 5]]");
  arrow::DoubleBuilder b;
  ASSERT_TRUE(b.AppendValues({-0.0, 1.5, 0.0, -0.0, 2.0, std::nan("")}).ok());
  std::shared_ptr<arrow::Array> input = *b.Finish();
  const ListAggregate set = list_aggregate_of(ListAggregate::Kind::kCollectSet, "collect_set");
  auto out = finish_list_aggregate(set, *rows, input, arrow::list(arrow::float64()));
  ASSERT_TRUE(out.ok()) << out.status().message();
  const auto& sets = static_cast<const arrow::ListArray&>(**out);
  const auto& v = static_cast<const arrow::DoubleArray&>(*sets.values());
  ASSERT_EQ(sets.value_length(0), 2);
  EXPECT_EQ(v.Value(0), 0.0);
  EXPECT_FALSE(std::signbit(v.Value(0)));
  EXPECT_EQ(v.Value(1), 1.5);
  ASSERT_EQ(sets.value_length(1), 2);
  EXPECT_EQ(v.Value(2), 2.0);
  EXPECT_TRUE(std::isnan(v.Value(3)));
}

// percentile_approx is exact: the value at rank ceil(p * n) of the n non-NULL values (p = 0: the
// least), within Spark's error bound for any accuracy; NULL for a group of NULLs.
TEST(ListAggregateTest, PercentileApproxIsTheValueAtRankCeilPN) {
  auto rows = *arrow::json::ArrayFromJSONString(arrow::list(arrow::int64()), "[[0, 1, 2, 3, 4, 5], [6]]");
  auto input = *arrow::json::ArrayFromJSONString(arrow::float64(), "[5, 1, null, 3, 2, 4, null]");
  const ListAggregate p = list_aggregate_of(ListAggregate::Kind::kPercentile, "percentile_approx", {0.0, 0.5, 1.0, 0.25}, true);
  auto out = finish_list_aggregate(p, *rows, input, arrow::list(arrow::float64()));
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE((*out)->Equals(*arrow::json::ArrayFromJSONString(arrow::list(arrow::float64()), "[[1, 3, 5, 2], null]")))
      << (*out)->ToString();
  const ListAggregate median = list_aggregate_of(ListAggregate::Kind::kPercentile, "approx_percentile", {0.5});
  auto one = finish_list_aggregate(median, *rows, input, arrow::float64());
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_TRUE((*one)->Equals(*arrow::json::ArrayFromJSONString(arrow::float64(), "[3, null]"))) << (*one)->ToString();
  EXPECT_EQ(rendered_rows(std::string("SELECT id, percentile_approx(x, 0.5) AS m, approx_percentile(x, array(0, 1), "
                                      "100) AS r") +
                          kExploded + "GROUP BY id ORDER BY id"),
            (Rows{"1|10|[10,30]", "2|null|null", "3|null|null"}));
}

// What sluice cannot run yet is refused with the call's position, not run wrong.
TEST(ListAggregateTest, RefusedWhereSluiceCannotRunThem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"SELECT id, collect_list(id) FROM STREAM(t) GROUP BY id",
       "q.sql:1:42: error: collect_list over a stream is supported only in a windowed aggregation"},
      {"SELECT collect_set(id) FROM t", "collect_set without GROUP BY is not supported yet"},
      {"SELECT id, collect_set(arr) FROM t GROUP BY id", "collect_set over ARRAY<INT> is not supported yet"},
      {"SELECT id, max_by(id, m) FROM t GROUP BY id", "max_by orders by a value that sorts"},
      {"SELECT id, min_by(id) FROM t GROUP BY id", "min_by takes two arguments"},
      {"SELECT id, collect_list(DISTINCT id) FROM t GROUP BY id", "collect_list(DISTINCT ...) is not supported"},
      {"SELECT id, percentile_approx(id, 1.5) FROM t GROUP BY id", "percentage must be a constant number between"},
      {"SELECT id, percentile_approx(id, id) FROM t GROUP BY id", "percentage must be a constant number between"},
      {"SELECT id, percentile_approx(id, 0.5, 0) FROM t GROUP BY id", "accuracy must be a constant whole number"},
      {"SELECT id, percentile_approx(m, 0.5) FROM t GROUP BY id", "percentile_approx needs numbers, dates or "
                                                                   "timestamps, not MAP<STRING, INT>"},
      {"SELECT id, collect_list(count(id)) FROM t GROUP BY id", "aggregates cannot be nested"},
  };
  for (const auto& [query, message] : cases) {
    auto plan = generator_plan(query);
    ASSERT_FALSE(plan.ok()) << query;
    EXPECT_NE(plan.status().message().find(message), std::string::npos) << query << ": " << plan.status().message();
  }
}

// SELECT DISTINCT over ARRAY, MAP or STRUCT columns (and DISTINCT ON such a column) is refused
// at planning, at the column, naming it: Acero's grouping takes no such keys, and the run failed
// with no position. DISTINCT ON a scalar beside a nested column still plans.
TEST(SelectPlanShapeTest, DistinctOverNestedColumnsIsRefusedAtTheColumn) {
  constexpr size_t kPrefix = sizeof("CREATE MATERIALIZED VIEW m AS ") - 1;
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"SELECT DISTINCT id, collect_list(id) AS l FROM t GROUP BY id", "collect_list(id)",
       "SELECT DISTINCT cannot compare column 'l' of type ARRAY<BIGINT> yet"},
      {"SELECT DISTINCT id, arr FROM t", "arr", "column 'arr' of type ARRAY<INT>"},
      {"SELECT DISTINCT m FROM t", "m FROM", "column 'm' of type MAP<STRING, INT>"},
      {"SELECT DISTINCT named_struct('a', id) AS s FROM t", "named_struct", "column 's' of type STRUCT<"},
      {"SELECT DISTINCT ON (arr) id, arr FROM t", "arr)", "SELECT DISTINCT ON cannot compare column 'arr'"},
  };
  for (const auto& [query, at, message] : cases) {
    auto plan = generator_plan(query);
    ASSERT_FALSE(plan.ok()) << query;
    const std::string where = "q.sql:1:" + std::to_string(kPrefix + query.find(at) + 1) + ": error: ";
    EXPECT_NE(plan.status().message().find(where), std::string::npos) << query << ": " << plan.status().message();
    EXPECT_NE(plan.status().message().find(message), std::string::npos) << query << ": " << plan.status().message();
  }
  EXPECT_EQ(generated("SELECT DISTINCT ON (id) id, arr FROM t WHERE id < 3 ORDER BY id").size(), 2u);
  EXPECT_EQ(generated("SELECT DISTINCT id > 1 AS g FROM t ORDER BY g").size(), 2u);
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
