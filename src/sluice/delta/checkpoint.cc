// Classic Parquet checkpoints.
#include "sluice/delta/checkpoint.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/io/memory.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/vacuum.h"

namespace sluice::delta {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::shared_ptr<arrow::DataType> string_map() { return arrow::map(arrow::utf8(), arrow::utf8()); }

std::shared_ptr<arrow::DataType> string_list() {
  return arrow::list(arrow::field("element", arrow::utf8()));
}

constexpr const char* kActionColumns[] = {"txn", "add", "remove", "metaData", "protocol",
                                          "domainMetadata"};

}  // namespace

namespace {

// The add/remove deletionVector struct (PROTOCOL.md "Deletion Vectors").
std::shared_ptr<arrow::Field> deletion_vector_field() {
  return arrow::field("deletionVector",
                      arrow::struct_({arrow::field("storageType", arrow::utf8()),
                                      arrow::field("pathOrInlineDv", arrow::utf8()),
                                      arrow::field("offset", arrow::int32()),
                                      arrow::field("sizeInBytes", arrow::int32()),
                                      arrow::field("cardinality", arrow::int64())}));
}

// What a checkpoint holds beyond checkpoint_schema()'s columns; each only for a table that has
// it, so checkpoints of other tables keep the columns they always had.
struct CheckpointExtras {
  bool deletion_vectors = false;     // add/remove.deletionVector
  bool clustering_provider = false;  // add.clusteringProvider
  bool domain_metadata = false;      // a domainMetadata column (PROTOCOL.md "Domain Metadata")
};

std::shared_ptr<arrow::Schema> checkpoint_schema_with(const CheckpointExtras& extras) {
  arrow::FieldVector fields;
  for (const auto& f : checkpoint_schema()->fields()) {
    if (f->name() != "add" && f->name() != "remove") {
      fields.push_back(f);
      continue;
    }
    auto children = f->type()->fields();
    if (extras.deletion_vectors) children.push_back(deletion_vector_field());
    if (extras.clustering_provider && f->name() == "add") {
      children.push_back(arrow::field("clusteringProvider", arrow::utf8()));
    }
    fields.push_back(arrow::field(f->name(), arrow::struct_(children)));
  }
  if (extras.domain_metadata) {
    fields.push_back(arrow::field("domainMetadata",
                                  arrow::struct_({arrow::field("domain", arrow::utf8()),
                                                  arrow::field("configuration", arrow::utf8()),
                                                  arrow::field("removed", arrow::boolean())})));
  }
  return arrow::schema(fields);
}

}  // namespace

const std::shared_ptr<arrow::Schema>& checkpoint_schema() {
  static const auto schema = arrow::schema({
      arrow::field("txn", arrow::struct_({arrow::field("appId", arrow::utf8()),
                                          arrow::field("version", arrow::int64()),
                                          arrow::field("lastUpdated", arrow::int64())})),
      arrow::field("add", arrow::struct_({arrow::field("path", arrow::utf8()),
                                          arrow::field("partitionValues", string_map()),
                                          arrow::field("size", arrow::int64()),
                                          arrow::field("modificationTime", arrow::int64()),
                                          arrow::field("dataChange", arrow::boolean()),
                                          arrow::field("stats", arrow::utf8()),
                                          arrow::field("tags", string_map())})),
      arrow::field("remove", arrow::struct_({arrow::field("path", arrow::utf8()),
                                             arrow::field("deletionTimestamp", arrow::int64()),
                                             arrow::field("dataChange", arrow::boolean()),
                                             arrow::field("extendedFileMetadata", arrow::boolean()),
                                             arrow::field("partitionValues", string_map()),
                                             arrow::field("size", arrow::int64()),
                                             arrow::field("tags", string_map())})),
      arrow::field("metaData",
                   arrow::struct_({arrow::field("id", arrow::utf8()),
                                   arrow::field("name", arrow::utf8()),
                                   arrow::field("description", arrow::utf8()),
                                   arrow::field("format",
                                                arrow::struct_({arrow::field("provider", arrow::utf8()),
                                                                arrow::field("options", string_map())})),
                                   arrow::field("schemaString", arrow::utf8()),
                                   arrow::field("partitionColumns", string_list()),
                                   arrow::field("configuration", string_map()),
                                   arrow::field("createdTime", arrow::int64())})),
      arrow::field("protocol", arrow::struct_({arrow::field("minReaderVersion", arrow::int32()),
                                               arrow::field("minWriterVersion", arrow::int32()),
                                               arrow::field("readerFeatures", string_list()),
                                               arrow::field("writerFeatures", string_list())})),
  });
  return schema;
}

arrow::Status append_json(arrow::ArrayBuilder& builder, const json& value) {
  if (value.is_null()) return builder.AppendNull();
  switch (builder.type()->id()) {
    case arrow::Type::STRUCT: {
      auto& b = static_cast<arrow::StructBuilder&>(builder);
      ARROW_RETURN_NOT_OK(b.Append());
      for (int i = 0; i < b.num_fields(); ++i) {
        const std::string name = b.type()->field(i)->name();  // type() is a temporary
        auto it = value.find(name);
        ARROW_RETURN_NOT_OK(append_json(*b.field_builder(i), it == value.end() ? json() : *it));
      }
      return arrow::Status::OK();
    }
    case arrow::Type::MAP: {
      auto& b = static_cast<arrow::MapBuilder&>(builder);
      ARROW_RETURN_NOT_OK(b.Append());
      for (const auto& [k, v] : value.items()) {
        ARROW_RETURN_NOT_OK(static_cast<arrow::StringBuilder&>(*b.key_builder()).Append(k));
        ARROW_RETURN_NOT_OK(append_json(*b.item_builder(), v));
      }
      return arrow::Status::OK();
    }
    case arrow::Type::LIST: {
      auto& b = static_cast<arrow::ListBuilder&>(builder);
      ARROW_RETURN_NOT_OK(b.Append());
      for (const auto& v : value) ARROW_RETURN_NOT_OK(append_json(*b.value_builder(), v));
      return arrow::Status::OK();
    }
    case arrow::Type::STRING:
      return static_cast<arrow::StringBuilder&>(builder).Append(
          value.is_string() ? value.get<std::string>() : value.dump());
    case arrow::Type::INT64:
      return static_cast<arrow::Int64Builder&>(builder).Append(value.get<int64_t>());
    case arrow::Type::INT32:
      return static_cast<arrow::Int32Builder&>(builder).Append(value.get<int32_t>());
    case arrow::Type::BOOL:
      return static_cast<arrow::BooleanBuilder&>(builder).Append(value.get<bool>());
    default:
      return invalid("checkpoint writer: unexpected column type {}", builder.type()->ToString());
  }
}

json cell_to_json(const arrow::Array& array, int64_t row) {
  if (array.IsNull(row)) return nullptr;
  switch (array.type_id()) {
    case arrow::Type::STRUCT: {
      const auto& a = static_cast<const arrow::StructArray&>(array);
      json out = json::object();
      for (int i = 0; i < a.num_fields(); ++i) {
        out[a.type()->field(i)->name()] = cell_to_json(*a.field(i), row);
      }
      return out;
    }
    case arrow::Type::MAP: {
      const auto& a = static_cast<const arrow::MapArray&>(array);
      json out = json::object();
      const int64_t begin = a.value_offset(row), end = begin + a.value_length(row);
      for (int64_t i = begin; i < end; ++i) {
        json key = cell_to_json(*a.keys(), i);
        if (!key.is_string()) throw std::runtime_error("a map key is not a string");
        out[key.get<std::string>()] = cell_to_json(*a.items(), i);
      }
      return out;
    }
    case arrow::Type::LIST: {
      const auto& a = static_cast<const arrow::ListArray&>(array);
      json out = json::array();
      const int64_t begin = a.value_offset(row), end = begin + a.value_length(row);
      for (int64_t i = begin; i < end; ++i) out.push_back(cell_to_json(*a.values(), i));
      return out;
    }
    case arrow::Type::STRING: return static_cast<const arrow::StringArray&>(array).GetString(row);
    case arrow::Type::LARGE_STRING:
      return static_cast<const arrow::LargeStringArray&>(array).GetString(row);
    case arrow::Type::INT64: return static_cast<const arrow::Int64Array&>(array).Value(row);
    case arrow::Type::INT32: return static_cast<const arrow::Int32Array&>(array).Value(row);
    case arrow::Type::INT16: return static_cast<const arrow::Int16Array&>(array).Value(row);
    case arrow::Type::BOOL: return static_cast<const arrow::BooleanArray&>(array).Value(row);
    case arrow::Type::DOUBLE: return static_cast<const arrow::DoubleArray&>(array).Value(row);
    default: {
      auto scalar = array.GetScalar(row);
      return scalar.ok() ? json((*scalar)->ToString()) : json(nullptr);
    }
  }
}

namespace {

// The JSON body and column of an action, or nullopt for kinds checkpoints do not keep.
std::optional<std::pair<std::string, json>> checkpoint_entry(const Action& action) {
  json j = to_json(action);
  // Not a structured binding over items(): its key() refers into a temporary proxy.
  const std::string kind = j.begin().key();
  const nlohmann::json& body = j.begin().value();
  for (const char* column : kActionColumns) {
    if (kind == column) return std::make_pair(std::string(kind), body);
  }
  return std::nullopt;
}

// delta.deletedFileRetentionDuration as vacuum reads it (vacuum.h): a tombstone dropped from
// the checkpoint earlier than vacuum expects would let vacuum delete a file a version inside
// the window needs. A property that does not parse keeps every tombstone.
int64_t tombstone_retention_millis(const Metadata& metadata) {
  auto millis = deleted_file_retention_millis(metadata, "");
  return millis.ok() ? *millis : INT64_MAX / 2;
}

// `table` as the bytes of a Parquet file (a checkpoint is published whole, by one
// put-if-absent: temp file + fsync + no-replace rename locally, one conditional PUT on S3).
arrow::Result<std::shared_ptr<arrow::Buffer>> parquet_bytes(const arrow::Table& table) {
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  auto props = parquet::WriterProperties::Builder().compression(arrow::Compression::SNAPPY)->build();
  ARROW_RETURN_NOT_OK(parquet::arrow::WriteTable(table, arrow::default_memory_pool(), sink,
                                                 1 << 20, props));
  return sink->Finish();
}

}  // namespace

arrow::Status write_checkpoint(const LogStore& store, const Snapshot& snapshot, bool drop_tombstones) {
  std::vector<Action> actions;
  actions.emplace_back(snapshot.protocol());
  actions.emplace_back(snapshot.metadata());
  for (const auto& [app, txn] : snapshot.txns()) actions.emplace_back(txn);
  // Live domains only: a removed domain is a tombstone a checkpoint may drop (as Spark does).
  for (const auto& [name, domain] : snapshot.domains()) actions.emplace_back(to_action(domain));
  int64_t num_adds = 0;
  for (const auto& add : snapshot.files()) {
    Add a = add;
    a.data_change = false;
    actions.emplace_back(std::move(a));
    ++num_adds;
  }
  const int64_t horizon = now_millis() - tombstone_retention_millis(snapshot.metadata());
  for (const auto& r : snapshot.tombstones()) {
    if (drop_tombstones || r.deletion_timestamp.value_or(0) < horizon) continue;
    Remove rm = r;
    rm.data_change = false;
    actions.emplace_back(std::move(rm));
  }

  CheckpointExtras extras;
  extras.domain_metadata = !snapshot.domains().empty();
  for (const auto& action : actions) {
    if (const auto* a = std::get_if<Add>(&action)) {
      extras.deletion_vectors |= a->deletion_vector.has_value();
      extras.clustering_provider |= a->clustering_provider.has_value();
    }
    if (const auto* r = std::get_if<Remove>(&action); r && r->deletion_vector) {
      extras.deletion_vectors = true;
    }
  }
  const auto schema = checkpoint_schema_with(extras);
  std::vector<std::unique_ptr<arrow::ArrayBuilder>> builders;
  for (const auto& f : schema->fields()) {
    std::unique_ptr<arrow::ArrayBuilder> b;
    ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), f->type(), &b));
    builders.push_back(std::move(b));
  }
  for (const auto& action : actions) {
    auto entry = checkpoint_entry(action);
    if (!entry) continue;
    for (int i = 0; i < schema->num_fields(); ++i) {
      if (schema->field(i)->name() == entry->first) {
        ARROW_RETURN_NOT_OK(append_json(*builders[i], entry->second));
      } else {
        ARROW_RETURN_NOT_OK(builders[i]->AppendNull());
      }
    }
  }
  arrow::ArrayVector columns;
  for (auto& b : builders) {
    ARROW_ASSIGN_OR_RAISE(auto array, b->Finish());
    columns.push_back(std::move(array));
  }
  auto table = arrow::Table::Make(schema, columns);

  const std::string version_name = fmt::format("{:020d}", snapshot.version().value());
  const fs::path final_path = store.log_dir() / (version_name + ".checkpoint.parquet");
  auto bytes = parquet_bytes(*table);
  if (!bytes.ok()) return io_failure(bytes.status(), "cannot write checkpoint", store.display(final_path));
  const int64_t size_bytes = (*bytes)->size();
  // Another writer may have checkpointed this version already (kAlreadyExists): same content
  // by construction.
  auto put = store.objects()->put_if_absent(final_path.string(), (*bytes)->ToString());
  if (!put.ok()) return io_failure(put.status(), "cannot write checkpoint", store.display(final_path));

  // Never moved back: a writer checkpointing an older snapshot leaves a newer hint in place.
  if (auto hinted = read_last_checkpoint(store); hinted && *hinted > snapshot.version().value()) {
    return arrow::Status::OK();
  }
  json last = {{"version", snapshot.version().value()},
               {"size", table->num_rows()},
               {"sizeInBytes", size_bytes},
               {"numOfAddFiles", num_adds}};
  return store.objects()->put((store.log_dir() / "_last_checkpoint").string(), last.dump());
}

namespace {

// The actions of one checkpoint file's table; errors say what is wrong, the caller says where.
arrow::Result<std::vector<Action>> checkpoint_actions(const arrow::Table& table) {
  ARROW_ASSIGN_OR_RAISE(auto combined, table.CombineChunksToBatch());
  const auto& batch = *combined;
  std::vector<std::pair<std::string, std::shared_ptr<arrow::Array>>> columns;
  for (const char* name : kActionColumns) {
    if (auto col = batch.GetColumnByName(name)) columns.emplace_back(name, col);
  }
  if (columns.empty()) {
    return invalid("not a Delta checkpoint: it has none of the columns txn, add, remove, "
                   "metaData, protocol");
  }
  std::vector<Action> actions;
  for (int64_t row = 0; row < batch.num_rows(); ++row) {
    for (const auto& [name, column] : columns) {
      if (column->IsNull(row)) continue;
      json cell;
      try {
        cell = cell_to_json(*column, row);
      } catch (const std::exception& e) {
        return invalid("row {}: column '{}' cannot be read as an action: {}", row, name, e.what());
      }
      auto action = action_from_json(json{{name, std::move(cell)}});
      if (!action.ok()) return with_context(action.status(), fmt::format("row {}", row));
      actions.push_back(std::move(*action));
    }
  }
  return actions;
}

// Memory a checkpoint of `file_bytes` may take to decode: Parquet trusts sizes and counts in
// its page headers before it has read the data they describe (a dictionary page of a few bytes
// claiming 600 million strings made Arrow allocate 9.7 GB: fuzz/corpus/delta_checkpoint/oom-*),
// and run-length encoding lets a few bytes stand for any number of values. The checkpoints
// Delta writers produce decode to a few times their size (unique paths and stats strings).
constexpr int64_t kMinDecodeBudget = int64_t{256} << 20;
constexpr int64_t kDecodeBudgetPerFileByte = 32;
int64_t decode_budget(int64_t file_bytes) {
  return std::max(kMinDecodeBudget, file_bytes > (int64_t{1} << 40) / kDecodeBudgetPerFileByte
                                        ? int64_t{1} << 40
                                        : file_bytes * kDecodeBudgetPerFileByte);
}

// A pool that refuses to hold more than `limit` bytes at once (its own allocations only,
// unlike arrow::CappedMemoryPool, which caps the wrapped pool's total across all its users).
class BudgetPool final : public arrow::MemoryPool {
 public:
  BudgetPool(arrow::MemoryPool* wrapped, int64_t limit) : wrapped_(wrapped), limit_(limit) {}
  using arrow::MemoryPool::Allocate;
  using arrow::MemoryPool::Reallocate;
  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override {
    ARROW_RETURN_NOT_OK(reserve(size));
    auto st = wrapped_->Allocate(size, alignment, out);
    if (!st.ok()) used_ -= size;
    return st;
  }
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment, uint8_t** ptr) override {
    const int64_t grow = new_size - old_size;
    if (grow > 0) ARROW_RETURN_NOT_OK(reserve(grow));
    auto st = wrapped_->Reallocate(old_size, new_size, alignment, ptr);
    if (!st.ok()) {
      if (grow > 0) used_ -= grow;
    } else if (grow < 0) {
      used_ += grow;
    }
    return st;
  }
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override {
    wrapped_->Free(buffer, size, alignment);
    used_ -= size;
  }
  int64_t bytes_allocated() const override { return used_; }
  int64_t total_bytes_allocated() const override { return wrapped_->total_bytes_allocated(); }
  int64_t num_allocations() const override { return wrapped_->num_allocations(); }
  std::string backend_name() const override { return wrapped_->backend_name(); }
  // The largest request refused, or 0.
  int64_t refused() const { return refused_; }

 private:
  arrow::Status reserve(int64_t bytes) {
    if (bytes > limit_ - used_) {
      refused_ = std::max<int64_t>(refused_, bytes);
      return arrow::Status::OutOfMemory("decoding budget exceeded");
    }
    used_ += bytes;
    return arrow::Status::OK();
  }
  arrow::MemoryPool* wrapped_;
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> refused_{0};
};

arrow::Result<std::vector<Action>> read_checkpoint_file(
    std::shared_ptr<arrow::io::RandomAccessFile> input) {
  ARROW_ASSIGN_OR_RAISE(const int64_t file_bytes, input->GetSize());
  BudgetPool pool(arrow::default_memory_pool(), decode_budget(file_bytes));  // outlives the reader and table
  auto refused = [&](const arrow::Status& st) -> arrow::Status {
    if (pool.refused() == 0) return st;
    return invalid("decoding it would take more than {} MiB ({} bytes asked for at once; the file has {} bytes): "
                   "its Parquet pages claim far more values than the file holds, so it is corrupt or not a "
                   "checkpoint a Delta writer made; restore it from a backup, or remove it and the "
                   "_delta_log/_last_checkpoint naming it so that readers replay the JSON commits instead (if "
                   "they are all kept)",
                   decode_budget(file_bytes) >> 20, pool.refused(), file_bytes);
  };
  parquet::arrow::FileReaderBuilder builder;
  auto opened = builder.Open(input, parquet::ReaderProperties(&pool));
  if (!opened.ok()) return refused(opened);
  auto reader = builder.memory_pool(&pool)->Build();
  if (!reader.ok()) return refused(reader.status());
  auto table = (*reader)->ReadTable();
  if (!table.ok()) return refused(table.status());
  // Full validation: offsets in bounds and strings valid UTF-8 (a string that is not would
  // make every later JSON dump of the action throw).
  ARROW_RETURN_NOT_OK((*table)->ValidateFull());
  return checkpoint_actions(**table);
}

}  // namespace

arrow::Result<std::vector<Action>> read_checkpoint(const LogStore& store, const CheckpointRef& checkpoint) {
  std::vector<Action> actions;
  for (const auto& part : checkpoint.parts) {
    auto context = [&](const arrow::Status& st) {
      return with_context(st, fmt::format("checkpoint {}", store.display(part)));
    };
    auto input = store.objects()->open_input(part.string());
    if (!input.ok()) return context(input.status());
    auto part_actions = read_checkpoint_file(*input);
    if (!part_actions.ok()) return context(part_actions.status());
    for (auto& a : *part_actions) actions.push_back(std::move(a));
  }
  return actions;
}

arrow::Result<std::vector<Action>> read_checkpoint_bytes(std::shared_ptr<arrow::Buffer> bytes,
                                                         const std::string& source) {
  auto actions = read_checkpoint_file(std::make_shared<arrow::io::BufferReader>(std::move(bytes)));
  if (!actions.ok()) return with_context(actions.status(), fmt::format("checkpoint {}", source));
  return actions;
}

}  // namespace sluice::delta
