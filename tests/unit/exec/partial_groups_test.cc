// PartialGroups (the window operator's hash table of partial aggregates) against Acero's hash
// aggregate over the same rows, also when the partials of two halves are merged.
#include "sluice/exec/partial_groups.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "sluice/exec/group_by.h"

namespace sluice::exec {
namespace {

namespace cp = arrow::compute;

struct Case {
  std::string function;
  int input;  // column of the rows table (after the keys)
};

// Rows: k1 string (with nulls), k2 int32, then inputs: i64 (nulls), f64 (nulls, NaN), s (strings,
// nulls), ts (timestamps), b (booleans, nulls), ls (large strings, nulls).
std::shared_ptr<arrow::RecordBatch> random_rows(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  arrow::StringBuilder k1, s;
  arrow::Int32Builder k2;
  arrow::Int64Builder i64;
  arrow::DoubleBuilder f64;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), arrow::default_memory_pool());
  arrow::BooleanBuilder b;
  arrow::LargeStringBuilder ls;
  for (int64_t r = 0; r < n; ++r) {
    const uint32_t x = rng();
    EXPECT_TRUE((x % 11 == 0 ? k1.AppendNull() : k1.Append("key" + std::to_string(x % 7))).ok());
    EXPECT_TRUE(k2.Append(static_cast<int32_t>((x >> 8) % 3)).ok());
    EXPECT_TRUE((x % 5 == 0 ? i64.AppendNull() : i64.Append(static_cast<int64_t>(x % 1000) - 500)).ok());
    const double d = (x >> 4) % 13 == 0 ? std::numeric_limits<double>::quiet_NaN() : ((x >> 3) % 1000) / 8.0;
    EXPECT_TRUE((x % 7 == 0 ? f64.AppendNull() : f64.Append(d)).ok());
    EXPECT_TRUE((x % 9 == 0 ? s.AppendNull() : s.Append(std::string((x >> 5) % 4, 'x') + std::to_string(x % 97))).ok());
    EXPECT_TRUE(ts.Append(static_cast<int64_t>(x % 100000)).ok());
    EXPECT_TRUE(((x >> 6) % 6 == 0 ? b.AppendNull() : b.Append((x >> 9) % 5 == 0)).ok());
    EXPECT_TRUE(((x >> 7) % 8 == 0 ? ls.AppendNull() : ls.Append("L" + std::to_string((x >> 11) % 53))).ok());
  }
  auto schema = arrow::schema({arrow::field("k1", arrow::utf8()), arrow::field("k2", arrow::int32()),
                               arrow::field("i64", arrow::int64()), arrow::field("f64", arrow::float64()),
                               arrow::field("s", arrow::utf8()),
                               arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                               arrow::field("b", arrow::boolean()), arrow::field("ls", arrow::large_utf8())});
  return arrow::RecordBatch::Make(schema, n,
                                  {k1.Finish().ValueOrDie(), k2.Finish().ValueOrDie(), i64.Finish().ValueOrDie(),
                                   f64.Finish().ValueOrDie(), s.Finish().ValueOrDie(), ts.Finish().ValueOrDie(),
                                   b.Finish().ValueOrDie(), ls.Finish().ValueOrDie()});
}

const std::vector<Case> kCases = {
    {"hash_count_all", 0}, {"hash_count", 1}, {"hash_count", 2}, {"hash_sum", 0},   {"hash_sum", 1},
    {"hash_mean", 0},      {"hash_mean", 1},  {"hash_min", 0},   {"hash_max", 1},   {"hash_min", 1},
    {"hash_min", 2},       {"hash_max", 2},   {"hash_first", 2}, {"hash_last", 2},  {"hash_first", 1},
    {"hash_last", 3},      {"hash_max", 3},   {"hash_min", 4},   {"hash_max", 4},   {"hash_first", 4},
    {"hash_last", 4},      {"hash_min", 5},   {"hash_max", 5},   {"hash_last", 5},
};

// Each row of `columns` (one value per group) as text, sorted: groups come in any order.
std::vector<std::string> rows_text(const arrow::ArrayVector& columns) {
  std::vector<std::string> rows(columns.empty() ? 0 : static_cast<size_t>(columns[0]->length()));
  for (const auto& c : columns) {
    for (int64_t i = 0; i < c->length(); ++i) rows[static_cast<size_t>(i)] += c->GetScalar(i).ValueOrDie()->ToString() + "|";
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// The partial columns Acero computes over all of `rows`, after the first `keys` columns.
arrow::ArrayVector acero_partials(std::shared_ptr<arrow::RecordBatch> rows, size_t keys) {
  const bool keyless = keys == 0;  // Acero's hash aggregates need a key: a constant one
  if (keyless) {
    auto zeros = arrow::MakeArrayFromScalar(arrow::Int32Scalar(0), rows->num_rows()).ValueOrDie();
    rows = rows->AddColumn(0, arrow::field("one", arrow::int32()), zeros).ValueOrDie();
    keys = 1;
  }
  auto skip_nulls = std::make_shared<cp::ScalarAggregateOptions>(true, 1);
  auto only_valid = std::make_shared<cp::CountOptions>(cp::CountOptions::ONLY_VALID);
  std::vector<cp::Aggregate> aggregates;
  arrow::FieldVector fields(rows->schema()->fields().begin(), rows->schema()->fields().begin() + static_cast<int>(keys));
  for (size_t a = 0; a < kCases.size(); ++a) {
    const auto& c = kCases[a];
    const auto in = arrow::FieldRef(static_cast<int>(keys) + c.input);
    const auto out = "p" + std::to_string(a);
    const auto in_type = rows->schema()->field(static_cast<int>(keys) + c.input)->type();
    const auto type = PartialGroups::partial_type(c.function, in_type);
    if (c.function == "hash_count_all") {
      aggregates.emplace_back("hash_count_all", nullptr, std::vector<arrow::FieldRef>{}, out);
    } else if (c.function == "hash_count") {
      aggregates.emplace_back("hash_count", only_valid, in, out);
    } else if (c.function == "hash_mean") {
      aggregates.emplace_back("hash_sum", skip_nulls, in, out);
      fields.push_back(arrow::field(out, type));
      aggregates.emplace_back("hash_count", only_valid, in, out + "c");
      fields.push_back(arrow::field(out + "c", arrow::int64()));
      continue;
    } else {
      aggregates.emplace_back(c.function, skip_nulls, in, out);
    }
    fields.push_back(arrow::field(out, type));
  }
  auto table = arrow::Table::FromRecordBatches({rows}).ValueOrDie();
  auto grouped = group_by(table, aggregates, arrow::schema(fields), keys);
  EXPECT_TRUE(grouped.ok()) << grouped.status().ToString();
  auto columns = grouped.ValueOrDie()->columns();
  if (keyless) columns.erase(columns.begin());
  return columns;
}

std::unique_ptr<PartialGroups> make_groups(const arrow::RecordBatch& rows, size_t keys) {
  std::vector<std::shared_ptr<arrow::DataType>> key_types, input_types;
  std::vector<std::string> functions;
  for (size_t k = 0; k < keys; ++k) key_types.push_back(rows.column(static_cast<int>(k))->type());
  for (const auto& c : kCases) {
    functions.push_back(c.function);
    input_types.push_back(rows.column(static_cast<int>(keys) + c.input)->type());
    EXPECT_TRUE(PartialGroups::supports(c.function, input_types.back())) << c.function;
  }
  auto groups = PartialGroups::make(key_types, functions, input_types);
  EXPECT_TRUE(groups.ok()) << groups.status().ToString();
  return groups.MoveValueUnsafe();
}

void consume(PartialGroups& groups, const arrow::RecordBatch& rows, size_t keys) {
  arrow::ArrayVector key_columns, inputs;
  for (size_t k = 0; k < keys; ++k) key_columns.push_back(rows.column(static_cast<int>(k)));
  for (const auto& c : kCases) inputs.push_back(rows.column(static_cast<int>(keys) + c.input));
  ASSERT_TRUE(groups.consume(key_columns, inputs, rows.num_rows()).ok());
}

// The rows with the keys dropped (or kept) in front of the inputs.
std::shared_ptr<arrow::RecordBatch> with_keys(const std::shared_ptr<arrow::RecordBatch>& rows, size_t keys) {
  auto out = rows;
  for (size_t k = 2; k > keys; --k) out = out->RemoveColumn(static_cast<int>(k - 1)).ValueOrDie();
  return out;
}

class PartialGroupsTest : public ::testing::TestWithParam<size_t> {};

TEST_P(PartialGroupsTest, BatchByBatchEqualsAceroOverAllRows) {
  const size_t keys = GetParam();
  auto all = with_keys(random_rows(3000, 7), keys);
  auto groups = make_groups(*all, keys);
  for (int64_t offset = 0; offset < all->num_rows(); offset += 700) consume(*groups, *all->Slice(offset, 700), keys);
  auto got = groups->finish();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(rows_text(*got), rows_text(acero_partials(all, keys)));
  EXPECT_EQ(groups->num_groups(), (*got)[0]->length());
  EXPECT_EQ(rows_text(*groups->finish()), rows_text(*got));  // finish() leaves the table as it was
}

TEST_P(PartialGroupsTest, MergingThePartialsOfTwoHalvesEqualsOneTable) {
  const size_t keys = GetParam();
  auto all = with_keys(random_rows(2000, 11), keys);
  auto first = make_groups(*all, keys), second = make_groups(*all, keys), merged = make_groups(*all, keys);
  consume(*first, *all->Slice(0, 1200), keys);
  consume(*second, *all->Slice(1200), keys);
  for (const auto* half : {first.get(), second.get()}) {  // in arrival order: first/last hold
    auto columns = half->finish().ValueOrDie();
    const arrow::ArrayVector key_columns(columns.begin(), columns.begin() + static_cast<std::ptrdiff_t>(keys));
    const arrow::ArrayVector partials(columns.begin() + static_cast<std::ptrdiff_t>(keys), columns.end());
    ASSERT_TRUE(merged->merge(key_columns, partials, columns[0]->length()).ok());
  }
  EXPECT_EQ(rows_text(*merged->finish()), rows_text(acero_partials(all, keys)));
}

INSTANTIATE_TEST_SUITE_P(Keys, PartialGroupsTest, ::testing::Values(size_t{0}, size_t{1}, size_t{2}));

TEST(PartialGroupsSupport, DecimalsFixedSizeBinariesAndNestedTypesKeepNoPartial) {
  EXPECT_FALSE(PartialGroups::supports("hash_sum", arrow::decimal128(10, 2)));
  EXPECT_FALSE(PartialGroups::supports("hash_min", arrow::fixed_size_binary(4)));
  EXPECT_FALSE(PartialGroups::supports("hash_first", arrow::list(arrow::int32())));
  EXPECT_FALSE(PartialGroups::supports("hash_sum", arrow::utf8()));
  EXPECT_FALSE(PartialGroups::supports("hash_count_distinct", arrow::int64()));
  EXPECT_TRUE(PartialGroups::supports("hash_count", arrow::list(arrow::int32())));
}

}  // namespace
}  // namespace sluice::exec
