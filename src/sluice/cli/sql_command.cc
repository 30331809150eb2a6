// `sluice sql <pipeline-dir-or-table> "<statement>"`: DELETE, UPDATE and MERGE INTO on Delta
// tables, and queries over them. In a pipeline folder a bare name is one of its datasets; with
// a table path a bare name is that table (its folder's name); delta.`<path>` names any table.
#include <CLI/CLI.hpp>
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "sluice/cli/number_option.h"
#include "sluice/cli/table_commands.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/dml/statement_runner.h"
#include "sluice/pipeline/maintenance_lock.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/sql/parser.h"

namespace sluice::cli {

namespace {

struct SqlArgs {
  std::string where;
  std::string statement;
  std::string format = "text";
  std::string output;
  int64_t limit = 1000;
  bool scan_report = false;
  bool no_skipping = false;
};

arrow::Result<dml::DmlTarget> open_at(std::shared_ptr<delta::LogStore> store, std::string name) {
  dml::DmlTarget t;
  t.name = std::move(name);
  t.store = std::move(store);
  ARROW_ASSIGN_OR_RAISE(t.snapshot, delta::Snapshot::load(*t.store));
  return t;
}

std::string joined(const std::vector<std::string>& name) {
  std::string out;
  for (const auto& p : name) out += (out.empty() ? "" : ".") + p;
  return out;
}

// One table given by path: a bare name is that table, by its folder's name.
class PathCatalog : public dml::TableCatalog {
 public:
  explicit PathCatalog(std::string location) : location_(std::move(location)) {
    std::string trimmed = location_;
    while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
    name_ = trimmed.substr(trimmed.find_last_of('/') + 1);
  }
  arrow::Result<dml::DmlTarget> open(const std::vector<std::string>& name) const override {
    ARROW_ASSIGN_OR_RAISE(auto by_path, dml::open_delta_path(name));
    if (by_path) return std::move(*by_path);
    if (name.size() == 1 && to_lower(name[0]) == to_lower(name_)) {
      ARROW_ASSIGN_OR_RAISE(auto store, delta::LogStore::open(location_));
      return open_at(std::move(store), name_);
    }
    return invalid("unknown table '{}': `sluice sql {}` knows the table as '{}'; name any other table "
                   "as delta.`<path>`",
                   joined(name), location_, name_);
  }

 private:
  std::string location_;
  std::string name_;
};

// A pipeline's datasets, in its storage.
class PipelineCatalog : public dml::TableCatalog {
 public:
  explicit PipelineCatalog(pipeline::PipelineConfig config) : config_(std::move(config)) {}
  arrow::Result<dml::DmlTarget> open(const std::vector<std::string>& name) const override {
    ARROW_ASSIGN_OR_RAISE(auto by_path, dml::open_delta_path(name));
    if (by_path) return std::move(*by_path);
    std::vector<std::string> parts = name;
    if (parts.size() > 1 && to_lower(parts[0]) == "live") parts.erase(parts.begin());
    if (parts.size() != 1) {
      return invalid("unknown table '{}': name a dataset of pipeline '{}' or delta.`<path>`", joined(name),
                     config_.name);
    }
    auto store = std::make_shared<delta::LogStore>(config_.objects, config_.table_path(parts[0]).string());
    ARROW_ASSIGN_OR_RAISE(auto latest, store->latest_version());
    if (!latest) {
      return invalid("pipeline '{}' has no table '{}' (nothing at {}): run the pipeline first, or check "
                     "the name",
                     config_.name, parts[0], store->location());
    }
    return open_at(std::move(store), parts[0]);
  }

 private:
  pipeline::PipelineConfig config_;
};

arrow::Status print_rows(const arrow::Table& table, const SqlArgs& args) {
  if (!args.output.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::FileOutputStream::Open(args.output));
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(sink, table.schema()));
    ARROW_RETURN_NOT_OK(writer->WriteTable(table));
    ARROW_RETURN_NOT_OK(writer->Close());
    ARROW_RETURN_NOT_OK(sink->Close());
    std::cout << fmt::format("{} row(s) written to {}\n", table.num_rows(), args.output);
    return arrow::Status::OK();
  }
  const int64_t rows = std::min<int64_t>(table.num_rows(), args.limit);
  auto cell = [&](int c, int64_t r) -> std::optional<std::string> {
    auto scalar = table.column(c)->GetScalar(r);
    if (!scalar.ok() || !(*scalar)->is_valid) return std::nullopt;
    return (*scalar)->ToString();
  };
  if (args.format == "json") {
    for (int64_t r = 0; r < rows; ++r) {
      nlohmann::json row = nlohmann::json::object();
      for (int c = 0; c < table.num_columns(); ++c) {
        auto v = cell(c, r);
        row[table.field(c)->name()] = v ? nlohmann::json(*v) : nlohmann::json();
      }
      std::cout << row.dump() << "\n";
    }
    return arrow::Status::OK();
  }
  std::vector<std::string> header;
  for (const auto& f : table.schema()->fields()) header.push_back(f->name());
  std::cout << fmt::format("{}\n", fmt::join(header, " | "));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<std::string> cells;
    for (int c = 0; c < table.num_columns(); ++c) cells.push_back(cell(c, r).value_or("NULL"));
    std::cout << fmt::format("{}\n", fmt::join(cells, " | "));
  }
  std::cout << fmt::format("({} of {} rows)\n", rows, table.num_rows());
  return arrow::Status::OK();
}

arrow::Status run_sql(const SqlArgs& args) {
  std::unique_ptr<dml::TableCatalog> catalog;
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::path(args.where) / "pipeline.yaml", ec)) {
    ARROW_ASSIGN_OR_RAISE(auto config, pipeline::load_pipeline_config(args.where));
    catalog = std::make_unique<PipelineCatalog>(std::move(config));
  } else {
    catalog = std::make_unique<PathCatalog>(args.where);
  }
  sql::SourceFile file{"<statement>", args.statement};
  if (args.scan_report || args.no_skipping) {
    ARROW_ASSIGN_OR_RAISE(auto command, sql::parse_command(file));
    if (!command.query) {
      return invalid("{} applies to a query (SELECT); DELETE, UPDATE and MERGE always skip files by their "
                     "condition and report the files they read in their operation metrics: drop it",
                     args.scan_report ? "--scan-report" : "--no-skipping");
    }
  }
  std::unique_ptr<pipeline::MaintenanceLock> lock;
  {
    // A DELETE, UPDATE or MERGE holds its target's maintenance lock (shared) from before it reads
    // the table until its commit, or the deletion of its files, is done: forget is refused
    // meanwhile, and a running forget refuses it. A query takes none.
    ARROW_ASSIGN_OR_RAISE(auto command, sql::parse_command(file));
    const sql::TableRef* target = command.delete_ ? command.delete_->target.get()
                                  : command.update ? command.update->target.get()
                                  : command.merge  ? command.merge->target.get()
                                                   : nullptr;
    if (target) {
      auto opened = catalog->open(target->name);
      if (opened.ok()) {  // else the statement reports the unknown table at its position
        ARROW_ASSIGN_OR_RAISE(lock, pipeline::MaintenanceLock::acquire(
                                        *opened->store, opened->name, pipeline::MaintenanceLockMode::kShared,
                                        fmt::format("sql {}", command.delete_   ? "DELETE"
                                                              : command.update ? "UPDATE"
                                                                               : "MERGE")));
      }
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto result, dml::run_sql_command(file, *catalog, 5,
                                                          args.no_skipping ? dml::FileSkipping::kOff
                                                                           : dml::FileSkipping::kOn));
  if (result.rows) {
    ARROW_RETURN_NOT_OK(print_rows(*result.rows, args));
    if (args.scan_report) {
      for (const auto& scan : result.scans) {
        nlohmann::json line = {{"table", scan.table},
                               {"filesScanned", scan.report.files_scanned},
                               {"filesTotal", scan.report.files_total},
                               {"bytesScanned", scan.report.bytes_scanned},
                               {"bytesTotal", scan.report.bytes_total},
                               {"rowGroupsScanned", scan.report.row_groups_scanned},
                               {"rowGroupsInFilesScanned", scan.report.row_groups_total},
                               {"skipping", scan.skipping}};
        std::cerr << line.dump() << "\n";
      }
    }
    return arrow::Status::OK();
  }
  const auto& outcome = *result.dml;
  if (args.format == "json") {
    nlohmann::json out = {{"operation", outcome.operation},
                          {"version", outcome.version.value()},
                          {"attempts", outcome.attempts},
                          {"committed", outcome.committed},
                          {"operationMetrics", outcome.metrics}};
    std::cout << out.dump() << "\n";
    return arrow::Status::OK();
  }
  std::string metrics;
  for (const auto& [k, v] : outcome.metrics.items()) {
    if (k.find("Rows") != std::string::npos || k.find("Files") != std::string::npos) {
      metrics += fmt::format(" {}={}", k, v.get<std::string>());
    }
  }
  if (!outcome.committed) {
    std::cout << fmt::format("{}: no row matched, nothing committed (table version {})\n", outcome.operation,
                             outcome.version.value());
    return arrow::Status::OK();
  }
  std::cout << fmt::format("{}: committed table version {}{};{}\n", outcome.operation, outcome.version.value(),
                           outcome.attempts > 1 ? fmt::format(" (attempt {})", outcome.attempts) : "",
                           metrics);
  return arrow::Status::OK();
}

}  // namespace

void add_sql_command(CLI::App& app, int* exit_code) {
  static SqlArgs args;
  auto* cmd = app.add_subcommand(
      "sql", "Run DELETE, UPDATE, MERGE INTO or a SELECT on the tables of a pipeline or a table path");
  cmd->add_option("pipeline-dir-or-table", args.where,
                  "A pipeline folder (bare names are its datasets) or a table path/URI (a bare name is "
                  "that table, by its folder's name)")
      ->required();
  cmd->add_option("statement", args.statement, "One SQL statement; delta.`<path>` names any table")
      ->required();
  cmd->add_option("--format", args.format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--output", args.output, "Write a query's rows to this Arrow IPC file");
    cmd->add_option("--limit", args.limit, "At most this many rows printed (text/json)")->transform(whole_number(0));
  cmd->add_flag("--scan-report", args.scan_report,
                "After a query's rows, print to stderr one JSON line per Delta table it read: files and "
                "bytes scanned of all (after file skipping), the row groups read of those files' (after skipping "
                "by row-group statistics) and the skipping predicate of its WHERE");
  cmd->add_flag("--no-skipping", args.no_skipping,
                "Read every file of each table a query reads (no skipping by partition values or stats)");
  cmd->callback([exit_code] {
    auto st = run_sql(args);
    if (!st.ok()) {
      std::cerr << "sluice: error: " << st.message() << "\n";
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
