// Partitioned, schema-checked writes into Delta tables.
#include "sluice/delta/table_writer.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/row/grouper.h>
#include <arrow/compute/exec.h>

#include <algorithm>
#include <thread>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/clustering.h"
#include "sluice/delta/partitioning.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_features.h"

#include <fmt/ranges.h>

namespace sluice::delta {

arrow::Result<std::unique_ptr<TableWriter>> TableWriter::make(
    std::shared_ptr<LogStore> store, std::shared_ptr<const Snapshot> snapshot,
    const arrow::Schema& data_schema, WriteOptions options) {
  std::unique_ptr<TableWriter> w(new TableWriter());
  const std::string table = store->location();
  w->store_ = std::move(store);
  w->snapshot_ = std::move(snapshot);
  w->options_ = std::move(options);
  if (w->snapshot_) {
    ARROW_RETURN_NOT_OK(check_write_supported(w->snapshot_->protocol(), w->snapshot_->metadata(), table));
    if (w->options_.mode == WriteMode::kOverwrite && is_append_only(w->snapshot_->metadata()) &&
        w->snapshot_->num_files() > 0) {
      return invalid(
          "table {} only allows appends (delta.appendOnly = true); an overwrite would remove its "
          "{} data file(s), so nothing was written. To permit it, ALTER TABLE ... SET "
          "TBLPROPERTIES ('delta.appendOnly' = 'false')",
          table, w->snapshot_->num_files());
    }
    const auto& current = *w->snapshot_->schema();
    const bool overwrite_schema = w->options_.mode == WriteMode::kOverwrite &&
                                  w->options_.schema_mode == SchemaMode::kMerge;
    if (overwrite_schema) {
      w->table_schema_ = normalize_schema(data_schema);
    } else {
      auto reconciled = reconcile_schema(current, data_schema, w->options_.schema_mode);
      if (!reconciled.ok()) return with_context(reconciled.status(), "writing to " + table);
      w->table_schema_ = *reconciled;
    }
    w->schema_changed_ = !w->table_schema_->Equals(current, /*check_metadata=*/false);
    w->partition_columns_ = w->snapshot_->metadata().partition_columns;
  } else {
    w->table_schema_ = normalize_schema(data_schema);
    w->partition_columns_ = w->options_.partition_columns;
    w->schema_changed_ = true;
  }
  // Partition columns: present, partitionable, and left out of the data files.
  std::vector<bool> is_partition(w->table_schema_->num_fields(), false);
  for (const auto& name : w->partition_columns_) {
    int i = w->table_schema_->GetFieldIndex(name);
    if (i < 0) {
      return invalid("partition column '{}' is not a column of {}", name, table);
    }
    if (!is_partitionable(*w->table_schema_->field(i)->type())) {
      return invalid("column '{}' ({}) cannot partition {}: use a string, number, boolean, date "
                     "or timestamp column",
                     name, delta_type_name(*w->table_schema_->field(i)->type()), table);
    }
    w->partition_indices_.push_back(i);
    is_partition[i] = true;
  }
  arrow::FieldVector file_fields;
  for (int i = 0; i < w->table_schema_->num_fields(); ++i) {
    if (is_partition[i]) continue;
    w->data_indices_.push_back(i);
    file_fields.push_back(w->table_schema_->field(i));
  }
  w->file_schema_ = arrow::schema(file_fields);
  // Validate that the schema has a Delta form before any data is written.
  ARROW_RETURN_NOT_OK(to_delta_schema_string(*w->table_schema_).status());
  Metadata constrained;
  constrained.configuration =
      w->snapshot_ ? w->snapshot_->metadata().configuration : w->options_.configuration;
  auto constraints = check_constraints_of(constrained);
  if (!constraints.empty()) {
    if (!w->options_.constraints) {
      std::vector<std::string> names;
      for (const auto& c : constraints) names.push_back(c.name);
      return arrow::Status::NotImplemented(fmt::format(
          "table {} has CHECK constraint(s) {} that this writer cannot evaluate; nothing was "
          "written (write through sluice run or sluice table append, which enforce them)",
          table, fmt::join(names, ", ")));
    }
    ARROW_ASSIGN_OR_RAISE(w->checker_,
                          w->options_.constraints->compile(constraints, w->table_schema_, table));
  }
  return w;
}

TableWriter::~TableWriter() { abort(); }

int64_t TableWriter::bytes_written() const {
  int64_t total = closed_bytes_ + (unpartitioned_ ? unpartitioned_->bytes_written() : 0);
  for (const auto& [dir, f] : open_) total += f.writer->bytes_written();
  return total;
}

arrow::Status TableWriter::close_file(OpenFile& file) {
  ARROW_ASSIGN_OR_RAISE(auto add, file.writer->close());
  add.partition_values = file.values;
  closed_bytes_ += add.size;
  done_.push_back(std::move(add));
  file.writer.reset();
  return arrow::Status::OK();
}

arrow::Status TableWriter::write_partition(const std::string& dir, const PartitionValues& values,
                                           const arrow::RecordBatch& data) {
  // A batch is cut where max_rows_per_file ends a file, so files hold at most that many rows.
  int64_t offset = 0;
  while (offset < data.num_rows()) {
    auto it = open_.find(dir);
    if (it == open_.end()) {
      ARROW_ASSIGN_OR_RAISE(auto writer, DataFileWriter::make(store_->objects(), store_->table_root(), dir,
                                                              file_schema_, options_.file));
      it = open_.emplace(dir, OpenFile{values, std::move(writer)}).first;
    }
    const int64_t length = std::min(data.num_rows() - offset, it->second.writer->rows_left());
    ARROW_RETURN_NOT_OK(it->second.writer->write(length == data.num_rows() ? data : *data.Slice(offset, length)));
    offset += length;
    if (it->second.writer->reached_target()) {
      ARROW_RETURN_NOT_OK(close_file(it->second));
      open_.erase(it);
    }
  }
  return arrow::Status::OK();
}

arrow::Status TableWriter::write(const arrow::RecordBatch& input) {
  if (input.num_rows() == 0) return arrow::Status::OK();
  const std::string table = store_->location();
  auto conformed = conform_batch(input, table_schema_);
  if (!conformed.ok()) return with_context(conformed.status(), "writing to " + table);
  const auto& batch = *conformed;
  if (auto st = check_not_null(*batch); !st.ok()) return with_context(st, "writing to " + table);
  if (checker_) ARROW_RETURN_NOT_OK(checker_->check(*batch));
  rows_ += batch->num_rows();
  ARROW_ASSIGN_OR_RAISE(auto data, batch->SelectColumns(data_indices_));
  if (partition_indices_.empty()) {
    if (!unpartitioned_) {
      int lanes = options_.file.parallel_files;
      if (lanes <= 0) lanes = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      DataFileOptions file = options_.file;
      file.parallel_columns = lanes == 1 && file.parallel_columns;
      unpartitioned_ = std::make_unique<ParallelFileWriter>(
          store_->objects(), store_->table_root(), "", file_schema_, file, lanes, file.spread_after_rows);
    }
    return unpartitioned_->write(data);
  }

  // Group rows by their partition values (vectorised hash grouping), then write each group.
  std::vector<arrow::TypeHolder> key_types;
  std::vector<arrow::Datum> keys;
  for (int i : partition_indices_) {
    key_types.emplace_back(table_schema_->field(i)->type());
    keys.emplace_back(batch->column(i));
  }
  ARROW_ASSIGN_OR_RAISE(auto grouper, arrow::compute::Grouper::Make(key_types));
  arrow::compute::ExecBatch key_batch(keys, batch->num_rows());
  ARROW_ASSIGN_OR_RAISE(auto ids_datum, grouper->Consume(arrow::compute::ExecSpan(key_batch)));
  auto ids = std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
  ARROW_ASSIGN_OR_RAISE(auto uniques, grouper->GetUniques());
  ARROW_ASSIGN_OR_RAISE(auto groupings,
                        arrow::compute::Grouper::MakeGroupings(*ids, grouper->num_groups()));
  for (uint32_t g = 0; g < grouper->num_groups(); ++g) {
    PartitionValues values;
    std::string dir;
    for (size_t k = 0; k < partition_indices_.size(); ++k) {
      const auto& name = partition_columns_[k];
      ARROW_ASSIGN_OR_RAISE(auto scalar, uniques.values[k].make_array()->GetScalar(g));
      ARROW_ASSIGN_OR_RAISE(auto text, serialize_partition_value(*scalar));
      values[name] = text;
      if (!dir.empty()) dir += "/";
      dir += name + "=" + (text ? escape_partition_path(*text) : kHiveDefaultPartition);
    }
    auto indices = groupings->value_slice(g);
    ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(data, indices));
    ARROW_RETURN_NOT_OK(write_partition(dir, values, *taken.record_batch()));
  }
  return arrow::Status::OK();
}

arrow::Result<Transaction> TableWriter::finish() {
  for (auto& [dir, file] : open_) ARROW_RETURN_NOT_OK(close_file(file));
  open_.clear();
  if (unpartitioned_) {
    ARROW_ASSIGN_OR_RAISE(auto adds, unpartitioned_->finish());
    unpartitioned_.reset();
    for (auto& a : adds) {
      closed_bytes_ += a.size;
      done_.push_back(std::move(a));
    }
  }
  Transaction txn(store_, snapshot_);
  if (!snapshot_) {
    Protocol protocol = protocol_for_schema(*table_schema_);
    if (auto dv = options_.configuration.find("delta.enableDeletionVectors");
        dv != options_.configuration.end() && to_lower(dv->second) == "true") {
      protocol = with_deletion_vectors(protocol);
    }
    if (!options_.clustering_columns.empty()) protocol = with_clustering(protocol);
    // Table properties that turn a feature on (the change data feed) raise it, as in Spark
    // (after deletion vectors, so a table with both lists changeDataFeed among its features).
    if (auto raised = protocol_for_properties(protocol, options_.configuration)) protocol = *raised;
    txn.set_protocol(std::move(protocol));
    ARROW_ASSIGN_OR_RAISE(auto metadata,
                          new_table_metadata(*table_schema_, options_.table_name,
                                             options_.description, partition_columns_));
    metadata.configuration = options_.configuration;
    if (options_.table_name.empty()) metadata.name.reset();
    txn.set_metadata(std::move(metadata));
    if (!options_.clustering_columns.empty()) {
      txn.set_domain_metadata(clustering_domain(options_.clustering_columns));
    }
  } else if (schema_changed_) {
    Metadata metadata = snapshot_->metadata();
    ARROW_ASSIGN_OR_RAISE(metadata.schema_string, to_delta_schema_string(*table_schema_));
    txn.set_metadata(std::move(metadata));
    // A new timestamp_ntz column needs the table feature.
    Protocol needed = protocol_for_schema(*table_schema_);
    if (needed.min_reader_version > snapshot_->protocol().min_reader_version &&
        snapshot_->protocol().min_writer_version >= 7) {
      // A table on writer features (clustering, deletion vectors' writer side) keeps them: the
      // feature is added to its lists, not put in their place.
      needed = snapshot_->protocol();
      needed.min_reader_version = 3;
      if (!needed.reader_features) needed.reader_features.emplace();
      needed.reader_features->push_back("timestampNtz");
      if (!needed.writer_features) needed.writer_features.emplace();
      needed.writer_features->push_back("timestampNtz");
    }
    if (needed.min_reader_version > snapshot_->protocol().min_reader_version) {
      if (auto raised = protocol_for_properties(needed, snapshot_->metadata().configuration)) needed = *raised;
      txn.set_protocol(needed);
    }
  }
  if (snapshot_ && options_.mode == WriteMode::kOverwrite) {
    const int64_t now = now_millis();
    for (const auto& f : snapshot_->files()) {
      Remove r;
      r.path = f.path;
      r.deletion_timestamp = now;
      r.data_change = true;
      r.extended_file_metadata = true;
      r.partition_values = f.partition_values;
      r.size = f.size;
      r.deletion_vector = f.deletion_vector;  // the logical file is (path, deletion vector)
      txn.remove_file(std::move(r));
    }
  }
  for (auto& add : done_) txn.add_file(std::move(add));
  done_.clear();
  return txn;
}

void TableWriter::abort() {
  if (unpartitioned_) {
    unpartitioned_->abort();
    unpartitioned_.reset();
  }
  for (auto& [dir, file] : open_) {
    if (file.writer) file.writer->abort();
  }
  open_.clear();
  // Files closed but never committed: nothing refers to them, so they go too.
  remove_data_files(*store_->objects(), store_->table_root(), done_);
  done_.clear();
}

}  // namespace sluice::delta
