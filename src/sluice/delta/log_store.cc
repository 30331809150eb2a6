// _delta_log over an ObjectStore.
#include "sluice/delta/log_store.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "sluice/common/status.h"

namespace sluice::delta {

namespace fs = std::filesystem;

namespace {

// Parses "%020d.json" into a version; nullopt for any other name.
std::optional<DeltaVersion> commit_version_of(const std::string& name) {
  if (name.size() != 25 || name.compare(20, 5, ".json") != 0) return std::nullopt;
  int64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return DeltaVersion(v);
}

}  // namespace

LogStore::LogStore(fs::path table_root) : objects_(storage::local_store()), root_(std::move(table_root)) {}

LogStore::LogStore(std::shared_ptr<storage::ObjectStore> objects, std::string root)
    : objects_(std::move(objects)), root_(std::move(root)) {}

arrow::Result<std::shared_ptr<LogStore>> LogStore::open(const std::string& location,
                                                        const storage::StorageOptions& options,
                                                        const std::string& what) {
  ARROW_ASSIGN_OR_RAISE(auto parsed, storage::parse_location(location, what));
  ARROW_ASSIGN_OR_RAISE(auto opened, storage::open_location(parsed, options));
  return std::make_shared<LogStore>(std::move(opened.store), std::move(opened.root));
}

fs::path LogStore::commit_path(DeltaVersion v) const {
  return log_dir() / fmt::format("{:020d}.json", v.value());
}

arrow::Result<std::vector<DeltaVersion>> LogStore::list_commits() const {
  ARROW_ASSIGN_OR_RAISE(auto objects, objects_->list(log_dir().string()));
  std::vector<DeltaVersion> out;
  for (const auto& o : objects) {
    if (auto v = commit_version_of(o.name)) out.push_back(*v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

arrow::Result<std::optional<DeltaVersion>> LogStore::latest_version() const {
  if (!is_local()) {
    // From the version _last_checkpoint names on: a listing that does not grow with history.
    // Commits are never deleted before their checkpoint, so the newest is among them.
    auto hint = objects_->read((log_dir() / "_last_checkpoint").string());
    auto json = hint.ok() ? nlohmann::json::parse(*hint, nullptr, false) : nlohmann::json();
    if (json.is_object() && json.contains("version") && json["version"].is_number_integer() &&
        json["version"].get<int64_t>() >= 0) {
      ARROW_ASSIGN_OR_RAISE(auto objects, objects_->list(log_dir().string(),
                                                         fmt::format("{:020d}", json["version"].get<int64_t>())));
      std::optional<DeltaVersion> newest;
      for (const auto& o : objects) {
        if (auto v = commit_version_of(o.name); v && (!newest || *v > *newest)) newest = v;
      }
      if (newest) return newest;
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto versions, list_commits());
  if (versions.empty()) return std::optional<DeltaVersion>{};
  return std::optional<DeltaVersion>{versions.back()};
}

arrow::Result<std::string> LogStore::read_commit(DeltaVersion v) const {
  auto text = objects_->read(commit_path(v).string());
  if (!text.ok()) return with_context(text.status(), "cannot read Delta commit");
  return text;
}

arrow::Result<std::optional<storage::ObjectInfo>> LogStore::commit_info(DeltaVersion v) const {
  return objects_->head(commit_path(v).string());
}

arrow::Result<int64_t> LogStore::commit_timestamp(DeltaVersion v) const {
  std::optional<storage::ObjectInfo> info;
  if (is_local()) {
    ARROW_ASSIGN_OR_RAISE(info, commit_info(v));
  } else {
    // A listing's LastModified has milliseconds where S3 gives them; a HEAD's has seconds.
    ARROW_ASSIGN_OR_RAISE(auto objects, objects_->list(log_dir().string(), fmt::format("{:020d}", v.value())));
    const std::string name = commit_path(v).filename().string();
    for (auto& o : objects) {
      if (o.name == name) info = std::move(o);
    }
  }
  if (!info) return io_error("cannot stat Delta commit {}: it is not there", display(commit_path(v)));
  return info->mtime_nanos / 1'000'000;
}

arrow::Result<std::vector<std::pair<DeltaVersion, int64_t>>> LogStore::commit_timestamps() const {
  std::vector<std::pair<DeltaVersion, int64_t>> out;
  if (is_local()) {
    ARROW_ASSIGN_OR_RAISE(auto versions, list_commits());
    for (auto v : versions) {
      ARROW_ASSIGN_OR_RAISE(int64_t ts, commit_timestamp(v));
      out.emplace_back(v, ts);
    }
    return out;
  }
  ARROW_ASSIGN_OR_RAISE(auto objects, objects_->list(log_dir().string()));
  for (const auto& o : objects) {
    if (auto v = commit_version_of(o.name)) out.emplace_back(*v, o.mtime_nanos / 1'000'000);
  }
  std::sort(out.begin(), out.end());
  return out;
}

arrow::Result<PutResult> LogStore::put_commit_if_absent(DeltaVersion v, const std::string& content) const {
  auto put = objects_->put_if_absent(commit_path(v).string(), content);
  if (!put.ok()) return with_context(put.status(), "cannot publish Delta commit");
  return put;
}

}  // namespace sluice::delta
