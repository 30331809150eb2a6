// from_json decodes only the struct fields the next stage reads: the narrowed call is chosen
// only when every read goes through struct_field, and a query's output is the same as with
// the whole struct decoded (the oracle: the same query with `e` passed on whole first).
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sluice/exec/json_functions.h"
#include "sluice/exec/select_plan.h"
#include "sluice/sql/parser.h"

namespace sluice::exec {
namespace {

namespace cp = arrow::compute;

const char kFields[] = "a STRING, b BIGINT, c DOUBLE, d STRING";

std::shared_ptr<arrow::Table> run(const std::string& select, const std::shared_ptr<arrow::Table>& input) {
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS " + select + ";"};
  auto statements = sql::parse_statements(file);
  EXPECT_TRUE(statements.ok()) << statements.status().message();
  auto plan = SelectPlan::make(*(*statements)[0].dataset->query, file,
                               [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return input->schema(); });
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  auto out = plan->run([&](const PlanSource&) -> arrow::Result<std::shared_ptr<arrow::Table>> { return input; });
  EXPECT_TRUE(out.ok()) << out.status().message();
  return *out;
}

std::shared_ptr<arrow::Table> records() {
  arrow::StringBuilder b;
  for (const char* r : {R"({"a":"x","b":1,"c":2.5,"d":"y"})", R"({"c":-1,"a":null})", R"({"a":"x","b":1,"c":)",
                        R"([1])", R"({"A":"case","C":"7","b":{"n":[1]},"d":{"z":1}})", R"({"a":"\u00e9\n","c":1e300})",
                        R"({"a":"dup","a":"second","c":3,"c":4})", "{}"}) {
    EXPECT_TRUE(b.Append(r).ok());
  }
  EXPECT_TRUE(b.AppendNull().ok());
  return arrow::Table::Make(arrow::schema({arrow::field("v", arrow::utf8())}), {*b.Finish()});
}

TEST(FromJsonFieldsReadTest, AQueryReadingSomeFieldsGivesWhatTheWholeDecodeGives) {
  const std::string inner = std::string("SELECT from_json(v, '") + kFields + "') AS e FROM t";
  const std::string items = "e.c, e.a, e.a IS NULL AS no_a";
  auto narrowed = run("SELECT " + items + " FROM (" + inner + ") WHERE e.c IS NULL OR e.c > 0", records());
  auto whole = run("SELECT " + items + " FROM (SELECT e FROM (" + inner + ")) WHERE e.c IS NULL OR e.c > 0", records());
  ASSERT_TRUE(narrowed->Equals(*whole)) << narrowed->ToString() << "\nvs\n" << whole->ToString();
  EXPECT_EQ(narrowed->num_rows(), 8);  // -1 is filtered out, the malformed and null rows kept
}

cp::Expression bound(cp::Expression e, const std::shared_ptr<arrow::Schema>& schema) {
  auto b = e.Bind(*schema);
  EXPECT_TRUE(b.ok()) << b.status().message();
  return *b;
}

TEST(FromJsonFieldsReadTest, NarrowsOnlyWhenEveryReadIsAStructField) {
  auto type = arrow::struct_({arrow::field("a", arrow::utf8()), arrow::field("b", arrow::int64()),
                              arrow::field("c", arrow::float64()), arrow::field("d", arrow::utf8())});
  auto function = from_json_function(type).ValueOrDie();
  auto producer = bound(cp::call(function, {cp::field_ref("v")}), arrow::schema({arrow::field("v", arrow::utf8())}));
  auto out = arrow::schema({arrow::field("k", arrow::int64()), arrow::field("e", type)});
  auto field = [&](int i) { return bound(cp::call("struct_field", {cp::field_ref("e")}, cp::StructFieldOptions({i})), out); };
  auto read_a = field(0), read_c = cp::call("is_null", {field(2)}), other = bound(cp::field_ref("k"), out);
  read_c = bound(read_c, out);

  auto narrowed = from_json_reading_only_used_fields(producer, 1, {&read_a, &read_c, &other}).ValueOrDie();
  ASSERT_NE(narrowed.call(), nullptr);
  EXPECT_NE(narrowed.call()->function_name.find("_only_1010"), std::string::npos) << narrowed.call()->function_name;
  EXPECT_TRUE(narrowed.type()->Equals(*type));

  auto whole = bound(cp::field_ref("e"), out);
  EXPECT_TRUE(from_json_reading_only_used_fields(producer, 1, {&read_a, &whole}).ValueOrDie().Equals(producer));
  // Column 0 is not read at all (read_a reads column 1): no field is decoded, only the records checked.
  auto unread = from_json_reading_only_used_fields(producer, 0, {&read_a}).ValueOrDie();
  EXPECT_NE(unread.call()->function_name.find("_only_0000"), std::string::npos) << unread.call()->function_name;
  auto all = {field(0), field(1), field(2), field(3)};
  std::vector<const cp::Expression*> every;
  for (const auto& e : all) every.push_back(&e);
  EXPECT_TRUE(from_json_reading_only_used_fields(producer, 1, every).ValueOrDie().Equals(producer));

  // The narrowed call runs: the fields read as decoded whole, the others null.
  arrow::StringBuilder b;
  ASSERT_TRUE(b.Append(R"({"a":"x","b":1,"c":2.5,"d":"y"})").ok());
  auto batch = cp::ExecBatch({*b.Finish()}, 1);
  auto value = cp::ExecuteScalarExpression(narrowed, batch).ValueOrDie().make_array();
  const auto& s = static_cast<const arrow::StructArray&>(*value);
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*s.field(0)).GetString(0), "x");
  EXPECT_TRUE(s.field(1)->IsNull(0));
  EXPECT_EQ(static_cast<const arrow::DoubleArray&>(*s.field(2)).Value(0), 2.5);
  EXPECT_TRUE(s.field(3)->IsNull(0));
}

}  // namespace
}  // namespace sluice::exec
