// SelectPlan::source_fields_read: the source columns and nested struct fields a plan reads,
// through chains of subqueries as Nexmark's views inline into q0-q2. Oracle for results: the
// same query over the whole decode equals it over a decode of only the fields read.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sluice/exec/select_plan.h"
#include "sluice/format/json_payload_decoder.h"
#include "sluice/sql/parser.h"
#include "sluice/sql/types.h"

namespace sluice::exec {
namespace {

using format::FieldSelection;

const char kValue[] =
    "event_type INT, person STRUCT<id: BIGINT, name: STRING>, "
    "bid STRUCT<auction: BIGINT, bidder: BIGINT, price: BIGINT, url: STRING, extra: STRING>";

std::shared_ptr<arrow::Schema> value_schema() { return sql::parse_ddl_schema(kValue).ValueOrDie(); }

std::shared_ptr<arrow::Schema> source_schema() {
  return arrow::schema({arrow::field("key", arrow::binary()), arrow::field("value", arrow::struct_(value_schema()->fields())),
                        arrow::field(format::kRescuedDataColumn, arrow::utf8())});
}

SelectPlan plan_of(const std::string& select) {
  sql::SourceFile file{"q.sql", "CREATE MATERIALIZED VIEW m AS " + select + ";"};
  auto statements = sql::parse_statements(file);
  EXPECT_TRUE(statements.ok()) << statements.status().message();
  auto plan = SelectPlan::make(*(*statements)[0].dataset->query, file,
                               [&](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return source_schema(); });
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return std::move(*plan);
}

// "value.bid.price", ... for every leaf read (a whole node is named once).
void names(const FieldSelection& s, const arrow::FieldVector& fields, const std::string& prefix, std::vector<std::string>* out) {
  if (s.use == FieldSelection::Use::kWhole) out->push_back(prefix);
  if (s.use != FieldSelection::Use::kSome) return;
  for (size_t i = 0; i < fields.size(); ++i) {
    const auto& f = fields[i];
    names(s.fields[i], f->type()->id() == arrow::Type::STRUCT ? f->type()->fields() : arrow::FieldVector{},
          (prefix.empty() ? "" : prefix + ".") + f->name(), out);
  }
}

std::vector<std::string> read_of(const std::string& select) {
  std::vector<std::string> out;
  names(plan_of(select).source_fields_read(), source_schema()->fields(), "", &out);
  return out;
}

const std::string kBid = "(SELECT bid.* FROM (SELECT value.* FROM t) WHERE event_type = 2)";

TEST(SourceFieldsReadTest, NexmarkQueriesReadTheBidFieldsAndTheEventType) {
  using V = std::vector<std::string>;
  EXPECT_EQ(read_of("SELECT auction, price FROM " + kBid + " WHERE auction % 123 = 0"),
            (V{"value.event_type", "value.bid.auction", "value.bid.price"}));
  EXPECT_EQ(read_of("SELECT auction, bidder, 0.908 * price AS price, extra FROM " + kBid),
            (V{"value.event_type", "value.bid.auction", "value.bid.bidder", "value.bid.price", "value.bid.extra"}));
  EXPECT_EQ(read_of("SELECT * FROM " + kBid), (V{"value.event_type", "value.bid.auction", "value.bid.bidder",
                                                  "value.bid.price", "value.bid.url", "value.bid.extra"}));
  EXPECT_EQ(read_of("SELECT value.person.name AS n, key FROM t"), (V{"key", "value.person.name"}));
}

TEST(SourceFieldsReadTest, WholeReadsAreWhole) {
  using V = std::vector<std::string>;
  EXPECT_EQ(read_of("SELECT value FROM t"), (V{"value"}));
  EXPECT_EQ(read_of("SELECT value.bid IS NULL AS b FROM t"), (V{"value.bid"}));
  EXPECT_EQ(read_of("SELECT * FROM t"), (V{"key", "value", "_rescued_data"}));
  EXPECT_EQ(read_of("SELECT _rescued_data, value.event_type FROM t"), (V{"value.event_type", "_rescued_data"}));
  // An aggregate reads every column of the row stages' output (bid.*), not only its inputs.
  EXPECT_EQ(read_of("SELECT price, count(*) AS n FROM " + kBid + " GROUP BY price"),
            (V{"value.event_type", "value.bid.auction", "value.bid.bidder", "value.bid.price", "value.bid.url",
               "value.bid.extra"}));
}

std::shared_ptr<arrow::Table> source_rows(const FieldSelection* value_read) {
  arrow::StringBuilder b;
  for (const char* r : {R"({"event_type":2,"bid":{"auction":123,"bidder":1,"price":10,"url":"u","extra":"e"}})",
                        R"({"event_type":2,"bid":{"auction":246,"price":"12","url":7},"other":1})",
                        R"({"event_type":0,"person":{"id":1,"name":"p"}})", R"({"event_type":2,"bid":null})",
                        R"({"event_type":"2","bid":{"auction":123}})", R"({"bid":{"auction":0,"Price":5,"price":6}})",
                        R"({"event_type":2,"bid":{"auction":369,"price":1},"bid":{"auction":1}})", "{}"}) {
    EXPECT_TRUE(b.Append(r).ok());
  }
  auto payloads = *b.Finish();
  auto decoder = format::make_json_decoder(
      value_schema(), {}, value_read ? std::make_shared<FieldSelection>(*value_read) : nullptr);
  auto decoded = (*decoder)->decode(*payloads).ValueOrDie();
  EXPECT_TRUE(decoded.errors.empty());
  arrow::ArrayVector value_columns(decoded.rows->columns().begin(), decoded.rows->columns().end() - 1);
  auto value = arrow::StructArray::Make(value_columns, value_schema()->fields()).ValueOrDie();
  auto keys = arrow::MakeArrayOfNull(arrow::binary(), payloads->length()).ValueOrDie();
  return arrow::Table::Make(source_schema(), {keys, value, decoded.rows->columns().back()});
}

TEST(SourceFieldsReadTest, AQueryOverTheFieldsReadGivesWhatTheWholeDecodeGives) {
  for (const std::string& q : {"SELECT auction, price FROM " + kBid + " WHERE auction % 123 = 0",
                              "SELECT auction, bidder, 0.908 * price AS price, url, extra FROM " + kBid,
                              std::string("SELECT value.bid.price * 2 AS p, value.person.name FROM t WHERE value.event_type IS NOT NULL")}) {
    SCOPED_TRACE(q);
    auto plan = plan_of(q);
    auto read = plan.source_fields_read();
    ASSERT_EQ(read.use, FieldSelection::Use::kSome);
    const auto& value_read = read.fields[1];
    ASSERT_EQ(value_read.use, FieldSelection::Use::kSome);
    auto narrowed = plan.run([&](const PlanSource&) -> arrow::Result<std::shared_ptr<arrow::Table>> { return source_rows(&value_read); });
    auto whole = plan.run([&](const PlanSource&) -> arrow::Result<std::shared_ptr<arrow::Table>> { return source_rows(nullptr); });
    ASSERT_TRUE(narrowed.ok() && whole.ok());
    EXPECT_GT((*whole)->num_rows(), 0);
    EXPECT_TRUE((*narrowed)->Equals(**whole)) << (*narrowed)->ToString() << "\nvs\n" << (*whole)->ToString();
  }
}

}  // namespace
}  // namespace sluice::exec
