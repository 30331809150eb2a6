// Table scans and incremental reads.
#include "sluice/delta/scan.h"

#include <algorithm>
#include <functional>

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/file.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>

#include "sluice/common/status.h"
#include "sluice/common/status_kind.h"
#include "sluice/delta/column_bytes.h"
#include "sluice/delta/deletion_vector.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/partitioning.h"
#include "sluice/delta/retention_commit.h"
#include "sluice/delta/schema_evolution.h"

namespace sluice::delta {

namespace cp = arrow::compute;

namespace {

arrow::Result<std::shared_ptr<arrow::Scalar>> cast_to(const std::shared_ptr<arrow::Scalar>& v,
                                                      const std::shared_ptr<arrow::DataType>& t) {
  if (v->type->Equals(*t)) return v;
  return v->CastTo(t);
}

arrow::Result<arrow::Datum> row_filter(const arrow::Table& table,
                                       const std::vector<ColumnPredicate>& predicates) {
  arrow::Datum mask;
  for (const auto& p : predicates) {
    auto column = table.GetColumnByName(p.column);
    arrow::Datum m;
    switch (p.op) {
      case CompareOp::kIsNull: {
        ARROW_ASSIGN_OR_RAISE(m, cp::IsNull(column));
        break;
      }
      case CompareOp::kIsNotNull: {
        ARROW_ASSIGN_OR_RAISE(m, cp::IsValid(column));
        break;
      }
      case CompareOp::kNe: {
        ARROW_ASSIGN_OR_RAISE(auto value, cast_to(p.value, column->type()));
        ARROW_ASSIGN_OR_RAISE(m, cp::CallFunction("not_equal", {column, arrow::Datum(value)}));
        break;
      }
      default: {
        static const char* kNames[] = {"equal", "less", "less_equal", "greater", "greater_equal"};
        ARROW_ASSIGN_OR_RAISE(auto value, cast_to(p.value, column->type()));
        ARROW_ASSIGN_OR_RAISE(m, cp::CallFunction(kNames[static_cast<int>(p.op)],
                                                  {column, arrow::Datum(value)}));
      }
    }
    if (mask.is_value()) {
      ARROW_ASSIGN_OR_RAISE(mask, cp::And(mask, m));
    } else {
      mask = m;
    }
  }
  return mask;
}

}  // namespace

arrow::Result<std::vector<Add>> select_files(const Snapshot& snapshot,
                                             const std::vector<ColumnPredicate>& predicates) {
  return select_files_among(snapshot, predicates, snapshot.files());
}

arrow::Result<std::vector<Add>> select_files_among(const Snapshot& snapshot,
                                                   const std::vector<ColumnPredicate>& predicates,
                                                   const std::vector<Add>& files) {
  const auto& schema = snapshot.schema();
  std::vector<ColumnPredicate> bound;
  for (const auto& p : predicates) {
    auto field = schema->GetFieldByName(p.column);
    if (!field) {
      return invalid("no column '{}' in table {}", p.column, snapshot.metadata().name.value_or(""));
    }
    ColumnPredicate q = p;
    if (q.value) {
      auto cast = cast_to(q.value, field->type());
      if (!cast.ok()) {
        return invalid("cannot compare column '{}' ({}) with {}", p.column,
                       field->type()->ToString(), q.value->ToString());
      }
      q.value = *cast;
    }
    bound.push_back(std::move(q));
  }
  return select_files_among(snapshot, FilePredicate::all_of(bound), files);
}

namespace {

constexpr int64_t kReadBatchRows = 64 * 1024;

// A data file's batches conformed to the snapshot's schema: partition columns from the add
// action's partitionValues, columns the file lacks (an older schema) as nulls.
// Rows a deletion vector marks are dropped (the reader sees the file's rows in order, so a
// running count is each row's index in the file).
class DataFileBatchReader : public arrow::RecordBatchReader {
 public:
  DataFileBatchReader(std::string path, std::shared_ptr<arrow::Schema> schema,
                      std::vector<std::shared_ptr<arrow::Scalar>> partition_values,
                      std::unique_ptr<parquet::arrow::FileReader> file,
                      std::shared_ptr<arrow::RecordBatchReader> batches,
                      std::vector<uint64_t> deleted_rows)
      : path_(std::move(path)),
        schema_(std::move(schema)),
        partition_values_(std::move(partition_values)),
        file_(std::move(file)),
        batches_(std::move(batches)),
        deleted_rows_(std::move(deleted_rows)) {}

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    std::shared_ptr<arrow::RecordBatch> batch;
    do {
      if (auto st = batches_->ReadNext(&batch); !st.ok()) return context(st);
      if (!batch) {
        *out = nullptr;
        return arrow::Status::OK();
      }
      if (next_deleted_ < deleted_rows_.size()) {
        auto kept = drop_deleted(std::move(batch));
        if (!kept.ok()) return context(kept.status());
        batch = std::move(*kept);
      }
    } while (batch->num_rows() == 0);
    const int64_t rows = batch->num_rows();
    arrow::ArrayVector columns;
    columns.reserve(schema_->num_fields());
    for (int i = 0; i < schema_->num_fields(); ++i) {
      const auto& field = schema_->field(i);
      if (partition_values_[i]) {
        ARROW_ASSIGN_OR_RAISE(auto array, arrow::MakeArrayFromScalar(*partition_values_[i], rows));
        columns.push_back(std::move(array));
        continue;
      }
      auto column = batch->GetColumnByName(field->name());
      if (!column) {
        ARROW_ASSIGN_OR_RAISE(auto nulls, arrow::MakeArrayOfNull(field->type(), rows));
        columns.push_back(std::move(nulls));
        continue;
      }
      auto one = arrow::RecordBatch::Make(
          arrow::schema({arrow::field(field->name(), column->type())}), rows, {column});
      auto conformed = conform_batch(*one, arrow::schema({field->WithNullable(true)}));
      if (!conformed.ok()) return context(conformed.status());
      columns.push_back((*conformed)->column(0));
    }
    *out = arrow::RecordBatch::Make(schema_, rows, std::move(columns));
    return arrow::Status::OK();
  }

 private:
  arrow::Status context(const arrow::Status& st) const {
    return with_context(st, fmt::format("data file {}", path_));
  }

  // `batch` (the file's rows from next_row_ on) without the rows the vector marks.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> drop_deleted(
      std::shared_ptr<arrow::RecordBatch> batch) {
    const int64_t n = batch->num_rows();
    const uint64_t first = static_cast<uint64_t>(next_row_), end = first + n;
    next_row_ += n;
    if (deleted_rows_[next_deleted_] >= end) return batch;
    arrow::BooleanBuilder keep;
    ARROW_RETURN_NOT_OK(keep.Reserve(n));
    uint64_t row = first;
    while (next_deleted_ < deleted_rows_.size() && deleted_rows_[next_deleted_] < end) {
      const uint64_t d = deleted_rows_[next_deleted_++];
      for (; row < d; ++row) keep.UnsafeAppend(true);
      keep.UnsafeAppend(false);
      row = d + 1;
    }
    for (; row < end; ++row) keep.UnsafeAppend(true);
    ARROW_ASSIGN_OR_RAISE(auto mask, keep.Finish());
    ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(batch, mask));
    return filtered.record_batch();
  }

  const std::string path_;
  const std::shared_ptr<arrow::Schema> schema_;
  const std::vector<std::shared_ptr<arrow::Scalar>> partition_values_;  // by field; null: read
  const std::unique_ptr<parquet::arrow::FileReader> file_;             // outlives batches_
  const std::shared_ptr<arrow::RecordBatchReader> batches_;
  const std::vector<uint64_t> deleted_rows_;  // ascending row indexes in the file
  size_t next_deleted_ = 0;
  int64_t next_row_ = 0;  // index in the file of the next batch's first row
};

}  // namespace

arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_data_file(const LogStore& store,
                                                                        const Snapshot& snapshot,
                                                                        const Add& file) {
  return open_data_file(store, snapshot.schema(), snapshot.metadata().partition_columns, file);
}

namespace {

arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_data_file_impl(
    const LogStore& store, const std::shared_ptr<arrow::Schema>& schema,
    const std::vector<std::string>& partitions, const Add& file, const FilePredicate* row_filter,
    ScanReport* report, ColumnBytes* bytes) {
  ARROW_ASSIGN_OR_RAISE(auto relative, uri_decode_path(file.path));
  const auto path = relative.find("://") != std::string::npos || relative.rfind('/', 0) == 0
                        ? std::filesystem::path(relative.substr(relative.find("://") == std::string::npos
                                                                    ? 0
                                                                    : relative.find("://") + 3))
                        : store.table_root() / relative;
  auto context = [&](const arrow::Status& st) {
    return with_context(st, fmt::format("data file {}", store.display(path)));
  };
  // A file the log names and the store lacks was most likely deleted by a VACUUM after the
  // version being read left the retention window (time travel past it); said so, checked only
  // once the open failed (an object store may open lazily and fail at the first read).
  auto missing_or = [&](const arrow::Status& st) {
    auto there = store.objects()->head(path.string());
    if (!there.ok() || there->has_value()) return context(st);
    return arrow::Status::IOError(fmt::format(
        "data file {} of {} does not exist: it was probably removed by VACUUM (the version read is older "
        "than the retention window of the last vacuum); read a later version, or keep versions longer with "
        "delta.deletedFileRetentionDuration",
        store.display(path), store.location()));
  };
  auto input = store.objects()->open_input(path.string());
  if (!input.ok()) return missing_or(input.status());
  // Batches of 64 Ki rows rather than whole row groups (ReadTable): a 1 Mi-row row group of a
  // 200-byte binary column is one 200 MB buffer grown by doubling (realloc copies and fresh
  // pages to fault in, ~15 % of a Kafka -> silver run in perf). Pages are read as they are
  // decoded (a buffered stream) instead of a whole column chunk at once.
  parquet::ReaderProperties props(arrow::default_memory_pool());
  props.enable_buffered_stream();
  props.set_buffer_size(1 << 20);
  parquet::ArrowReaderProperties arrow_props;
  arrow_props.set_batch_size(kReadBatchRows);
  parquet::arrow::FileReaderBuilder builder;
  if (auto st = builder.Open(*input, props); !st.ok()) return missing_or(st);
  auto reader = builder.memory_pool(arrow::default_memory_pool())->properties(arrow_props)->Build();
  if (!reader.ok()) return context(reader.status());
  // Row groups skipped by their statistics; not in a file with a deletion vector, whose reader
  // counts row positions from the file's first row.
  const auto& metadata = *(*reader)->parquet_reader()->metadata();
  const int row_groups = metadata.num_row_groups();
  std::vector<int> kept;
  const bool prune = row_filter && row_filter->can_skip() && !file.deletion_vector;
  if (prune) kept = select_row_groups(*schema, partitions, file, metadata, *row_filter);
  if (!prune || static_cast<int>(kept.size()) >= row_groups) {
    kept.resize(row_groups);
    for (int i = 0; i < row_groups; ++i) kept[i] = i;
  }
  // Only the Parquet columns (leaves) of the fields `schema` asks for are decoded: a KPI of two
  // columns of a table with a 2 KB payload column reads two column chunks, not the payload.
  std::vector<int> leaves;
  std::function<void(const parquet::arrow::SchemaField&)> add_leaves = [&](const parquet::arrow::SchemaField& f) {
    if (f.is_leaf()) {
      leaves.push_back(f.column_index);
      return;
    }
    for (const auto& child : f.children) add_leaves(child);
  };
  for (const auto& f : (*reader)->manifest().schema_fields) {
    const auto& name = f.field->name();
    if (std::find(partitions.begin(), partitions.end(), name) != partitions.end()) continue;
    if (schema->GetFieldIndex(name) >= 0) add_leaves(f);
  }
  // No column of the file asked for (only partition or missing columns): one column still
  // read, for the rows' count.
  if (leaves.empty() && metadata.num_columns() > 0) leaves.push_back(0);
  std::sort(leaves.begin(), leaves.end());
  if (report) {
    report->row_groups_total += row_groups;
    report->row_groups_scanned += static_cast<int64_t>(kept.size());
  }
  if (bytes) {
    for (int rg : kept) {
      const auto group = metadata.RowGroup(rg);
      for (int c = 0; c < group->num_columns(); ++c) bytes->total += group->ColumnChunk(c)->total_compressed_size();
      for (int c : leaves) bytes->read += group->ColumnChunk(c)->total_compressed_size();
    }
  }
  auto batches = (*reader)->GetRecordBatchReader(kept, leaves);
  if (!batches.ok()) return context(batches.status());

  std::vector<std::shared_ptr<arrow::Scalar>> partition_values(schema->num_fields());
  for (int i = 0; i < schema->num_fields(); ++i) {
    const auto& name = schema->field(i)->name();
    if (std::find(partitions.begin(), partitions.end(), name) == partitions.end()) continue;
    auto it = file.partition_values.find(name);
    std::optional<std::string> text = it == file.partition_values.end() ? std::nullopt : it->second;
    ARROW_ASSIGN_OR_RAISE(partition_values[i],
                          parse_partition_value(text, schema->field(i)->type()));
  }
  std::vector<uint64_t> deleted_rows;
  if (file.deletion_vector) {
    ARROW_ASSIGN_OR_RAISE(deleted_rows,
                          read_deletion_vector(store, *file.deletion_vector, store.display(path)));
  }
  return std::make_unique<DataFileBatchReader>(store.display(path), schema, std::move(partition_values),
                                               std::move(*reader), std::move(*batches),
                                               std::move(deleted_rows));
}

}  // namespace

arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_data_file(
    const LogStore& store, const std::shared_ptr<arrow::Schema>& schema,
    const std::vector<std::string>& partitions, const Add& file, const FilePredicate* row_filter,
    ScanReport* report) {
  return open_data_file_impl(store, schema, partitions, file, row_filter, report, nullptr);
}

arrow::Result<std::unique_ptr<arrow::RecordBatchReader>> open_data_file_counting(
    const LogStore& store, const std::shared_ptr<arrow::Schema>& schema,
    const std::vector<std::string>& partitions, const Add& file, ColumnBytes* bytes) {
  return open_data_file_impl(store, schema, partitions, file, nullptr, nullptr, bytes);
}

arrow::Result<std::shared_ptr<arrow::Table>> read_data_file(const LogStore& store,
                                                            const Snapshot& snapshot,
                                                            const Add& file, const FilePredicate* row_filter,
                                                            ScanReport* report) {
  ARROW_ASSIGN_OR_RAISE(auto batches, open_data_file(store, snapshot.schema(), snapshot.metadata().partition_columns,
                                                     file, row_filter, report));
  return batches->ToTable();
}

arrow::Result<std::shared_ptr<arrow::Table>> scan_table(const LogStore& store,
                                                        const Snapshot& snapshot,
                                                        const ScanOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto files, select_files(snapshot, options.predicates));
  if (options.file_filter.can_skip()) {
    ARROW_ASSIGN_OR_RAISE(files, select_files_among(snapshot, options.file_filter, files));
  }
  if (options.report) {
    for (const auto& f : snapshot.files()) {
      ++options.report->files_total;
      options.report->bytes_total += f.size;
    }
  }
  std::vector<std::shared_ptr<arrow::Table>> parts;
  int64_t rows = 0;
  for (const auto& f : files) {
    if (options.limit && rows >= *options.limit) break;
    ARROW_ASSIGN_OR_RAISE(auto part, read_data_file(store, snapshot, f, &options.file_filter, options.report));
    if (options.report) {
      ++options.report->files_scanned;
      options.report->bytes_scanned += f.size;
    }
    if (!options.predicates.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto mask, row_filter(*part, options.predicates));
      ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(part, mask));
      part = filtered.table();
    }
    rows += part->num_rows();
    parts.push_back(std::move(part));
  }
  if (parts.empty()) return arrow::Table::MakeEmpty(snapshot.schema());
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::ConcatenateTables(parts));
  if (options.limit && table->num_rows() > *options.limit) table = table->Slice(0, *options.limit);
  return table;
}

namespace {

constexpr const char* kRemovedData = "sluice::delta::removed_data";

}  // namespace

bool is_removed_data(const arrow::Status& status) { return is_kind(status, kRemovedData); }

arrow::Result<std::vector<AddedFile>> added_files_between(const LogStore& store,
                                                          DeltaVersion after, DeltaVersion upto,
                                                          ChangePolicy policy) {
  std::vector<AddedFile> out;
  if (upto > after) {
    // A streaming read must not step over a missing version (it would skip its rows).
    // Listed from `after` on: the listing does not grow with the table's history.
    ARROW_ASSIGN_OR_RAISE(auto listing, list_log(store, after.value() >= 0 ? std::optional<DeltaVersion>(after)
                                                                           : std::nullopt));
    ARROW_RETURN_NOT_OK(check_commits_present(listing, store.location(), after, upto));
  }
  for (int64_t v = after.value() + 1; v <= upto.value(); ++v) {
    ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(DeltaVersion(v)));
    ARROW_ASSIGN_OR_RAISE(auto actions, parse_commit(text, store.display(store.commit_path(DeltaVersion(v)))));
    // Rows a retention policy expired were read when they were appended: the commit is skipped
    // whole, its removes and the files it wrote back (docs/decisions.md, retention).
    if (is_retention_commit(actions)) continue;
    bool removes_data = false, adds_data = false;
    for (const auto& a : actions) {
      if (const auto* r = std::get_if<Remove>(&a); r && r->data_change) removes_data = true;
      if (const auto* ad = std::get_if<Add>(&a); ad && ad->data_change) adds_data = true;
    }
    if (removes_data) {
      if (policy == ChangePolicy::kFail ||
          (policy == ChangePolicy::kIgnoreDeletes && adds_data)) {
        return mark_kind(invalid(
            "{}: version {} removed data (delete, update, merge or overwrite); a streaming "
            "read of an append-only table cannot follow it. Use ignoreDeletes (deletes only) or "
            "ignoreChanges, or a full refresh of the reader",
            store.location(), v), kRemovedData);
      }
      if (policy == ChangePolicy::kIgnoreDeletes) continue;
    }
    for (auto& a : actions) {
      if (auto* ad = std::get_if<Add>(&a); ad && ad->data_change) {
        out.push_back({DeltaVersion(v), std::move(*ad)});
      }
    }
  }
  return out;
}

}  // namespace sluice::delta
