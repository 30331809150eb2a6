// Binding SQL expressions: types, Spark semantics, and errors that point at the problem.
#include "sluice/exec/expression_binder.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include "sluice/sql/parser.h"
#include "sluice/sql/types.h"

namespace sluice::exec {
namespace {

class BinderTest : public ::testing::Test {
 protected:
  std::shared_ptr<arrow::Schema> schema_ = arrow::schema({
      arrow::field("a", arrow::int32()), arrow::field("b", arrow::int64()),
      arrow::field("s", arrow::utf8()),
      arrow::field("st", arrow::struct_({arrow::field("x", arrow::int32())})),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"))});
  sql::SourceFile file_;

  arrow::Result<BoundExpression> bind(const std::string& text) {
    file_ = sql::SourceFile{"t.sql", text};
    ARROW_ASSIGN_OR_RAISE(auto ast, sql::parse_expression(file_));
    return ExpressionBinder(file_, schema_, {"t"}).bind(*ast);
  }

  std::vector<std::optional<int64_t>> eval_ints(const std::string& text, const std::string& rows) {
    auto bound = bind(text);
    EXPECT_TRUE(bound.ok()) << bound.status().ToString();
    auto array = arrow::json::ArrayFromJSONString(arrow::struct_(schema_->fields()), rows).ValueOrDie();
    auto batch = arrow::RecordBatch::FromStructArray(array).ValueOrDie();
    auto result = evaluate(*bound, *batch).ValueOrDie();
    auto as_long = arrow::compute::Cast(result, arrow::int64()).ValueOrDie().make_array();
    std::vector<std::optional<int64_t>> out;
    const auto& ints = static_cast<const arrow::Int64Array&>(*as_long);
    for (int64_t i = 0; i < ints.length(); ++i) {
      out.push_back(ints.IsNull(i) ? std::nullopt : std::optional<int64_t>(ints.Value(i)));
    }
    return out;
  }
};

TEST_F(BinderTest, TypesFollowSpark) {
  EXPECT_EQ(bind("a + b")->type->id(), arrow::Type::INT64);
  EXPECT_EQ(bind("a / 2")->type->id(), arrow::Type::DOUBLE);
  EXPECT_EQ(bind("a > 1 AND s IS NULL")->type->id(), arrow::Type::BOOL);
  EXPECT_EQ(bind("st.x")->type->id(), arrow::Type::INT32);
  EXPECT_EQ(bind("t.a")->type->id(), arrow::Type::INT32);  // qualified by the table
  EXPECT_EQ(bind("A")->type->id(), arrow::Type::INT32);    // case-insensitive
  EXPECT_EQ(sql::sql_type_name(*bind("ts + INTERVAL 10 MINUTES")->type), "TIMESTAMP");
}

TEST_F(BinderTest, ThreeValuedLogicAndNullOnDivisionByZero) {
  const std::string rows = R"([{"a": 1, "b": 0}, {"a": null, "b": 2}, {"a": 7, "b": 2}])";
  EXPECT_EQ(eval_ints("a % b", rows), (std::vector<std::optional<int64_t>>{std::nullopt, std::nullopt, 1}));
  EXPECT_EQ(eval_ints("CAST(a IN (1, NULL) AS INT)", rows),
            (std::vector<std::optional<int64_t>>{1, std::nullopt, std::nullopt}));
  EXPECT_EQ(eval_ints("CASE WHEN a > 1 THEN 10 ELSE 20 END", rows),
            (std::vector<std::optional<int64_t>>{20, 20, 10}));
  EXPECT_EQ(eval_ints("coalesce(a, -1)", rows), (std::vector<std::optional<int64_t>>{1, -1, 7}));
}

TEST_F(BinderTest, IntegerOverflowIsAnError) {
  auto bound = bind("b * 9223372036854775807");
  ASSERT_TRUE(bound.ok());
  auto array = arrow::json::ArrayFromJSONString(arrow::struct_(schema_->fields()), R"([{"b": 2}])").ValueOrDie();
  auto batch = arrow::RecordBatch::FromStructArray(array).ValueOrDie();
  EXPECT_FALSE(evaluate(*bound, *batch).ok());
}

TEST(BinaryToStringTest, InvalidUtf8BecomesReplacementCharactersInsteadOfFailingTheBatch) {
  // Before: Arrow's cast failed the whole batch ("Invalid UTF8 payload"), so one record
  // stopped the flow on every restart.
  auto schema = arrow::schema({arrow::field("bin", arrow::binary())});
  arrow::BinaryBuilder b;
  ASSERT_TRUE(b.Append(std::string("{\"a\":\"\xff\"}")).ok());
  ASSERT_TRUE(b.Append(std::string("ok")).ok());
  ASSERT_TRUE(b.AppendNull().ok());
  auto batch = arrow::RecordBatch::Make(schema, 3, {b.Finish().ValueOrDie()});
  const std::string r = "\xEF\xBF\xBD";
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"CAST(bin AS STRING)", {"{\"a\":\"" + r + "\"}", "ok"}},
           {"TRY_CAST(bin AS STRING)", {"{\"a\":\"" + r + "\"}", "ok"}},
           {"concat(bin, '!')", {"{\"a\":\"" + r + "\"}!", "ok!"}},
           {"bin || '!'", {"{\"a\":\"" + r + "\"}!", "ok!"}},
           {"get_json_object(CAST(bin AS STRING), '$.a')", {r, "<null>"}},
           {"from_json(bin, 'a STRING').a", {r, "<null>"}}}) {
    sql::SourceFile file{"t.sql", text};
    auto ast = sql::parse_expression(file).ValueOrDie();
    auto bound = ExpressionBinder(file, schema).bind(*ast);
    ASSERT_TRUE(bound.ok()) << text << ": " << bound.status().ToString();
    auto result = evaluate(*bound, *batch);
    ASSERT_TRUE(result.ok()) << text << ": " << result.status().ToString();
    auto array = *result;
    ASSERT_TRUE(array->ValidateFull().ok()) << text;
    ASSERT_EQ(array->type_id(), arrow::Type::STRING) << text;
    const auto& strings = static_cast<const arrow::StringArray&>(*array);
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(strings.IsNull(i) ? "<null>" : strings.GetString(i), expected[i]) << text << " row " << i;
    }
    EXPECT_TRUE(strings.IsNull(2)) << text;
  }
}

struct ErrorCase {
  std::string expr;
  std::string message;
};

class BinderErrorTest : public BinderTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(BinderErrorTest, PointsAtTheProblem) {
  auto bound = bind(GetParam().expr);
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, BinderErrorTest,
    ::testing::Values(
        ErrorCase{"a + nope", "t.sql:1:5: error: unknown column 'nope'; the input has: a, b, s, st, ts\n  a + nope\n      ^"},
        ErrorCase{"a + s", "t.sql:1:3: error: cannot apply '+' to (INT, STRING)\n  a + s\n    ^"},
        ErrorCase{"NOT a", "t.sql:1:1: error: NOT needs a BOOLEAN, not INT\n  NOT a\n  ^"},
        ErrorCase{"frobnicate(a)", "t.sql:1:1: error: unknown function frobnicate\n  frobnicate(a)\n  ^"},
        ErrorCase{"substring(s, a)",
                  "t.sql:1:14: error: argument 2 of substring must be an integer literal\n  substring(s, a)\n               ^"},
        ErrorCase{"st.y", "t.sql:1:1: error: struct 'st' has no field 'y'\n  st.y\n  ^"},
        ErrorCase{"ts + INTERVAL 1 MONTH",
                  "t.sql:1:6: error: interval unit 'month' has no fixed length (use days, hours, minutes, ...)\n  ts + INTERVAL 1 MONTH\n       ^"},
        // Literals past BIGINT: refused where they stand (std::stoll would have thrown).
        ErrorCase{"a + 99999999999999999999",
                  "t.sql:1:5: error: integer literal 99999999999999999999 is out of range for BIGINT\n  a + "
                  "99999999999999999999\n      ^"},
        ErrorCase{"substring(s, 99999999999999999999)",
                  "t.sql:1:14: error: integer literal 99999999999999999999 is out of range for BIGINT\n  "
                  "substring(s, 99999999999999999999)\n               ^"},
        ErrorCase{"CAST(a AS DECIMAL(50, 2))",
                  "t.sql:1:1: error: invalid type 'DECIMAL(50,2)': DECIMAL(50,2) is out of range (precision 1..38, 0 <= scale <= precision)\n  CAST(a AS DECIMAL(50, 2))\n  ^"}));

TEST(SqlTypesTest, ParsesSparkTypeNamesAndDdlSchemas) {
  EXPECT_TRUE(sql::parse_type("ARRAY<STRUCT<a: INT, b STRING>>").ValueOrDie()->Equals(
      arrow::list(arrow::field("element", arrow::struct_({arrow::field("a", arrow::int32()),
                                                          arrow::field("b", arrow::utf8())})))));
  auto schema = sql::parse_ddl_schema("user_id STRING, n BIGINT NOT NULL, m MAP<STRING, DOUBLE>").ValueOrDie();
  EXPECT_EQ(schema->ToString(), "user_id: string\nn: int64 not null\nm: map<string, double>");
  EXPECT_FALSE(sql::parse_type("VARIANT").ok());
}

}  // namespace
}  // namespace sluice::exec
