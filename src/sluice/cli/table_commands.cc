// `sluice table ...` sub-commands.
#include "sluice/cli/table_commands.h"

#include <CLI/CLI.hpp>
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/reader.h>

#include <iostream>
#include <memory>

#include "sluice/cli/number_option.h"
#include "sluice/common/status.h"
#include "sluice/delta/clustering.h"
#include "sluice/common/text.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/delta/vacuum.h"
#include "sluice/exec/constraint_checker.h"
#include "sluice/pipeline/maintenance_lock.h"

namespace sluice::cli {

namespace {

using nlohmann::json;

struct TableArgs {
  std::string path;
  std::optional<int64_t> version;
  std::string timestamp;
  int64_t limit = 20;
  std::string format = "text";
};

int report(const arrow::Status& status) {
  if (status.ok()) return 0;
  std::cerr << "sluice: error: " << status.message() << "\n";
  return 1;
}

// "2024-01-01T00:00:00Z", "2024-01-01 00:00:00", "2024-01-01" or epoch milliseconds.
arrow::Result<int64_t> parse_time_millis(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) {
    return parse_int64(text, "--timestamp (epoch milliseconds)");  // 20 digits: out of range, said so
  }
  std::string t = text;
  for (auto& c : t) {
    if (c == ' ') c = 'T';
  }
  if (!t.empty() && t.back() == 'Z') t.pop_back();
  if (t.size() == 10) t += "T00:00:00";
  auto parsed = arrow::Scalar::Parse(arrow::timestamp(arrow::TimeUnit::MILLI), t);
  if (!parsed.ok()) {
    return invalid("'{}' is not a time (use 2024-01-01T12:00:00Z or epoch milliseconds)", text);
  }
  return static_cast<const arrow::TimestampScalar&>(**parsed).value;
}

arrow::Result<std::shared_ptr<const delta::Snapshot>> open_snapshot(const TableArgs& args,
                                                                    const delta::LogStore& store) {
  if (args.version && !args.timestamp.empty()) {
    return invalid("give --version or --timestamp, not both");
  }
  if (!args.timestamp.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto millis, parse_time_millis(args.timestamp));
    return delta::Snapshot::load_at_timestamp(store, millis);
  }
  if (args.version) return delta::Snapshot::load(store, DeltaVersion(*args.version));
  return delta::Snapshot::load(store);
}

void add_common(CLI::App* cmd, TableArgs& args, bool with_version, bool with_limit) {
  cmd->add_option("path", args.path, "Table folder (holding _delta_log), s3://bucket/prefix or gs://bucket/prefix")->required();
  if (with_version) {
    cmd->add_option("--version", args.version, "Read the table as of this version")->transform(whole_number(0));
    cmd->add_option("--timestamp", args.timestamp,
                    "Read the table as of this time (2024-01-01T12:00:00Z or epoch ms)");
  }
  if (with_limit) cmd->add_option("--limit", args.limit, "At most this many entries")->transform(whole_number(0));
  cmd->add_option("--format", args.format, "text or json")->check(CLI::IsMember({"text", "json"}));
}

arrow::Status describe(const TableArgs& args) {
  ARROW_ASSIGN_OR_RAISE(auto opened, delta::LogStore::open(args.path));
  const delta::LogStore& store = *opened;
  ARROW_ASSIGN_OR_RAISE(auto snap, open_snapshot(args, store));
  const auto& m = snap->metadata();
  json schema = json::array();
  for (const auto& f : snap->schema()->fields()) {
    schema.push_back({{"name", f->name()},
                      {"type", delta::delta_type_name(*f->type())},
                      {"nullable", f->nullable()}});
  }
  // Spark's DESCRIBE DETAIL clusteringColumns (dotted paths); null for a table not clustered.
  ARROW_ASSIGN_OR_RAISE(auto clustering, delta::clustering_columns(*snap, args.path));
  json clustering_json;
  if (clustering) {
    clustering_json = json::array();
    for (const auto& c : *clustering) clustering_json.push_back(delta::column_path_text(c));
  }
  json out = {{"path", args.path},
              {"name", m.name ? json(*m.name) : json()},
              {"description", m.description ? json(*m.description) : json()},
              {"id", m.id},
              {"version", snap->version().value()},
              {"checkpoint", snap->checkpoint_version() ? json(snap->checkpoint_version()->value()) : json()},
              {"minReaderVersion", snap->protocol().min_reader_version},
              {"minWriterVersion", snap->protocol().min_writer_version},
              {"readerFeatures", snap->protocol().reader_features ? json(*snap->protocol().reader_features) : json()},
              {"writerFeatures", snap->protocol().writer_features ? json(*snap->protocol().writer_features) : json()},
              {"partitionColumns", m.partition_columns},
              {"clusteringColumns", clustering_json},
              {"configuration", m.configuration},
              {"numFiles", snap->num_files()},
              {"sizeInBytes", snap->size_bytes()},
              {"numRecords", snap->num_records()},
              {"txns", snap->txns().size()},
              {"schema", schema}};
  if (args.format == "json") {
    std::cout << out.dump() << "\n";
    return arrow::Status::OK();
  }
  std::cout << fmt::format("table       {}\n", args.path);
  if (m.name) std::cout << fmt::format("name        {}\n", *m.name);
  if (m.description) std::cout << fmt::format("description {}\n", *m.description);
  std::cout << fmt::format("id          {}\n", m.id);
  std::cout << fmt::format("version     {}{}\n", snap->version().value(),
                           snap->checkpoint_version()
                               ? fmt::format(" (checkpoint at {})", snap->checkpoint_version()->value())
                               : "");
  std::cout << fmt::format("protocol    reader {}, writer {}\n", snap->protocol().min_reader_version,
                           snap->protocol().min_writer_version);
  if (!m.partition_columns.empty()) {
    std::cout << "partitioned by " << fmt::format("{}", fmt::join(m.partition_columns, ", ")) << "\n";
  }
  if (clustering) {
    std::cout << "clustered by " << fmt::format("{}", fmt::join(clustering_json.get<std::vector<std::string>>(), ", "))
              << "\n";
  }
  for (const auto& [k, v] : m.configuration) std::cout << fmt::format("property    {} = {}\n", k, v);
  std::cout << fmt::format("files       {} ({} bytes)\n", snap->num_files(), snap->size_bytes());
  std::cout << fmt::format("records     {}\n", snap->num_records());
  std::cout << "schema\n";
  for (const auto& f : snap->schema()->fields()) {
    std::cout << fmt::format("  {:<24} {}{}\n", f->name(), delta::delta_type_name(*f->type()),
                             f->nullable() ? "" : " NOT NULL");
  }
  return arrow::Status::OK();
}

arrow::Status history(const TableArgs& args) {
  ARROW_ASSIGN_OR_RAISE(auto opened, delta::LogStore::open(args.path));
  const delta::LogStore& store = *opened;
  ARROW_ASSIGN_OR_RAISE(auto versions, store.list_commits());
  if (versions.empty()) return invalid("{} is not a Delta table (no _delta_log commits)", args.path);
  int64_t shown = 0;
  if (args.format == "text") {
    std::cout << fmt::format("{:<8} {:<24} {:<20} {}\n", "version", "timestamp", "operation",
                             "parameters / metrics");
  }
  for (auto it = versions.rbegin(); it != versions.rend() && shown < args.limit; ++it, ++shown) {
    ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(*it));
    ARROW_ASSIGN_OR_RAISE(auto actions, delta::parse_commit(text, store.display(store.commit_path(*it))));
    json info = json::object();
    for (const auto& a : actions) {
      if (const auto* c = std::get_if<delta::CommitInfo>(&a)) info = c->value;
    }
    // commitInfo is free-form: a field of an unexpected type is shown as absent.
    auto field = [&info](const char* key, json fallback) {
      auto it = info.find(key);
      return it != info.end() && it->type() == fallback.type() ? *it : fallback;
    };
    auto ts_field = info.find("timestamp");
    int64_t ts = ts_field != info.end() && ts_field->is_number_integer() ? ts_field->get<int64_t>() : 0;
    if (ts == 0) {
      ARROW_ASSIGN_OR_RAISE(ts, store.commit_timestamp(*it));
    }
    json row = {{"version", it->value()},
                {"timestamp", delta::format_timestamp_micros(ts * 1000, true, false)},
                {"operation", field("operation", "")},
                {"operationParameters", field("operationParameters", json::object())},
                {"operationMetrics", field("operationMetrics", json::object())},
                {"engineInfo", field("engineInfo", "")}};
    if (args.format == "json") {
      std::cout << row.dump() << "\n";
    } else {
      std::cout << fmt::format("{:<8} {:<24} {:<20} {} {}\n", it->value(),
                               row["timestamp"].get<std::string>(),
                               row["operation"].get<std::string>(),
                               row["operationParameters"].dump(), row["operationMetrics"].dump());
    }
  }
  return arrow::Status::OK();
}

arrow::Status files(const TableArgs& args) {
  ARROW_ASSIGN_OR_RAISE(auto opened, delta::LogStore::open(args.path));
  const delta::LogStore& store = *opened;
  ARROW_ASSIGN_OR_RAISE(auto snap, open_snapshot(args, store));
  int64_t shown = 0;
  for (const auto& f : snap->files()) {
    if (shown++ >= args.limit) break;
    json pv = json::object();
    for (const auto& [k, v] : f.partition_values) pv[k] = v ? json(*v) : json();
    auto stats = f.stats ? json::parse(*f.stats, nullptr, false) : json();
    json row = {{"path", f.path},
                {"size", f.size},
                {"partitionValues", pv},
                {"numRecords", stats.is_object() ? stats.value("numRecords", json()) : json()},
                {"modificationTime", f.modification_time}};
    if (args.format == "json") {
      std::cout << row.dump() << "\n";
    } else {
      std::cout << fmt::format("{}  {} bytes  {} rows  {}\n", f.path, f.size,
                               row["numRecords"].dump(), pv.empty() ? "" : pv.dump());
    }
  }
  return arrow::Status::OK();
}

std::string cell_text(const arrow::ChunkedArray& column, int64_t row) {
  auto scalar = column.GetScalar(row);
  if (!scalar.ok()) return "?";
  if (!(*scalar)->is_valid) return "NULL";
  return (*scalar)->ToString();
}

arrow::Status show(const TableArgs& args) {
  ARROW_ASSIGN_OR_RAISE(auto opened, delta::LogStore::open(args.path));
  const delta::LogStore& store = *opened;
  ARROW_ASSIGN_OR_RAISE(auto snap, open_snapshot(args, store));
  delta::ScanOptions options;
  options.limit = args.limit;
  ARROW_ASSIGN_OR_RAISE(auto table, delta::scan_table(store, *snap, options));
  const int64_t rows = std::min<int64_t>(table->num_rows(), args.limit);
  if (args.format == "json") {
    for (int64_t r = 0; r < rows; ++r) {
      json row = json::object();
      for (int c = 0; c < table->num_columns(); ++c) {
        auto scalar = table->column(c)->GetScalar(r);
        row[table->field(c)->name()] =
            scalar.ok() && (*scalar)->is_valid ? json((*scalar)->ToString()) : json();
      }
      std::cout << row.dump() << "\n";
    }
    return arrow::Status::OK();
  }
  std::vector<std::string> header;
  for (const auto& f : table->schema()->fields()) header.push_back(f->name());
  std::cout << fmt::format("{}\n", fmt::join(header, " | "));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<std::string> cells;
    for (int c = 0; c < table->num_columns(); ++c) cells.push_back(cell_text(*table->column(c), r));
    std::cout << fmt::format("{}\n", fmt::join(cells, " | "));
  }
  std::cout << fmt::format("({} of {} rows at version {})\n", rows, snap->num_records(),
                           snap->version().value());
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> open_input(const std::string& path) {
  auto context = [&](const arrow::Status& st) { return with_context(st, "input " + path); };
  auto file = arrow::io::ReadableFile::Open(path);
  if (!file.ok()) return context(file.status());
  if (path.ends_with(".parquet")) {
    auto reader = parquet::arrow::OpenFile(*file, arrow::default_memory_pool());
    if (!reader.ok()) return context(reader.status());
    auto batches = (*reader)->GetRecordBatchReader();
    if (!batches.ok()) return context(batches.status());
    // Keep the FileReader alive as long as its batch reader.
    std::shared_ptr<parquet::arrow::FileReader> owner = std::move(*reader);
    struct Owning : arrow::RecordBatchReader {
      std::shared_ptr<parquet::arrow::FileReader> owner;
      std::shared_ptr<arrow::RecordBatchReader> inner;
      std::shared_ptr<arrow::Schema> schema() const override { return inner->schema(); }
      arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* b) override {
        return inner->ReadNext(b);
      }
    };
    auto out = std::make_shared<Owning>();
    out->owner = owner;
    out->inner = std::shared_ptr<arrow::RecordBatchReader>(std::move(*batches));
    return out;
  }
  if (path.ends_with(".arrow") || path.ends_with(".feather") || path.ends_with(".ipc")) {
    // Memory-mapped: batches are read zero-copy, a page at a time, however large the file.
    auto mapped = arrow::io::MemoryMappedFile::Open(path, arrow::io::FileMode::READ);
    if (!mapped.ok()) return context(mapped.status());
    auto reader = arrow::ipc::RecordBatchFileReader::Open(*mapped);
    if (!reader.ok()) return context(reader.status());
    struct IpcBatches : arrow::RecordBatchReader {
      std::shared_ptr<arrow::ipc::RecordBatchFileReader> file;
      int next = 0;
      std::shared_ptr<arrow::Schema> schema() const override { return file->schema(); }
      arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
        if (next >= file->num_record_batches()) {
          batch->reset();
          return arrow::Status::OK();
        }
        return file->ReadRecordBatch(next++).Value(batch);
      }
    };
    auto out = std::make_shared<IpcBatches>();
    out->file = *reader;
    return out;
  }
  return invalid("input {}: use a .parquet or .arrow (Arrow IPC file) input", path);
}

struct AppendArgs {
  std::string path;
  std::vector<std::string> inputs;
  std::vector<std::string> partition_by;
  std::vector<std::string> cluster_by;
  std::string mode = "append";
  bool merge_schema = false;
  std::string name;
  std::string compression = "zstd";
  int64_t target_file_size = 128ll << 20;
  int64_t row_group_rows = 1 << 20;
  std::optional<int64_t> checkpoint_interval;
  int parallel_files = 0;
};

arrow::Status append(const AppendArgs& args) {
  ARROW_ASSIGN_OR_RAISE(auto store, delta::LogStore::open(args.path));
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
  // Shared, as every other writer of sluice: forget (exclusive) never runs beside an append
  // (its clean-up would delete the new files, or its readers' move skip the new rows).
  std::unique_ptr<pipeline::MaintenanceLock> lock;
  if (snapshot) {
    ARROW_ASSIGN_OR_RAISE(lock, pipeline::MaintenanceLock::acquire(*store, args.path,
                                                                   pipeline::MaintenanceLockMode::kShared,
                                                                   "table append"));
  }
  delta::WriteOptions options;
  options.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
  options.mode = args.mode == "overwrite" ? delta::WriteMode::kOverwrite : delta::WriteMode::kAppend;
  options.schema_mode = args.merge_schema ? delta::SchemaMode::kMerge : delta::SchemaMode::kStrict;
  options.partition_columns = args.partition_by;
  options.table_name = args.name;
  options.file.compression = args.compression == "snappy" ? delta::Compression::kSnappy
                             : args.compression == "none" ? delta::Compression::kUncompressed
                                                          : delta::Compression::kZstd;
  options.file.target_file_bytes = args.target_file_size;
  options.file.row_group_rows = args.row_group_rows;
  options.file.parallel_files = args.parallel_files;
  if (args.checkpoint_interval) {
    options.configuration["delta.checkpointInterval"] = std::to_string(*args.checkpoint_interval);
  }
  if (snapshot && !args.partition_by.empty() &&
      args.partition_by != snapshot->metadata().partition_columns) {
    return invalid("{} is partitioned by [{}]; --partition-by cannot change that", args.path,
                   fmt::join(snapshot->metadata().partition_columns, ", "));
  }
  if (!args.cluster_by.empty() && !args.partition_by.empty()) {
    return invalid("--cluster-by and --partition-by cannot be used together: a Delta table is either "
                   "clustered or partitioned");
  }
  if (snapshot && !args.cluster_by.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto clustered, delta::clustering_columns(*snapshot, args.path));
    std::vector<std::string> names;
    for (const auto& c : clustered.value_or(std::vector<delta::ColumnPath>{})) {
      names.push_back(delta::column_path_text(c));
    }
    if (!clustered || names != args.cluster_by) {
      return invalid("{} is {}; --cluster-by applies to a new table only (change a table's clustering "
                     "columns through its pipeline definition or Spark's ALTER TABLE ... CLUSTER BY)",
                     args.path, clustered ? fmt::format("clustered by [{}]", fmt::join(names, ", "))
                                          : std::string("not clustered"));
    }
  }
  std::unique_ptr<delta::TableWriter> writer;
  for (const auto& input : args.inputs) {
    ARROW_ASSIGN_OR_RAISE(auto reader, open_input(input));
    if (!writer) {
      if (!snapshot) {
        for (const auto& name : args.cluster_by) {
          auto column = delta::check_clustering_column(*reader->schema(), delta::column_path_of(name));
          if (!column.ok()) return with_context(column.status(), "--cluster-by");
          options.clustering_columns.push_back(std::move(*column));
        }
        if (options.clustering_columns.size() > delta::kMaxClusteringColumns) {
          return invalid("--cluster-by takes up to {} columns (Delta's limit), not {}",
                         delta::kMaxClusteringColumns, options.clustering_columns.size());
        }
      }
      ARROW_ASSIGN_OR_RAISE(writer, delta::TableWriter::make(store, snapshot, *reader->schema(), options));
    } else if (!reader->schema()->Equals(*writer->table_schema(), false)) {
      // Inputs are conformed to the schema reconciled from the first one.
      auto reconciled = delta::reconcile_schema(*writer->table_schema(), *reader->schema(),
                                                delta::SchemaMode::kStrict);
      if (!reconciled.ok()) return with_context(reconciled.status(), "input " + input);
    }
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      ARROW_RETURN_NOT_OK(with_context(reader->ReadNext(&batch), "input " + input));
      if (!batch) break;
      ARROW_RETURN_NOT_OK(writer->write(*batch));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
  delta::CommitOptions commit;
  commit.operation = "WRITE";
  commit.operation_parameters = {{"mode", args.mode == "overwrite" ? "Overwrite" : "Append"},
                                 {"partitionBy", json(args.partition_by).dump()}};
  commit.operation_metrics = {{"numFiles", std::to_string(txn.adds().size())},
                              {"numOutputRows", std::to_string(writer->rows_written())},
                              {"numOutputBytes", std::to_string(writer->bytes_written())}};
  ARROW_ASSIGN_OR_RAISE(auto result, txn.commit(commit));
  if (!result.checkpoint_status.ok()) {
    std::cerr << "sluice: warning: checkpoint failed: " << result.checkpoint_status.message() << "\n";
  }
  std::cout << fmt::format("{}: wrote {} rows in {} files as version {}\n", args.path,
                           writer->rows_written(), txn.adds().size(), result.version.value());
  if (!store->is_local()) {
    // What the write cost on the object store (the whole command: snapshot, files, commit).
    const auto r = store->objects()->requests();
    std::cerr << fmt::format("sluice: {} requests: {} (list {}, get {}, head {}, put {}, delete {})\n",
                             store->objects()->scheme(), r.total(), r.list, r.get, r.head, r.put, r.remove);
  }
  return arrow::Status::OK();
}

arrow::Status export_table(const TableArgs& args, const std::string& out) {
  ARROW_ASSIGN_OR_RAISE(auto opened, delta::LogStore::open(args.path));
  const delta::LogStore& store = *opened;
  ARROW_ASSIGN_OR_RAISE(auto snap, open_snapshot(args, store));
  ARROW_ASSIGN_OR_RAISE(auto table, delta::scan_table(store, *snap));
  auto written = [&]() -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::FileOutputStream::Open(out));
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(sink, table->schema()));
    ARROW_RETURN_NOT_OK(writer->WriteTable(*table));
    ARROW_RETURN_NOT_OK(writer->Close());
    return sink->Close();
  }();
  return io_failure(written, "cannot write", out);
}

struct VacuumArgs {
  std::string path;
  std::vector<std::string> retain;  // "168 hours", "7 days", "interval 1 week" (a bare number: hours)
  bool dry_run = false;
  bool force = false;
  std::string format = "text";
};

arrow::Status vacuum(const VacuumArgs& args) {
  ARROW_ASSIGN_OR_RAISE(auto store, delta::LogStore::open(args.path));
  delta::VacuumOptions options;
  if (!args.retain.empty()) {
    std::string text = fmt::format("{}", fmt::join(args.retain, " "));
    if (std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; })) {
      text += " hours";  // Spark's RETAIN n HOURS
    }
    auto millis = delta::parse_interval_millis(text);
    if (!millis.ok()) return with_context(millis.status(), "--retain");
    options.retain_millis = *millis;
  }
  options.mode = args.dry_run ? delta::VacuumMode::kDryRun : delta::VacuumMode::kDelete;
  options.check = args.force ? delta::RetentionCheck::kOff : delta::RetentionCheck::kEnforced;
  std::unique_ptr<pipeline::MaintenanceLock> lock;  // a dry run deletes nothing: no lock
  if (!args.dry_run) {
    ARROW_ASSIGN_OR_RAISE(lock, pipeline::MaintenanceLock::acquire(*store, args.path,
                                                                   pipeline::MaintenanceLockMode::kShared,
                                                                   "table vacuum"));
  }
  ARROW_ASSIGN_OR_RAISE(auto r, delta::vacuum(store, options));
  int64_t files = 0;
  for (const auto& f : r.candidates) files += !f.is_dir;
  const int64_t dirs = static_cast<int64_t>(r.candidates.size()) - files;
  if (args.format == "json") {
    json list = json::array();
    for (const auto& f : r.candidates) list.push_back({{"path", f.path}, {"size", f.size}, {"isDir", f.is_dir}});
    json out = {{"table", args.path}, {"dryRun", args.dry_run}, {"readVersion", r.read_version.value()},
                {"retentionMillis", r.retention_millis}, {"deleteBeforeMillis", r.delete_before_millis},
                {"files", list}, {"numFiles", files}, {"numDirectories", dirs}, {"sizeInBytes", r.bytes},
                {"numDeletedFiles", r.deleted_files}, {"numDeletedDirectories", r.deleted_dirs},
                {"startVersion", r.start_version ? json(r.start_version->value()) : json()},
                {"endVersion", r.end_version ? json(r.end_version->value()) : json()}};
    std::cout << out.dump() << "\n";
    return arrow::Status::OK();
  }
  if (args.dry_run) {
    for (const auto& f : r.candidates) std::cout << store->display(store->table_root() / f.path) << "\n";
    std::cout << fmt::format("{}: {} files and {} folders ({} bytes) not needed by version {} or by any version of "
                             "the last {:g} hours would be deleted (dry run)\n",
                             args.path, files, dirs, r.bytes, r.read_version.value(),
                             static_cast<double>(r.retention_millis) / 3'600'000.0);
    return arrow::Status::OK();
  }
  std::cout << fmt::format("{}: deleted {} files and {} folders ({} bytes); versions {} (VACUUM START) and {} "
                           "(VACUUM END)\n",
                           args.path, r.deleted_files, r.deleted_dirs, r.bytes, r.start_version->value(),
                           r.end_version->value());
  return arrow::Status::OK();
}

}  // namespace

void add_table_commands(CLI::App& app, int* exit_code) {
  auto* table = app.add_subcommand("table", "Look at or write a Delta table");
  table->require_subcommand(1);

  static TableArgs args;
  static AppendArgs append_args;
  static std::string export_path;

  auto* d = table->add_subcommand("describe", "Version, protocol, schema, size of a table");
  add_common(d, args, true, false);
  d->callback([exit_code] { *exit_code = report(describe(args)); });

  auto* h = table->add_subcommand("history", "Commits, newest first");
  add_common(h, args, false, true);
  h->callback([exit_code] { *exit_code = report(history(args)); });

  auto* f = table->add_subcommand("files", "Live data files");
  add_common(f, args, true, true);
  f->callback([exit_code] { *exit_code = report(files(args)); });

  auto* s = table->add_subcommand("show", "First rows");
  add_common(s, args, true, true);
  s->callback([exit_code] { *exit_code = report(show(args)); });

  auto* e = table->add_subcommand("export", "Write the table (at a version) to an Arrow IPC file");
  add_common(e, args, true, false);
  e->add_option("output", export_path, "Output .arrow file")->required();
  e->callback([exit_code] { *exit_code = report(export_table(args, export_path)); });

  auto* a = table->add_subcommand("append", "Write Parquet/Arrow files into a table (one commit)");
  a->add_option("path", append_args.path, "Table folder, s3://bucket/prefix or gs://bucket/prefix")->required();
  a->add_option("inputs", append_args.inputs, ".parquet or .arrow files")->required();
  a->add_option("--cluster-by", append_args.cluster_by,
                 "Clustering columns of a new table (CLUSTER BY; up to 4, e.g. user_id,amount); "
                 "`table optimize` clusters it")
      ->delimiter(',');
  a->add_option("--partition-by", append_args.partition_by, "Partition columns (new table)")
      ->delimiter(',');
  a->add_option("--mode", append_args.mode, "append or overwrite")
      ->check(CLI::IsMember({"append", "overwrite"}));
  a->add_flag("--merge-schema", append_args.merge_schema, "Add new nullable columns to the table");
  a->add_option("--name", append_args.name, "Table name (new table)");
  a->add_option("--compression", append_args.compression, "zstd, snappy or none")
      ->check(CLI::IsMember({"zstd", "snappy", "none"}));
  a->add_option("--target-file-size", append_args.target_file_size, "Bytes per data file")->transform(whole_number(1));
  a->add_option("--row-group-rows", append_args.row_group_rows, "Rows per Parquet row group")->transform(whole_number(1));
  a->add_option("--parallel-files", append_args.parallel_files, "Data files written at once (0: one per core)")
      ->transform(whole_number(0, std::numeric_limits<int>::max()));
  a->add_option("--checkpoint-interval", append_args.checkpoint_interval, "delta.checkpointInterval (new table)")
      ->transform(whole_number(1));
  a->callback([exit_code] { *exit_code = report(append(append_args)); });

  static VacuumArgs vacuum_args;
  auto* v = table->add_subcommand("vacuum", "Delete files no version inside the retention window needs");
  v->add_option("path", vacuum_args.path, "Table folder")->required();
  v->add_option("--retain", vacuum_args.retain,
                "Keep files needed in this window: '168 hours', '7 days' (default: delta.deletedFileRetentionDuration)")
      ->expected(1, 3);
  v->add_flag("--dry-run", vacuum_args.dry_run, "List what would be deleted; delete nothing");
  v->add_flag("--force", vacuum_args.force,
              "Allow a window shorter than delta.deletedFileRetentionDuration (no operation may be running)");
  v->add_option("--format", vacuum_args.format, "text or json")->check(CLI::IsMember({"text", "json"}));
  v->callback([exit_code] { *exit_code = report(vacuum(vacuum_args)); });

  add_optimize_command(*table, exit_code);
}

}  // namespace sluice::cli
