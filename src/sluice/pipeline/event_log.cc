// The pipeline event log.
#include "sluice/pipeline/event_log.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <variant>

#include "sluice/common/ids.h"
#include "sluice/common/utf8.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/exec/constraint_checker.h"

namespace sluice::pipeline {

namespace {

std::shared_ptr<arrow::Schema> event_schema() {
  static const auto schema = arrow::schema({
      arrow::field("id", arrow::utf8(), false),
      arrow::field("sequence", arrow::struct_({arrow::field("update_id", arrow::utf8()),
                                               arrow::field("seq", arrow::int64())})),
      arrow::field("origin", arrow::struct_({arrow::field("pipeline_name", arrow::utf8()),
                                             arrow::field("update_id", arrow::utf8()),
                                             arrow::field("flow_name", arrow::utf8()),
                                             arrow::field("dataset_name", arrow::utf8())})),
      arrow::field("timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("level", arrow::utf8()),
      arrow::field("event_type", arrow::utf8()),
      arrow::field("message", arrow::utf8()),
      arrow::field("details", arrow::utf8()),
  });
  return schema;
}

}  // namespace

EventLog::EventLog(std::shared_ptr<storage::ObjectStore> objects, std::filesystem::path storage,
                   std::string pipeline, std::string update_id)
    : objects_(std::move(objects)),
      storage_(std::move(storage)), pipeline_(std::move(pipeline)), update_id_(std::move(update_id)) {}

void EventLog::add(Event event) {
  if (event.timestamp_micros == 0) event.timestamp_micros = now_millis() * 1000;
  std::lock_guard lock(mutex_);
  events_.push_back(std::move(event));
}

arrow::Status EventLog::flush() {
  std::lock_guard lock(mutex_);
  if (events_.empty()) return arrow::Status::OK();
  const auto schema = event_schema();
  arrow::StringBuilder id, level, type, message, details;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), arrow::default_memory_pool());
  auto seq_update = std::make_shared<arrow::StringBuilder>();
  auto seq_n = std::make_shared<arrow::Int64Builder>();
  arrow::StructBuilder sequence(schema->field(1)->type(), arrow::default_memory_pool(), {seq_update, seq_n});
  auto o_pipe = std::make_shared<arrow::StringBuilder>(), o_update = std::make_shared<arrow::StringBuilder>(),
       o_flow = std::make_shared<arrow::StringBuilder>(), o_dataset = std::make_shared<arrow::StringBuilder>();
  arrow::StructBuilder origin(schema->field(2)->type(), arrow::default_memory_pool(), {o_pipe, o_update, o_flow, o_dataset});
  // Any caller's text may hold invalid UTF-8 (an error quoting a record's bytes, a cut message):
  // each invalid subpart becomes U+FFFD here, so no event can make flush() throw (json::dump) or
  // write a utf8 column that is not UTF-8.
  std::string scratch;
  auto text = [&scratch](const std::string& v) { return std::string(valid_utf8(v, &scratch)); };
  auto opt = [&](arrow::StringBuilder& b, const std::string& v) { return v.empty() ? b.AppendNull() : b.Append(text(v)); };
  for (const auto& e : events_) {
    ARROW_RETURN_NOT_OK(id.Append(random_uuid()));
    ARROW_RETURN_NOT_OK(sequence.Append());
    ARROW_RETURN_NOT_OK(seq_update->Append(update_id_));
    ARROW_RETURN_NOT_OK(seq_n->Append(sequence_++));
    ARROW_RETURN_NOT_OK(origin.Append());
    ARROW_RETURN_NOT_OK(o_pipe->Append(pipeline_));
    ARROW_RETURN_NOT_OK(o_update->Append(update_id_));
    ARROW_RETURN_NOT_OK(opt(*o_flow, e.flow));
    ARROW_RETURN_NOT_OK(opt(*o_dataset, e.dataset));
    ARROW_RETURN_NOT_OK(ts.Append(e.timestamp_micros));
    ARROW_RETURN_NOT_OK(level.Append(text(e.level)));
    ARROW_RETURN_NOT_OK(type.Append(text(e.event_type)));
    ARROW_RETURN_NOT_OK(message.Append(text(e.message)));
    ARROW_RETURN_NOT_OK(details.Append(e.details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  }
  arrow::ArrayVector columns(8);
  ARROW_RETURN_NOT_OK(id.Finish(&columns[0]));
  ARROW_RETURN_NOT_OK(sequence.Finish(&columns[1]));
  ARROW_RETURN_NOT_OK(origin.Finish(&columns[2]));
  ARROW_RETURN_NOT_OK(ts.Finish(&columns[3]));
  ARROW_RETURN_NOT_OK(level.Finish(&columns[4]));
  ARROW_RETURN_NOT_OK(type.Finish(&columns[5]));
  ARROW_RETURN_NOT_OK(message.Finish(&columns[6]));
  ARROW_RETURN_NOT_OK(details.Finish(&columns[7]));
  auto batch = arrow::RecordBatch::Make(schema, static_cast<int64_t>(events_.size()), columns);

  auto store = std::make_shared<delta::LogStore>(objects_, table_path().string());
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
  delta::WriteOptions options;
  options.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
  options.table_name = "event_log";
  options.description = "sluice pipeline event log";
  ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(store, snapshot, *schema, options));
  ARROW_RETURN_NOT_OK(writer->write(*batch));
  ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
  delta::CommitOptions commit;
  commit.operation = "WRITE";
  ARROW_RETURN_NOT_OK(txn.commit(commit).status());
  events_.clear();
  return arrow::Status::OK();
}

namespace {

// A column of the event-log batch, of the type the log writes, or an error naming it.
template <typename ArrayType>
arrow::Result<std::shared_ptr<ArrayType>> event_column(const std::shared_ptr<arrow::Array>& array,
                                                       const std::string& name, arrow::Type::type type) {
  if (!array || array->type_id() != type) {
    return arrow::Status::Invalid(fmt::format("column '{}' is missing or not of type {}", name,
                                              arrow::internal::ToString(type)));
  }
  return std::static_pointer_cast<ArrayType>(array);
}

std::string string_or_empty(const arrow::StringArray& a, int64_t i) {
  return a.IsNull(i) ? std::string() : a.GetString(i);
}

}  // namespace

arrow::Result<std::vector<StoredEvent>> events_from_batch(const arrow::RecordBatch& rows) {
  using arrow::Type;
  ARROW_ASSIGN_OR_RAISE(auto ts, event_column<arrow::TimestampArray>(rows.GetColumnByName("timestamp"), "timestamp",
                                                                     Type::TIMESTAMP));
  ARROW_ASSIGN_OR_RAISE(auto types, event_column<arrow::StringArray>(rows.GetColumnByName("event_type"), "event_type",
                                                                     Type::STRING));
  ARROW_ASSIGN_OR_RAISE(auto levels, event_column<arrow::StringArray>(rows.GetColumnByName("level"), "level",
                                                                      Type::STRING));
  ARROW_ASSIGN_OR_RAISE(auto messages, event_column<arrow::StringArray>(rows.GetColumnByName("message"), "message",
                                                                        Type::STRING));
  ARROW_ASSIGN_OR_RAISE(auto details, event_column<arrow::StringArray>(rows.GetColumnByName("details"), "details",
                                                                       Type::STRING));
  ARROW_ASSIGN_OR_RAISE(auto origin, event_column<arrow::StructArray>(rows.GetColumnByName("origin"), "origin",
                                                                      Type::STRUCT));
  ARROW_ASSIGN_OR_RAISE(auto sequence, event_column<arrow::StructArray>(rows.GetColumnByName("sequence"), "sequence",
                                                                        Type::STRUCT));
  ARROW_ASSIGN_OR_RAISE(auto datasets, event_column<arrow::StringArray>(origin->GetFieldByName("dataset_name"),
                                                                        "origin.dataset_name", Type::STRING));
  ARROW_ASSIGN_OR_RAISE(auto flows, event_column<arrow::StringArray>(origin->GetFieldByName("flow_name"),
                                                                     "origin.flow_name", Type::STRING));
  ARROW_ASSIGN_OR_RAISE(auto updates, event_column<arrow::StringArray>(sequence->GetFieldByName("update_id"),
                                                                       "sequence.update_id", Type::STRING));
  ARROW_ASSIGN_OR_RAISE(auto seqs, event_column<arrow::Int64Array>(sequence->GetFieldByName("seq"), "sequence.seq",
                                                                   Type::INT64));
  std::vector<StoredEvent> out;
  out.reserve(static_cast<size_t>(rows.num_rows()));
  for (int64_t i = 0; i < rows.num_rows(); ++i) {
    StoredEvent e;
    e.timestamp_micros = ts->IsNull(i) ? 0 : ts->Value(i);
    e.update_id = string_or_empty(*updates, i);
    e.seq = seqs->IsNull(i) ? 0 : seqs->Value(i);
    e.level = string_or_empty(*levels, i);
    e.event_type = string_or_empty(*types, i);
    e.message = string_or_empty(*messages, i);
    e.flow = string_or_empty(*flows, i);
    e.dataset = string_or_empty(*datasets, i);
    e.details = details->IsNull(i) ? nlohmann::json::object()
                                   : nlohmann::json::parse(details->GetView(i), nullptr, false);
    out.push_back(std::move(e));
  }
  return out;
}

arrow::Result<std::optional<std::vector<StoredEvent>>> read_event_log(std::shared_ptr<storage::ObjectStore> objects,
                                                                      const std::filesystem::path& storage) {
  delta::LogStore store(std::move(objects), (storage / "system" / "event_log").string());
  auto where = [&](const arrow::Status& st) {
    return arrow::Status::Invalid(fmt::format("event log {} is unreadable: {}", store.location(), st.message()));
  };
  auto snapshot = delta::load_latest_if_exists(store);
  if (!snapshot.ok()) return where(snapshot.status());
  if (!*snapshot) return std::nullopt;
  auto table = delta::scan_table(store, **snapshot);
  if (!table.ok()) return where(table.status());
  auto rows = (*table)->CombineChunksToBatch();
  if (!rows.ok()) return where(rows.status());
  auto events = events_from_batch(**rows);
  if (!events.ok()) return where(events.status());
  std::stable_sort(events->begin(), events->end(), event_before);
  return std::move(*events);
}

bool event_before(const StoredEvent& a, const StoredEvent& b) {
  return std::tie(a.timestamp_micros, a.update_id, a.seq) < std::tie(b.timestamp_micros, b.update_id, b.seq);
}

arrow::Result<SharedEvents> read_event_log_shared(std::shared_ptr<storage::ObjectStore> objects,
                                                  const std::filesystem::path& storage) {
  ARROW_ASSIGN_OR_RAISE(auto events, read_event_log(std::move(objects), storage));
  if (!events) return SharedEvents();
  return std::make_shared<const std::vector<StoredEvent>>(std::move(*events));
}

arrow::Status EventLogCache::refresh_locked() {
  delta::LogStore store(objects_, (storage_ / "system" / "event_log").string());
  auto where = [&](const arrow::Status& st) {
    return arrow::Status::Invalid(fmt::format("event log {} is unreadable: {}", store.location(), st.message()));
  };
  auto snapshot = snapshots_.latest_if_exists(store);
  if (!snapshot.ok()) return where(snapshot.status());
  if (!*snapshot) {
    files_.clear();
    rows_by_file_.clear();
    commit_files_.clear();
    version_ = -1;
    merged_ = nullptr;
    return arrow::Status::OK();
  }
  const int64_t version = (*snapshot)->version().value();
  // The same version of the same log: a replayed snapshot is a log deleted and written anew (or
  // cleaned up past the kept one), whose version alone says nothing (review finding, dbfix).
  const int64_t replayed = snapshots_.replayed();
  if (merged_ && version == version_ && replayed == replayed_) return arrow::Status::OK();
  if (replayed != replayed_) commit_files_.clear();
  std::map<std::string, FileEntry> kept;
  std::vector<const StoredEvent*> old_rows;  // the kept files' events, from merged_
  std::vector<std::vector<StoredEvent>> fresh;
  for (const auto& add : (*snapshot)->files()) {
    auto it = files_.find(add.path);
    if (replayed == replayed_ && !add.deletion_vector && it != files_.end() && it->second.size == add.size &&
        it->second.modification_time == add.modification_time) {
      if (auto rows = rows_by_file_.find(it->second.id); rows != rows_by_file_.end()) {
        for (size_t i : rows->second) old_rows.push_back(&(*merged_)[i]);
      }
      kept.emplace(add.path, it->second);
      continue;
    }
    auto table = delta::read_data_file(store, **snapshot, add);
    if (!table.ok()) return where(table.status());
    auto rows = (*table)->CombineChunksToBatch();
    if (!rows.ok()) return where(rows.status());
    auto events = events_from_batch(**rows);
    if (!events.ok()) return where(events.status());
    ++files_read_;
    const int64_t id = next_file_id_++;
    for (size_t r = 0; r < events->size(); ++r) {
      (*events)[r].file_id = id;
      (*events)[r].file_row = static_cast<int64_t>(r);
    }
    if (!add.deletion_vector) kept.emplace(add.path, FileEntry{id, add.size, add.modification_time});
    fresh.push_back(std::move(*events));
  }
  auto merged = std::make_shared<std::vector<StoredEvent>>();
  size_t total = old_rows.size();
  for (const auto& f : fresh) total += f.size();
  merged->reserve(total);
  for (const auto* e : old_rows) merged->push_back(*e);  // the old list is released below
  for (auto& f : fresh) std::move(f.begin(), f.end(), std::back_inserter(*merged));
  std::stable_sort(merged->begin(), merged->end(), event_before);
  std::map<int64_t, std::vector<size_t>> rows_by_file;
  for (size_t i = 0; i < merged->size(); ++i) rows_by_file[(*merged)[i].file_id].push_back(i);
  for (auto& [id, rows] : rows_by_file) {
    std::sort(rows.begin(), rows.end(),
              [&](size_t a, size_t b) { return (*merged)[a].file_row < (*merged)[b].file_row; });
  }
  files_ = std::move(kept);
  rows_by_file_ = std::move(rows_by_file);
  version_ = version;
  replayed_ = replayed;
  merged_ = std::move(merged);
  return arrow::Status::OK();
}

arrow::Result<EventLogView> EventLogCache::read() {
  std::lock_guard lock(mutex_);
  ARROW_RETURN_NOT_OK(refresh_locked());
  return EventLogView{merged_, version_};
}

arrow::Result<AppendedEvents> EventLogCache::appended_since(int64_t first_version) {
  std::lock_guard lock(mutex_);
  ARROW_RETURN_NOT_OK(refresh_locked());
  AppendedEvents out;
  out.events = merged_;
  out.latest_version = version_;
  if (!merged_) return out;
  delta::LogStore store(objects_, (storage_ / "system" / "event_log").string());
  const int64_t last = std::min(version_, std::max<int64_t>(first_version, 0) + kMaxCommits - 1);
  for (int64_t v = std::max<int64_t>(first_version, 0); v <= last; ++v) {
    auto known = commit_files_.find(v);
    if (known == commit_files_.end()) {
      auto text = store.read_commit(DeltaVersion(v));
      if (!text.ok()) {
        return arrow::Status::Invalid(fmt::format("event log {}: commit {} cannot be read ({}); it may have been "
                                                  "cleaned up: read /api/events, or stream from now on",
                                                  store.location(), v, text.status().message()));
      }
      auto actions = delta::parse_commit(*text, fmt::format("{} version {}", store.location(), v));
      if (!actions.ok()) return actions.status();
      std::vector<std::string> added;
      bool removes_data = false;
      for (const auto& action : *actions) {
        if (const auto* add = std::get_if<delta::Add>(&action); add && add->data_change) added.push_back(add->path);
        if (const auto* remove = std::get_if<delta::Remove>(&action); remove && remove->data_change) removes_data = true;
      }
      if (removes_data) added.clear();  // a rewrite: its rows were streamed when first appended
      if (commit_files_.size() >= 4096) commit_files_.erase(commit_files_.begin());
      known = commit_files_.emplace(v, std::move(added)).first;
    }
    AppendedEvents::Commit commit{v, {}};
    for (const auto& path : known->second) {
      auto file = files_.find(path);
      if (file == files_.end()) continue;  // removed (or given a deletion vector) since
      auto rows = rows_by_file_.find(file->second.id);
      if (rows != rows_by_file_.end()) commit.rows.insert(commit.rows.end(), rows->second.begin(), rows->second.end());
    }
    out.commits.push_back(std::move(commit));
  }
  return out;
}

int64_t EventLogCache::files_read() const {
  std::lock_guard lock(mutex_);
  return files_read_;
}

std::string flow_progress_numbers(const nlohmann::json& details) {
  if (!details.is_object() || !details.contains("flow_progress")) return {};
  const auto& p = details["flow_progress"];
  if (!p.is_object() || !p.contains("metrics") || !p["metrics"].is_object()) return {};
  const auto& m = p["metrics"];
  auto number = [](const nlohmann::json& o, const char* key) -> int64_t {
    return o.contains(key) && o[key].is_number_integer() ? o[key].get<int64_t>() : 0;
  };
  std::vector<std::string> parts;
  if (p.contains("table_version")) parts.push_back(fmt::format("table version {}", number(p, "table_version")));
  if (p.contains("upstream_version")) parts.push_back(fmt::format("upstream version {}", number(p, "upstream_version")));
  std::string rows = fmt::format("{} read, {} written", number(m, "num_input_rows"), number(m, "num_output_rows"));
  if (p.contains("table_version")) {  // a dataset (a sink drops nothing)
    rows += fmt::format(", {} dropped, {} quarantined, {} dead-lettered", number(m, "num_dropped_rows"),
                        number(m, "num_quarantined_rows"), number(m, "num_dead_letter_rows"));
  }
  if (m.contains("num_late_rows")) rows += fmt::format(", {} late", number(m, "num_late_rows"));
  if (m.contains("num_duplicate_rows")) rows += fmt::format(", {} duplicate", number(m, "num_duplicate_rows"));
  parts.push_back(rows);
  if (p.contains("data_quality") && p["data_quality"].is_object() &&
      p["data_quality"].contains("expectations") && p["data_quality"]["expectations"].is_array() &&
      !p["data_quality"]["expectations"].empty()) {
    std::string text;
    for (const auto& e : p["data_quality"]["expectations"]) {
      text += fmt::format("{}{}: {} passed/{} failed", text.empty() ? "expectations " : ", ",
                          e.value("name", std::string("?")), number(e, "passed_records"), number(e, "failed_records"));
    }
    parts.push_back(text);
  }
  if (m.contains("backlog_records")) parts.push_back(fmt::format("backlog {}", number(m, "backlog_records")));
  if (p.contains("refresh") && p["refresh"].is_object()) {
    parts.push_back(fmt::format("{} refresh", p["refresh"].value("mode", std::string("?"))));
  }
  if (p.contains("duration_ms")) parts.push_back(fmt::format("{} ms", number(p, "duration_ms")));
  std::string line;
  for (const auto& part : parts) line += (line.empty() ? "" : "; ") + part;
  return line;
}

}  // namespace sluice::pipeline
