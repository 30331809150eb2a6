// Log replay into a Snapshot.
#include "sluice/delta/snapshot.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "sluice/common/status.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/schema.h"

namespace sluice::delta {

namespace fs = std::filesystem;

arrow::Status check_protocol_supported(const Protocol& protocol, const std::string& table) {
  static const std::vector<std::string> kReaderFeatures = {"timestampNtz"};
  if (protocol.min_reader_version > 3) {
    return arrow::Status::NotImplemented(fmt::format(
        "table {} needs Delta reader version {}; sluice reads versions 1 to 3", table,
        protocol.min_reader_version));
  }
  if (protocol.min_reader_version == 2) {
    return arrow::Status::NotImplemented(fmt::format(
        "table {} needs Delta reader version 2 (column mapping), which sluice does not read yet",
        table));
  }
  if (protocol.min_reader_version == 3 && protocol.reader_features) {
    for (const auto& f : *protocol.reader_features) {
      if (std::find(kReaderFeatures.begin(), kReaderFeatures.end(), f) == kReaderFeatures.end()) {
        return arrow::Status::NotImplemented(fmt::format(
            "table {} uses Delta reader feature '{}', which sluice does not support", table, f));
      }
    }
  }
  return arrow::Status::OK();
}

void Snapshot::apply(Action&& action, bool* saw_protocol, bool* saw_metadata) {
  if (auto* p = std::get_if<Protocol>(&action)) {
    protocol_ = std::move(*p);
    *saw_protocol = true;
  } else if (auto* m = std::get_if<Metadata>(&action)) {
    metadata_ = std::move(*m);
    *saw_metadata = true;
  } else if (auto* a = std::get_if<Add>(&action)) {
    tombstones_.erase(a->path);
    std::string path = a->path;
    live_[path] = {sequence_++, std::move(*a)};
  } else if (auto* r = std::get_if<Remove>(&action)) {
    live_.erase(r->path);
    std::string path = r->path;
    tombstones_[path] = std::move(*r);
  } else if (auto* t = std::get_if<Txn>(&action)) {
    txns_[t->app_id] = std::move(*t);
  }
}

arrow::Status Snapshot::finish(const std::string& table) {
  ARROW_RETURN_NOT_OK(check_protocol_supported(protocol_, table));
  auto schema = from_delta_schema_string(metadata_.schema_string);
  if (!schema.ok()) return with_context(schema.status(), table);
  schema_ = *schema;
  return arrow::Status::OK();
}

namespace {

// The version `_last_checkpoint` names, if the file is there and readable.
std::optional<int64_t> last_checkpoint_hint(const LogStore& store) {
  std::ifstream in(store.log_dir() / "_last_checkpoint");
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("version") || !j["version"].is_number_integer()) {
    return std::nullopt;
  }
  return j["version"].get<int64_t>();
}

}  // namespace

arrow::Result<std::shared_ptr<const Snapshot>> Snapshot::load(const LogStore& store,
                                                              std::optional<DeltaVersion> version) {
  const std::string table = store.table_root().string();
  ARROW_ASSIGN_OR_RAISE(auto versions, store.list_commits());
  ARROW_ASSIGN_OR_RAISE(auto checkpoint, find_checkpoint(store, version));
  if (versions.empty() && !checkpoint) {
    return invalid("{} is not a Delta table (no _delta_log commits)", table);
  }
  DeltaVersion latest = versions.empty() ? checkpoint->version : versions.back();
  if (checkpoint && checkpoint->version > latest) latest = checkpoint->version;
  DeltaVersion target = version.value_or(latest);
  if (target > latest) {
    return invalid("{} has no version {} (latest is {})", table, target.value(), latest.value());
  }

  std::shared_ptr<Snapshot> snap(new Snapshot());
  snap->version_ = target;
  bool saw_protocol = false, saw_metadata = false;
  int64_t first_commit = 0;
  if (checkpoint) {
    ARROW_ASSIGN_OR_RAISE(auto actions, read_checkpoint(*checkpoint));
    for (auto& a : actions) snap->apply(std::move(a), &saw_protocol, &saw_metadata);
    snap->checkpoint_version_ = checkpoint->version;
    first_commit = checkpoint->version.value() + 1;
  }
  // Commits first_commit..target must all be there.
  auto it = std::lower_bound(versions.begin(), versions.end(), DeltaVersion(first_commit));
  for (int64_t v = first_commit; v <= target.value(); ++v, ++it) {
    if (it == versions.end() || *it != DeltaVersion(v)) {
      std::string hint;
      auto named = last_checkpoint_hint(store);
      if (named && (!checkpoint || checkpoint->version.value() < *named)) {
        hint = fmt::format("; _last_checkpoint names checkpoint {} but its file is missing", *named);
      }
      return invalid("{}: cannot reconstruct version {}: commit {} is missing from _delta_log{}",
                     table, target.value(), v, hint);
    }
    ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(DeltaVersion(v)));
    ARROW_ASSIGN_OR_RAISE(auto actions,
                          parse_commit(text, store.commit_path(DeltaVersion(v)).string()));
    for (auto& a : actions) snap->apply(std::move(a), &saw_protocol, &saw_metadata);
  }
  if (!saw_protocol || !saw_metadata) {
    return invalid("{}: log has no {} action up to version {}", table,
                   saw_protocol ? "metaData" : "protocol", target.value());
  }
  ARROW_RETURN_NOT_OK(snap->finish(table));
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

arrow::Result<std::shared_ptr<const Snapshot>> Snapshot::advance(
    const LogStore& store, std::optional<DeltaVersion> version) const {
  ARROW_ASSIGN_OR_RAISE(auto latest, store.latest_version());
  DeltaVersion target = version.value_or(latest.value_or(version_));
  if (target < version_) return load(store, target);
  std::shared_ptr<Snapshot> snap(new Snapshot(*this));
  snap->version_ = target;
  bool saw_protocol = true, saw_metadata = true;
  for (int64_t v = version_.value() + 1; v <= target.value(); ++v) {
    ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(DeltaVersion(v)));
    ARROW_ASSIGN_OR_RAISE(auto actions,
                          parse_commit(text, store.commit_path(DeltaVersion(v)).string()));
    for (auto& a : actions) snap->apply(std::move(a), &saw_protocol, &saw_metadata);
  }
  ARROW_RETURN_NOT_OK(snap->finish(store.table_root().string()));
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

arrow::Result<std::shared_ptr<const Snapshot>> Snapshot::load_at_timestamp(
    const LogStore& store, int64_t timestamp_millis) {
  ARROW_ASSIGN_OR_RAISE(auto versions, store.list_commits());
  std::optional<DeltaVersion> chosen;
  int64_t monotonic = INT64_MIN;
  for (auto v : versions) {
    ARROW_ASSIGN_OR_RAISE(int64_t ts, store.commit_timestamp(v));
    monotonic = std::max(monotonic, ts);  // as Spark: a commit is never older than its parent
    if (monotonic <= timestamp_millis) chosen = v;
  }
  if (!chosen) {
    return invalid("{} has no version committed at or before the given time (first commit is "
                   "later)",
                   store.table_root().string());
  }
  return load(store, *chosen);
}

std::vector<Add> Snapshot::files() const {
  std::vector<const std::pair<int64_t, Add>*> order;
  order.reserve(live_.size());
  for (const auto& [path, entry] : live_) order.push_back(&entry);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::vector<Add> out;
  out.reserve(order.size());
  for (const auto* e : order) out.push_back(e->second);
  return out;
}

std::vector<Remove> Snapshot::tombstones() const {
  std::vector<Remove> out;
  out.reserve(tombstones_.size());
  for (const auto& [path, r] : tombstones_) out.push_back(r);
  return out;
}

std::optional<int64_t> Snapshot::txn_version(const std::string& app_id) const {
  auto it = txns_.find(app_id);
  if (it == txns_.end()) return std::nullopt;
  return it->second.version;
}

int64_t Snapshot::num_records() const {
  int64_t total = 0;
  for (const auto& [path, entry] : live_) {
    const auto& stats = entry.second.stats;
    if (!stats) return -1;
    auto j = nlohmann::json::parse(*stats, nullptr, false);
    if (j.is_discarded() || !j.contains("numRecords")) return -1;
    total += j["numRecords"].get<int64_t>();
  }
  return total;
}

int64_t Snapshot::size_bytes() const {
  int64_t total = 0;
  for (const auto& [path, entry] : live_) total += entry.second.size;
  return total;
}

}  // namespace sluice::delta
