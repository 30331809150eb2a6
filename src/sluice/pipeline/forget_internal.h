// forget's internals, shared by its three files: forget.cc (the command: refusals, the erasure
// commits, the audit events), forget_tables.cc (the predicate; the tables, how each is matched,
// whether its readers caught up) and forget_cleanup.cc (files, logs and the event log cleaned
// after the erasure). Not an interface for anything else.
#pragma once

#include <arrow/api.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sluice/delta/log_cleanup.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/snapshot.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/pipeline/forget.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/sql/source.h"
#include "sluice/sql/ast.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline::forget_internal {

inline constexpr const char* kRedacted = "***";

// The predicate: its columns (bare names), its literals, and its text with them redacted.
struct Predicate {
  sql::SourceFile file;
  sql::ExprPtr expr;
  std::set<std::string> columns;
  std::vector<std::string> literals;         // every literal's text
  std::vector<std::string> string_literals;  // the non-empty string literals (raw-byte matching)
  std::string redacted;
};

// A table under <storage>/tables and how forget treats it.
struct Table {
  std::string name;
  std::shared_ptr<delta::LogStore> store;
  std::shared_ptr<const delta::Snapshot> snapshot;
  ForgetTableReport report;
  std::optional<exec::BoundExpression> condition;  // kColumns: over the table's rows
  std::optional<exec::BoundExpression> decode;     // kDecodedValue: the value's fields
  std::optional<exec::BoundExpression> decoded_condition;
  std::shared_ptr<arrow::Schema> decoded_schema;
  std::string decode_text;
  // What the clean-up has read of its log since its deletions, and the commits it made since:
  // the log cut stops on any other commit (a lockless writer's, which may name a deleted file).
  delta::LogCutCheck cut_check;
};

// --- forget_tables.cc
// Parses --where; errors never quote a literal.
arrow::Result<Predicate> parse_predicate(const std::string& where);
// `st` with every literal of the predicate replaced.
arrow::Status scrubbed(const arrow::Status& st, const Predicate& p);
// The commitInfo operationParameters of an erasure commit (literals redacted).
nlohmann::json forget_parameters(const Predicate& p);
arrow::Result<std::vector<std::string>> objects_under(const storage::ObjectStore& objects,
                                                      const std::filesystem::path& dir);
arrow::Result<std::vector<Table>> list_tables(const PipelineConfig& config, const Graph* graph);
arrow::Status plan_tables(std::vector<Table>& tables, const Predicate& p, const PipelineConfig& config,
                          const Graph* graph, std::vector<std::string>& warnings);
bool carries(const Table& t);
bool is_view(const Table& t, const Graph* graph);
bool is_streaming_reader(const Table& t, const Graph* graph);
std::vector<std::pair<std::string, int64_t>> progress_on(const delta::Snapshot& reader, const std::string& upstream_id);
arrow::Status check_readers_caught_up(const std::vector<Table>& tables, const PipelineConfig& config,
                                      const Graph* graph);

// --- forget_cleanup.cc
arrow::Status vacuum_and_checkpoint(const std::shared_ptr<delta::LogStore>& store, ForgetTableReport& report,
                                    const std::string& name, int64_t started_millis, delta::LogCutCheck& check);
arrow::Status cut_log(const std::shared_ptr<delta::LogStore>& store, ForgetTableReport& report,
                      const std::string& name, const delta::LogCutCheck& check);
// move=false: only checks that nothing but forget's own commits lies past each reader's
// progress (run for every reader before any is moved).
arrow::Status advance_readers(Table& reader, const std::vector<Table>& tables, bool move);
arrow::Result<int64_t> scrub_event_log(const std::shared_ptr<delta::LogStore>& store, const Predicate& p);
arrow::Status remove_state(const Table& t);
arrow::Result<int64_t> start_time(const PipelineConfig& config);

}  // namespace sluice::pipeline::forget_internal
