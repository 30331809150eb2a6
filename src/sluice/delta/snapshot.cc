// Log replay into a Snapshot.
#include "sluice/delta/snapshot.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_map>

#include "sluice/common/status.h"
#include "sluice/delta/schema.h"

namespace sluice::delta {

arrow::Status check_protocol_supported(const Protocol& protocol, const std::string& table) {
  static const std::vector<std::string> kReaderFeatures = {"timestampNtz"};
  if (protocol.min_reader_version > 3) {
    return arrow::Status::NotImplemented(fmt::format(
        "table {} needs Delta reader version {}; sluice reads versions 1 to 3", table,
        protocol.min_reader_version));
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

arrow::Result<std::shared_ptr<const Snapshot>> Snapshot::load(const LogStore& store,
                                                              std::optional<DeltaVersion> version) {
  const std::string table = store.table_root().string();
  ARROW_ASSIGN_OR_RAISE(auto versions, store.list_commits());
  if (versions.empty()) return invalid("{} is not a Delta table (no _delta_log commits)", table);
  if (versions.front() != DeltaVersion(0)) {
    return arrow::Status::NotImplemented(fmt::format(
        "{}: log starts at version {} (older commits cleaned up); reading from checkpoints is "
        "not supported yet",
        table, versions.front().value()));
  }
  DeltaVersion target = version.value_or(versions.back());
  if (target > versions.back()) {
    return invalid("{} has no version {} (latest is {})", table, target.value(),
                   versions.back().value());
  }

  std::shared_ptr<Snapshot> snap(new Snapshot());
  snap->version_ = target;
  bool have_protocol = false, have_metadata = false;
  std::unordered_map<std::string, size_t> index;  // path -> position in files_
  std::vector<bool> live;
  for (int64_t v = 0; v <= target.value(); ++v) {
    if (v >= static_cast<int64_t>(versions.size()) || versions[v] != DeltaVersion(v)) {
      return invalid("{}: commit {} is missing from _delta_log", table, v);
    }
    ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(DeltaVersion(v)));
    ARROW_ASSIGN_OR_RAISE(auto actions,
                          parse_commit(text, store.commit_path(DeltaVersion(v)).string()));
    for (auto& action : actions) {
      if (auto* p = std::get_if<Protocol>(&action)) {
        snap->protocol_ = *p;
        have_protocol = true;
      } else if (auto* m = std::get_if<Metadata>(&action)) {
        snap->metadata_ = *m;
        have_metadata = true;
      } else if (auto* a = std::get_if<Add>(&action)) {
        auto it = index.find(a->path);
        if (it != index.end()) live[it->second] = false;
        index[a->path] = snap->files_.size();
        snap->files_.push_back(std::move(*a));
        live.push_back(true);
      } else if (auto* r = std::get_if<Remove>(&action)) {
        auto it = index.find(r->path);
        if (it != index.end()) {
          live[it->second] = false;
          index.erase(it);
        }
      } else if (auto* t = std::get_if<Txn>(&action)) {
        snap->txns_[t->app_id] = *t;
      }
    }
  }
  if (!have_protocol || !have_metadata) {
    return invalid("{}: log has no {} action up to version {}", table,
                   have_protocol ? "metaData" : "protocol", target.value());
  }
  ARROW_RETURN_NOT_OK(check_protocol_supported(snap->protocol_, table));
  std::vector<Add> files;
  files.reserve(index.size());
  for (size_t i = 0; i < snap->files_.size(); ++i) {
    if (live[i]) files.push_back(std::move(snap->files_[i]));
  }
  snap->files_ = std::move(files);
  auto schema = from_delta_schema_string(snap->metadata_.schema_string);
  if (!schema.ok()) return with_context(schema.status(), table);
  snap->schema_ = *schema;
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

std::optional<int64_t> Snapshot::txn_version(const std::string& app_id) const {
  auto it = txns_.find(app_id);
  if (it == txns_.end()) return std::nullopt;
  return it->second.version;
}

int64_t Snapshot::num_records() const {
  int64_t total = 0;
  for (const auto& f : files_) {
    if (!f.stats) return -1;
    auto j = nlohmann::json::parse(*f.stats, nullptr, false);
    if (j.is_discarded() || !j.contains("numRecords")) return -1;
    total += j["numRecords"].get<int64_t>();
  }
  return total;
}

}  // namespace sluice::delta
