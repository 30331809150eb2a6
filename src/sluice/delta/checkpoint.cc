// Classic Parquet checkpoints.
#include "sluice/delta/checkpoint.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/snapshot.h"

namespace sluice::delta {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::shared_ptr<arrow::DataType> string_map() { return arrow::map(arrow::utf8(), arrow::utf8()); }

std::shared_ptr<arrow::DataType> string_list() {
  return arrow::list(arrow::field("element", arrow::utf8()));
}

constexpr const char* kActionColumns[] = {"txn", "add", "remove", "metaData", "protocol"};

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
        out[cell_to_json(*a.keys(), i).get<std::string>()] = cell_to_json(*a.items(), i);
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
  const std::string& kind = j.begin().key();  // not *j.items().begin(): it dangles
  const json& body = j.begin().value();
  for (const char* column : kActionColumns) {
    if (kind == column) return std::make_pair(std::string(kind), body);
  }
  return std::nullopt;
}

int64_t tombstone_retention_millis(const Metadata& metadata) {
  // delta.deletedFileRetentionDuration, e.g. "interval 1 week"; default one week.
  auto it = metadata.configuration.find("delta.deletedFileRetentionDuration");
  int64_t week = 7ll * 24 * 3600 * 1000;
  if (it == metadata.configuration.end()) return week;
  std::smatch m;
  static const std::regex kInterval(R"(interval\s+(\d+)\s+(\w+?)s?)", std::regex::icase);
  if (!std::regex_match(it->second, m, kInterval)) return week;
  int64_t n = std::stoll(m[1]);
  std::string unit = m[2];
  if (unit == "week") return n * week;
  if (unit == "day") return n * 24 * 3600 * 1000;
  if (unit == "hour") return n * 3600 * 1000;
  if (unit == "minute") return n * 60 * 1000;
  if (unit == "second") return n * 1000;
  return week;
}

std::optional<std::pair<DeltaVersion, std::pair<int, int>>> parse_checkpoint_name(
    const std::string& name) {
  static const std::regex kSingle(R"((\d{20})\.checkpoint\.parquet)");
  static const std::regex kMulti(R"((\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet)");
  std::smatch m;
  if (std::regex_match(name, m, kSingle)) {
    return std::make_pair(DeltaVersion(std::stoll(m[1])), std::make_pair(1, 1));
  }
  if (std::regex_match(name, m, kMulti)) {
    return std::make_pair(DeltaVersion(std::stoll(m[1])),
                          std::make_pair(std::stoi(m[2]), std::stoi(m[3])));
  }
  return std::nullopt;
}

}  // namespace

arrow::Status write_checkpoint(const LogStore& store, const Snapshot& snapshot) {
  std::vector<Action> actions;
  actions.emplace_back(snapshot.protocol());
  actions.emplace_back(snapshot.metadata());
  for (const auto& [app, txn] : snapshot.txns()) actions.emplace_back(txn);
  int64_t num_adds = 0;
  for (const auto& add : snapshot.files()) {
    Add a = add;
    a.data_change = false;
    actions.emplace_back(std::move(a));
    ++num_adds;
  }
  const int64_t horizon = now_millis() - tombstone_retention_millis(snapshot.metadata());
  for (const auto& r : snapshot.tombstones()) {
    if (r.deletion_timestamp.value_or(0) < horizon) continue;
    Remove rm = r;
    rm.data_change = false;
    actions.emplace_back(std::move(rm));
  }

  const auto& schema = checkpoint_schema();
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
  const fs::path tmp = store.log_dir() / ("." + version_name + ".checkpoint." + random_uuid() + ".tmp");
  {
    ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::FileOutputStream::Open(tmp.string()));
    auto props = parquet::WriterProperties::Builder().compression(arrow::Compression::SNAPPY)->build();
    ARROW_RETURN_NOT_OK(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), sink,
                                                   1 << 20, props));
    ARROW_RETURN_NOT_OK(sink->Close());
  }
  std::ifstream size_probe(tmp, std::ios::binary | std::ios::ate);
  const int64_t size_bytes = static_cast<int64_t>(size_probe.tellg());
  {
    // fsync the data before it becomes visible under its final name.
    int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    if (saved != EEXIST) {
      return io_error("cannot publish checkpoint {}: {}", final_path.string(), std::strerror(saved));
    }
    // Another writer checkpointed this version already: same content by construction.
  }
  ARROW_RETURN_NOT_OK(fsync_directory(store.log_dir()));

  json last = {{"version", snapshot.version().value()},
               {"size", table->num_rows()},
               {"sizeInBytes", size_bytes},
               {"numOfAddFiles", num_adds}};
  const fs::path last_tmp = store.log_dir() / ("._last_checkpoint." + random_uuid() + ".tmp");
  ARROW_RETURN_NOT_OK(write_file_durably(last_tmp, last.dump()));
  if (::rename(last_tmp.c_str(), (store.log_dir() / "_last_checkpoint").c_str()) != 0) {
    int saved = errno;
    ::unlink(last_tmp.c_str());
    return io_error("cannot update _last_checkpoint of {}: {}", store.table_root().string(),
                    std::strerror(saved));
  }
  return fsync_directory(store.log_dir());
}

arrow::Result<std::optional<CheckpointRef>> find_checkpoint(const LogStore& store,
                                                            std::optional<DeltaVersion> at) {
  std::map<int64_t, std::map<std::pair<int, int>, fs::path>> found;  // version -> parts
  std::error_code ec;
  if (!fs::exists(store.log_dir(), ec)) return std::optional<CheckpointRef>{};
  for (fs::directory_iterator it(store.log_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    auto parsed = parse_checkpoint_name(it->path().filename().string());
    if (!parsed) continue;
    if (at && parsed->first > *at) continue;
    found[parsed->first.value()][parsed->second] = it->path();
  }
  if (ec) return io_error("cannot list {}: {}", store.log_dir().string(), ec.message());
  for (auto v = found.rbegin(); v != found.rend(); ++v) {
    const auto& parts = v->second;
    // Complete: a single file, or parts 1..n of one n-part checkpoint.
    if (parts.count({1, 1})) return CheckpointRef{DeltaVersion(v->first), {parts.at({1, 1})}};
    std::map<int, std::vector<fs::path>> by_total;
    for (const auto& [key, path] : parts) by_total[key.second].push_back(path);
    for (const auto& [total, paths] : by_total) {
      if (static_cast<int>(paths.size()) == total) {
        return CheckpointRef{DeltaVersion(v->first), paths};
      }
    }
  }
  return std::optional<CheckpointRef>{};
}

arrow::Result<std::vector<Action>> read_checkpoint(const CheckpointRef& checkpoint) {
  std::vector<Action> actions;
  for (const auto& part : checkpoint.parts) {
    auto context = [&](const arrow::Status& st) {
      return with_context(st, fmt::format("checkpoint {}", part.string()));
    };
    auto input = arrow::io::ReadableFile::Open(part.string());
    if (!input.ok()) return context(input.status());
    auto reader = parquet::arrow::OpenFile(*input, arrow::default_memory_pool());
    if (!reader.ok()) return context(reader.status());
    auto table = (*reader)->ReadTable();
    if (!table.ok()) return context(table.status());
    auto combined = (*table)->CombineChunksToBatch();
    if (!combined.ok()) return context(combined.status());
    const auto& batch = **combined;
    std::vector<std::pair<std::string, std::shared_ptr<arrow::Array>>> columns;
    for (const char* name : kActionColumns) {
      if (auto col = batch.GetColumnByName(name)) columns.emplace_back(name, col);
    }
    for (int64_t row = 0; row < batch.num_rows(); ++row) {
      for (const auto& [name, column] : columns) {
        if (column->IsNull(row)) continue;
        auto action = action_from_json(json{{name, cell_to_json(*column, row)}});
        if (!action.ok()) return context(action.status());
        actions.push_back(std::move(*action));
      }
    }
  }
  return actions;
}

}  // namespace sluice::delta
