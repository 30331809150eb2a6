// The array, map and calendar functions of slice (fb) on the C++ paths that are not one Arrow
// call: add_months at month ends, months_between's rounding and whole-month cases, sequence's
// bounds and size limit, the NULL order of sort_array / array_sort, and map key checks.
// tests/integration/test_spark_functions.py compares the same functions with Spark itself.
#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include "sluice/exec/expression_binder.h"
#include "sluice/sql/parser.h"

namespace sluice::exec {
namespace {

// Rows: an int array with a NULL element, an empty array, a NULL array; d a DATE; ts a TIMESTAMP.
std::shared_ptr<arrow::Schema> fb_schema() {
  return arrow::schema({arrow::field("arr", arrow::list(arrow::int32())), arrow::field("d", arrow::date32()),
                        arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                        arrow::field("n", arrow::int64())});
}

constexpr const char* kFbRows = R"([
  {"arr": [3, null, 1, 2], "d": 19752, "ts": 1709164800000000, "n": 5},
  {"arr": [], "d": -1, "ts": -1, "n": -3},
  {"arr": null, "d": null, "ts": null, "n": null}])";  // 2024-01-30 / 2024-02-29T00:00Z; 1969-12-31

arrow::Result<std::shared_ptr<arrow::Array>> fb_eval(const std::string& text) {
  sql::SourceFile file{"f.sql", text};
  ARROW_ASSIGN_OR_RAISE(auto ast, sql::parse_expression(file));
  ARROW_ASSIGN_OR_RAISE(auto bound, ExpressionBinder(file, fb_schema()).bind(*ast));
  ARROW_ASSIGN_OR_RAISE(auto rows, arrow::json::ArrayFromJSONString(arrow::struct_(fb_schema()->fields()), kFbRows));
  ARROW_ASSIGN_OR_RAISE(auto batch, arrow::RecordBatch::FromStructArray(rows));
  return evaluate(bound, *batch);
}

void expect_rows(const std::string& text, const std::shared_ptr<arrow::DataType>& type, const std::string& json) {
  auto got = fb_eval(text);
  ASSERT_TRUE(got.ok()) << text << ": " << got.status().ToString();
  auto want = arrow::json::ArrayFromJSONString(type, json).ValueOrDie();
  EXPECT_TRUE((*got)->Equals(*want)) << text << "\n got " << (*got)->ToString() << "\nwant " << want->ToString();
}

void expect_error(const std::string& text, const std::string& part) {
  auto got = fb_eval(text);
  ASSERT_FALSE(got.ok()) << text << " gave " << (*got)->length() << " rows of " << (*got)->type()->ToString();
  EXPECT_NE(got.status().message().find(part), std::string::npos) << got.status().ToString();
}

TEST(CalendarFunctionTest, AddMonthsClampsToTheTargetMonthsLastDayAndKeepsOtherDays) {
  // 2024-01-30 + 1 month: February has 29 days; + 13: 2025-02-28; - 11: 2023-02-28; 1969-12-31 + 2: 1970-02-28.
  expect_rows("add_months(d, 1)", arrow::date32(), "[19782, 30, null]");
  expect_rows("add_months(DATE'2024-01-30', 13)", arrow::date32(), "[20147, 20147, 20147]");
  expect_rows("add_months(DATE'2024-01-31', -11)", arrow::date32(), "[19416, 19416, 19416]");
  // The last day of a month is not kept as the last day (Spark 3+): 2024-02-29 + 1 = 2024-03-29.
  expect_rows("add_months(DATE'2024-02-29', 1)", arrow::date32(), "[19811, 19811, 19811]");
}

TEST(CalendarFunctionTest, MonthsBetweenIsWholeOnSameDayOrBothMonthEndsAndRoundsToEightDecimals) {
  expect_rows("months_between(DATE'2024-03-31', DATE'2024-02-29')", arrow::float64(), "[1, 1, 1]");
  expect_rows("months_between(DATE'2024-03-15', DATE'2024-02-15')", arrow::float64(), "[1, 1, 1]");
  // 1 day and 1 second over a 31-day month: 0.0322584378... rounded half up to 8 decimals.
  expect_rows("months_between(TIMESTAMP'2024-03-02 00:00:01', TIMESTAMP'2024-03-01 00:00:00')", arrow::float64(),
              "[0.03225844, 0.03225844, 0.03225844]");
  auto raw = fb_eval("months_between(TIMESTAMP'2024-03-02 00:00:01', TIMESTAMP'2024-03-01 00:00:00', false)");
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  EXPECT_DOUBLE_EQ(static_cast<const arrow::DoubleArray&>(**raw).Value(0), 86401.0 / 2678400.0);
  // Before 1970: 1969-12-31 23:59:59.999999 is a month end; its seconds truncate to 86399.
  expect_rows("months_between(ts, TIMESTAMP'1970-01-01 00:00:00')", arrow::float64(), "[649.90322581, -3.7e-7, null]");
}

TEST(CalendarFunctionTest, InvalidFieldsAreErrorsAsUnderAnsi) {
  expect_error("make_date(2023, 2, 29)", "day 29 in row 0 is not a day of 2023-02");
  expect_error("make_date(2024, 13, 1)", "month 13");
  expect_error("make_timestamp(2024, 1, 1, 0, 0, 60.5)", "exactly 60");
  expect_rows("make_timestamp(1969, 12, 31, 23, 59, 60)", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), "[0, 0, 0]");
  expect_rows("try_make_timestamp(2023, 2, 29, 0, 0, 0)", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), "[null, null, null]");
  expect_error("next_day(d, 'funday')", "not a day of the week");
  expect_error("trunc(d, 'hour')", "not a trunc unit");
}

TEST(SequenceFunctionTest, BoundsStepsAndTheSizeLimit) {
  expect_rows("sequence(1, 4)", arrow::list(arrow::int32()), "[[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]");
  expect_rows("sequence(n, 0)", arrow::list(arrow::int64()), "[[5, 4, 3, 2, 1, 0], [-3, -2, -1, 0], null]");
  expect_rows("sequence(3, 3, 0)", arrow::list(arrow::int32()), "[[3], [3], [3]]");
  // The extremes: no overflow in the count, one element each way.
  expect_rows("sequence(9223372036854775807, 9223372036854775807)", arrow::list(arrow::int64()),
              "[[9223372036854775807], [9223372036854775807], [9223372036854775807]]");
  expect_error("sequence(1, 5, -1)", "illegal boundaries");
  expect_error("sequence(1, 2, 0)", "illegal boundaries");
  expect_error("sequence(-9223372036854775807, 9223372036854775807, 2)", "more than Spark's limit of 2147483632");
  expect_error("sequence(1.5, 3)", "integers only");
}

// Hostile sizes are refused before anything is reserved (review of fb: sequence(1, 2000000000)
// reserved 16 GB; array_repeat over rows filled gigabytes): at most 2^26 elements per batch's
// results together, and the offsets never wrap. Arguments that read a column are computed per
// row (literal-only calls are folded to one value): rows 1 and 2 (n = 5, -3) ask for 40,000,000
// elements each, together past the cap, so the second row is refused before its reservation.
TEST(SequenceFunctionTest, ABatchsResultsAreCappedBeforeTheyAreAllocated) {
  expect_error("sequence(1, 2000000000)", "sluice's limit of 67108864 elements for one batch's results together");
  expect_error("sequence(1, 40000000 + n * 0)", "row 1 would have 40000000 elements, past sluice's limit of 67108864");
  expect_error("array_repeat(n, 40000000)", "more than 67108864 elements together");
  expect_error("array_repeat(1, 1100000000)", "more than 67108864 elements together");
  // Steps past int64 in i * step (3 * 2^62) come out as stepping by addition does.
  expect_rows("sequence(-9223372036854775807, 9223372036854775807, 4611686018427387904)", arrow::list(arrow::int64()),
              "[[-9223372036854775807, -4611686018427387903, 1, 4611686018427387905]," 
              " [-9223372036854775807, -4611686018427387903, 1, 4611686018427387905],"
              " [-9223372036854775807, -4611686018427387903, 1, 4611686018427387905]]");
}

TEST(ArraySortFunctionTest, NullsFirstAscendingLastDescendingAndLastInArraySort) {
  const auto ints = arrow::list(arrow::int32());
  expect_rows("sort_array(arr)", ints, "[[null, 1, 2, 3], [], null]");
  expect_rows("sort_array(arr, false)", ints, "[[3, 2, 1, null], [], null]");
  expect_rows("array_sort(arr)", ints, "[[1, 2, 3, null], [], null]");
  expect_rows("array_max(arr)", arrow::int32(), "[3, null, null]");
  expect_rows("array_min(arr)", arrow::int32(), "[1, null, null]");
  expect_error("sort_array(arr, n > 0)", "TRUE or FALSE");
}

TEST(ArraySetFunctionTest, FirstOccurrenceOrderAndOneNull) {
  const auto ints = arrow::list(arrow::int32());
  expect_rows("array_distinct(array_union(arr, array(2, NULL, 7)))", ints, "[[3, null, 1, 2, 7], [2, null, 7], null]");
  expect_rows("array_intersect(array(1, NULL, 1, 2), arr)", ints, "[[1, null, 2], [], null]");
  expect_rows("array_except(array(1, 4, 4, NULL), arr)", ints, "[[4], [1, 4, null], null]");
  expect_rows("arrays_overlap(arr, array(9, NULL))", arrow::boolean(), "[null, false, null]");
}

TEST(MapFunctionTest, NullAndDuplicateKeysAreErrors) {
  expect_error("map('a', 1, 'a', 2)", "appears twice in row 0");
  expect_error("map(CAST(n AS STRING), 1)", "a key is NULL (row 2)");
  expect_error("map_concat(map('a', n), map('a', 1))", "appears twice");
  expect_error("map_from_arrays(array(1, 2), array(1))", "2 keys and 1 values");
  expect_error("map_keys(arr)", "map_keys needs a MAP, not ARRAY<INT>");
}

}  // namespace
}  // namespace sluice::exec
