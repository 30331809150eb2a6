// `sluice forget`: the predicate, the tables under a pipeline's storage, how each is matched
// (columns, a decoded Kafka value, lineage) and the refusals that come before any change.
#include "sluice/pipeline/forget_internal.h"


#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "sluice/common/failpoint.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/log_cleanup.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/table.h"
#include "sluice/delta/transaction.h"
#include "sluice/delta/vacuum.h"
#include "sluice/dml/assignments.h"
#include "sluice/dml/delete_update.h"
#include "sluice/dml/table_rewrite.h"
#include "sluice/exec/expression_binder.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/run_lock.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/state_store.h"
#include "sluice/sql/parser.h"
#include "sluice/sql/types.h"
#include "sluice/storage/local_store.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline::forget_internal {

namespace cp = arrow::compute;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Any quoted text and digit run of a message replaced, for errors about a predicate whose
// literals are not known (it did not parse).
std::string mask_quoted_and_digits(const std::string& text) {
  // The "--where:line:col: error: " prefix stays as it is.
  const size_t start = text.find("error: ");
  std::string out = start == std::string::npos ? std::string() : text.substr(0, start + 7);
  for (size_t i = out.size(); i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"' || c == '`') {
      const size_t end = text.find(c, i + 1);
      out += c;
      out += kRedacted;
      if (end == std::string::npos) return out;
      out += c;
      i = end;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]))) ++i;
      out += '#';
    } else {
      out += c;
    }
  }
  return out;
}

// `text` with every literal of the predicate replaced: no message of forget quotes one.
std::string scrub(std::string text, const Predicate& p) {
  for (const auto& lit : p.literals) {
    if (lit.empty()) continue;
    for (size_t at = text.find(lit); at != std::string::npos; at = text.find(lit, at + 3)) {
      text.replace(at, lit.size(), kRedacted);
    }
  }
  return text;
}

}  // namespace

arrow::Status scrubbed(const arrow::Status& st, const Predicate& p) {
  if (st.ok()) return st;
  return arrow::Status(st.code(), scrub(st.message(), p), st.detail());  // a conflict stays one
}

namespace {

arrow::Status walk(const sql::Expr& e, Predicate& p, bool redact_only, sql::Expr* mut) {
  if (e.query) return invalid("--where: a subquery is not supported in a forget predicate");
  if (e.kind == sql::ExprKind::kStar) return invalid("--where: '*' is not a column of a forget predicate");
  if (e.kind == sql::ExprKind::kColumn && !redact_only) {
    if (e.parts.size() != 1) {
      return invalid("--where: name columns without a qualifier (found '{}'): the predicate applies to "
                     "every table of the pipeline",
                     scrub(fmt::format("{}", fmt::join(e.parts, ".")), p));
    }
    p.columns.insert(e.parts[0]);
  }
  if (e.kind == sql::ExprKind::kLiteral && e.literal_type != "null" && e.literal_type != "true" &&
      e.literal_type != "false") {
    if (redact_only) {
      mut->value = kRedacted;
      mut->literal_type = "string";
    } else {
      p.literals.push_back(e.value);
      if (e.literal_type == "string" && !e.value.empty()) p.string_literals.push_back(e.value);
    }
  }
  for (size_t i = 0; i < e.args.size(); ++i) {
    if (!e.args[i]) continue;
    ARROW_RETURN_NOT_OK(walk(*e.args[i], p, redact_only, redact_only ? mut->args[i].get() : nullptr));
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<Predicate> parse_predicate(const std::string& where) {
  Predicate p;
  p.file = sql::SourceFile{"--where", where};
  auto parsed = sql::parse_expression(p.file);
  if (!parsed.ok()) {
    // The parser quotes the text; its literals are not known, so every quoted part is masked.
    const auto& m = parsed.status().message();
    return invalid("--where does not parse as a SQL expression: {} (literals masked)",
                   mask_quoted_and_digits(m.substr(0, m.find('\n'))));
  }
  p.expr = std::move(*parsed);
  ARROW_RETURN_NOT_OK(walk(*p.expr, p, false, nullptr));
  if (p.columns.empty()) return invalid("--where names no column: say which rows to erase, e.g. user_id = '...'");
  auto copy = sql::parse_expression(p.file);
  if (!copy.ok()) return copy.status();
  ARROW_RETURN_NOT_OK(walk(**copy, p, true, copy->get()));
  p.redacted = dml::condition_text(**copy);
  return p;
}

json forget_parameters(const Predicate& p) {
  // Spark's DELETE parameters, the predicate's literals redacted; the marker tells readers and
  // people what this commit is.
  return {{"predicate", json::array({p.redacted}).dump()},
          {"sluice.forget", "true"},
          {"literalsRedacted", std::to_string(p.literals.size())}};
}


namespace {

bool is_raw_value(const arrow::Schema& schema) {
  auto value = schema.GetFieldByName("value");
  return value && (value->type()->id() == arrow::Type::BINARY || value->type()->id() == arrow::Type::STRING ||
                   value->type()->id() == arrow::Type::LARGE_BINARY);
}

}  // namespace

// Every object below folder `dir` of `objects`, as paths relative to it ('/'-separated),
// ascending: the local store walks its folders, an object store lists the prefix once.
arrow::Result<std::vector<std::string>> objects_under(const storage::ObjectStore& objects, const fs::path& dir) {
  std::vector<std::string> out;
  if (&objects != storage::local_store().get()) {
    ARROW_ASSIGN_OR_RAISE(auto listed, objects.list_recursive(dir.string()));
    for (auto& info : listed) out.push_back(std::move(info.name));
    return out;
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) out.push_back(it->path().lexically_relative(dir).generic_string());
  }
  if (ec) return io_error("cannot list {}: {}", dir.string(), ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// The tables under <storage>/tables: the pipeline's datasets upstream first, then the rest
// (side tables, tables of datasets no longer defined) by name. A table is a folder with a
// _delta_log/ (on an object store: one listing of the prefix, every object under tables/).
arrow::Result<std::vector<Table>> list_tables(const PipelineConfig& config, const Graph* graph) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  std::set<std::string> with_log;
  const fs::path root = config.storage / "tables";
  if (config.storage_is_local()) {
    // Each entry's _delta_log/ asked for by path: a table folder that is a symlink is followed
    // (a recursive walk would not descend into it and forget would skip the table).
    std::error_code ec;
    if (fs::is_directory(root, ec)) {
      for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::error_code dir_ec;
        if (fs::is_directory(it->path() / "_delta_log", dir_ec)) with_log.insert(it->path().filename().string());
      }
    }
    if (ec) return io_error("forget: cannot list {}: {}", root.string(), ec.message());
  } else {
    ARROW_ASSIGN_OR_RAISE(auto listed, objects_under(*config.objects, root));
    for (const auto& rel : listed) {
      const size_t slash = rel.find('/');
      if (slash != std::string::npos && rel.compare(slash, 12, "/_delta_log/") == 0) {
        with_log.insert(rel.substr(0, slash));
      }
    }
  }
  auto has_log = [&](const std::string& name) { return with_log.count(name) > 0; };
  if (graph) {
    // A dataset of the pipeline whose table the listing missed would keep the value while
    // forget reports it erased: refused before anything changes.
    std::vector<std::string> missed;
    for (const auto& name : graph->order) {
      if (has_log(name)) continue;
      delta::LogStore store(config.objects, config.table_path(name).string());
      ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(store));
      if (snapshot) missed.push_back(name);
    }
    if (!missed.empty()) {
      return invalid("forget on pipeline '{}' is refused: the table(s) {} of its datasets exist but were not found "
                     "listing {} (a link or a folder the listing cannot see); forget would leave them as they are. "
                     "Nothing was changed",
                     config.name, fmt::join(missed, ", "), config.storage_display() + "/tables");
    }
  }
  if (graph) {
    for (const auto& name : graph->order) {
      if (has_log(name) && seen.insert(name).second) names.push_back(name);
    }
  }
  std::vector<std::string> rest;
  for (const auto& name : with_log) {
    if (!seen.count(name)) rest.push_back(name);
  }
  std::sort(rest.begin(), rest.end());
  names.insert(names.end(), rest.begin(), rest.end());
  std::vector<Table> tables;
  for (const auto& name : names) {
    Table t;
    t.name = name;
    t.store = std::make_shared<delta::LogStore>(config.objects, config.table_path(name).string());
    ARROW_ASSIGN_OR_RAISE(t.snapshot, delta::load_latest_if_exists(*t.store));
    if (!t.snapshot) continue;
    t.report.table = name;
    t.report.version_before = t.snapshot->version().value();
    tables.push_back(std::move(t));
  }
  return tables;
}

// How each table is matched: the predicate binds to its columns; or it has Kafka's raw value,
// decoded with from_json into the predicate's columns (typed as a table that has them types
// them); or a column derives (column lineage) from the predicate's columns under another name
// or shape, which the predicate cannot be evaluated on; or it does not carry them.
arrow::Status plan_tables(std::vector<Table>& tables, const Predicate& p, const PipelineConfig& config,
                          const Graph* graph, std::vector<std::string>& warnings) {
  std::map<std::string, std::string> types;  // predicate column -> SQL type, from a table that has it
  for (const auto& t : tables) {
    for (const auto& c : p.columns) {
      auto f = t.snapshot->schema()->GetFieldByName(c);
      if (f && !types.count(c)) types[c] = sql::sql_type_name(*f->type());
    }
  }
  std::map<std::string, std::vector<std::pair<std::string, std::set<std::string>>>> lineage;
  if (graph) {
    auto l = sql_pipeline_lineage(config, *graph);
    if (l.ok()) {
      lineage = std::move(*l);
    } else {
      warnings.push_back("column lineage unavailable (" + scrub(l.status().message(), p) +
                         "): tables are matched by column names only");
    }
  }
  // "<dataset>.<column>" holding or derived from a predicate column, upstream first.
  std::set<std::string> tainted;
  // dataset -> its tainted columns with their sources, for messages. Lineage can name a column the
  // stored table lacks (an APPLY CHANGES target's COLUMNS list keeps fewer than its source has):
  // only the columns the table really has count below.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> derived_columns;
  if (graph) {
    for (const auto& name : graph->order) {
      if (!lineage.count(name)) continue;
      for (const auto& [column, sources] : lineage.at(name)) {
        bool hit = p.columns.count(column) > 0;
        for (const auto& s : sources) hit = hit || tainted.count(s) > 0;
        if (!hit) continue;
        tainted.insert(name + "." + column);
        std::string from;
        for (const auto& s : sources) from += (from.empty() ? "" : ", ") + s;
        derived_columns[name].push_back({column, column + " <- " + from});
      }
    }
  }
  for (auto& t : tables) {
    const auto& schema = t.snapshot->schema();
    auto& r = t.report;
    bool all = true;
    for (const auto& c : p.columns) all = all && schema->GetFieldByName(c) != nullptr;
    if (all) {
      exec::ExpressionBinder binder(p.file, schema);
      auto bound = binder.bind(*p.expr);
      if (!bound.ok()) return scrubbed(with_context(bound.status(), "table " + t.name), p);
      if (bound->type->id() != arrow::Type::BOOL && bound->type->id() != arrow::Type::NA) {
        return invalid("--where must be a condition (BOOLEAN), but it is {}", bound->type->ToString());
      }
      t.condition = std::move(*bound);
      r.match = ForgetMatch::kColumns;
      r.how = fmt::format("rows where {} (columns {})", p.redacted, fmt::join(p.columns, ", "));
      continue;
    }
    if (is_raw_value(*schema)) {
      std::string ddl;
      for (const auto& c : p.columns) {
        ddl += fmt::format("{}{} {}", ddl.empty() ? "" : ", ", c, types.count(c) ? types.at(c) : "STRING");
      }
      t.decode_text = fmt::format("from_json(CAST(value AS STRING), '{}')", ddl);
      sql::SourceFile decode_file{"<forget decode of " + t.name + ".value>", t.decode_text};
      ARROW_ASSIGN_OR_RAISE(auto decode_expr, sql::parse_expression(decode_file));
      exec::ExpressionBinder binder(decode_file, schema);
      auto decode = binder.bind(*decode_expr);
      if (!decode.ok()) return with_context(decode.status(), "table " + t.name);
      const auto& st = static_cast<const arrow::StructType&>(*decode->type);
      t.decoded_schema = arrow::schema(st.fields());
      exec::ExpressionBinder on_fields(p.file, t.decoded_schema);
      auto cond = on_fields.bind(*p.expr);
      if (!cond.ok()) return scrubbed(with_context(cond.status(), "table " + t.name), p);
      t.decode = std::move(*decode);
      t.decoded_condition = std::move(*cond);
      r.match = ForgetMatch::kDecodedValue;
      r.how = fmt::format("Kafka value decoded as {}; a record that does not decode is matched by its bytes "
                          "holding one of the predicate's {} string literal(s)",
                          t.decode_text, p.string_literals.size());
      continue;
    }
    const std::pair<std::string, std::string>* stored_derived = nullptr;
    if (auto it = derived_columns.find(t.name); it != derived_columns.end()) {
      for (const auto& d : it->second) {
        if (schema->GetFieldByName(d.first) != nullptr) {
          stored_derived = &d;
          break;
        }
      }
    }
    if (stored_derived) {
      r.match = ForgetMatch::kUnmatched;
      r.how = fmt::format("column {} derives from the predicate's columns, but the table lacks {}",
                          stored_derived->second, fmt::join(p.columns, ", "));
      continue;
    }
    r.match = ForgetMatch::kNotCarried;
    r.how = fmt::format("no column is or derives from {}", fmt::join(p.columns, ", "));
  }
  if (!graph) return arrow::Status::OK();
  // Kafka's raw key and value are matched only as forget decodes the value (its top-level
  // fields named as the predicate's columns). A column a flow derives from them otherwise (the
  // key cast to a predicate column, a renamed or nested field, a kept struct) may hold the
  // value where forget would not look: refused, naming the flow's column, and the tables
  // downstream of it too.
  std::set<std::string> raw;  // "<table>.key" / "<table>.value" of the raw Kafka tables
  std::map<std::string, Table*> by_name;
  for (auto& t : tables) {
    by_name[t.name] = &t;
    if (t.report.match == ForgetMatch::kDecodedValue) {
      raw.insert(t.name + ".key");
      raw.insert(t.name + ".value");
    }
  }
  if (raw.empty()) return arrow::Status::OK();
  std::set<std::string> opaque;  // "<dataset>.<column>" derived from a raw key/value forget does not decode
  for (const auto& name : graph->order) {
    if (!lineage.count(name) || !by_name.count(name)) continue;
    Table& t = *by_name.at(name);
    for (const auto& [column, sources] : lineage.at(name)) {
      std::string from_raw, from_opaque;
      for (const auto& src : sources) {
        if (raw.count(src)) from_raw = src;
        if (opaque.count(src)) from_opaque = src;
      }
      if (from_raw.empty() && from_opaque.empty()) continue;
      const std::string up = from_raw.empty() ? from_opaque : from_raw;
      const bool key = up.size() > 4 && up.compare(up.size() - 4, 4, ".key") == 0 && !from_raw.empty();
      if (t.report.match == ForgetMatch::kColumns) {
        // Its rows are matched by the predicate's columns; a predicate column taken from the
        // raw key means the raw table's key holds the value, which forget does not match.
        if (key && p.columns.count(column)) {
          const std::string raw_table = up.substr(0, up.size() - 4);
          Table& r = *by_name.at(raw_table);
          if (r.report.left_behind.empty()) {
            r.report.left_behind = fmt::format(
                "its Kafka key holds the value (flow {} reads it as column {}), and forget matches only the "
                "decoded value",
                name, column);
          }
        }
        continue;
      }
      if (t.report.match != ForgetMatch::kNotCarried && t.report.match != ForgetMatch::kUnmatched) continue;
      opaque.insert(name + "." + column);
      if (t.report.match == ForgetMatch::kNotCarried) {
        t.report.match = ForgetMatch::kUnmatched;
        t.report.how = fmt::format(
            "column {} of flow {} derives from {} in a way forget does not decode (the Kafka key, a renamed or "
            "nested field, a whole struct) and may hold the value, but the table lacks {}",
            column, name, up, fmt::join(p.columns, ", "));
      }
    }
  }
  return arrow::Status::OK();
}

bool carries(const Table& t) {
  return t.report.match == ForgetMatch::kColumns || t.report.match == ForgetMatch::kDecodedValue;
}

bool is_view(const Table& t, const Graph* graph) {
  if (!graph) return false;
  auto d = graph->datasets.find(t.name);
  return d != graph->datasets.end() && d->second.kind == sql::DatasetKind::kMaterializedView;
}

// A streaming table of the pipeline: a flow reads its sources by its txn progress. Side tables
// (quarantine, dead letter) record the same progress ids only to skip rows they already hold,
// and only when they commit, so theirs may lag without anything to read.
bool is_streaming_reader(const Table& t, const Graph* graph) {
  if (!graph) return false;
  auto d = graph->datasets.find(t.name);
  return d != graph->datasets.end() && d->second.kind == sql::DatasetKind::kStreamingTable;
}

// The progress ids (txn appIds) of `reader` that name `upstream`'s table id.
std::vector<std::pair<std::string, int64_t>> progress_on(const delta::Snapshot& reader, const std::string& upstream_id) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& [app_id, txn] : reader.txns()) {
    size_t at = 0;
    bool names = false;
    while (at <= app_id.size() && !names) {
      size_t slash = app_id.find('/', at);
      if (slash == std::string::npos) slash = app_id.size();
      names = app_id.compare(at, slash - at, upstream_id) == 0 && slash - at == upstream_id.size();
      at = slash + 1;
    }
    if (names) out.emplace_back(app_id, txn.version);
  }
  return out;
}

// Refuses while a flow reading a table to be erased has not read all its upstream committed:
// the erasure's clean-up deletes the commits it would still read. Erasure commits themselves
// (dataChange=false) are skipped by readers, so a forget interrupted after them still passes.
arrow::Status check_readers_caught_up(const std::vector<Table>& tables, const PipelineConfig& config,
                                     const Graph* graph) {
  std::vector<std::string> behind;
  for (const auto& reader : tables) {
    // Views recompute in full after forget (their state is dropped).
    if (!is_streaming_reader(reader, graph)) continue;
    for (const auto& up : tables) {
      if (!carries(up) || up.name == reader.name) continue;
      const int64_t latest = up.snapshot->version().value();
      for (const auto& [app_id, version] : progress_on(*reader.snapshot, up.snapshot->metadata().id)) {
        if (version < 0 || version >= latest) continue;  // < 0: reset by a full refresh, reads the snapshot
        auto pending = delta::added_files_between(*up.store, DeltaVersion(version), DeltaVersion(latest),
                                                  delta::ChangePolicy::kFail);
        if (pending.ok() && pending->empty()) continue;
        behind.push_back(fmt::format("table {} has read {} up to version {} of {}", reader.name, up.name, version,
                                     latest));
      }
    }
  }
  if (behind.empty()) return arrow::Status::OK();
  return invalid(
      "forget on pipeline '{}' is refused: a downstream flow has not read everything its upstream committed ({}); "
      "the clean-up would delete the commits it still has to read. Run the pipeline once (sluice run {} --once), "
      "then run forget again. Nothing was changed",
      config.name, fmt::join(behind, "; "), config.dir.string());
}

}  // namespace sluice::pipeline::forget_internal
