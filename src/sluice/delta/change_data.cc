// Change data files: `_change_data/` Parquet with `_change_type`, and their cdc actions.
#include "sluice/delta/change_data.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/exec.h>
#include <arrow/compute/row/grouper.h>


#include "sluice/common/status.h"
#include "sluice/delta/partitioning.h"

namespace sluice::delta {

const char* change_type_name(ChangeType type) {
  switch (type) {
    case ChangeType::kInsert:
      return "insert";
    case ChangeType::kDelete:
      return "delete";
    case ChangeType::kUpdatePreimage:
      return "update_preimage";
    case ChangeType::kUpdatePostimage:
      return "update_postimage";
  }
  return "insert";
}

OtherAction AddCdcFile::to_action() const {
  nlohmann::json values = nlohmann::json::object();
  for (const auto& [k, v] : partition_values) values[k] = v ? nlohmann::json(*v) : nlohmann::json();
  return OtherAction{"cdc",
                     {{"path", path}, {"partitionValues", values}, {"size", size}, {"dataChange", false}}};
}

arrow::Result<std::unique_ptr<ChangeDataWriter>> ChangeDataWriter::make(
    std::shared_ptr<LogStore> store, std::shared_ptr<arrow::Schema> table_schema,
    std::vector<std::string> partition_columns, DataFileOptions options) {
  std::unique_ptr<ChangeDataWriter> w(new ChangeDataWriter());
  w->store_ = std::move(store);
  w->options_ = options;
  w->partition_columns_ = std::move(partition_columns);
  if (table_schema->GetFieldIndex(kChangeTypeColumn) >= 0) {
    return invalid(
        "table {} has a column named {}, which the change data feed reserves for the kind of "
        "change; rename the column or turn the feed off (delta.enableChangeDataFeed = false)",
        w->store_->location(), kChangeTypeColumn);
  }
  std::vector<bool> is_partition(table_schema->num_fields(), false);
  for (const auto& name : w->partition_columns_) {
    const int i = table_schema->GetFieldIndex(name);
    if (i < 0) return invalid("partition column '{}' is not a column of {}", name, w->store_->location());
    w->partition_indices_.push_back(i);
    is_partition[i] = true;
  }
  arrow::FieldVector fields;
  for (int i = 0; i < table_schema->num_fields(); ++i) {
    if (is_partition[i]) continue;
    w->data_indices_.push_back(i);
    fields.push_back(table_schema->field(i));
  }
  fields.push_back(arrow::field(kChangeTypeColumn, arrow::utf8()));
  w->file_schema_ = arrow::schema(fields);
  w->table_schema_ = std::move(table_schema);
  return w;
}

ChangeDataWriter::~ChangeDataWriter() {
  for (auto& [dir, file] : open_) {
    if (file.writer) file.writer->abort();
  }
}

arrow::Status ChangeDataWriter::write_partition(const std::string& dir, const PartitionValues& values,
                                                const arrow::RecordBatch& data) {
  auto it = open_.find(dir);
  if (it == open_.end()) {
    ARROW_ASSIGN_OR_RAISE(auto writer, DataFileWriter::make(store_->objects(), store_->table_root(), dir,
                                                            file_schema_, options_));
    it = open_.emplace(dir, OpenFile{values, std::move(writer)}).first;
  }
  return it->second.writer->write(data);
}

arrow::Status ChangeDataWriter::write(const arrow::RecordBatch& rows, ChangeType type) {
  if (rows.num_rows() == 0) return arrow::Status::OK();
  // Rows come from the statement in the table's column order (names may be qualified).
  bool same_types = rows.num_columns() == table_schema_->num_fields();
  for (int i = 0; same_types && i < rows.num_columns(); ++i) {
    same_types = rows.column(i)->type()->Equals(*table_schema_->field(i)->type());
  }
  if (!same_types) {
    return invalid("change rows for {} do not have the table's columns ({} vs {})", store_->location(),
                   rows.schema()->ToString(), table_schema_->ToString());
  }
  arrow::StringBuilder kinds;
  ARROW_RETURN_NOT_OK(kinds.Reserve(rows.num_rows()));
  const std::string name = change_type_name(type);
  for (int64_t i = 0; i < rows.num_rows(); ++i) ARROW_RETURN_NOT_OK(kinds.Append(name));
  ARROW_ASSIGN_OR_RAISE(auto kind_column, kinds.Finish());
  arrow::ArrayVector columns;
  for (int i : data_indices_) columns.push_back(rows.column(i));
  columns.push_back(kind_column);
  auto data = arrow::RecordBatch::Make(file_schema_, rows.num_rows(), columns);
  rows_ += rows.num_rows();
  const std::string root = kChangeDataDir;
  if (partition_indices_.empty()) return write_partition(root, {}, *data);

  // One file per partition, as the table's data files are laid out (under _change_data/).
  std::vector<arrow::TypeHolder> key_types;
  std::vector<arrow::Datum> keys;
  for (int i : partition_indices_) {
    key_types.emplace_back(table_schema_->field(i)->type());
    keys.emplace_back(rows.column(i));
  }
  ARROW_ASSIGN_OR_RAISE(auto grouper, arrow::compute::Grouper::Make(key_types));
  arrow::compute::ExecBatch key_batch(keys, rows.num_rows());
  ARROW_ASSIGN_OR_RAISE(auto ids_datum, grouper->Consume(arrow::compute::ExecSpan(key_batch)));
  auto ids = std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
  ARROW_ASSIGN_OR_RAISE(auto uniques, grouper->GetUniques());
  ARROW_ASSIGN_OR_RAISE(auto groupings, arrow::compute::Grouper::MakeGroupings(*ids, grouper->num_groups()));
  for (uint32_t g = 0; g < grouper->num_groups(); ++g) {
    PartitionValues values;
    std::string dir = root;
    for (size_t k = 0; k < partition_indices_.size(); ++k) {
      const auto& column = partition_columns_[k];
      ARROW_ASSIGN_OR_RAISE(auto scalar, uniques.values[k].make_array()->GetScalar(g));
      ARROW_ASSIGN_OR_RAISE(auto text, serialize_partition_value(*scalar));
      values[column] = text;
      dir += "/" + column + "=" + (text ? escape_partition_path(*text) : kHiveDefaultPartition);
    }
    ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(data, groupings->value_slice(g)));
    ARROW_RETURN_NOT_OK(write_partition(dir, values, *taken.record_batch()));
  }
  return arrow::Status::OK();
}

arrow::Result<std::vector<AddCdcFile>> ChangeDataWriter::finish() {
  for (auto& [dir, file] : open_) {
    ARROW_ASSIGN_OR_RAISE(auto add, file.writer->close());
    add.partition_values = file.values;
    file.writer.reset();
    closed_.push_back(std::move(add));
  }
  open_.clear();
  std::vector<AddCdcFile> out;
  for (const auto& a : closed_) out.push_back({a.path, a.partition_values, a.size});
  return out;
}

void ChangeDataWriter::abort() {
  for (auto& [dir, file] : open_) {
    if (file.writer) file.writer->abort();
  }
  open_.clear();
  remove_data_files(*store_->objects(), store_->table_root(), closed_);
  closed_.clear();
}

}  // namespace sluice::delta
