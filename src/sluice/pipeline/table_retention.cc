// Retention policies: parsing and checking the properties, the cut-off, and the DELETE that
// expires rows (see table_retention.h).
#include "sluice/pipeline/table_retention.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/common/time_text.h"
#include "sluice/delta/deletion_vector.h"
#include "sluice/delta/partitioning.h"
#include "sluice/delta/retention_commit.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/transaction.h"
#include "sluice/delta/vacuum.h"
#include "sluice/dml/assignments.h"
#include "sluice/dml/table_rewrite.h"
#include "sluice/sql/types.h"

namespace sluice::pipeline {

namespace cp = arrow::compute;

namespace {

constexpr int64_t kSecondMillis = 1000;
constexpr int64_t kMinuteMillis = 60 * kSecondMillis;
constexpr int64_t kHourMillis = 60 * kMinuteMillis;
constexpr int64_t kDayMillis = 24 * kHourMillis;
// A DELETE that loses a race to a conflicting commit is redone from the new version this often.
constexpr int kMaxAttempts = 3;

bool is_retention_type(const arrow::DataType& type) {
  return type.id() == arrow::Type::TIMESTAMP || type.id() == arrow::Type::DATE32;
}

// The cut-off as the history shows it: a SQL literal of the column's type.
std::string cutoff_text(const arrow::Scalar& cutoff) {
  if (cutoff.type->id() == arrow::Type::DATE32) {
    return fmt::format("DATE '{}'", format_date32(static_cast<const arrow::Date32Scalar&>(cutoff).value));
  }
  const auto& ts = static_cast<const arrow::TimestampScalar&>(cutoff);
  const auto& type = static_cast<const arrow::TimestampType&>(*cutoff.type);
  std::string text = format_timestamp_micros(to_micros(ts.value, type.unit()), /*utc=*/false, /*round_up=*/false);
  std::replace(text.begin(), text.end(), 'T', ' ');
  return fmt::format("{} '{}'", type.timezone().empty() ? "TIMESTAMP_NTZ" : "TIMESTAMP", text);
}

// Whether every row of `file` is expired, from its partition value or its stats alone: the
// column is never null in it and its upper bound is before the cut-off. Max stats of
// timestamps are rounded up to the millisecond, so a bound before the cut-off is one.
arrow::Result<bool> wholly_expired(const delta::Add& file, const std::string& column,
                                   const std::shared_ptr<arrow::DataType>& type, const arrow::Scalar& cutoff,
                                   bool partition_column) {
  auto before = [&](const std::shared_ptr<arrow::Scalar>& value) -> arrow::Result<bool> {
    if (!value || !value->is_valid) return false;
    ARROW_ASSIGN_OR_RAISE(auto less, cp::CallFunction("less", {arrow::Datum(value), arrow::Datum(cutoff.GetSharedPtr())}));
    const auto& b = less.scalar_as<arrow::BooleanScalar>();
    return b.is_valid && b.value;
  };
  if (partition_column) {
    auto it = file.partition_values.find(column);
    std::optional<std::string> text = it == file.partition_values.end() ? std::nullopt : it->second;
    ARROW_ASSIGN_OR_RAISE(auto value, delta::parse_partition_value(text, type));
    return before(value);
  }
  if (!file.stats) return false;
  auto stats = nlohmann::json::parse(*file.stats, nullptr, false);
  if (!stats.is_object()) return false;
  auto nulls = stats.find("nullCount");
  if (nulls == stats.end() || !nulls->is_object() || !nulls->contains(column) || !(*nulls)[column].is_number_integer() ||
      (*nulls)[column].get<int64_t>() != 0) {
    return false;
  }
  auto max = stats.find("maxValues");
  if (max == stats.end() || !max->is_object() || !max->contains(column) || !(*max)[column].is_string()) return false;
  auto value = delta::parse_partition_value((*max)[column].get<std::string>(), type);
  if (!value.ok()) return false;  // a bound we cannot read excludes nothing
  return before(*value);
}

// Where `column < cutoff` holds in `batch` (null: not expired).
arrow::Result<std::shared_ptr<arrow::BooleanArray>> expired_mask(const arrow::RecordBatch& batch,
                                                                 const std::string& column,
                                                                 const arrow::Scalar& cutoff) {
  auto values = batch.GetColumnByName(column);
  if (!values) return invalid("no column '{}' in the rows read", column);
  ARROW_ASSIGN_OR_RAISE(auto less, cp::CallFunction("less", {arrow::Datum(values), arrow::Datum(cutoff.GetSharedPtr())}));
  ARROW_ASSIGN_OR_RAISE(auto filled, cp::CallFunction("coalesce", {less, arrow::Datum(false)}));
  return std::static_pointer_cast<arrow::BooleanArray>(filled.make_array());
}

// One DELETE of the expired rows on the snapshot `target` holds.
arrow::Result<dml::DmlOutcome> delete_expired(const dml::DmlTarget& target, const RetentionPolicy& policy,
                                              const std::string& column, const std::shared_ptr<arrow::Scalar>& cutoff,
                                              const std::string& cutoff_literal) {
  const auto& snapshot = *target.snapshot;
  const auto type = snapshot.schema()->GetFieldByName(column)->type();
  const auto& partitions = snapshot.metadata().partition_columns;
  const bool partition_column = std::find(partitions.begin(), partitions.end(), column) != partitions.end();
  std::vector<delta::ColumnPredicate> predicates = {{column, delta::CompareOp::kLt, cutoff}};
  ARROW_ASSIGN_OR_RAISE(auto candidates, delta::select_files(snapshot, predicates));
  dml::DmlOutcome nothing;
  nothing.operation = "DELETE";
  nothing.version = snapshot.version();
  nothing.committed = false;
  if (candidates.empty()) return nothing;  // nothing can be expired: no writer, no commit
  std::vector<delta::Add> whole, partial;
  for (const auto& add : candidates) {
    ARROW_ASSIGN_OR_RAISE(bool all, wholly_expired(add, column, type, *cutoff, partition_column));
    (all ? whole : partial).push_back(add);
  }
  ARROW_ASSIGN_OR_RAISE(auto rewrite, dml::TableRewrite::make(target));
  int64_t deleted = 0, copied = 0;
  bool deleted_known = true;
  auto read_file = [&](const delta::Add& add) {
    return delta::open_data_file(*target.store, snapshot, add);
  };
  // A commit with change data files hides the deletes readers would derive from dropped files
  // (table_rewrite.h): on a change-feed table that also rewrites files, whole files are read
  // and their rows written as deletes too.
  const bool read_whole = rewrite->records_changes() && !partial.empty();
  for (const auto& add : whole) {
    if (!read_whole) {
      rewrite->drop(add);
      const int64_t n = delta::live_records(add);
      if (n < 0) deleted_known = false;
      deleted += std::max<int64_t>(n, 0);
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto reader, read_file(add));
    rewrite->remove(add);
    std::shared_ptr<arrow::RecordBatch> batch;
    while (true) {
      ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
      if (!batch) break;
      deleted += batch->num_rows();
      ARROW_RETURN_NOT_OK(rewrite->write_change(*batch, delta::ChangeType::kDelete));
    }
  }
  for (const auto& add : partial) {
    ARROW_ASSIGN_OR_RAISE(auto reader, read_file(add));
    ARROW_ASSIGN_OR_RAISE(auto table, reader->ToTable());
    ARROW_ASSIGN_OR_RAISE(auto rows, table->CombineChunksToBatch());
    if (!rows || rows->num_rows() == 0) continue;
    ARROW_ASSIGN_OR_RAISE(auto mask, expired_mask(*rows, column, *cutoff));
    const int64_t hits = mask->true_count();
    if (hits == 0) continue;
    deleted += hits;
    if (rewrite->uses_deletion_vectors()) {
      std::vector<int64_t> selected;
      selected.reserve(static_cast<size_t>(hits));
      for (int64_t i = 0; i < mask->length(); ++i) {
        if (mask->Value(i)) selected.push_back(i);
      }
      ARROW_RETURN_NOT_OK(rewrite->mark_deleted(add, selected));
    } else {
      rewrite->remove(add);
      ARROW_ASSIGN_OR_RAISE(auto keep, cp::Invert(mask));
      ARROW_ASSIGN_OR_RAISE(auto kept, dml::filter_rows(*rows, *keep.make_array()));
      copied += kept->num_rows();
      ARROW_RETURN_NOT_OK(rewrite->write(*kept));
    }
    if (rewrite->records_changes()) {
      ARROW_ASSIGN_OR_RAISE(auto gone, dml::filter_rows(*rows, *mask));
      ARROW_RETURN_NOT_OK(rewrite->write_change(*gone, delta::ChangeType::kDelete));
    }
  }
  rewrite->mark_scan_done();
  nlohmann::json metrics = nlohmann::json::object();
  if (deleted_known) metrics["numDeletedRows"] = std::to_string(deleted);
  metrics["numCopiedRows"] = std::to_string(copied);
  // Spark's DELETE parameter, and the retention mark readers skip the commit by.
  nlohmann::json parameters = {
      {"predicate", nlohmann::json::array({fmt::format("({} < {})", column, cutoff_literal)}).dump()},
      {delta::kRetentionParameter, policy.duration_text},
      {delta::kRetentionColumnParameter, column},
      {delta::kRetentionCutoffParameter, cutoff_literal},
  };
  delta::ReadSet read;
  read.predicates = predicates;
  for (const auto& f : candidates) read.files.insert(f.path);
  read.isolation = delta::isolation_level(snapshot.metadata());
  return rewrite->commit("DELETE", std::move(parameters), std::move(metrics), std::move(read));
}

int64_t metric(const nlohmann::json& metrics, const char* key) {
  auto it = metrics.find(key);
  if (it == metrics.end() || !it->is_string()) return 0;
  return parse_int64(it->get<std::string>(), key).ValueOr(0);
}

}  // namespace

bool has_retention_properties(const std::map<std::string, std::string>& properties) {
  return properties.count(kRetentionProperty) > 0 || properties.count(kRetentionColumnProperty) > 0;
}

arrow::Result<std::optional<RetentionPolicy>> retention_policy(const std::map<std::string, std::string>& properties,
                                                               const arrow::Schema& schema) {
  auto duration = properties.find(kRetentionProperty);
  auto column = properties.find(kRetentionColumnProperty);
  if (duration == properties.end() && column == properties.end()) return std::optional<RetentionPolicy>();
  if (duration == properties.end()) {
    return invalid("{} = '{}' without {}: set the duration too ({} = '30 days'), or remove the column",
                   kRetentionColumnProperty, column->second, kRetentionProperty, kRetentionProperty);
  }
  if (column == properties.end()) {
    return invalid("{} = '{}' needs {} naming the TIMESTAMP or DATE column whose age decides when a row expires "
                   "(e.g. {} = 'event_time')",
                   kRetentionProperty, duration->second, kRetentionColumnProperty, kRetentionColumnProperty);
  }
  RetentionPolicy policy;
  policy.duration_text = duration->second;
  auto millis = delta::parse_interval_millis(duration->second);
  if (!millis.ok()) {
    return invalid("{} = '{}' is not a duration ({}): write e.g. '30 days', '12 hours' or 'interval 1 week'",
                   kRetentionProperty, duration->second, millis.status().message());
  }
  if (*millis <= 0) {
    return invalid("{} = '{}' must be longer than zero (it would delete every row at each update)", kRetentionProperty,
                   duration->second);
  }
  policy.duration_millis = *millis;
  std::vector<std::string> names;
  for (const auto& f : schema.fields()) {
    names.push_back(f->name());
    if (to_lower(f->name()) != to_lower(column->second)) continue;
    if (!is_retention_type(*f->type())) {
      return invalid("{} = '{}' names a column of type {}; a retention column is a TIMESTAMP, TIMESTAMP_NTZ or "
                     "DATE (derive one in the query, e.g. CAST(ts_text AS TIMESTAMP) AS ts)",
                     kRetentionColumnProperty, column->second, sql::sql_type_name(*f->type()));
    }
    policy.column = f->name();
    return std::optional<RetentionPolicy>(std::move(policy));
  }
  const std::string best = closest_match(column->second, names);
  return invalid("{} = '{}' names no column of the table{} (its columns: {})", kRetentionColumnProperty,
                 column->second, best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best),
                 fmt::join(names, ", "));
}

arrow::Result<int64_t> retention_now_millis() {
  const char* text = std::getenv(kRetentionNowVariable);
  if (text == nullptr || *text == '\0') return now_millis();
  const arrow::Datum datum(std::make_shared<arrow::StringScalar>(text));
  auto cast = cp::Cast(datum, arrow::timestamp(arrow::TimeUnit::MICRO));
  if (!cast.ok()) cast = cp::Cast(datum, arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"));
  if (!cast.ok()) {
    return invalid("{} = '{}' is not a timestamp ('2026-12-06 12:00:00', UTC unless it ends with a zone): set it "
                   "to the instant retention measures from, or unset it for the clock",
                   kRetentionNowVariable, text);
  }
  return floor_div(cast->scalar_as<arrow::TimestampScalar>().value, 1000);
}

arrow::Result<std::shared_ptr<arrow::Scalar>> retention_cutoff(const RetentionPolicy& policy,
                                                               const std::shared_ptr<arrow::DataType>& type,
                                                               int64_t now_millis) {
  const int64_t step = policy.duration_millis >= kDayMillis    ? kHourMillis
                       : policy.duration_millis >= kHourMillis ? kMinuteMillis
                                                               : kSecondMillis;
  const int64_t cutoff_millis = floor_div(now_millis - policy.duration_millis, step) * step;
  if (type->id() == arrow::Type::DATE32) {
    // Day d ends at d + 1: expired once d + 1 <= the cut-off, i.e. d < floor(cut-off in days).
    return std::shared_ptr<arrow::Scalar>(
        std::make_shared<arrow::Date32Scalar>(static_cast<int32_t>(floor_div(cutoff_millis, kDayMillis))));
  }
  if (type->id() != arrow::Type::TIMESTAMP) {
    return invalid("retention column type {} is not a TIMESTAMP or DATE", type->ToString());
  }
  const auto unit = static_cast<const arrow::TimestampType&>(*type).unit();
  const int64_t value = unit == arrow::TimeUnit::SECOND  ? floor_div(cutoff_millis, 1000)
                        : unit == arrow::TimeUnit::MILLI ? cutoff_millis
                        : unit == arrow::TimeUnit::MICRO ? cutoff_millis * 1000
                                                         : cutoff_millis * 1000000;
  return std::shared_ptr<arrow::Scalar>(std::make_shared<arrow::TimestampScalar>(value, type));
}

arrow::Result<RetentionOutcome> apply_retention(const std::shared_ptr<delta::LogStore>& store, const std::string& table,
                                                const RetentionPolicy& policy, int64_t now_millis) {
  RetentionOutcome out;
  for (int attempt = 1;; ++attempt) {
    ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
    if (!snapshot) return out;
    out.version = snapshot->version().value();
    auto field = snapshot->schema()->GetFieldByName(policy.column);
    if (!field || !is_retention_type(*field->type())) {
      return invalid("table '{}': {} = '{}' names no TIMESTAMP or DATE column of the table as stored ({}); nothing "
                     "was deleted",
                     table, kRetentionColumnProperty, policy.column, store->location());
    }
    ARROW_ASSIGN_OR_RAISE(auto cutoff, retention_cutoff(policy, field->type(), now_millis));
    out.cutoff = cutoff_text(*cutoff);
    dml::DmlTarget target;
    target.store = store;
    target.snapshot = snapshot;
    target.name = table;
    ARROW_RETURN_NOT_OK(dml::check_dml_supported(target, fmt::format("the retention DELETE ({})", kRetentionProperty)));
    auto outcome = delete_expired(target, policy, policy.column, cutoff, out.cutoff);
    if (!outcome.ok() && delta::is_commit_conflict(outcome.status()) && attempt < kMaxAttempts) continue;
    if (!outcome.ok()) {
      return with_context(outcome.status(), fmt::format("table '{}': expiring rows older than {} ({} = '{}')", table,
                                                        out.cutoff, kRetentionProperty, policy.duration_text));
    }
    out.attempts = attempt;
    out.committed = outcome->committed;
    out.version = outcome->version.value();
    out.rows_deleted = metric(outcome->metrics, "numDeletedRows");
    out.files_removed = metric(outcome->metrics, "numRemovedFiles");
    out.files_added = metric(outcome->metrics, "numAddedFiles");
    return out;
  }
}

arrow::Result<std::set<int64_t>> retention_commit_versions(const delta::LogStore& store, DeltaVersion after,
                                                           DeltaVersion upto) {
  std::set<int64_t> out;
  for (int64_t v = after.value() + 1; v <= upto.value(); ++v) {
    ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(DeltaVersion(v)));
    ARROW_ASSIGN_OR_RAISE(auto actions, delta::parse_commit(text, store.display(store.commit_path(DeltaVersion(v)))));
    if (delta::is_retention_commit(actions)) out.insert(v);
  }
  return out;
}

}  // namespace sluice::pipeline
