// The pipeline's identity record in its storage.
#include "sluice/pipeline/pipeline_identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/table.h"
#include "sluice/pipeline/event_log.h"

namespace sluice::pipeline {

namespace fs = std::filesystem;

namespace {

fs::path canonical_or_self(const fs::path& p) {
  std::error_code ec;
  auto c = fs::weakly_canonical(p, ec);
  return ec ? p : c;
}

std::string to_json(const PipelineIdentity& identity) {
  nlohmann::json j = {{"pipeline_id", identity.id.value()},
                      {"name", identity.name},
                      {"folder", identity.folder.string()},
                      {"created_ms", identity.created_ms}};
  return j.dump(2) + "\n";
}

arrow::Result<PipelineIdentity> parse_identity(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return io_error("cannot open {}: {}", path.string(), std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  const auto what_to_do = fmt::format(
      "it records the id the pipeline's progress is keyed by: restore it, or delete it and sluice adopts the id "
      "from the progress recorded in the tables (the first part of their txn appIds)");
  try {
    auto j = nlohmann::json::parse(text.str());
    PipelineIdentity identity;
    identity.id = PipelineId(j.at("pipeline_id").get<std::string>());
    identity.name = j.at("name").get<std::string>();
    identity.folder = j.at("folder").get<std::string>();
    identity.created_ms = j.value("created_ms", int64_t{0});
    if (identity.id.empty() || identity.id.value().find('/') != std::string::npos) {
      return invalid("{}: 'pipeline_id' must be a non-empty name without '/'; {}", path.string(), what_to_do);
    }
    return identity;
  } catch (const nlohmann::json::exception& e) {
    return invalid("{} is not a pipeline identity record ({}); {}", path.string(), e.what(), what_to_do);
  }
}

// Writes `identity` to a temporary file beside `path` (fsynced); returns its path.
arrow::Result<fs::path> write_temp(const fs::path& path, const PipelineIdentity& identity) {
  const auto tmp = path.parent_path() / fmt::format(".{}.{}.tmp", path.filename().string(), random_uuid());
  const auto text = to_json(identity);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot create {}: {}", tmp.string(), std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return io_error("cannot write {}: {}", tmp.string(), std::strerror(err));
  }
  return tmp;
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

// Publishes `identity` at `path` only if nothing is there yet; false when another process
// created it first.
arrow::Result<bool> create_if_absent(const fs::path& path, const PipelineIdentity& identity) {
  ARROW_ASSIGN_OR_RAISE(auto tmp, write_temp(path, identity));
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && err == EEXIST) return false;
  if (rc != 0) return io_error("cannot create {}: {}", path.string(), std::strerror(err));
  fsync_dir(path.parent_path());
  return true;
}

arrow::Status replace(const fs::path& path, const PipelineIdentity& identity) {
  ARROW_ASSIGN_OR_RAISE(auto tmp, write_temp(path, identity));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error("cannot replace {}: {}", path.string(), std::strerror(err));
  }
  fsync_dir(path.parent_path());
  return arrow::Status::OK();
}

// The pipeline ids the progress in the storage's tables was recorded under (storage written
// before pipeline.json existed keyed it by the pipeline's name).
arrow::Result<std::set<std::string>> recorded_pipeline_ids(const fs::path& storage) {
  std::set<std::string> ids;
  std::error_code ec;
  const auto tables = storage / "tables";
  if (!fs::is_directory(tables, ec)) return ids;
  for (const auto& entry : fs::directory_iterator(tables, ec)) {
    if (!fs::is_directory(entry.path() / "_delta_log", ec)) continue;
    delta::LogStore store(entry.path());
    auto snapshot = delta::load_latest_if_exists(store);
    if (!snapshot.ok()) {
      return with_context(snapshot.status(),
                          fmt::format("reading the progress recorded in table '{}' to adopt its pipeline id",
                                      entry.path().filename().string()));
    }
    if (!*snapshot) continue;
    for (const auto& [app, txn] : (*snapshot)->txns()) {
      if (auto id = pipeline_of_progress(app)) ids.insert(id->value());
    }
  }
  if (ec) return io_error("cannot list {}: {}", tables.string(), ec.message());
  return ids;
}

// The id for storage without pipeline.json.
arrow::Result<IdentityOpening> first_identity(const PipelineConfig& config) {
  IdentityOpening out;
  out.created = true;
  out.identity.name = config.name;
  out.identity.folder = canonical_or_self(config.dir);
  out.identity.created_ms = now_millis();
  ARROW_ASSIGN_OR_RAISE(auto recorded, recorded_pipeline_ids(config.storage));
  if (recorded.empty() || recorded.count(config.name)) {
    out.identity.id = PipelineId(config.name);
    return out;
  }
  if (recorded.size() == 1) {  // written under another name, then renamed before this version
    out.identity.id = PipelineId(*recorded.begin());
    out.renamed_from = *recorded.begin();
    return out;
  }
  std::string names;
  for (const auto& n : recorded) names += fmt::format("{}'{}'", names.empty() ? "" : ", ", n);
  return invalid(
      "pipeline '{}': storage '{}' holds progress recorded under the pipeline names {} and no record of which one "
      "this pipeline continues ({} is missing): set 'name:' in {} to the name the pipeline ran under, run once, "
      "then rename it back if you like",
      config.name, config.storage.string(), names, identity_path(config).string(),
      (config.dir / "pipeline.yaml").string());
}

// Whether the pipeline folder `other` still points its storage at `storage`.
arrow::Result<bool> folder_uses_storage(const fs::path& other, const fs::path& storage) {
  std::error_code ec;
  if (!fs::exists(other / "pipeline.yaml", ec)) return false;
  auto config = load_pipeline_config(other);
  if (!config.ok()) return config.status();
  return canonical_or_self(config->storage) == canonical_or_self(storage);
}

}  // namespace

fs::path identity_path(const PipelineConfig& config) { return config.storage / "system" / "pipeline.json"; }

arrow::Result<IdentityOpening> open_pipeline_identity(const PipelineConfig& config) {
  const auto path = identity_path(config);
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return io_error("cannot create {}: {}", path.parent_path().string(), ec.message());
  if (!fs::exists(path, ec)) {
    ARROW_ASSIGN_OR_RAISE(auto opening, first_identity(config));
    ARROW_ASSIGN_OR_RAISE(bool created, create_if_absent(path, opening.identity));
    if (created) return opening;
    // Another process created it first: continue with what it recorded.
  }
  ARROW_ASSIGN_OR_RAISE(auto recorded, parse_identity(path));
  IdentityOpening out;
  out.identity = recorded;
  const auto folder = canonical_or_self(config.dir);
  if (canonical_or_self(recorded.folder) != folder) {
    auto shared = folder_uses_storage(recorded.folder, config.storage);
    if (!shared.ok() || *shared) {
      return invalid(
          "pipeline '{}' (folder {}) uses storage '{}', which belongs to pipeline '{}' (folder {}){}. Two pipeline "
          "folders must not share one storage: give one of them its own 'storage:' in pipeline.yaml; or, if {} "
          "replaces {} (moved or copied), delete {} and run again",
          config.name, folder.string(), config.storage.string(), recorded.name, recorded.folder.string(),
          shared.ok() ? "" : fmt::format(" (its pipeline.yaml cannot be read: {})", shared.status().message()),
          folder.string(), recorded.folder.string(), (recorded.folder / "pipeline.yaml").string());
    }
    out.moved_from = recorded.folder;
    out.identity.folder = folder;
  }
  if (recorded.name != config.name) {
    out.renamed_from = recorded.name;
    out.identity.name = config.name;
  }
  if (out.moved_from || out.renamed_from) ARROW_RETURN_NOT_OK(replace(path, out.identity));
  return out;
}

arrow::Status open_pipeline_storage(PipelineConfig& config) {
  ARROW_ASSIGN_OR_RAISE(auto opening, open_pipeline_identity(config));
  config.id = opening.identity.id;
  if (!opening.renamed_from && !opening.moved_from) return arrow::Status::OK();
  EventLog events(config.storage, config.name, random_uuid());
  if (opening.renamed_from) {
    auto message = fmt::format("Pipeline '{}' was renamed to '{}'; its progress continues (pipeline id '{}').",
                               *opening.renamed_from, config.name, config.id.value());
    std::fprintf(stderr, "sluice: %s\n", message.c_str());
    events.add({"pipeline_renamed", "INFO", message, "", "",
                {{"pipeline_renamed", {{"from", *opening.renamed_from}, {"to", config.name},
                                       {"pipeline_id", config.id.value()}}}}, 0});
  }
  if (opening.moved_from) {
    auto message = fmt::format("Pipeline '{}' now runs from folder {} (was {}); its progress continues.",
                               config.name, opening.identity.folder.string(), opening.moved_from->string());
    std::fprintf(stderr, "sluice: %s\n", message.c_str());
    events.add({"pipeline_moved", "INFO", message, "", "",
                {{"pipeline_moved", {{"from", opening.moved_from->string()},
                                     {"to", opening.identity.folder.string()}}}}, 0});
  }
  auto logged = events.flush();
  if (!logged.ok()) {
    std::fprintf(stderr, "sluice: warning: could not write the event log: %s\n", logged.message().c_str());
  }
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
