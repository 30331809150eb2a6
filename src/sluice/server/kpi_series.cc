// The business-KPI panel's checks and reads (kpi_series.h).
#include "sluice/server/kpi_series.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>

#include "sluice/common/text.h"
#include "sluice/delta/column_bytes.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/sql/types.h"

namespace sluice::server {

namespace {

using nlohmann::json;
namespace cp = arrow::compute;

// Rows buffered before the greatest `limit` are kept and the rest dropped: memory stays bounded
// whatever the table's size.
constexpr int64_t kCompactRows = 1 << 16;

bool numeric_type(const arrow::DataType& t) {
  return arrow::is_integer(t.id()) || arrow::is_floating(t.id()) || arrow::is_decimal(t.id());
}

std::string column_list(const arrow::Schema& schema) {
  std::string out;
  for (const auto& f : schema.fields()) {
    out += (out.empty() ? "" : ", ") + f->name() + " " + sql::sql_type_name(*f->type());
  }
  return out;
}

// Sorts `table` by the column `x` (descending: the greatest first) and keeps the first `n` rows.
arrow::Result<std::shared_ptr<arrow::Table>> greatest(const std::shared_ptr<arrow::Table>& table, const std::string& x,
                                                      int64_t n, cp::SortOrder order) {
  cp::SortOptions options({cp::SortKey(x, order)});
  ARROW_ASSIGN_OR_RAISE(auto indices, cp::SortIndices(arrow::Datum(table), options));
  if (indices->length() > n) indices = indices->Slice(0, n);
  ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(arrow::Datum(table), arrow::Datum(indices)));
  return taken.table();
}

// One column as JSON values: time as seconds since the epoch, integers exactly, other numbers as
// doubles (decimals too), strings as themselves; null where the value is.
arrow::Result<json> column_json(const std::shared_ptr<arrow::ChunkedArray>& column) {
  const auto& type = *column->type();
  json out = json::array();
  auto as = [&](const std::shared_ptr<arrow::DataType>& to) -> arrow::Result<std::shared_ptr<arrow::ChunkedArray>> {
    ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(arrow::Datum(column), to, cp::CastOptions::Unsafe()));
    return cast.chunked_array();
  };
  double scale = 0;  // seconds per unit of a temporal column
  if (type.id() == arrow::Type::TIMESTAMP) {
    switch (static_cast<const arrow::TimestampType&>(type).unit()) {
      case arrow::TimeUnit::SECOND: scale = 1; break;
      case arrow::TimeUnit::MILLI: scale = 1e-3; break;
      case arrow::TimeUnit::MICRO: scale = 1e-6; break;
      case arrow::TimeUnit::NANO: scale = 1e-9; break;
    }
  } else if (type.id() == arrow::Type::DATE32) {
    scale = 86400;
  } else if (type.id() == arrow::Type::DATE64) {
    scale = 1e-3;
  }
  if (type.id() == arrow::Type::DATE32) {  // days: Arrow casts date32 to int32 only
    ARROW_ASSIGN_OR_RAISE(auto days, as(arrow::int32()));
    for (const auto& chunk : days->chunks()) {
      const auto& a = static_cast<const arrow::Int32Array&>(*chunk);
      for (int64_t i = 0; i < a.length(); ++i) {
        out.push_back(a.IsNull(i) ? json(nullptr) : json(static_cast<double>(a.Value(i)) * scale));
      }
    }
  } else if (scale != 0) {
    ARROW_ASSIGN_OR_RAISE(auto ints, as(arrow::int64()));
    for (const auto& chunk : ints->chunks()) {
      const auto& a = static_cast<const arrow::Int64Array&>(*chunk);
      for (int64_t i = 0; i < a.length(); ++i) {
        out.push_back(a.IsNull(i) ? json(nullptr) : json(static_cast<double>(a.Value(i)) * scale));
      }
    }
  } else if (arrow::is_integer(type.id())) {
    ARROW_ASSIGN_OR_RAISE(auto ints, as(arrow::int64()));
    for (const auto& chunk : ints->chunks()) {
      const auto& a = static_cast<const arrow::Int64Array&>(*chunk);
      for (int64_t i = 0; i < a.length(); ++i) out.push_back(a.IsNull(i) ? json(nullptr) : json(a.Value(i)));
    }
  } else if (numeric_type(type)) {
    ARROW_ASSIGN_OR_RAISE(auto doubles, as(arrow::float64()));
    for (const auto& chunk : doubles->chunks()) {
      const auto& a = static_cast<const arrow::DoubleArray&>(*chunk);
      for (int64_t i = 0; i < a.length(); ++i) out.push_back(a.IsNull(i) ? json(nullptr) : json(a.Value(i)));
    }
  } else {
    ARROW_ASSIGN_OR_RAISE(auto strings, as(arrow::large_utf8()));
    for (const auto& chunk : strings->chunks()) {
      const auto& a = static_cast<const arrow::LargeStringArray&>(*chunk);
      for (int64_t i = 0; i < a.length(); ++i) {
        out.push_back(a.IsNull(i) ? json(nullptr) : json(std::string(a.GetView(i))));
      }
    }
  }
  return out;
}

const char* axis_name(KpiAxis axis) {
  switch (axis) {
    case KpiAxis::kTime: return "time";
    case KpiAxis::kNumber: return "number";
    case KpiAxis::kCategory: return "category";
  }
  return "?";
}

}  // namespace

arrow::Result<KpiAxis> check_kpi_columns(const pipeline::KpiConfig& kpi, const arrow::Schema& schema,
                                         const std::string& dataset_kind) {
  auto field = [&](const std::string& name, const char* role) -> arrow::Result<std::shared_ptr<arrow::Field>> {
    auto f = schema.GetFieldByName(name);
    if (!f) {
      return arrow::Status::Invalid(fmt::format("{}: KPI '{}': {} column '{}' is not a column of {} '{}'; its columns: {}",
                                                kpi.where, kpi.name, role, quote_for_error(name), dataset_kind,
                                                kpi.dataset, column_list(schema)));
    }
    return f;
  };
  ARROW_ASSIGN_OR_RAISE(auto x, field(kpi.x, "x"));
  KpiAxis axis;
  const auto id = x->type()->id();
  if (id == arrow::Type::TIMESTAMP || id == arrow::Type::DATE32 || id == arrow::Type::DATE64) {
    axis = KpiAxis::kTime;
  } else if (numeric_type(*x->type())) {
    axis = KpiAxis::kNumber;
  } else if (id == arrow::Type::STRING || id == arrow::Type::LARGE_STRING || id == arrow::Type::STRING_VIEW) {
    axis = KpiAxis::kCategory;
  } else {
    return arrow::Status::Invalid(fmt::format(
        "{}: KPI '{}': x column '{}' is {}; x must be a date, timestamp, number or string (something to order the "
        "points by)",
        kpi.where, kpi.name, kpi.x, sql::sql_type_name(*x->type())));
  }
  for (const auto& y : kpi.y) {
    ARROW_ASSIGN_OR_RAISE(auto f, field(y, "y"));
    if (!numeric_type(*f->type())) {
      return arrow::Status::Invalid(fmt::format("{}: KPI '{}': y column '{}' is {}; y must be numeric (an integer, "
                                                "floating-point or decimal column)",
                                                kpi.where, kpi.name, y, sql::sql_type_name(*f->type())));
    }
  }
  return axis;
}

json kpi_json(const pipeline::KpiConfig& kpi) {
  return {{"name", kpi.name},   {"title", kpi.title},
          {"dataset", kpi.dataset}, {"x", kpi.x},
          {"y", kpi.y},         {"kind", kpi.kind == pipeline::KpiConfig::Kind::kBar ? "bar" : "line"},
          {"limit", kpi.limit}};
}

arrow::Result<json> read_kpi_series(const pipeline::KpiConfig& kpi, const delta::LogStore& store) {
  json out = kpi_json(kpi);
  std::vector<std::string> names{kpi.x};
  names.insert(names.end(), kpi.y.begin(), kpi.y.end());
  out["columns"] = names;
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(store));
  if (!snapshot) {
    out["version"] = nullptr;
    out["axis"] = nullptr;
    out["data"] = json::array();
    for (size_t i = 0; i < names.size(); ++i) out["data"].push_back(json::array());
    out["rows"] = 0;
    out["rows_read"] = 0;
    out["null_x_rows"] = 0;
    out["column_bytes_read"] = 0;
    out["column_bytes_total"] = 0;
    out["truncated"] = false;
    return out;
  }
  // The table's schema may have changed since validation (a definition that changed): checked again.
  ARROW_ASSIGN_OR_RAISE(auto axis, check_kpi_columns(kpi, *snapshot->schema()));
  arrow::FieldVector fields;
  for (const auto& n : names) fields.push_back(snapshot->schema()->GetFieldByName(n));
  const auto schema = arrow::schema(fields);
  std::vector<std::string> partitions;
  for (const auto& p : snapshot->metadata().partition_columns) {
    if (std::find(names.begin(), names.end(), p) != names.end()) partitions.push_back(p);
  }
  std::vector<std::shared_ptr<arrow::RecordBatch>> buffered;
  int64_t buffered_rows = 0, rows_read = 0, null_x = 0;
  std::shared_ptr<arrow::Table> kept;  // the greatest `limit` rows seen so far
  delta::ColumnBytes bytes;            // column chunks decoded: only x's and y's
  auto compact = [&]() -> arrow::Status {
    if (kept) {
      ARROW_ASSIGN_OR_RAISE(auto batches, arrow::TableBatchReader(*kept).ToRecordBatches());
      buffered.insert(buffered.end(), batches.begin(), batches.end());
    }
    ARROW_ASSIGN_OR_RAISE(auto all, arrow::Table::FromRecordBatches(schema, buffered));
    ARROW_ASSIGN_OR_RAISE(kept, greatest(all, kpi.x, kpi.limit, cp::SortOrder::Descending));
    buffered.clear();
    buffered_rows = 0;
    return arrow::Status::OK();
  };
  for (const auto& file : snapshot->files()) {
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file_counting(store, schema, partitions, file, &bytes));
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
      if (!batch) break;
      rows_read += batch->num_rows();
      const auto& x = batch->column(0);
      if (x->null_count() > 0) {
        null_x += x->null_count();
        ARROW_ASSIGN_OR_RAISE(auto valid, cp::IsValid(x));
        ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(batch, valid));
        batch = filtered.record_batch();
      }
      if (batch->num_rows() == 0) continue;
      buffered.push_back(batch);
      buffered_rows += batch->num_rows();
      if (buffered_rows >= std::max(kCompactRows, kpi.limit)) ARROW_RETURN_NOT_OK(compact());
    }
  }
  ARROW_RETURN_NOT_OK(compact());
  ARROW_ASSIGN_OR_RAISE(auto rows, greatest(kept, kpi.x, kpi.limit, cp::SortOrder::Ascending));
  out["version"] = snapshot->version().value();
  out["axis"] = axis_name(axis);
  // A date or a timestamp without a time zone is charted as written (UTC), a timestamp with
  // one in the browser's zone.
  {
    const auto& xt = snapshot->schema()->GetFieldByName(kpi.x)->type();
    const bool zoned = xt->id() == arrow::Type::TIMESTAMP &&
                       !static_cast<const arrow::TimestampType&>(*xt).timezone().empty();
    out["x_utc"] = axis == KpiAxis::kTime && !zoned;
  }
  out["data"] = json::array();
  for (int i = 0; i < rows->num_columns(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto values, column_json(rows->column(i)));
    out["data"].push_back(std::move(values));
  }
  out["rows"] = rows->num_rows();
  out["rows_read"] = rows_read;
  out["null_x_rows"] = null_x;
  out["column_bytes_read"] = bytes.read;
  out["column_bytes_total"] = bytes.total;
  out["truncated"] = rows_read - null_x > rows->num_rows();
  return out;
}

}  // namespace sluice::server
