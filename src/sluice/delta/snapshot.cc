// Log replay into a Snapshot.
#include "sluice/delta/snapshot.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "sluice/common/status.h"
#include "sluice/delta/checkpoint.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/table_features.h"

namespace sluice::delta {

namespace fs = std::filesystem;

void Snapshot::apply(Action&& action, bool* saw_protocol, bool* saw_metadata) {
  if (auto* p = std::get_if<Protocol>(&action)) {
    protocol_ = std::move(*p);
    *saw_protocol = true;
  } else if (auto* m = std::get_if<Metadata>(&action)) {
    metadata_ = std::move(*m);
    *saw_metadata = true;
  } else if (auto* a = std::get_if<Add>(&action)) {
    // Keyed by (path, deletion vector id), as the protocol names a logical file: a DELETE
    // with deletion vectors adds the path with its new vector and removes it with the old one.
    std::string key = file_key(a->path, a->deletion_vector);
    tombstones_.erase(key);
    live_[key] = {sequence_++, std::move(*a)};
  } else if (auto* r = std::get_if<Remove>(&action)) {
    std::string key = file_key(r->path, r->deletion_vector);
    live_.erase(key);
    tombstones_[key] = std::move(*r);
  } else if (auto* t = std::get_if<Txn>(&action)) {
    txns_[t->app_id] = std::move(*t);
  } else if (auto* o = std::get_if<OtherAction>(&action)) {
    // parse_commit checked the fields of a domainMetadata action, so this cannot fail.
    auto domain = domain_metadata_of(*o);
    if (domain.ok() && *domain) {
      if ((*domain)->removed) {
        domains_.erase((*domain)->domain);
      } else {
        domains_[(*domain)->domain] = std::move(**domain);
      }
    }
  }
}

arrow::Status Snapshot::finish(const std::string& table) {
  ARROW_RETURN_NOT_OK(check_read_supported(protocol_, table));
  auto schema = from_delta_schema_string(metadata_.schema_string);
  if (!schema.ok()) return with_context(schema.status(), table);
  schema_ = *schema;
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<const Snapshot>> Snapshot::load(const LogStore& store,
                                                              std::optional<DeltaVersion> version) {
  const std::string table = store.location();
  // First only what `_last_checkpoint` names and what came after (a listing that does not
  // grow with the table's history); anything that does not replay from there (a stale or
  // wrong hint, an older version, a damaged checkpoint) is decided on the whole listing, so
  // its errors are the same as without the shortcut.
  const auto hint = read_last_checkpoint(store);
  if (hint && *hint >= 0 && (!version || version->value() >= *hint)) {
    ARROW_ASSIGN_OR_RAISE(auto recent, list_log(store, DeltaVersion(*hint)));
    auto segment = build_log_segment(recent, table, version);
    if (segment.ok() && segment->checkpoint) {
      auto snapshot = replay(store, recent, *segment);
      if (snapshot.ok()) return snapshot;
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto listing, list_log(store));
  ARROW_ASSIGN_OR_RAISE(auto segment, build_log_segment(listing, table, version));
  return replay(store, listing, segment);
}

arrow::Result<std::shared_ptr<const Snapshot>> Snapshot::replay(const LogStore& store,
                                                                const LogListing& listing,
                                                                const LogSegment& segment) {
  const std::string table = store.location();
  std::shared_ptr<Snapshot> snap(new Snapshot());
  snap->version_ = segment.version;
  bool saw_protocol = false, saw_metadata = false;
  if (segment.checkpoint) {
    const auto& checkpoint = *segment.checkpoint;
    auto actions = read_checkpoint(store, checkpoint);
    if (actions.ok() && actions->empty()) {
      actions = invalid("checkpoint {} holds no actions", checkpoint.parts.front().string());
    }
    if (actions.ok()) {
      for (auto& a : *actions) snap->apply(std::move(a), &saw_protocol, &saw_metadata);
      if (!saw_protocol || !saw_metadata) {
        actions = invalid("checkpoint {} has no {} action", checkpoint.parts.front().string(),
                          saw_protocol ? "metaData" : "protocol");
      }
    }
    if (!actions.ok()) {
      // Say whether replay could do without it: only when every commit before it is there.
      const bool commits_cover = check_commits_present(listing, table, DeltaVersion(-1),
                                                       checkpoint.version)
                                     .ok();
      std::string files;
      for (const auto& p : checkpoint.parts) files += (files.empty() ? "" : ", ") + p.filename().string();
      return with_context(
          invalid("{}. The checkpoint of version {} is corrupt: {}", actions.status().message(),
                  checkpoint.version.value(),
                  commits_cover
                      ? fmt::format("delete {} from _delta_log and sluice replays the JSON "
                                    "commits, which are all there",
                                    files)
                      : std::string("restore it from a backup (the JSON commits before it are "
                                    "gone, so the table cannot be read without it)")),
          table);
    }
    snap->checkpoint_version_ = checkpoint.version;
  }
  for (DeltaVersion v : segment.commits) {
    ARROW_RETURN_NOT_OK(snap->apply_commit(store, v, &saw_protocol, &saw_metadata));
  }
  if (!saw_protocol || !saw_metadata) {
    return invalid("{}: log has no {} action up to version {}", table,
                   saw_protocol ? "metaData" : "protocol", segment.version.value());
  }
  ARROW_RETURN_NOT_OK(snap->finish(table));
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

arrow::Status Snapshot::apply_commit(const LogStore& store, DeltaVersion v, bool* saw_protocol,
                                     bool* saw_metadata) {
  ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(v));
  ARROW_ASSIGN_OR_RAISE(auto actions, parse_commit(text, store.display(store.commit_path(v))));
  for (auto& a : actions) apply(std::move(a), saw_protocol, saw_metadata);
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<const Snapshot>> Snapshot::advance(
    const LogStore& store, std::optional<DeltaVersion> version) const {
  const std::string table = store.location();
  DeltaVersion target = version_;
  if (version) {
    target = *version;
  } else {
    ARROW_ASSIGN_OR_RAISE(auto latest, store.latest_version());
    target = latest.value_or(version_);
  }
  if (target < version_) return load(store, target);
  std::shared_ptr<Snapshot> snap(new Snapshot(*this));
  snap->version_ = target;
  bool saw_protocol = true, saw_metadata = true;
  for (int64_t v = version_.value() + 1; v <= target.value(); ++v) {
    auto applied = snap->apply_commit(store, DeltaVersion(v), &saw_protocol, &saw_metadata);
    if (!applied.ok()) {
      // A commit that is not there gets the listing's message (which one, what to do);
      // listing only then keeps the commit path free of a directory scan.
      auto there = store.commit_info(DeltaVersion(v));
      if (there.ok() && !*there) {
        ARROW_ASSIGN_OR_RAISE(auto listing, list_log(store));
        ARROW_RETURN_NOT_OK(check_commits_present(listing, table, version_, target));
      }
      return applied;
    }
  }
  ARROW_RETURN_NOT_OK(snap->finish(table));
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

arrow::Result<std::shared_ptr<const Snapshot>> Snapshot::load_at_timestamp(
    const LogStore& store, int64_t timestamp_millis) {
  ARROW_ASSIGN_OR_RAISE(auto commits, store.commit_timestamps());
  std::optional<DeltaVersion> chosen;
  int64_t monotonic = INT64_MIN;
  for (auto [v, ts] : commits) {
    monotonic = std::max(monotonic, ts);  // as Spark: a commit is never older than its parent
    if (monotonic <= timestamp_millis) chosen = v;
  }
  if (!chosen) {
    return invalid("{} has no version committed at or before the given time (first commit is "
                   "later)",
                   store.location());
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
    if (!j.is_object()) return -1;
    auto n = j.find("numRecords");
    if (n == j.end() || !n->is_number_integer()) return -1;
    // numRecords counts the file's rows, deleted ones included.
    total += n->get<int64_t>() -
             (entry.second.deletion_vector ? entry.second.deletion_vector->cardinality : 0);
  }
  return total;
}

int64_t Snapshot::size_bytes() const {
  int64_t total = 0;
  for (const auto& [path, entry] : live_) total += entry.second.size;
  return total;
}

}  // namespace sluice::delta
