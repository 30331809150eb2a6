// `sluice forget <pipeline-dir> --where "<predicate>" [--allow-partial] [--format text|json]`:
// erases the matching rows from every table of the pipeline that carries the predicate's
// columns (pipeline/forget.h), then prints what was done per table.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>

#include "sluice/cli/table_commands.h"
#include "sluice/pipeline/forget.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/sql_sources.h"

namespace sluice::cli {

namespace {

struct ForgetArgs {
  std::string dir;
  std::string where;
  bool allow_partial = false;
  std::string format = "text";
};

arrow::Result<pipeline::ForgetReport> run_forget(const ForgetArgs& args, const char* program) {
  ARROW_ASSIGN_OR_RAISE(auto config, pipeline::load_pipeline_config(args.dir));
  ARROW_ASSIGN_OR_RAISE(auto files, pipeline::load_sql_sources(config));
  std::optional<pipeline::Graph> graph;
  if (!files.empty()) {
    ARROW_ASSIGN_OR_RAISE(graph, pipeline::build_graph(std::move(files)));
  }
  pipeline::ForgetOptions options;
  options.where = args.where;
  options.allow_partial = args.allow_partial;
  options.program = program;
  return pipeline::forget(config, graph ? &*graph : nullptr, options);
}

void print(const pipeline::ForgetReport& report, const std::string& format) {
  if (format == "json") {
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& t : report.tables) {
      tables.push_back({{"table", t.table},
                        {"match", pipeline::forget_match_name(t.match)},
                        {"how", t.how},
                        {"leftBehind", t.left_behind.empty() ? nlohmann::json() : nlohmann::json(t.left_behind)},
                        {"rowsErased", t.rows_erased},
                        {"versionBefore", t.version_before},
                        {"eraseVersion", t.erase_version ? nlohmann::json(*t.erase_version) : nlohmann::json()},
                        {"versionAfter", t.version_after >= 0 ? nlohmann::json(t.version_after) : nlohmann::json()},
                        {"filesDeleted", t.files_deleted},
                        {"logFilesDeleted", t.log_files_deleted}});
    }
    std::cout << nlohmann::json({{"predicate", report.predicate},
                                 {"literalsRedacted", report.literals_redacted},
                                 {"eventLogRowsScrubbed", report.event_log_rows_scrubbed},
                                 {"auditUpdateId", report.audit_event_id},
                                 {"tables", tables}})
                     .dump()
              << "\n";
    return;
  }
  std::cout << fmt::format("forget where {} ({} literal(s) redacted)\n", report.predicate, report.literals_redacted);
  for (const auto& t : report.tables) {
    std::cout << fmt::format("{}: {}", t.table, pipeline::forget_match_name(t.match));
    if (t.match == pipeline::ForgetMatch::kColumns || t.match == pipeline::ForgetMatch::kDecodedValue) {
      std::cout << fmt::format(", {} rows erased{}; {} files and {} log files deleted; log starts at version {}",
                               t.rows_erased,
                               t.erase_version ? fmt::format(" (version {})", *t.erase_version) : std::string(),
                               t.files_deleted, t.log_files_deleted, t.version_after);
    }
    std::cout << " (" << t.how << ")";
    if (!t.left_behind.empty()) std::cout << "; left behind: " << t.left_behind;
    std::cout << "\n";
  }
  std::cout << fmt::format("event log: {} rows scrubbed; audit events under update_id {}\n",
                           report.event_log_rows_scrubbed, report.audit_event_id);
}

}  // namespace

void add_forget_command(CLI::App& app, int* exit_code) {
  static ForgetArgs args;
  auto* cmd = app.add_subcommand(
      "forget", "Erase the rows a predicate matches from every table of a pipeline (GDPR), with their history");
  cmd->add_option("pipeline-dir", args.dir, "Folder holding pipeline.yaml")->required();
  cmd->add_option("--where", args.where, "Which rows, e.g. \"user_id = 'u-42'\" (bare column names)")->required();
  cmd->add_flag("--allow-partial", args.allow_partial,
                "Erase where the predicate can be matched even if a table carrying its columns cannot be");
  cmd->add_option("--format", args.format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->callback([exit_code] {
    auto report = run_forget(args, "sluice");
    if (!report.ok()) {
      std::cerr << "sluice: error: " << report.status().message() << "\n";
      *exit_code = 1;
      return;
    }
    for (const auto& w : report->warnings) std::cerr << "sluice: warning: " << w << "\n";
    print(*report, args.format);
  });
}

}  // namespace sluice::cli
