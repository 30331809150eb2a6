// Row matching and diffs for `sluice test` (row_match.h).
#include "sluice/testing/row_match.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "sluice/common/utf8.h"
#include "sluice/format/json_row_encoder.h"
#include "sluice/format/json_value_appender.h"

namespace sluice::testing {

namespace {

bool both_times_equal(const std::string& a, const std::string& b) {
  int64_t x = 0, y = 0;
  return a.size() >= 10 && b.size() >= 10 && format::internal::parse_timestamp(a, &x) &&
         format::internal::parse_timestamp(b, &y) && x == y;
}

// The row as printed in a diff: the columns named, by name (all when none are).
std::string show(const nlohmann::json& row, const std::vector<std::string>& columns) {
  if (columns.empty()) return row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& c : columns) {
    auto it = row.find(c);
    out[c] = it == row.end() ? nlohmann::json(nullptr) : *it;
  }
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

std::string RowDiff::text(const std::string& indent) const {
  std::string out;
  if (!missing.empty()) {
    out += fmt::format("{}missing rows (expected, not found): {}\n", indent, missing.size());
    for (const auto& r : missing) out += fmt::format("{}  - {}\n", indent, r);
  }
  if (!unexpected.empty()) {
    out += fmt::format("{}unexpected rows (found, not expected): {}\n", indent, unexpected.size());
    for (const auto& r : unexpected) out += fmt::format("{}  + {}\n", indent, r);
  }
  return out;
}

arrow::Result<std::vector<nlohmann::json>> table_rows_as_json(const arrow::Table& table) {
  std::vector<nlohmann::json> out;
  ARROW_ASSIGN_OR_RAISE(auto combined, table.CombineChunksToBatch());
  // Binary columns read as text where they are UTF-8 (a dead letter's raw value), as a person
  // writes them in a fixture; base64 otherwise.
  std::vector<std::shared_ptr<arrow::Array>> columns = combined->columns();
  auto schema = combined->schema();
  for (int i = 0; i < schema->num_fields(); ++i) {
    const auto id = schema->field(i)->type()->id();
    if (id != arrow::Type::BINARY && id != arrow::Type::LARGE_BINARY) continue;
    auto as_text = arrow::compute::Cast(*columns[i], arrow::utf8());
    if (!as_text.ok() || !(*as_text)->ValidateFull().ok()) continue;
    columns[i] = *as_text;
    ARROW_ASSIGN_OR_RAISE(schema, schema->SetField(i, arrow::field(schema->field(i)->name(), arrow::utf8())));
  }
  auto batch = arrow::RecordBatch::Make(schema, combined->num_rows(), columns);
  std::vector<int> all(schema->num_fields());
  for (int i = 0; i < schema->num_fields(); ++i) all[i] = i;
  ARROW_ASSIGN_OR_RAISE(auto json, format::rows_to_json(*batch, all));
  for (int64_t r = 0; r < json->length(); ++r) {
    auto row = nlohmann::json::parse(json->GetView(r), nullptr, false);
    if (row.is_discarded()) return arrow::Status::Invalid("row ", r, " could not be read back as JSON");
    out.push_back(std::move(row));
  }
  return out;
}

bool value_matches(const nlohmann::json& expected, const nlohmann::json& actual, double tolerance,
                   const arrow::DataType* type) {
  if (expected.is_null()) return actual.is_null();
  if (expected.is_number()) {
    if (!actual.is_number()) return false;
    // Two whole numbers compare exactly (a BIGINT id or epoch-ms off by one is a different value);
    // the tolerance is for the float side of a comparison only.
    if (expected.is_number_integer() && actual.is_number_integer()) {
      // (the JSON parser reads a non-negative number as unsigned, a fixture's as signed)
      const auto negative = [](const nlohmann::json& j) { return !j.is_number_unsigned() && j.get<int64_t>() < 0; };
      if (negative(expected) || negative(actual)) return expected.get<int64_t>() == actual.get<int64_t>();
      return expected.get<uint64_t>() == actual.get<uint64_t>();
    }
    const double e = expected.get<double>(), a = actual.get<double>();
    return std::fabs(a - e) <= tolerance * std::max(1.0, std::fabs(e));
  }
  const auto id = type ? type->id() : arrow::Type::NA;
  if (expected.is_string()) {
    if (!actual.is_string()) return false;
    const auto& e = expected.get_ref<const std::string&>();
    const auto& a = actual.get_ref<const std::string&>();
    if (e == a) return true;
    // Different texts of one instant match only in a time column; a STRING column holds text.
    const bool time = id == arrow::Type::TIMESTAMP || id == arrow::Type::DATE32 || id == arrow::Type::DATE64;
    return time && both_times_equal(e, a);
  }
  if (expected.is_boolean()) return actual.is_boolean() && actual.get<bool>() == expected.get<bool>();
  if (expected.is_array()) {
    if (!actual.is_array() || actual.size() != expected.size()) return false;
    const arrow::DataType* element = nullptr;
    if (id == arrow::Type::LIST || id == arrow::Type::LARGE_LIST || id == arrow::Type::FIXED_SIZE_LIST) {
      element = static_cast<const arrow::BaseListType&>(*type).value_type().get();
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      if (!value_matches(expected[i], actual[i], tolerance, element)) return false;
    }
    return true;
  }
  if (expected.is_object()) {
    if (!actual.is_object()) return false;
    if (id == arrow::Type::MAP) {  // a map holds exactly its entries: an extra one is a difference
      if (actual.size() != expected.size()) return false;
      const auto* item = static_cast<const arrow::MapType&>(*type).item_type().get();
      for (const auto& [k, v] : expected.items()) {
        auto it = actual.find(k);
        if (it == actual.end() || !value_matches(v, *it, tolerance, item)) return false;
      }
      return true;
    }
    // A struct on the fields named (a null field is left out of the actual row, as to_json does).
    const auto* st = id == arrow::Type::STRUCT ? static_cast<const arrow::StructType*>(type) : nullptr;
    for (const auto& [k, v] : expected.items()) {
      auto it = actual.find(k);
      const arrow::DataType* field_type = nullptr;
      if (st) {
        if (auto f = st->GetFieldByName(k)) field_type = f->type().get();
      }
      if (!value_matches(v, it == actual.end() ? nlohmann::json(nullptr) : *it, tolerance, field_type)) return false;
    }
    return true;
  }
  return expected == actual;
}

arrow::Result<RowDiff> match_rows(const std::vector<nlohmann::json>& actual, const arrow::FieldVector& fields,
                                  const FixtureRows& expected, double tolerance, const std::string& table) {
  std::vector<std::string> columns;
  std::map<std::string, const arrow::DataType*> types;
  for (const auto& f : fields) {
    columns.push_back(f->name());
    types[f->name()] = f->type().get();
  }
  const std::set<std::string> known(columns.begin(), columns.end());
  std::vector<std::string> named;  // the columns the expected rows name, in first-seen order
  for (size_t i = 0; i < expected.rows.size(); ++i) {
    for (const auto& [k, v] : expected.rows[i].items()) {
      if (!known.count(k)) {
        return arrow::Status::Invalid(fmt::format("{}: '{}' has no column '{}'; its columns: {}", expected.where[i],
                                                  table, k, fmt::join(columns, ", ")));
      }
      if (std::find(named.begin(), named.end(), k) == named.end()) named.push_back(k);
    }
  }
  RowDiff diff;
  std::vector<bool> used(actual.size(), false);
  for (size_t i = 0; i < expected.rows.size(); ++i) {
    bool found = false;
    for (size_t j = 0; j < actual.size() && !found; ++j) {
      if (used[j]) continue;
      bool all = true;
      for (const auto& [k, v] : expected.rows[i].items()) {
        auto it = actual[j].find(k);
        if (!value_matches(v, it == actual[j].end() ? nlohmann::json(nullptr) : *it, tolerance, types.at(k))) {
          all = false;
          break;
        }
      }
      if (all) used[j] = found = true;
    }
    if (!found) diff.missing.push_back(fmt::format("{}  ({})", show(expected.rows[i], named), expected.where[i]));
  }
  for (size_t j = 0; j < actual.size(); ++j) {
    if (!used[j]) diff.unexpected.push_back(show(actual[j], named));
  }
  return diff;
}

}  // namespace sluice::testing
