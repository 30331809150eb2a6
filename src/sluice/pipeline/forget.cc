// `sluice forget`: erasure along column lineage, clean-up of everything older, audit event.
#include "sluice/pipeline/forget.h"

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

namespace sluice::pipeline {

namespace cp = arrow::compute;
namespace fs = std::filesystem;
using nlohmann::json;

const char* forget_match_name(ForgetMatch match) {
  switch (match) {
    case ForgetMatch::kColumns: return "columns";
    case ForgetMatch::kDecodedValue: return "decoded Kafka value";
    case ForgetMatch::kNotCarried: return "not carried";
    case ForgetMatch::kUnmatched: return "cannot be matched";
  }
  return "?";
}

namespace {

constexpr const char* kRedacted = "***";

// The predicate: its columns (bare names), its literals, and its text with them redacted.
struct Predicate {
  sql::SourceFile file;
  sql::ExprPtr expr;
  std::set<std::string> columns;
  std::vector<std::string> literals;         // every literal's text
  std::vector<std::string> string_literals;  // the non-empty string literals (raw-byte matching)
  std::string redacted;
};

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

arrow::Status scrubbed(const arrow::Status& st, const Predicate& p) {
  if (st.ok()) return st;
  return arrow::Status(st.code(), scrub(st.message(), p));
}

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
};

bool is_raw_value(const arrow::Schema& schema) {
  auto value = schema.GetFieldByName("value");
  return value && (value->type()->id() == arrow::Type::BINARY || value->type()->id() == arrow::Type::STRING ||
                   value->type()->id() == arrow::Type::LARGE_BINARY);
}

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

// Where the rows of a batch match: true, false, or (decoded value) null where the value did not
// decode, then matched by its bytes holding one of the string literals.
arrow::Result<std::shared_ptr<arrow::BooleanArray>> match_mask(const Table& t, const Predicate& p,
                                                               const arrow::RecordBatch& batch) {
  std::shared_ptr<arrow::Array> mask;
  if (t.condition) {
    ARROW_ASSIGN_OR_RAISE(mask, exec::evaluate(*t.condition, batch));
  } else {
    ARROW_ASSIGN_OR_RAISE(auto decoded, exec::evaluate(*t.decode, batch));
    ARROW_ASSIGN_OR_RAISE(auto fields, std::static_pointer_cast<arrow::StructArray>(decoded)->Flatten());
    auto rows = arrow::RecordBatch::Make(t.decoded_schema, batch.num_rows(), fields);
    ARROW_ASSIGN_OR_RAISE(mask, exec::evaluate(*t.decoded_condition, *rows));
    if (mask->type_id() == arrow::Type::BOOL && mask->null_count() > 0 && !p.string_literals.empty()) {
      auto raw = batch.GetColumnByName("value");
      ARROW_ASSIGN_OR_RAISE(auto as_binary, cp::Cast(raw, arrow::binary()));
      const auto binary_array = as_binary.make_array();  // held: `bytes` refers into it
      const auto& bytes = static_cast<const arrow::BinaryArray&>(*binary_array);
      const auto& m = static_cast<const arrow::BooleanArray&>(*mask);
      arrow::BooleanBuilder out;
      ARROW_RETURN_NOT_OK(out.Reserve(m.length()));
      for (int64_t i = 0; i < m.length(); ++i) {
        if (m.IsValid(i)) {
          out.UnsafeAppend(m.Value(i));
          continue;
        }
        bool hit = false;
        if (bytes.IsValid(i)) {
          const auto v = bytes.GetView(i);
          for (const auto& lit : p.string_literals) hit = hit || v.find(lit) != std::string_view::npos;
        }
        out.UnsafeAppend(hit);
      }
      ARROW_ASSIGN_OR_RAISE(mask, out.Finish());
    }
  }
  if (mask->type_id() == arrow::Type::NA) {
    ARROW_ASSIGN_OR_RAISE(mask, arrow::MakeArrayFromScalar(arrow::BooleanScalar(false), batch.num_rows()));
  }
  ARROW_ASSIGN_OR_RAISE(auto filled, cp::CallFunction("coalesce", {arrow::Datum(mask), arrow::Datum(false)}));
  return std::static_pointer_cast<arrow::BooleanArray>(filled.make_array());
}

json forget_parameters(const Predicate& p) {
  // Spark's DELETE parameters, the predicate's literals redacted; the marker tells readers and
  // people what this commit is.
  return {{"predicate", json::array({p.redacted}).dump()},
          {"sluice.forget", "true"},
          {"literalsRedacted", std::to_string(p.literals.size())}};
}

// Rewrites every file holding a matching row without it (deletion vectors applied: the rows
// they hide are gone from the new files too), in one commit with dataChange=false.
arrow::Status erase(Table& t, const Predicate& p) {
  dml::DmlTarget target;
  target.store = t.store;
  target.snapshot = t.snapshot;
  target.name = t.name;
  ARROW_RETURN_NOT_OK(dml::check_dml_supported(target, "forget"));
  ARROW_ASSIGN_OR_RAISE(auto rewrite, dml::TableRewrite::make(target));
  rewrite->mark_no_data_change();
  int64_t erased = 0, copied = 0;
  delta::ReadSet read;
  read.isolation = delta::isolation_level(t.snapshot->metadata());
  for (const auto& add : t.snapshot->files()) {
    read.files.insert(add.path);
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file(*t.store, *t.snapshot, add));
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->ToRecordBatches());
    std::vector<std::shared_ptr<arrow::BooleanArray>> masks;
    int64_t hits = 0, rows = 0;
    bool hidden_hit = false;
    for (const auto& b : batches) {
      auto mask = match_mask(t, p, *b);
      if (!mask.ok()) return scrubbed(with_context(mask.status(), fmt::format("table {} file {}", t.name, add.path)), p);
      hits += (*mask)->true_count();
      rows += b->num_rows();
      masks.push_back(std::move(*mask));
    }
    if (hits == 0 && add.deletion_vector) {
      // Rows a deletion vector hides (an earlier DELETE/UPDATE) are still in the file: read
      // without it, a match there rewrites the file too (its visible rows, the hidden ones gone).
      delta::Add physical = add;
      physical.deletion_vector.reset();
      ARROW_ASSIGN_OR_RAISE(auto all_rows, delta::open_data_file(*t.store, *t.snapshot, physical));
      std::shared_ptr<arrow::RecordBatch> b;
      while (!hidden_hit) {
        ARROW_RETURN_NOT_OK(all_rows->ReadNext(&b));
        if (!b) break;
        auto mask = match_mask(t, p, *b);
        if (!mask.ok()) return scrubbed(with_context(mask.status(), fmt::format("table {} file {}", t.name, add.path)), p);
        hidden_hit = (*mask)->true_count() > 0;
      }
      if (!hidden_hit) continue;
    } else if (hits == 0) {
      continue;
    }
    erased += hits;
    copied += rows - hits;
    rewrite->remove(add);
    for (size_t i = 0; i < batches.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto keep, cp::Invert(masks[i]));
      ARROW_ASSIGN_OR_RAISE(auto kept, dml::filter_rows(*batches[i], *keep.make_array()));
      if (kept->num_rows() > 0) ARROW_RETURN_NOT_OK(rewrite->write(*kept));
    }
  }
  rewrite->mark_scan_done();
  json metrics = {{"numDeletedRows", std::to_string(erased)}, {"numCopiedRows", std::to_string(copied)}};
  auto outcome = rewrite->commit("DELETE", forget_parameters(p), std::move(metrics), std::move(read));
  if (!outcome.ok()) return scrubbed(with_context(outcome.status(), "table " + t.name), p);
  t.report.rows_erased = erased;
  if (outcome->committed) t.report.erase_version = outcome->version.value();
  return arrow::Status::OK();
}

// Deletes every file of the table no longer referenced (vacuum with no retention: the files the
// erasure and earlier statements replaced, change data, orphaned deletion vectors), then writes
// a checkpoint at the latest version: the version the log will start at (cut_log).
arrow::Status vacuum_and_checkpoint(const std::shared_ptr<delta::LogStore>& store, ForgetTableReport& report,
                                    const std::string& name, int64_t started_millis) {
  auto context = [&](const arrow::Status& st) { return with_context(st, "clean-up of table " + name); };
  delta::VacuumOptions options;
  options.retain_millis = 0;
  options.check = delta::RetentionCheck::kOff;
  options.mode = delta::VacuumMode::kDelete;
  // `sluice sql` DML and `sluice table optimize` do not take the run lock: a file one of them
  // wrote after forget started (not committed yet) is not forget's to delete.
  options.keep_modified_since_millis = started_millis;
  // No tombstone keeps its file: the erasure's own removes are stamped now, and a writer whose
  // clock is ahead (Spark on another host) stamps removes later than our now.
  options.tombstones = delta::TombstoneRule::kIgnore;
  auto vacuumed = delta::vacuum(store, options);
  if (!vacuumed.ok()) return context(vacuumed.status());
  report.files_deleted += vacuumed->deleted_files;
  bool deleted_a_file = false;
  for (const auto& f : vacuumed->candidates) deleted_a_file = deleted_a_file || !f.is_dir;
  auto latest = delta::Snapshot::load(*store);
  if (!latest.ok()) return context(latest.status());
  if (deleted_a_file && !(*latest)->metadata().partition_columns.empty()) {
    // Partition folders emptied by the first pass (their names can hold a value) go in a second.
    auto again = delta::vacuum(store, options);
    if (!again.ok()) return context(again.status());
    report.files_deleted += again->deleted_files;
    latest = delta::Snapshot::load(*store);
    if (!latest.ok()) return context(latest.status());
  }
  if (auto st = delta::write_checkpoint(*store, **latest, /*drop_tombstones=*/true); !st.ok()) return context(st);
  report.version_after = (*latest)->version().value();
  return arrow::Status::OK();
}

// Deletes the log before the checkpoint vacuum_and_checkpoint wrote: commits whose stats and
// commitInfo may quote the value, older checkpoints and checksums (time travel to before the
// erasure goes with them). Log cleanup with a copy of the metadata whose retentions are 0.
arrow::Status cut_log(const std::shared_ptr<delta::LogStore>& store, ForgetTableReport& report,
                      const std::string& name) {
  auto context = [&](const arrow::Status& st) { return with_context(st, "log clean-up of table " + name); };
  auto latest = delta::Snapshot::load(*store);
  if (!latest.ok()) return context(latest.status());
  delta::Metadata expire_all = (*latest)->metadata();
  expire_all.configuration["delta.logRetentionDuration"] = "interval 0 seconds";
  expire_all.configuration["delta.checkpointRetentionDuration"] = "interval 0 seconds";
  expire_all.configuration["delta.enableExpiredLogCleanup"] = "true";
  // Later than every log file's time, on the store's clock too (an object store stamps with its
  // own, possibly ahead of ours): the cut-off is the latest commit, so the log starts at the
  // newest checkpoint. The local store lists no times; its files carry the local clock's.
  auto listed = store->objects()->list(store->log_dir().string());
  if (!listed.ok()) return context(listed.status());
  int64_t newest = 0;
  for (const auto& o : *listed) newest = std::max(newest, o.mtime_nanos / 1'000'000);
  const int64_t cut_off = std::max(now_millis() + 60'000, newest + 1);
  auto cleaned = delta::cleanup_expired_logs(*store, expire_all, cut_off);
  if (!cleaned.ok()) return context(cleaned.status());
  if (!cleaned->kept_from || cleaned->kept_from->value() < report.version_after) {
    return context(invalid("the log could not be cut at the fresh checkpoint (version {})", report.version_after));
  }
  report.log_files_deleted += cleaned->deleted_commits + cleaned->deleted_checkpoints + cleaned->deleted_other;
  return arrow::Status::OK();
}

// Moves the streaming readers of erased tables past the erasure and its clean-up: their
// progress on the upstream becomes the version its log will start at, in one commit without
// data. They had read everything before the erasure (check_readers_caught_up), and nothing
// after it is data, so nothing is skipped; without this they would ask for deleted commits.
arrow::Status advance_readers(Table& reader, const std::vector<Table>& tables) {
  auto snapshot = delta::Snapshot::load(*reader.store);
  if (!snapshot.ok()) return with_context(snapshot.status(), "table " + reader.name);
  std::vector<std::pair<std::string, int64_t>> moves;
  for (const auto& up : tables) {
    if (!carries(up) || up.name == reader.name || up.report.version_after < 0) continue;
    for (const auto& [app_id, version] : progress_on(**snapshot, up.snapshot->metadata().id)) {
      if (version >= 0 && version < up.report.version_after) moves.emplace_back(app_id, up.report.version_after);
    }
  }
  if (moves.empty()) return arrow::Status::OK();
  // The reader's operator state (windows, dedup, joins, APPLY CHANGES) is labelled with the
  // progress of the commit it belongs to: saved again under the moved progress (same content)
  // before the commit that moves it, else the next run finds no state for its progress.
  TxnVersions recorded, moved;
  for (const auto& [app_id, txn] : (*snapshot)->txns()) recorded[app_id] = txn.version;
  for (const auto& [app_id, version] : moves) moved[app_id] = version;
  const fs::path state_root = reader.store->table_root() / "_sluice_state";
  auto state_files = objects_under(*reader.store->objects(), state_root);
  if (!state_files.ok()) return with_context(state_files.status(), "operator state of table " + reader.name);
  std::set<fs::path> dirs;
  for (const auto& rel : *state_files) {
    const fs::path file = state_root / rel;
    if (file.extension() == ".arrow") dirs.insert(file.parent_path());
  }
  for (const auto& dir : dirs) {
    StateStore state(reader.store->objects(), dir);
    auto carried = state.carry_forward(recorded, moved);
    if (!carried.ok()) return with_context(carried.status(), "operator state of table " + reader.name);
  }
  delta::Transaction txn(reader.store, *snapshot);
  for (const auto& [app_id, version] : moves) txn.set_txn(app_id, version);
  delta::CommitOptions options;
  options.operation = "STREAMING UPDATE";
  options.operation_parameters = {{"outputMode", "Append"}, {"sluice.forget", "readers moved past the erasure"}};
  auto committed = txn.commit(options);
  if (!committed.ok()) return with_context(committed.status(), "table " + reader.name);
  return arrow::Status::OK();
}

// Replaces every string literal of the predicate inside `value`'s strings (keys and values),
// never in its numbers or structure. True when one was replaced.
bool scrub_json(json& value, const Predicate& p) {
  bool hit = false;
  if (value.is_string()) {
    auto s = value.get<std::string>();
    for (const auto& lit : p.string_literals) {
      for (size_t at = s.find(lit); at != std::string::npos; at = s.find(lit, at + 3)) {
        s.replace(at, lit.size(), kRedacted);
        hit = true;
      }
    }
    if (hit) value = s;
  } else if (value.is_array()) {
    for (auto& v : value) hit = scrub_json(v, p) || hit;
  } else if (value.is_object()) {
    json out = json::object();
    for (auto& [k, v] : value.items()) {
      json key = k;
      hit = scrub_json(key, p) || hit;
      json copy = v;
      hit = scrub_json(copy, p) || hit;
      out[key.get<std::string>()] = std::move(copy);
    }
    if (hit) value = std::move(out);
  }
  return hit;
}

// An event log text: a JSON object or array (the `details` column) has only its string
// values edited and stays valid JSON (a literal '1042' leaves `"rows": 1042` alone); any other
// text has every literal replaced. True when one was replaced.
bool scrub_text(std::string& text, const Predicate& p) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    auto parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) {
      if (!scrub_json(parsed, p)) return false;
      text = parsed.dump();
      return true;
    }
  }
  bool hit = false;
  for (const auto& lit : p.string_literals) {
    for (size_t at = text.find(lit); at != std::string::npos; at = text.find(lit, at + 3)) {
      text.replace(at, lit.size(), kRedacted);
      hit = true;
    }
  }
  return hit;
}

// Earlier events may quote the value (expectation failures, dead-letter errors): every string
// literal of the predicate is replaced by '***' in the event log's text columns.
arrow::Result<int64_t> scrub_event_log(const std::shared_ptr<delta::LogStore>& store, const Predicate& p) {
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
  if (!snapshot || p.string_literals.empty()) return 0;
  dml::DmlTarget target;
  target.store = store;
  target.snapshot = snapshot;
  target.name = "event_log";
  ARROW_ASSIGN_OR_RAISE(auto rewrite, dml::TableRewrite::make(target));
  rewrite->mark_no_data_change();
  int64_t rows_scrubbed = 0;
  delta::ReadSet read;
  read.isolation = delta::isolation_level(snapshot->metadata());
  for (const auto& add : snapshot->files()) {
    read.files.insert(add.path);
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file(*store, *snapshot, add));
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->ToRecordBatches());
    std::vector<std::shared_ptr<arrow::RecordBatch>> replaced;
    int64_t hits = 0;
    for (const auto& b : batches) {
      arrow::ArrayVector columns = b->columns();
      std::vector<bool> row_hit(b->num_rows(), false);
      for (int c = 0; c < b->num_columns(); ++c) {
        if (columns[c]->type_id() != arrow::Type::STRING) continue;
        const auto& in = static_cast<const arrow::StringArray&>(*columns[c]);
        arrow::StringBuilder out;
        bool changed = false;
        for (int64_t i = 0; i < in.length(); ++i) {
          if (in.IsNull(i)) {
            ARROW_RETURN_NOT_OK(out.AppendNull());
            continue;
          }
          std::string text(in.GetView(i));
          if (scrub_text(text, p)) {
            changed = true;
            row_hit[i] = true;
          }
          ARROW_RETURN_NOT_OK(out.Append(text));
        }
        if (!changed) continue;
        ARROW_ASSIGN_OR_RAISE(columns[c], out.Finish());
      }
      hits += std::count(row_hit.begin(), row_hit.end(), true);
      replaced.push_back(arrow::RecordBatch::Make(b->schema(), b->num_rows(), columns));
    }
    if (hits == 0) continue;
    rows_scrubbed += hits;
    rewrite->remove(add);
    for (const auto& b : replaced) ARROW_RETURN_NOT_OK(rewrite->write(*b));
  }
  rewrite->mark_scan_done();
  json metrics = {{"numUpdatedRows", std::to_string(rows_scrubbed)}};
  auto outcome = rewrite->commit("UPDATE", forget_parameters(p), std::move(metrics), std::move(read));
  if (!outcome.ok()) return scrubbed(with_context(outcome.status(), "event log"), p);
  return rows_scrubbed;
}

std::string who() {
  std::string user = "?";
  if (const auto* pw = ::getpwuid(::getuid())) user = pw->pw_name;
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) == 0) user += "@" + std::string(host);
  return user;
}

json tables_json(const std::vector<Table>& tables) {
  json out = json::array();
  for (const auto& t : tables) {
    const auto& r = t.report;
    out.push_back({{"table", r.table},
                   {"match", forget_match_name(r.match)},
                   {"how", r.how},
                   {"left_behind", r.left_behind.empty() ? json() : json(r.left_behind)},
                   {"rows_erased", r.rows_erased},
                   {"version_before", r.version_before},
                   {"erase_version", r.erase_version ? json(*r.erase_version) : json()},
                   {"version_after", r.version_after >= 0 ? json(r.version_after) : json()},
                   {"files_deleted", r.files_deleted},
                   {"log_files_deleted", r.log_files_deleted}});
  }
  return out;
}

arrow::Status audit(const PipelineConfig& config, const std::string& update_id, const Predicate& p,
                    const std::vector<Table>& tables, const std::string& status, int64_t scrubbed_rows,
                    const std::vector<std::string>& warnings) {
  EventLog log(config.objects, config.storage, config.name, update_id);
  Event e;
  e.event_type = "forget";
  e.level = "INFO";
  int64_t rows = 0;
  int64_t erased_tables = 0;
  for (const auto& t : tables) {
    rows += t.report.rows_erased;
    erased_tables += t.report.rows_erased > 0;
  }
  e.message = fmt::format("forget {}: {} rows erased from {} tables where {} ({} literals redacted)", status, rows,
                          erased_tables, p.redacted, p.literals.size());
  e.details = {{"forget",
                {{"status", status},
                 {"requested_by", who()},
                 {"predicate", p.redacted},
                 {"literals_redacted", p.literals.size()},
                 {"event_log_rows_scrubbed", scrubbed_rows},
                 {"warnings", warnings},
                 {"tables", tables_json(tables)}}}};
  log.add(std::move(e));
  return log.flush();
}

// Deletes a materialized view's stored partials (_sluice_state/): locally the folder, on an
// object store every object under its prefix.
arrow::Status remove_state(const Table& t) {
  const fs::path root = t.store->table_root() / "_sluice_state";
  if (t.store->is_local()) {
    std::error_code ec;
    fs::remove_all(root, ec);
    if (ec) return invalid("table {}: cannot delete its _sluice_state/: {}", t.name, ec.message());
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto files, objects_under(*t.store->objects(), root));
  for (const auto& rel : files) {
    if (auto st = t.store->objects()->remove((root / rel).string()); !st.ok()) {
      return with_context(st, "table " + t.name + ": deleting its _sluice_state/");
    }
  }
  return arrow::Status::OK();
}

// When forget starts, on the clock the clean-up compares file times with: files written since
// are kept (a concurrent `sluice sql` or `table optimize` may not have committed them yet),
// older unreferenced ones are deleted. Locally the local clock. An object store stamps objects
// with its own clock, in whole seconds on S3 (LastModified), so a local millisecond would
// either keep a file written just before forget (holding the value) or delete one written just
// after: forget writes a marker object until the store's stamp moves to the next second and
// starts at that second; every file written before the first marker is older than it (one
// written during the wait, under a second, counts as older too).
arrow::Result<int64_t> start_time(const PipelineConfig& config) {
  if (config.storage_is_local()) return now_millis();
  const std::string marker = (config.storage / "system" / "forget" / (random_uuid() + ".started")).string();
  auto stamp = [&]() -> arrow::Result<int64_t> {
    ARROW_RETURN_NOT_OK(config.objects->put(marker, "forget\n"));
    ARROW_ASSIGN_OR_RAISE(auto info, config.objects->head(marker));
    if (!info) return io_error("forget: the marker {} written to read the store's clock is not there",
                               config.objects->display(marker));
    return info->mtime_nanos / 1'000'000;
  };
  ARROW_ASSIGN_OR_RAISE(const int64_t first, stamp());
  int64_t started = first;
  // A stamp with milliseconds is exact; a whole-second one is not (1 in 1000 by chance).
  for (int i = 0; i < 50 && started % 1000 == 0 && started <= first; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ARROW_ASSIGN_OR_RAISE(started, stamp());
  }
  auto removed = config.objects->remove(marker);
  if (started <= first && started % 1000 == 0) {
    return io_error("forget: the clock of {} did not move in 5 s (marker {})", config.storage_display(),
                    config.objects->display(marker));
  }
  ARROW_RETURN_NOT_OK(removed);
  return started;
}

}  // namespace

arrow::Result<ForgetPredicate> describe_forget_predicate(const std::string& where) {
  ARROW_ASSIGN_OR_RAISE(auto p, parse_predicate(where));
  return ForgetPredicate{p.columns, p.redacted, static_cast<int>(p.literals.size())};
}

arrow::Result<ForgetReport> forget(const PipelineConfig& config, const Graph* graph, const ForgetOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto p, parse_predicate(options.where));
  const fs::path event_log_path = config.storage / "system" / "event_log";
  auto event_log = std::make_shared<delta::LogStore>(config.objects, event_log_path.string());
  RunCommand command{options.program, {"--where"}, "forget"};
  if (options.allow_partial) command.flags.push_back("--allow-partial");
  ARROW_ASSIGN_OR_RAISE(auto lock, RunLock::acquire(config, RunLockMode::kExclusive, command));
  ARROW_ASSIGN_OR_RAISE(const int64_t started_millis, start_time(config));

  std::vector<std::string> warnings;
  ARROW_ASSIGN_OR_RAISE(auto tables, list_tables(config, graph));
  ARROW_RETURN_NOT_OK(plan_tables(tables, p, config, graph, warnings));
  std::vector<std::string> unmatched;
  bool any = false;
  for (auto& t : tables) {
    if (t.report.match == ForgetMatch::kUnmatched) unmatched.push_back(t.name + ": " + t.report.how);
    if (!t.report.left_behind.empty()) unmatched.push_back(t.name + ": " + t.report.left_behind);
    bool has_state = false;
    if (carries(t) && !is_view(t, graph)) {
      ARROW_ASSIGN_OR_RAISE(auto state, objects_under(*t.store->objects(), t.store->table_root() / "_sluice_state"));
      has_state = !state.empty();
    }
    if (has_state) {
      // Event-time state (windows, dedup, joins) is keyed by what the flow groups on; forget
      // cannot rewrite it, and recovery needs it.
      t.report.left_behind = "its event-time operator state (_sluice_state/) may hold the value and is kept";
      unmatched.push_back(t.name + ": " + t.report.left_behind);
    }
    any = any || t.report.match == ForgetMatch::kColumns;
  }
  if (graph) {
    // A sink copies rows out of the pipeline's storage (a Kafka topic, an external Delta
    // table): forget does not reach there.
    for (const auto& [sink, _] : graph->sinks) {
      for (const auto& up : graph->sink_upstream(sink)) {
        for (const auto& t : tables) {
          if (t.name == up && carries(t)) {
            unmatched.push_back(fmt::format("sink {} copies rows of {} out of the pipeline's storage", sink, up));
          }
        }
      }
    }
  }
  // A column no table has is a misspelling first: say so before what could not be matched.
  if (!any) {
    // A raw Kafka value alone decodes into any name: a misspelt column would match nothing.
    return invalid("forget on pipeline '{}' is refused: no table has the columns {} (sluice catalog lists them). "
                   "Nothing was changed",
                   config.name, fmt::join(p.columns, ", "));
  }
  if (!unmatched.empty() && !options.allow_partial) {
    return invalid("forget on pipeline '{}' is refused: the value cannot be erased everywhere ({}). Erase it there "
                   "another way, or pass --allow-partial to erase the rest and have these reported. Nothing was changed",
                   config.name, fmt::join(unmatched, "; "));
  }
  for (const auto& u : unmatched) warnings.push_back("not erased (--allow-partial): " + u);
  ARROW_RETURN_NOT_OK(check_readers_caught_up(tables, config, graph));

  // Every table's refusal comes before any erasure (a table DML cannot change, e.g.
  // delta.appendOnly, would otherwise stop forget half-way).
  for (auto& t : tables) {
    if (!carries(t)) continue;
    dml::DmlTarget target;
    target.store = t.store;
    target.snapshot = t.snapshot;
    target.name = t.name;
    if (auto st = dml::check_dml_supported(target, "forget"); !st.ok()) {
      return scrubbed(arrow::Status(st.code(), fmt::format("forget on pipeline '{}' is refused: table {}: {}. "
                                                           "Nothing was changed",
                                                           config.name, t.name, st.message())),
                      p);
    }
  }
  const std::string update_id = random_uuid();
  // Recorded before the first erasure: a forget that fails or is killed during it leaves a trace.
  ARROW_RETURN_NOT_OK(audit(config, update_id, p, tables, "STARTED", 0, warnings));
  for (auto& t : tables) {
    if (!carries(t)) continue;
    if (auto st = erase(t, p); !st.ok()) {
      (void)audit(config, update_id, p, tables, "FAILED", 0, warnings);
      return st;
    }
  }
  ARROW_ASSIGN_OR_RAISE(const int64_t scrubbed_rows, scrub_event_log(event_log, p));
  // The erasure is recorded before the clean-up: an interrupted forget leaves its counts.
  ARROW_RETURN_NOT_OK(audit(config, update_id, p, tables, "ERASED", scrubbed_rows, warnings));
  fail_point("forget_before_clean_up");
  // Clean-up in three passes, each safe to interrupt (a re-run finishes it): files and a fresh
  // checkpoint; streaming readers moved to that checkpoint; the log before it deleted.
  for (auto& t : tables) {
    if (carries(t)) ARROW_RETURN_NOT_OK(vacuum_and_checkpoint(t.store, t.report, t.name, started_millis));
  }
  for (auto& t : tables) {
    if (is_view(t, graph)) {
      // A materialized view recomputes from its inputs; its stored partial aggregates (keyed
      // by its groups) are a cache that could hold the value, and an incremental refresh would
      // add them to the erased inputs: dropped, so the next refresh is full.
      bool reads_erased = carries(t);
      for (const auto& up : tables) {
        reads_erased = reads_erased || (carries(up) && !progress_on(*t.snapshot, up.snapshot->metadata().id).empty());
      }
      if (!reads_erased) continue;
      ARROW_RETURN_NOT_OK(remove_state(t));
      continue;
    }
    if (is_streaming_reader(t, graph)) ARROW_RETURN_NOT_OK(advance_readers(t, tables));
  }
  fail_point("forget_before_log_cut");
  for (auto& t : tables) {
    if (carries(t)) ARROW_RETURN_NOT_OK(cut_log(t.store, t.report, t.name));
  }
  ForgetTableReport event_log_report;
  ARROW_RETURN_NOT_OK(vacuum_and_checkpoint(event_log, event_log_report, "event_log", started_millis));
  ARROW_RETURN_NOT_OK(cut_log(event_log, event_log_report, "event_log"));
  ARROW_RETURN_NOT_OK(audit(config, update_id, p, tables, "COMPLETED", scrubbed_rows, warnings));

  ForgetReport report;
  report.predicate = p.redacted;
  report.literals_redacted = static_cast<int>(p.literals.size());
  report.event_log_rows_scrubbed = scrubbed_rows;
  report.audit_event_id = update_id;
  for (auto& t : tables) report.tables.push_back(std::move(t.report));
  report.warnings = std::move(warnings);
  return report;
}

}  // namespace sluice::pipeline
