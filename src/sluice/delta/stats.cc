// Per-file column statistics.
#include "sluice/delta/stats.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <nlohmann/json.hpp>
#include <parquet/metadata.h>
#include <parquet/properties.h>
#include <parquet/schema.h>
#include <parquet/statistics.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string_view>
#include <utility>

#include "sluice/common/status.h"
#include "sluice/common/utf8.h"

namespace sluice::delta {

using nlohmann::json;

bool has_min_max(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::DATE32:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DECIMAL128:
      return true;
    default:
      return false;  // binary, boolean, nested: Delta writers keep only nullCount
  }
}

namespace {

// Lengths are counted as Spark counts them (Java strings): in UTF-16 code units, so a code
// point above U+FFFF counts two. `s` is valid UTF-8.
size_t utf16_units(unsigned char lead) { return lead >= 0xF0 ? 2 : 1; }
size_t utf8_sequence_bytes(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Bytes of the shortest prefix of whole code points of `s` that holds at least `units` UTF-16
// units (or all of `s`), and in `*prefix_units` its units: Delta's truncateMinStringAgg, which
// keeps a surrogate pair whole.
size_t utf16_prefix_bytes(std::string_view s, size_t units, size_t* prefix_units) {
  size_t i = 0, n = 0;
  while (i < s.size() && n < units) {
    const auto lead = static_cast<unsigned char>(s[i]);
    n += utf16_units(lead);
    i += utf8_sequence_bytes(lead);
  }
  *prefix_units = n;
  return std::min(i, s.size());
}

// The largest code point, U+10FFFF, in UTF-8: the tie-breaker after a cut max.
constexpr std::string_view kMaxCodePoint = "\xF4\x8F\xBF\xBF";

// Delta's (Spark's) bound for a string max longer than the prefix: the prefix plus a
// tie-breaker greater than the code point cut at, U+007F if that one is below it, else U+10FFFF
// (a cut at U+10FFFF itself moves one further); nullopt (no bound) when no cut within twice the
// prefix length works. Byte-wise, as Delta compares: every value <= the max < the bound.
std::optional<std::string> truncated_max(std::string_view s) {
  size_t units = 0;
  size_t at = utf16_prefix_bytes(s, kStatsStringPrefixChars, &units);
  while (units <= 2 * kStatsStringPrefixChars) {
    if (at >= s.size()) return std::string(s);
    const auto lead = static_cast<unsigned char>(s[at]);
    const size_t len = utf8_sequence_bytes(lead);
    if (s.substr(at, len) == kMaxCodePoint) {
      at += len;
      units += 2;
      continue;
    }
    std::string bound(s.substr(0, at));
    bound += lead < 0x7F ? std::string_view("\x7F") : kMaxCodePoint;
    return bound;
  }
  return std::nullopt;
}

enum class Bound { kMin, kMax };

// JSON value of a string bound, or null JSON when it must be omitted.
json string_json(std::string_view view, Bound bound) {
  // A bound that is not valid UTF-8 cannot be written as JSON text without changing it,
  // and a changed bound could make readers skip the file wrongly: leave it out.
  if (!is_valid_utf8(view)) return nullptr;
  size_t units = 0;
  const size_t n = utf16_prefix_bytes(view, kStatsStringPrefixChars, &units);
  if (n == view.size()) return std::string(view);
  if (bound == Bound::kMin) return std::string(view.substr(0, n));  // a prefix is no larger
  auto max = truncated_max(view);
  return max ? json(std::move(*max)) : json(nullptr);
}

// Bytes of the longest value of a string array (null slots included: at worst a batch is
// looked at needlessly).
template <typename Offset>
int64_t longest_value(const arrow::ArrayData& data) {
  const Offset* offsets = data.GetValues<Offset>(1);
  Offset longest = 0;
  for (int64_t i = 0; i < data.length; ++i) {
    longest = std::max(longest, Offset(offsets[i + 1] - offsets[i]));
  }
  return longest;
}

// JSON value of a min or max scalar, or null JSON when the value must be omitted.
json scalar_json(const arrow::Scalar& s, Bound bound) {
  if (!s.is_valid) return nullptr;
  switch (s.type->id()) {
    case arrow::Type::INT8: return static_cast<const arrow::Int8Scalar&>(s).value;
    case arrow::Type::INT16: return static_cast<const arrow::Int16Scalar&>(s).value;
    case arrow::Type::INT32: return static_cast<const arrow::Int32Scalar&>(s).value;
    case arrow::Type::INT64: return static_cast<const arrow::Int64Scalar&>(s).value;
    case arrow::Type::FLOAT: {
      float v = static_cast<const arrow::FloatScalar&>(s).value;
      return std::isfinite(v) ? json(v) : json(nullptr);
    }
    case arrow::Type::DOUBLE: {
      double v = static_cast<const arrow::DoubleScalar&>(s).value;
      return std::isfinite(v) ? json(v) : json(nullptr);
    }
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
      return string_json(static_cast<const arrow::BaseBinaryScalar&>(s).view(), bound);
    case arrow::Type::DATE32:
      return format_date32(static_cast<const arrow::Date32Scalar&>(s).value);
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampScalar&>(s);
      const auto& type = static_cast<const arrow::TimestampType&>(*s.type);
      return format_timestamp_micros(ts.value, !type.timezone().empty(), bound == Bound::kMax);
    }
    case arrow::Type::DECIMAL128: {
      // Spark writes decimal stats as JSON numbers; nlohmann holds a number as a double, so a
      // bound is written only when the double's text is the decimal exactly (1234567890.1234567891
      // would be written 1234567890.1234567, below the true max, and readers would skip rows).
      const auto& d = static_cast<const arrow::Decimal128Scalar&>(s);
      const auto& type = static_cast<const arrow::Decimal128Type&>(*s.type);
      auto parsed = json::parse(s.ToString(), nullptr, false);
      if (parsed.is_discarded() || !parsed.is_number()) return nullptr;
      int32_t precision = 0, scale = 0;
      arrow::Decimal128 back;
      if (!arrow::Decimal128::FromString(parsed.dump(), &back, &precision, &scale).ok()) return nullptr;
      if (scale > type.scale()) return nullptr;
      auto rescaled = back.Rescale(scale, type.scale());
      if (!rescaled.ok() || *rescaled != d.value) return nullptr;
      return parsed;
    }
    default:
      return nullptr;
  }
}

// Byte-wise minimum and maximum of a string column's non-null values (it has at least one):
// what arrow::compute::MinMax returns, in one pass over views instead of the kernel's string
// copies and three-way compares (4 % of the bench's CPU, docs/decisions.md "Delta stats").
template <typename ArrayType, typename ScalarType>
std::pair<std::shared_ptr<arrow::Scalar>, std::shared_ptr<arrow::Scalar>> string_min_max(const arrow::Array& array) {
  const auto& a = static_cast<const ArrayType&>(array);
  const bool nulls = a.null_count() > 0;
  std::string_view lo, hi;
  bool first = true;
  for (int64_t i = 0; i < a.length(); ++i) {
    if (nulls && a.IsNull(i)) continue;
    const std::string_view v = a.GetView(i);
    if (first) {
      lo = hi = v;
      first = false;
    } else if (v < lo) {
      lo = v;
    } else if (v > hi) {
      hi = v;
    }
  }
  return {std::make_shared<ScalarType>(std::string(lo)), std::make_shared<ScalarType>(std::string(hi))};
}

}  // namespace

// Accumulates one column; struct columns hold one child accumulator per field.
struct StatsCollector::Column {
  std::shared_ptr<arrow::Field> field;
  int64_t null_count = 0;
  arrow::ScalarVector mins, maxs;  // per-batch bounds, merged in finish()
  std::vector<std::unique_ptr<Column>> children;
  // A string column whose bounds the Parquet file's chunk statistics hold (-1: collected
  // here), and the longest value those statistics keep (a longer min or max is dropped).
  int parquet_column = -1;
  int64_t parquet_stats_max_bytes = 0;

  explicit Column(std::shared_ptr<arrow::Field> f) : field(std::move(f)) {
    if (field->type()->id() == arrow::Type::STRUCT) {
      for (const auto& child : field->type()->fields()) {
        children.push_back(std::make_unique<Column>(child));
      }
    }
  }

  arrow::Status update(const std::shared_ptr<arrow::Array>& array) {
    null_count += array->null_count();
    if (!children.empty()) {
      const auto& st = static_cast<const arrow::StructArray&>(*array);
      for (size_t i = 0; i < children.size(); ++i) {
        // Flattened: a child is null where its parent is null, as readers see it.
        ARROW_ASSIGN_OR_RAISE(auto child, st.GetFlattenedField(static_cast<int>(i)));
        ARROW_RETURN_NOT_OK(children[i]->update(child));
      }
      return arrow::Status::OK();
    }
    if (!has_min_max(*field->type()) || array->null_count() == array->length()) {
      return arrow::Status::OK();
    }
    const auto id = array->type_id();
    if (parquet_column >= 0) {
      // Parquet's chunk statistics hold this batch's bounds unless a value is too long for
      // them: then the batch's own are kept too, and finish() merges both (the reason there).
      const int64_t longest = id == arrow::Type::STRING ? longest_value<int32_t>(*array->data())
                                                        : longest_value<int64_t>(*array->data());
      if (longest < parquet_stats_max_bytes) return arrow::Status::OK();
    }
    if (id == arrow::Type::STRING || id == arrow::Type::LARGE_STRING) {
      auto [lo, hi] = id == arrow::Type::STRING
                          ? string_min_max<arrow::StringArray, arrow::StringScalar>(*array)
                          : string_min_max<arrow::LargeStringArray, arrow::LargeStringScalar>(*array);
      mins.push_back(std::move(lo));
      maxs.push_back(std::move(hi));
      return arrow::Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(auto datum, arrow::compute::MinMax(array));
    const auto& pair = datum.scalar_as<arrow::StructScalar>();
    mins.push_back(pair.value[0]);
    maxs.push_back(pair.value[1]);
    return arrow::Status::OK();
  }

  static arrow::Result<std::shared_ptr<arrow::Scalar>> reduce(const arrow::ScalarVector& values,
                                                              Bound bound) {
    if (values.size() == 1) return values[0];
    std::unique_ptr<arrow::ArrayBuilder> builder;
    ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), values[0]->type, &builder));
    ARROW_RETURN_NOT_OK(builder->AppendScalars(values));
    ARROW_ASSIGN_OR_RAISE(auto array, builder->Finish());
    ARROW_ASSIGN_OR_RAISE(auto datum, arrow::compute::MinMax(array));
    return datum.scalar_as<arrow::StructScalar>().value[bound == Bound::kMin ? 0 : 1];
  }

  // Finds this column's Parquet leaf in `node` (the file's node of `field`), if its chunks
  // keep string statistics.
  void attach_parquet(const parquet::schema::Node& node,
                      const parquet::SchemaDescriptor& file_schema,
                      const parquet::WriterProperties& properties) {
    if (!children.empty()) {
      if (!node.is_group()) return;
      const auto& group = static_cast<const parquet::schema::GroupNode&>(node);
      if (group.field_count() != static_cast<int>(children.size())) return;
      for (size_t i = 0; i < children.size(); ++i) {
        children[i]->attach_parquet(*group.field(static_cast<int>(i)), file_schema, properties);
      }
      return;
    }
    const auto id = field->type()->id();
    const bool string = id == arrow::Type::STRING || id == arrow::Type::LARGE_STRING;
    if (!string || !node.is_primitive()) return;
    const int index = file_schema.ColumnIndex(node);
    if (index < 0) return;
    const parquet::ColumnDescriptor* column = file_schema.Column(index);
    if (column->physical_type() != parquet::Type::BYTE_ARRAY ||
        column->sort_order() != parquet::SortOrder::UNSIGNED ||
        !properties.statistics_enabled(column->path())) {
      return;
    }
    parquet_column = index;
    parquet_stats_max_bytes = static_cast<int64_t>(properties.max_statistics_size(column->path()));
  }

  // The file's byte-wise min and max of a column attached to Parquet, from each row group's
  // chunk statistics and this collector's bounds of the batches with values too long for
  // them. Exact: a row group without a min (or max) has either only nulls or a min (max)
  // longer than the statistics keep, which lies in a batch this collector looked at itself;
  // every candidate is a value of the file. nullopt when a chunk has no statistics at all.
  arrow::Result<std::pair<std::optional<std::string>, std::optional<std::string>>> parquet_bounds(
      const parquet::FileMetaData& file) const {
    if (parquet_column >= file.num_columns() ||
        file.schema()->Column(parquet_column)->physical_type() != parquet::Type::BYTE_ARRAY) {
      return invalid("stats: column {} of the written Parquet file is not the string column '{}'",
                     parquet_column, field->name());
    }
    std::optional<std::string> lo, hi;
    auto take = [](std::string_view v, std::optional<std::string>& bound, Bound which) {
      if (!bound || (which == Bound::kMin ? v < *bound : v > *bound)) bound = std::string(v);
    };
    for (int r = 0; r < file.num_row_groups(); ++r) {
      const auto chunk = file.RowGroup(r)->ColumnChunk(parquet_column);
      const auto stats = chunk->encoded_statistics();
      if (stats == nullptr) {
        return std::pair{std::optional<std::string>{}, std::optional<std::string>{}};
      }
      if (stats->has_min) take(stats->min(), lo, Bound::kMin);
      if (stats->has_max) take(stats->max(), hi, Bound::kMax);
    }
    auto view = [](const std::shared_ptr<arrow::Scalar>& scalar) {
      return static_cast<const arrow::BaseBinaryScalar&>(*scalar).view();
    };
    for (const auto& m : mins) take(view(m), lo, Bound::kMin);
    for (const auto& m : maxs) take(view(m), hi, Bound::kMax);
    return std::pair{std::move(lo), std::move(hi)};
  }

  // Writes this column's entries into the three stats objects; empty objects are left out.
  arrow::Status emit(json& min_out, json& max_out, json& null_out,
                     const parquet::FileMetaData* file) const {
    const std::string& name = field->name();
    if (!children.empty()) {
      json cmin = json::object(), cmax = json::object(), cnull = json::object();
      for (const auto& c : children) ARROW_RETURN_NOT_OK(c->emit(cmin, cmax, cnull, file));
      if (!cmin.empty()) min_out[name] = std::move(cmin);
      if (!cmax.empty()) max_out[name] = std::move(cmax);
      null_out[name] = std::move(cnull);
      return arrow::Status::OK();
    }
    null_out[name] = null_count;
    if (parquet_column >= 0) {
      if (file == nullptr) {
        return invalid("stats: the string bounds of '{}' need the written Parquet file's metadata",
                       name);
      }
      ARROW_ASSIGN_OR_RAISE(auto bounds, parquet_bounds(*file));
      auto [lo, hi] = std::move(bounds);
      if (lo) {
        if (auto j = string_json(*lo, Bound::kMin); !j.is_null()) min_out[name] = std::move(j);
      }
      if (hi) {
        if (auto j = string_json(*hi, Bound::kMax); !j.is_null()) max_out[name] = std::move(j);
      }
      return arrow::Status::OK();
    }
    if (mins.empty()) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto lo, reduce(mins, Bound::kMin));
    ARROW_ASSIGN_OR_RAISE(auto hi, reduce(maxs, Bound::kMax));
    if (auto j = scalar_json(*lo, Bound::kMin); !j.is_null()) min_out[name] = std::move(j);
    if (auto j = scalar_json(*hi, Bound::kMax); !j.is_null()) max_out[name] = std::move(j);
    return arrow::Status::OK();
  }
};

StatsCollector::StatsCollector(std::shared_ptr<arrow::Schema> schema) : schema_(std::move(schema)) {
  for (const auto& f : schema_->fields()) columns_.push_back(std::make_unique<Column>(f));
}
StatsCollector::~StatsCollector() = default;
StatsCollector::StatsCollector(StatsCollector&&) noexcept = default;
StatsCollector& StatsCollector::operator=(StatsCollector&&) noexcept = default;

arrow::Status StatsCollector::take_string_bounds_from_parquet(
    const parquet::SchemaDescriptor& file_schema, const parquet::WriterProperties& properties) {
  if (num_records_ > 0) {
    return invalid("stats: string bounds from Parquet chosen after rows were seen");
  }
  const parquet::schema::GroupNode* root = file_schema.group_node();
  if (root->field_count() != static_cast<int>(columns_.size())) return arrow::Status::OK();
  for (size_t i = 0; i < columns_.size(); ++i) {
    columns_[i]->attach_parquet(*root->field(static_cast<int>(i)), file_schema, properties);
  }
  return arrow::Status::OK();
}

arrow::Status StatsCollector::update(const arrow::RecordBatch& batch) {
  if (batch.num_columns() != static_cast<int>(columns_.size())) {
    return invalid("stats: batch has {} columns, schema has {}", batch.num_columns(),
                   columns_.size());
  }
  num_records_ += batch.num_rows();
  for (int i = 0; i < batch.num_columns(); ++i) {
    ARROW_RETURN_NOT_OK(columns_[i]->update(batch.column(i)));
  }
  return arrow::Status::OK();
}

arrow::Result<std::string> StatsCollector::finish(const parquet::FileMetaData* file) const {
  // nlohmann::json throws (on invalid UTF-8 in a string or a name, say); no exception leaves
  // this module.
  try {
    json min_values = json::object(), max_values = json::object(), null_count = json::object();
    for (const auto& c : columns_) {
      ARROW_RETURN_NOT_OK(c->emit(min_values, max_values, null_count, file));
    }
    json stats = {{"numRecords", num_records_},
                  {"minValues", min_values},
                  {"maxValues", max_values},
                  {"nullCount", null_count}};
    // String columns hold valid UTF-8 (every decoder and cast makes it so); should a
    // malformed one still arrive, its bound is written with U+FFFD rather than failing the
    // commit, as the value itself is written unchanged.
    return stats.dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return arrow::Status::Invalid("cannot write the Delta statistics of a data file: ", e.what());
  }
}

}  // namespace sluice::delta
