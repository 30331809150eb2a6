// Auto compaction of a pipeline's streaming tables (auto_compaction.h).
#include "sluice/pipeline/auto_compaction.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/table.h"
#include "sluice/dml/optimize.h"
#include "sluice/pipeline/event_log.h"

namespace sluice::pipeline {

namespace {


// The comma-separated names of `text`, trimmed, backquotes dropped; an empty one is nullopt.
std::optional<std::vector<std::string>> column_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto first = part.find_first_not_of(" \t\n");
    const auto last = part.find_last_not_of(" \t\n");
    part = first == std::string::npos ? "" : part.substr(first, last - first + 1);
    if (part.size() > 1 && part.front() == '`' && part.back() == '`') part = part.substr(1, part.size() - 2);
    if (part.empty()) return std::nullopt;
    out.push_back(part);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

arrow::Result<int64_t> positive_number(const std::string& table, const std::string& key, const std::string& value,
                                       int64_t at_least) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < at_least) {
    return invalid("table '{}': {} = '{}' is not a whole number >= {}", table, key, value, at_least);
  }
  return n;
}

arrow::Result<bool> boolean(const std::string& table, const std::string& key, const std::string& value) {
  const auto v = to_lower(value);
  if (v == "true") return true;
  if (v == "false") return false;
  return invalid("table '{}': {} = '{}' is not 'true' or 'false'", table, key, value);
}

}  // namespace

bool is_auto_compact_key(const std::string& key) {
  static const std::string kPrefix = "sluice.autocompact.";
  return key.size() >= kPrefix.size() && to_lower(key.substr(0, kPrefix.size())) == kPrefix;
}

arrow::Result<AutoCompactionSettings> auto_compaction_settings(const std::map<std::string, std::string>& properties,
                                                               const std::string& table) {
  AutoCompactionSettings out;
  if (auto it = properties.find("pipelines.autoOptimize.managed"); it != properties.end()) {
    ARROW_ASSIGN_OR_RAISE(out.enabled, boolean(table, it->first, it->second));
  }
  // Delta's own switch decides when set (Spark's writers honour it too).
  if (auto it = properties.find("delta.autoOptimize.autoCompact"); it != properties.end()) {
    const auto v = to_lower(it->second);
    if (v != "true" && v != "legacy" && v != "false") {
      return invalid("table '{}': delta.autoOptimize.autoCompact = '{}' is not 'true', 'legacy' or 'false'", table,
                     it->second);
    }
    out.enabled = v != "false";
  }
  if (auto it = properties.find("pipelines.autoOptimize.zOrderCols"); it != properties.end()) {
    auto columns = column_list(it->second);
    if (!columns) {
      return invalid("table '{}': pipelines.autoOptimize.zOrderCols = '{}' names an empty column; write column "
                     "names separated by commas",
                     table, it->second);
    }
    out.zorder_by = std::move(*columns);
  }
  static const std::vector<std::string> kKeys = {"sluice.autoCompact.minNumFiles",
                                                 "sluice.autoCompact.maxCompactBytes"};
  for (const auto& [key, value] : properties) {
    // The prefix in any case: sluice.autocompact.minNumFiles is a misspelling, not another key.
    if (!is_auto_compact_key(key)) continue;
    if (key == kKeys[0]) {
      ARROW_ASSIGN_OR_RAISE(out.min_num_files, positive_number(table, key, value, 2));
    } else if (key == kKeys[1]) {
      ARROW_ASSIGN_OR_RAISE(out.max_compact_bytes, positive_number(table, key, value, 1));
    } else {
      std::string best;
      for (const auto& k : kKeys) {
        if (to_lower(k) == to_lower(key)) best = k;
      }
      if (best.empty()) best = closest_match(key, kKeys);
      return invalid("table '{}': table property '{}' is not one sluice knows (it would be ignored){}: the auto "
                     "compaction settings are sluice.autoCompact.minNumFiles and sluice.autoCompact.maxCompactBytes "
                     "(spelled in this case)",
                     table, key, best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best));
    }
  }
  return out;
}

TableGate::Hold& TableGate::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    release();
    gate_ = other.gate_;
    other.gate_ = nullptr;
  }
  return *this;
}

void TableGate::Hold::release() {
  if (!gate_) return;
  {
    std::lock_guard lock(gate_->mutex_);
    --gate_->writers_;
  }
  gate_->changed_.notify_all();
  gate_ = nullptr;
}

TableGate::Hold TableGate::hold_writer() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !compacting_; });
  ++writers_;
  return Hold(this);
}

int64_t TableGate::compacted_version() const {
  std::lock_guard lock(mutex_);
  return compacted_version_;
}

arrow::Status TableGate::commit_exclusive(const std::function<arrow::Result<int64_t>()>& commit,
                                          const std::function<bool()>& stopping) {
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !compacting_; });
    compacting_ = true;  // new writers wait from here on
    while (writers_ > 0 && !stopping()) changed_.wait_for(lock, std::chrono::milliseconds(50));
    if (writers_ > 0) {
      compacting_ = false;
      lock.unlock();
      changed_.notify_all();
      return arrow::Status::Cancelled("the run is stopping");
    }
  }
  auto version = commit();
  {
    std::lock_guard lock(mutex_);
    compacting_ = false;
    if (version.ok()) compacted_version_ = std::max(compacted_version_, *version);
  }
  changed_.notify_all();
  return version.status();
}

void TableGate::committed(std::shared_ptr<const delta::Snapshot> snapshot) {
  std::lock_guard lock(mutex_);
  if (!last_committed_ || snapshot->version() > last_committed_->version()) last_committed_ = std::move(snapshot);
}

std::shared_ptr<const delta::Snapshot> TableGate::last_committed() const {
  std::lock_guard lock(mutex_);
  if (!last_committed_ || last_committed_->version().value() < compacted_version_) return nullptr;
  return last_committed_;
}

TableMaintenance::TableMaintenance(std::shared_ptr<storage::ObjectStore> objects,
                                   std::shared_ptr<delta::SnapshotCache> snapshots, EventLog* events)
    : objects_(std::move(objects)), snapshots_(std::move(snapshots)), events_(events) {}

TableMaintenance::~TableMaintenance() { stop(); }

void TableMaintenance::add_table(std::string name, std::filesystem::path path, AutoCompactionSettings settings) {
  auto table = std::make_unique<MaintainedTable>();
  table->name = name;
  table->path = std::move(path);
  table->settings = std::move(settings);
  tables_[std::move(name)] = std::move(table);
}

TableGate* TableMaintenance::gate(const std::string& table) {
  auto it = tables_.find(table);
  return it == tables_.end() ? nullptr : it->second->gate.get();
}

void TableMaintenance::changed(const std::string& table) {
  if (!tables_.count(table)) return;
  {
    std::lock_guard lock(mutex_);
    if (!queued_.insert(table).second) return;
    pending_.push_back(table);
  }
  wake_.notify_all();
}

int64_t TableMaintenance::compactions() const {
  std::lock_guard lock(mutex_);
  return compactions_;
}

void TableMaintenance::start() {
  if (thread_.joinable() || tables_.empty()) return;
  thread_ = std::thread([this] { loop(); });
}

void TableMaintenance::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TableMaintenance::loop() {
  auto stopping = [this] {
    std::lock_guard lock(mutex_);
    return stopping_;
  };
  while (true) {
    std::string name;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;
      name = pending_.front();
      pending_.pop_front();
      queued_.erase(name);
    }
    auto again = compact_if_due(*tables_.at(name), stopping);
    if (again.ok() && *again) changed(name);
  }
}

void TableMaintenance::compact_changed(const std::function<bool()>& stopping) {
  auto stop = [&] {
    if (stopping && stopping()) return true;
    std::lock_guard lock(mutex_);
    return stopping_;
  };
  while (true) {
    std::string name;
    if (stop()) return;
    {
      std::lock_guard lock(mutex_);
      if (pending_.empty()) return;
      name = pending_.front();
      pending_.pop_front();
      queued_.erase(name);
    }
    auto again = compact_if_due(*tables_.at(name), stop);
    if (again.ok() && *again) changed(name);
  }
}

arrow::Result<bool> TableMaintenance::compact_if_due(MaintainedTable& table, const std::function<bool()>& stopping) {
  const auto started = std::chrono::steady_clock::now();
  auto store = std::make_shared<delta::LogStore>(objects_, table.path.string());
  auto run = [&]() -> arrow::Result<std::optional<CompactionReport>> {
    std::shared_ptr<const delta::Snapshot> snapshot = table.gate->last_committed();
    if (snapshot) {
      // as the flow's last commit left it
    } else if (snapshots_) {
      ARROW_ASSIGN_OR_RAISE(snapshot, snapshots_->latest_if_exists(*store));
    } else {
      ARROW_ASSIGN_OR_RAISE(snapshot, delta::load_latest_if_exists(*store));
    }
    if (!snapshot) return std::nullopt;
    ARROW_ASSIGN_OR_RAISE(auto sizes, dml::optimize_file_sizes(snapshot->metadata(), table.name));
    const int64_t target = snapshot->metadata().configuration.count("delta.targetFileSize")
                               ? sizes.max_file_size
                               : kAutoCompactTargetFileSize;
    const int64_t small = std::max<int64_t>(1, target / 2);
    // Due when a partition holds min_num_files small files (no I/O: the snapshot's adds).
    std::map<delta::PartitionValues, int64_t> small_files;
    bool due = false;
    for (const auto& f : snapshot->files()) {
      if (f.size < small && ++small_files[f.partition_values] >= table.settings.min_num_files) {
        due = true;
        break;
      }
    }
    if (!due) return std::nullopt;
    dml::OptimizeOptions options;
    options.snapshot = snapshot;
    options.target_file_size = target;
    options.min_file_size = small;
    options.min_small_files = table.settings.min_num_files;
    options.max_input_bytes = table.settings.max_compact_bytes;
    options.zorder_by = table.settings.zorder_by;
    options.automatic = true;
    options.cancelled = stopping;
    ARROW_ASSIGN_OR_RAISE(auto rewrite, dml::rewrite_for_optimize(store, options));
    if (rewrite.empty()) return std::nullopt;
    CompactionReport r;
    r.table = table.name;
    r.files_removed = static_cast<int64_t>(rewrite.removed.size());
    r.files_added = static_cast<int64_t>(rewrite.added.size());
    for (const auto& f : rewrite.removed) r.bytes_removed += f.size;
    r.rows = rewrite.outcome.rows;
    // Only the commit waits for the flows' open writers (milliseconds); the rewrite did not.
    auto committed = table.gate->commit_exclusive(
        [&]() -> arrow::Result<int64_t> {
          auto removed_before = rewrite;  // commit_optimize takes it; a conflict deletes the files itself
          ARROW_ASSIGN_OR_RAISE(auto outcome, dml::commit_optimize(std::move(removed_before)));
          r.version = outcome.version.value();
          return r.version;
        },
        stopping);
    if (committed.IsCancelled()) {
      dml::discard_rewrite(rewrite);
      return committed;
    }
    ARROW_RETURN_NOT_OK(committed);
    r.committed = true;
    return r;
  };
  auto result = run();
  if (!result.ok()) {
    if (result.status().IsCancelled()) return false;  // the run is stopping
    report(table, result.status());
    return false;
  }
  if (!*result) return false;
  auto r = std::move(**result);
  r.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  {
    std::lock_guard lock(mutex_);
    ++compactions_;
  }
  report(table, r);
  return true;  // look again: the input bound may have left small files
}

void TableMaintenance::report(const MaintainedTable& table, const arrow::Result<CompactionReport>& result) {
  if (!result.ok()) {
    // Never the pipeline's failure: the table stays as the flows left it, and the next commit
    // looks again.
    const auto message = fmt::format("auto compaction of table '{}' failed (nothing was committed; it is tried "
                                     "again after the table's next commit): {}",
                                     table.name, result.status().message());
    std::fprintf(stderr, "sluice: warning: %s\n", message.c_str());
    if (events_) {
      events_->add({"maintenance_progress", "WARN", message, "", table.name,
                    {{"maintenance_progress", {{"operation", "OPTIMIZE"}, {"auto", true}, {"status", "FAILED"},
                                               {"error", result.status().message()}}}},
                    0});
    }
    return;
  }
  const auto& r = *result;
  if (!events_) return;
  events_->add({"maintenance_progress", "INFO",
                fmt::format("Auto compaction of table '{}' committed OPTIMIZE as version {}: {} files ({} bytes) "
                            "into {}.",
                            r.table, r.version, r.files_removed, r.bytes_removed, r.files_added),
                "", r.table,
                {{"maintenance_progress", {{"operation", "OPTIMIZE"},
                                           {"auto", true},
                                           {"status", "COMPLETED"},
                                           {"table_version", r.version},
                                           {"num_removed_files", r.files_removed},
                                           {"num_added_files", r.files_added},
                                           {"num_removed_bytes", r.bytes_removed},
                                           {"num_rows", r.rows},
                                           {"duration_ms", r.duration_ms}}}},
                0});
}

}  // namespace sluice::pipeline
