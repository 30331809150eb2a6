// The change data feed reader; see change_feed.h.
#include "sluice/delta/change_feed.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/deletion_vector.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/table_features.h"

namespace sluice::delta {

namespace {

std::string range_text(const std::string& table, const ChangeFeedRange& range) {
  return fmt::format("table_changes of {} for versions [{}, {}]", table, range.from.value(), range.to.value());
}

// The commit's timestamp: its in-commit timestamp when the writer recorded one (the protocol's
// inCommitTimestamps), else the time of its file.
arrow::Result<int64_t> commit_time(const LogStore& store, DeltaVersion v, const std::vector<Action>& actions) {
  for (const auto& a : actions) {
    const auto* info = std::get_if<CommitInfo>(&a);
    if (!info) continue;
    auto it = info->value.find("inCommitTimestamp");
    if (it != info->value.end() && it->is_number_integer()) return it->get<int64_t>();
  }
  return store.commit_timestamp(v);
}

arrow::Result<Add> cdc_file_of(const OtherAction& cdc, DeltaVersion v, const std::string& where) {
  const auto& body = cdc.value;
  auto path = body.find("path");
  if (!body.is_object() || path == body.end() || !path->is_string()) {
    return invalid("{}: version {} has a cdc action without a path; the log is corrupt", where, v.value());
  }
  Add add;
  add.path = path->get<std::string>();
  add.data_change = false;
  if (auto pv = body.find("partitionValues"); pv != body.end() && pv->is_object()) {
    for (const auto& [k, value] : pv->items()) {
      add.partition_values[k] = value.is_null()     ? std::nullopt
                                : value.is_string() ? std::optional<std::string>(value.get<std::string>())
                                                    : std::optional<std::string>(value.dump());
    }
  }
  if (auto size = body.find("size"); size != body.end() && size->is_number_integer()) add.size = size->get<int64_t>();
  return add;
}

// The rows of `file` its deletion vector marks (none without one).
arrow::Result<std::vector<uint64_t>> marked_rows(const LogStore& store, const Add& file) {
  if (!file.deletion_vector) return std::vector<uint64_t>{};
  return read_deletion_vector(store, *file.deletion_vector, store.display(store.table_root() / file.path));
}

// The changes of a commit without cdc files: a file both removed and added in it kept its rows
// and changed its deletion vector (Spark's DELETE / UPDATE / MERGE with vectors and no change
// data, RESTORE to a version with another vector). Its remove and add become the rows the new
// vector marks and the old did not (deleted) and the rows the old marked and the new does not
// (inserted), as Spark's CDCReader.processDeletionVectorActions does; every other file stays
// wholly inserted or deleted.
arrow::Result<std::vector<ChangeFile>> with_vector_differences(const LogStore& store, std::vector<ChangeFile> derived,
                                                               const std::string& where) {
  std::map<std::string, size_t> removed, added;
  for (size_t i = 0; i < derived.size(); ++i) {
    (derived[i].kind == ChangeFile::Kind::kDeleted ? removed : added)[derived[i].file.path] = i;
  }
  std::vector<bool> replaced(derived.size(), false);
  std::vector<ChangeFile> differences;
  for (const auto& [path, a] : added) {
    auto r = removed.find(path);
    if (r == removed.end()) continue;
    replaced[a] = replaced[r->second] = true;
    auto before = marked_rows(store, derived[r->second].file);
    auto after = before.ok() ? marked_rows(store, derived[a].file) : before;
    if (!after.ok()) {
      return with_context(after.status(), fmt::format("{}: version {} gives {} a new deletion vector",
                                                      where, derived[a].version.value(), path));
    }
    std::vector<uint64_t> deleted, inserted;
    std::set_difference(after->begin(), after->end(), before->begin(), before->end(), std::back_inserter(deleted));
    std::set_difference(before->begin(), before->end(), after->begin(), after->end(), std::back_inserter(inserted));
    for (auto [kind, rows] : {std::pair{ChangeFile::Kind::kDeleted, &deleted},
                              std::pair{ChangeFile::Kind::kInserted, &inserted}}) {
      if (rows->empty()) continue;
      ChangeFile change = derived[a];  // the add's path and partition values
      change.kind = kind;
      change.file.deletion_vector.reset();
      change.rows = std::move(*rows);
      differences.push_back(std::move(change));
    }
  }
  std::vector<ChangeFile> out;
  for (size_t i = 0; i < derived.size(); ++i) {
    if (!replaced[i]) out.push_back(std::move(derived[i]));
  }
  for (auto& d : differences) out.push_back(std::move(d));
  return out;
}

// Per commit: its metadata (if it changes it) and the files it contributes to the feed.
struct CommitChanges {
  std::optional<Metadata> metadata;
  std::vector<ChangeFile> files;
};

arrow::Result<CommitChanges> commit_changes(const LogStore& store, DeltaVersion v, const std::string& where,
                                            const std::vector<std::string>& partition_columns) {
  ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(v));
  ARROW_ASSIGN_OR_RAISE(auto actions, parse_commit(text, store.display(store.commit_path(v))));
  ARROW_ASSIGN_OR_RAISE(const int64_t ts, commit_time(store, v, actions));
  CommitChanges out;
  std::vector<ChangeFile> cdc, derived;
  for (auto& a : actions) {
    if (auto* m = std::get_if<Metadata>(&a)) {
      out.metadata = *m;
    } else if (auto* o = std::get_if<OtherAction>(&a); o && o->kind == "cdc") {
      ARROW_ASSIGN_OR_RAISE(auto file, cdc_file_of(*o, v, where));
      cdc.push_back({ChangeFile::Kind::kCdc, v, ts, std::move(file), std::nullopt});
    } else if (auto* add = std::get_if<Add>(&a); add && add->data_change) {
      derived.push_back({ChangeFile::Kind::kInserted, v, ts, std::move(*add), std::nullopt});
    } else if (auto* r = std::get_if<Remove>(&a); r && r->data_change) {
      const auto& pcols = out.metadata ? out.metadata->partition_columns : partition_columns;
      if (!pcols.empty() && !r->partition_values) {
        return invalid("{}: version {} removes {} without its partitionValues, so its rows cannot be read as "
                       "deletes; the writer did not record extended file metadata",
                       where, v.value(), r->path);
      }
      Add as_add;
      as_add.path = r->path;
      as_add.partition_values = r->partition_values.value_or(PartitionValues{});
      as_add.size = r->size.value_or(0);
      as_add.deletion_vector = r->deletion_vector;  // rows its vector marked were deleted before
      derived.push_back({ChangeFile::Kind::kDeleted, v, ts, std::move(as_add), std::nullopt});
    }
  }
  // A commit with cdc files records its changes there; its add/remove actions are then the
  // rewritten files, not changes (PROTOCOL.md "Change Data Files").
  if (cdc.empty()) {
    ARROW_ASSIGN_OR_RAISE(derived, with_vector_differences(store, std::move(derived), where));
  }
  out.files = cdc.empty() ? std::move(derived) : std::move(cdc);
  return out;
}

// Rows of one file in the feed's columns: the file's columns, then _change_type (from a cdc
// file, else the constant the file's kind gives), _commit_version and _commit_timestamp.
class ChangeFileReader : public arrow::RecordBatchReader {
 public:
  ChangeFileReader(std::shared_ptr<arrow::Schema> schema, std::unique_ptr<arrow::RecordBatchReader> rows,
                   ChangeFile::Kind kind, int64_t version, int64_t timestamp_millis,
                   std::optional<std::vector<uint64_t>> selected)
      : schema_(std::move(schema)),
        rows_(std::move(rows)),
        kind_(kind),
        version_(version),
        timestamp_micros_(timestamp_millis * 1000),
        selected_(std::move(selected)) {}

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    std::shared_ptr<arrow::RecordBatch> batch;
    do {
      ARROW_RETURN_NOT_OK(rows_->ReadNext(&batch));
      if (!batch) {
        *out = nullptr;
        return arrow::Status::OK();
      }
      if (selected_) {
        ARROW_ASSIGN_OR_RAISE(batch, keep_selected(std::move(batch)));
      }
    } while (batch->num_rows() == 0 && selected_);
    const int64_t n = batch->num_rows();
    arrow::ArrayVector columns = batch->columns();
    if (kind_ != ChangeFile::Kind::kCdc) {
      const char* type = kind_ == ChangeFile::Kind::kInserted ? "insert" : "delete";
      ARROW_ASSIGN_OR_RAISE(auto change, arrow::MakeArrayFromScalar(arrow::StringScalar(type), n));
      columns.push_back(std::move(change));
    }
    ARROW_ASSIGN_OR_RAISE(auto version, arrow::MakeArrayFromScalar(arrow::Int64Scalar(version_), n));
    columns.push_back(std::move(version));
    auto ts_type = schema_->GetFieldByName(kCommitTimestampColumn)->type();
    ARROW_ASSIGN_OR_RAISE(auto ts, arrow::MakeArrayFromScalar(arrow::TimestampScalar(timestamp_micros_, ts_type), n));
    columns.push_back(std::move(ts));
    *out = arrow::RecordBatch::Make(schema_, n, std::move(columns));
    return arrow::Status::OK();
  }

 private:
  // `batch` (the file's rows from next_row_ on, in order: the file is read without its
  // vector) with only the selected rows.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> keep_selected(std::shared_ptr<arrow::RecordBatch> batch) {
    const int64_t n = batch->num_rows();
    const uint64_t first = next_row_, end = first + static_cast<uint64_t>(n);
    next_row_ = end;
    const auto& rows = *selected_;
    arrow::BooleanBuilder keep;
    ARROW_RETURN_NOT_OK(keep.Reserve(n));
    uint64_t row = first;
    for (; next_selected_ < rows.size() && rows[next_selected_] < end; ++next_selected_) {
      for (; row < rows[next_selected_]; ++row) keep.UnsafeAppend(false);
      keep.UnsafeAppend(true);
      row = rows[next_selected_] + 1;
    }
    for (; row < end; ++row) keep.UnsafeAppend(false);
    ARROW_ASSIGN_OR_RAISE(auto mask, keep.Finish());
    ARROW_ASSIGN_OR_RAISE(auto filtered, arrow::compute::Filter(batch, mask));
    return filtered.record_batch();
  }

  const std::shared_ptr<arrow::Schema> schema_;
  const std::unique_ptr<arrow::RecordBatchReader> rows_;
  const ChangeFile::Kind kind_;
  const int64_t version_;
  const int64_t timestamp_micros_;
  const std::optional<std::vector<uint64_t>> selected_;  // ascending row indexes; none: all
  size_t next_selected_ = 0;
  uint64_t next_row_ = 0;  // index in the file of the next batch's first row
};

}  // namespace

bool change_data_feed_enabled(const Metadata& metadata) {
  return change_data_feed_enabled(metadata.configuration);  // table_features.h
}

std::shared_ptr<arrow::Schema> change_feed_schema(const arrow::Schema& table_schema) {
  arrow::FieldVector fields = table_schema.fields();
  fields.push_back(arrow::field(kChangeTypeColumn, arrow::utf8()));
  fields.push_back(arrow::field(kCommitVersionColumn, arrow::int64()));
  fields.push_back(arrow::field(kCommitTimestampColumn, arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  return arrow::schema(std::move(fields));
}

arrow::Result<ChangeFeedBound> parse_change_feed_bound(const std::string& text) {
  ChangeFeedBound bound;
  bound.text = text;
  const size_t first = text.find_first_not_of(" \t");
  const std::string trimmed =
      first == std::string::npos ? "" : text.substr(first, text.find_last_not_of(" \t") - first + 1);
  if (!trimmed.empty() && std::all_of(trimmed.begin(), trimmed.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    const auto version = parse_int64(trimmed, "table_changes version");
    if (!version.ok()) return invalid("table_changes version {} is out of range", quote_for_error(trimmed));
    bound.version = *version;
    return bound;
  }
  // Text without a zone is UTC; Arrow casts it only to a timestamp without one.
  const arrow::Datum text_datum(std::make_shared<arrow::StringScalar>(trimmed));
  auto cast = arrow::compute::Cast(text_datum, arrow::timestamp(arrow::TimeUnit::MICRO));
  if (!cast.ok()) cast = arrow::compute::Cast(text_datum, arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"));
  if (!cast.ok()) {
    return invalid("table_changes bound '{}' is neither a version (a whole number >= 0) nor a timestamp "
                   "('2024-05-01' or '2024-05-01 10:00:00', UTC unless it ends with a zone such as +02:00)",
                   text);
  }
  const auto& ts = cast->scalar_as<arrow::TimestampScalar>();
  bound.timestamp_micros = ts.value;
  return bound;
}

arrow::Result<ChangeFeedRange> resolve_change_feed_range(const LogStore& store, const std::string& table,
                                                         const ChangeFeedBound& start,
                                                         const std::optional<ChangeFeedBound>& end,
                                                         StartAfterLatest after_latest,
                                                         std::optional<DeltaVersion> as_of) {
  std::optional<DeltaVersion> latest = as_of;
  if (!latest) {
    ARROW_ASSIGN_OR_RAISE(latest, store.latest_version());
  }
  if (!latest) return invalid("table_changes of {}: the table has no commits ({})", table, store.location());
  std::vector<std::pair<DeltaVersion, int64_t>> times;
  if (start.timestamp_micros || (end && end->timestamp_micros)) {
    ARROW_ASSIGN_OR_RAISE(times, store.commit_timestamps());
    // Commits after the caller's snapshot are not part of the range.
    std::erase_if(times, [&](const auto& vt) { return vt.first > *latest; });
    int64_t monotonic = INT64_MIN;  // as Spark: a commit is never older than its parent
    for (auto& [v, ts] : times) ts = monotonic = std::max(monotonic, ts);
  }
  ChangeFeedRange range;
  if (start.version) {
    range.from = DeltaVersion(*start.version);
  } else {
    auto it = std::find_if(times.begin(), times.end(),
                           [&](const auto& vt) { return vt.second * 1000 >= *start.timestamp_micros; });
    if (it == times.end() && after_latest == StartAfterLatest::kNextVersion && !end) {
      return ChangeFeedRange{DeltaVersion(latest->value() + 1), *latest};
    }
    if (it == times.end()) {
      return invalid("table_changes of {}: start timestamp '{}' is after the latest commit (version {}); give "
                     "an earlier time or a version",
                     table, start.text, latest->value());
    }
    range.from = it->first;
  }
  if (!end) {
    range.to = *latest;
  } else if (end->version) {
    range.to = DeltaVersion(std::min(*end->version, latest->value()));  // as Spark: up to the latest
  } else {
    auto it = std::find_if(times.rbegin(), times.rend(),
                           [&](const auto& vt) { return vt.second * 1000 <= *end->timestamp_micros; });
    if (it == times.rend()) {
      return invalid("table_changes of {}: end timestamp '{}' is before the first commit; give a later time "
                     "or a version",
                     table, end->text);
    }
    range.to = it->first;
  }
  if (range.from > *latest) {
    return invalid("table_changes of {}: start version {} is after the latest version {}; give a version in "
                   "[0, {}]",
                   table, range.from.value(), latest->value(), latest->value());
  }
  if (range.from > range.to) {
    return invalid("table_changes of {}: start version {} is after end version {} ({} to {}); the start must "
                   "not be later than the end",
                   table, range.from.value(), range.to.value(), start.text, end ? end->text : "latest");
  }
  return range;
}

arrow::Result<std::vector<ChangeFile>> change_files(const LogStore& store, const std::string& table,
                                                    const ChangeFeedRange& range) {
  const std::string where = range_text(table, range);
  ARROW_ASSIGN_OR_RAISE(auto listing, list_log(store));
  if (listing.commits.empty() || listing.commits.front() > range.from) {
    return invalid("{}: version {} is no longer in the log (its commits were cleaned up by log retention; the "
                   "earliest commit there is {}); start at a later version",
                   where, range.from.value(),
                   listing.commits.empty() ? std::string("none") : std::to_string(listing.commits.front().value()));
  }
  ARROW_RETURN_NOT_OK(check_commits_present(listing, where, DeltaVersion(range.from.value() - 1), range.to));
  // The metadata in force at the start: the table's at that version.
  auto at_start = Snapshot::load(store, range.from);
  if (!at_start.ok()) return with_context(at_start.status(), where);
  Metadata metadata = (*at_start)->metadata();
  std::vector<ChangeFile> out;
  for (int64_t v = range.from.value(); v <= range.to.value(); ++v) {
    ARROW_ASSIGN_OR_RAISE(auto changes,
                          commit_changes(store, DeltaVersion(v), where, metadata.partition_columns));
    if (changes.metadata) metadata = std::move(*changes.metadata);
    if (!change_data_feed_enabled(metadata)) {
      return invalid("{}: the change data feed was not enabled at version {} ({} is not true there); read a "
                     "range where it is, or enable it with ALTER TABLE ... SET TBLPROPERTIES ({} = true) and "
                     "read the versions after that",
                     where, v, kEnableChangeDataFeed, kEnableChangeDataFeed);
    }
    for (auto& f : changes.files) out.push_back(std::move(f));
  }
  return out;
}

arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_change_file(
    const LogStore& store, const std::shared_ptr<arrow::Schema>& feed_schema,
    const std::vector<std::string>& partition_columns, const ChangeFile& change) {
  // The columns read from the file: a cdc file's include _change_type.
  const int data_columns = feed_schema->num_fields() - (change.kind == ChangeFile::Kind::kCdc ? 2 : 3);
  arrow::FieldVector read_fields(feed_schema->fields().begin(), feed_schema->fields().begin() + data_columns);
  ARROW_ASSIGN_OR_RAISE(auto rows,
                        open_data_file(store, arrow::schema(read_fields), partition_columns, change.file));
  return std::make_unique<ChangeFileReader>(feed_schema, std::move(rows), change.kind, change.version.value(),
                                            change.timestamp_millis, change.rows);
}

arrow::Result<std::shared_ptr<arrow::Table>> read_change_feed(const LogStore& store, const std::string& table,
                                                              const ChangeFeedRange& range,
                                                              const Snapshot* columns_of) {
  ARROW_ASSIGN_OR_RAISE(auto files, change_files(store, table, range));
  std::shared_ptr<const Snapshot> at_end;
  if (!columns_of) {
    auto loaded = Snapshot::load(store, range.to);
    if (!loaded.ok()) return with_context(loaded.status(), range_text(table, range));
    at_end = std::move(*loaded);
    columns_of = at_end.get();
  }
  const auto schema = change_feed_schema(*columns_of->schema());
  const auto& partitions = columns_of->metadata().partition_columns;
  std::vector<std::shared_ptr<arrow::Table>> parts;
  for (const auto& f : files) {
    ARROW_ASSIGN_OR_RAISE(auto reader, open_change_file(store, schema, partitions, f));
    ARROW_ASSIGN_OR_RAISE(auto part, reader->ToTable());
    parts.push_back(std::move(part));
  }
  if (parts.empty()) return arrow::Table::MakeEmpty(schema);
  return arrow::ConcatenateTables(parts);
}

arrow::Result<std::shared_ptr<arrow::Table>> read_table_changes(const LogStore& store, const std::string& table,
                                                                const std::string& starting,
                                                                const std::string& ending) {
  ARROW_ASSIGN_OR_RAISE(auto start, parse_change_feed_bound(starting));
  std::optional<ChangeFeedBound> end;
  if (!ending.empty()) {
    ARROW_ASSIGN_OR_RAISE(end, parse_change_feed_bound(ending));
  }
  ARROW_ASSIGN_OR_RAISE(auto latest, Snapshot::load(store));
  ARROW_ASSIGN_OR_RAISE(auto range, resolve_change_feed_range(store, table, start, end, StartAfterLatest::kRefuse,
                                                              latest->version()));
  return read_change_feed(store, table, range, latest.get());
}

arrow::Result<bool> data_changed_between(const LogStore& store, DeltaVersion after, DeltaVersion upto) {
  for (int64_t v = after.value() + 1; v <= upto.value(); ++v) {
    auto text = store.read_commit(DeltaVersion(v));
    if (!text.ok()) return true;  // cleaned up, or unreadable: assume it changed rows
    ARROW_ASSIGN_OR_RAISE(auto actions, parse_commit(*text, store.display(store.commit_path(DeltaVersion(v)))));
    for (const auto& a : actions) {
      if (std::holds_alternative<CommitInfo>(a) || std::holds_alternative<Txn>(a)) continue;
      if (const auto* ad = std::get_if<Add>(&a); ad && !ad->data_change) continue;
      if (const auto* r = std::get_if<Remove>(&a); r && !r->data_change) continue;
      return true;  // rows, metadata, protocol, change data: a change
    }
  }
  return false;
}

}  // namespace sluice::delta
