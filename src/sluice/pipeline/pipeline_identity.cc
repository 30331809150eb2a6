// The pipeline's identity record in its storage.
#include "sluice/pipeline/pipeline_identity.h"


#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/table.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/sql_sources.h"

namespace sluice::pipeline {

namespace fs = std::filesystem;

// The one maker of PipelineIds (progress_id.h): from pipeline.json, or adopted from progress.
struct PipelineIdentityRecord {
  static PipelineId id(std::string value) { return PipelineId(std::move(value)); }
};

namespace {

// The side tables a table's rows may go to; they record the table's flows' progress.
constexpr const char* kSideTableSuffixes[] = {"_quarantine", "_dead_letter", "_late"};

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

arrow::Result<PipelineIdentity> parse_identity(const storage::ObjectStore& objects, const fs::path& path) {
  auto text = objects.read(path.string());
  if (!text.ok()) {
    return io_error("cannot read {}: {} (it records the id the pipeline's progress is keyed by: let the user "
                    "running sluice read and write {})",
                    objects.display(path.string()), text.status().message(),
                    objects.display(path.parent_path().string()));
  }
  const auto shown = objects.display(path.string());
  const auto what_to_do = fmt::format(
      "it records the id the pipeline's progress is keyed by: restore it, or delete it and sluice adopts the id "
      "from the progress recorded in the tables (the first part of their txn appIds)");
  try {
    auto j = nlohmann::json::parse(*text);
    PipelineIdentity identity;
    identity.id = PipelineIdentityRecord::id(j.at("pipeline_id").get<std::string>());
    identity.name = j.at("name").get<std::string>();
    identity.folder = j.at("folder").get<std::string>();
    identity.created_ms = j.value("created_ms", int64_t{0});
    if (identity.id.empty() || identity.id.value().find('/') != std::string::npos) {
      return invalid("{}: 'pipeline_id' must be a non-empty name without '/'; {}", shown, what_to_do);
    }
    return identity;
  } catch (const nlohmann::json::exception& e) {
    return invalid("{} is not a pipeline identity record ({}); {}", shown, e.what(), what_to_do);
  }
}

// Publishes `identity` at `path` only if nothing is there yet (durably, atomically: the
// store's put-if-absent); false when another process created it first.
arrow::Result<bool> create_if_absent(storage::ObjectStore& objects, const fs::path& path,
                                     const PipelineIdentity& identity) {
  ARROW_ASSIGN_OR_RAISE(auto put, objects.put_if_absent(path.string(), to_json(identity)));
  return put == storage::PutResult::kWritten;
}

arrow::Status replace(storage::ObjectStore& objects, const fs::path& path, const PipelineIdentity& identity) {
  return objects.put(path.string(), to_json(identity));
}

// Whether two configurations name one storage (local folders compared canonically).
bool same_storage(const PipelineConfig& a, const PipelineConfig& b) {
  if (a.storage_is_local() != b.storage_is_local()) return false;
  if (a.storage_is_local()) return canonical_or_self(a.storage) == canonical_or_self(b.storage);
  return a.storage_display() == b.storage_display();
}

// The pipeline ids this pipeline's tables (and their side tables) recorded its flows' progress
// under, with the tables each was found in (storage written before pipeline.json existed keyed
// progress by the pipeline's name). Tables of other pipelines and progress of other flows are
// not looked at; a table that cannot be read is skipped with a warning.
std::map<std::string, std::set<std::string>> recorded_pipeline_ids(const PipelineConfig& config,
                                                                   const PipelineLayout& layout) {
  std::map<std::string, std::set<std::string>> ids;  // id -> tables
  for (const auto& base : layout.tables) {
    std::vector<std::string> names{base};
    for (const char* suffix : kSideTableSuffixes) names.push_back(base + suffix);
    for (const auto& name : names) {
      const auto path = config.table_path(name);
      delta::LogStore store(config.objects, path.string());
      auto snapshot = delta::load_latest_if_exists(store);
      if (!snapshot.ok()) {
        std::fprintf(stderr,
                     "sluice: warning: table '%s' (%s) cannot be read to find the pipeline id its progress was "
                     "recorded under, skipped: %s\n",
                     name.c_str(), store.location().c_str(), snapshot.status().message().c_str());
        continue;
      }
      if (!*snapshot) continue;
      for (const auto& [app, txn] : (*snapshot)->txns()) {
        auto owner = owner_of_progress(app);
        if (owner && layout.flows.count(owner->flow)) ids[owner->pipeline].insert(name);
      }
    }
  }
  return ids;
}

// The id for storage without pipeline.json.
arrow::Result<IdentityOpening> first_identity(const PipelineConfig& config, const PipelineLayout& layout) {
  IdentityOpening out;
  out.created = true;
  out.identity.name = config.name;
  out.identity.folder = canonical_or_self(config.dir);
  out.identity.created_ms = now_millis();
  const auto recorded = recorded_pipeline_ids(config, layout);
  if (recorded.empty() || recorded.count(config.name)) {
    out.identity.id = PipelineIdentityRecord::id(config.name);
    return out;
  }
  if (recorded.size() == 1) {  // written under another name, then renamed before this version
    out.identity.id = PipelineIdentityRecord::id(recorded.begin()->first);
    out.renamed_from = recorded.begin()->first;
    return out;
  }
  std::string found;
  for (const auto& [id, tables] : recorded) {
    for (const auto& t : tables) found += fmt::format("\n  table '{}' -> progress of pipeline '{}'", t, id);
  }
  return invalid(
      "pipeline '{}': the tables in storage '{}' hold progress recorded under several pipeline names and there is "
      "no record of which one this pipeline continues ({} is missing):{}\nSet 'name:' in {} to the name this "
      "pipeline ran under, run once (that records it), then rename it back if you like",
      config.name, config.storage_display(), config.objects->display(identity_path(config).string()), found,
      (config.dir / "pipeline.yaml").string());
}

// The pipeline in folder `other` if its pipeline.yaml still points its storage at `storage`.
struct OtherFolder {
  std::string name;
  PipelineLayout layout;
};
arrow::Result<std::optional<OtherFolder>> other_folder_on(const fs::path& other, const PipelineConfig& ours) {
  std::error_code ec;
  if (!fs::exists(other / "pipeline.yaml", ec)) return std::nullopt;
  ARROW_ASSIGN_OR_RAISE(auto config, load_pipeline_config(other));
  if (!same_storage(config, ours)) return std::nullopt;
  ARROW_ASSIGN_OR_RAISE(auto sql, load_sql_sources(config));
  std::optional<Graph> graph;
  if (!sql.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto built, build_graph(std::move(sql)));
    graph = std::move(built);
  }
  return OtherFolder{config.name, pipeline_layout(config, graph ? &*graph : nullptr)};
}

}  // namespace

fs::path identity_path(const PipelineConfig& config) { return config.storage / "system" / "pipeline.json"; }

PipelineLayout pipeline_layout(const PipelineConfig& config, const Graph* graph) {
  PipelineLayout out;
  for (const auto& t : config.bronze) {
    out.tables.insert(t.table);
    out.flows.insert(t.table);  // a bronze list table's one flow is named after it
  }
  if (graph) {
    for (const auto& [name, d] : graph->datasets) {
      if (d.kind == sql::DatasetKind::kView || d.kind == sql::DatasetKind::kTemporaryView) continue;
      out.tables.insert(name);
    }
    for (const auto& [name, flow] : graph->flows) out.flows.insert(name);
  }
  return out;
}

arrow::Result<IdentityOpening> open_pipeline_identity(const PipelineConfig& config, const PipelineLayout& layout) {
  const auto path = identity_path(config);
  auto& objects = *config.objects;
  ARROW_ASSIGN_OR_RAISE(auto present, objects.head(path.string()));
  if (!present) {
    ARROW_ASSIGN_OR_RAISE(auto opening, first_identity(config, layout));
    ARROW_ASSIGN_OR_RAISE(bool created, create_if_absent(objects, path, opening.identity));
    if (created) return opening;
    // Another process created it first: continue with what it recorded.
  }
  ARROW_ASSIGN_OR_RAISE(auto recorded, parse_identity(objects, path));
  IdentityOpening out;
  out.identity = recorded;
  const auto folder = canonical_or_self(config.dir);
  if (canonical_or_self(recorded.folder) != folder) {
    // The run lock keeps runs apart; what must not happen is two different pipelines mixing
    // their tables in one storage. A folder of the same pipeline (same name or same tables: a
    // release directory next to the previous release, a copy for another scale-out worker, a
    // rename) is fine.
    auto other = other_folder_on(recorded.folder, config);
    if (!other.ok()) {
      std::fprintf(stderr,
                   "sluice: warning: pipeline '%s' last ran from folder %s, whose pipeline.yaml cannot be read (%s); "
                   "continuing from folder %s\n",
                   recorded.name.c_str(), recorded.folder.c_str(), other.status().message().c_str(), folder.c_str());
    } else if (*other && (*other)->name != config.name && (*other)->layout.tables != layout.tables) {
      // This pipeline's tables already in the storage (older versions let pipelines share one):
      // moved with their logs, they keep their progress, so nothing is read twice.
      std::string own;
      for (const auto& base : layout.tables) {
        std::vector<std::string> names{base};
        for (const char* suffix : kSideTableSuffixes) names.push_back(base + suffix);
        for (const auto& name : names) {
          auto version = delta::LogStore(config.objects, config.table_path(name).string()).latest_version();
          if (version.ok() && *version) own += (own.empty() ? "" : ", ") + name;
        }
      }
      const auto move = own.empty()
          ? std::string(" (it has no tables there yet)")
          : fmt::format(", after moving its tables ({}) from {} into the new storage's tables/ folder (they keep "
                        "their progress: nothing is read twice)",
                        own, config.objects->display((config.storage / "tables").string()));
      return invalid(
          "pipeline '{}' (folder {}) uses storage '{}', which belongs to pipeline '{}' (folder {}); their names and "
          "tables differ, so they are two pipelines, and two pipelines must not share one storage. Give '{}' its "
          "own 'storage:' in {}{}. If '{}' is instead a new version of '{}' (renamed and with other tables), make "
          "{} point elsewhere or delete it, then run again: the tables and their progress stay",
          config.name, folder.string(), config.storage_display(), (*other)->name, recorded.folder.string(),
          config.name, (config.dir / "pipeline.yaml").string(), move, config.name, (*other)->name,
          (recorded.folder / "pipeline.yaml").string());
    }
    if (other.ok() && *other) {
      // Both folders still run this pipeline: note it, keep the recorded folder.
      std::fprintf(stderr, "sluice: note: pipeline '%s' runs from folder %s; folder %s points at storage '%s' too\n",
                   config.name.c_str(), folder.c_str(), recorded.folder.c_str(), config.storage_display().c_str());
    } else {
      out.moved_from = recorded.folder;
      out.identity.folder = folder;
    }
  }
  if (recorded.name != config.name) {
    out.renamed_from = recorded.name;
    out.identity.name = config.name;
  }
  if (out.moved_from || out.renamed_from) ARROW_RETURN_NOT_OK(replace(objects, path, out.identity));
  return out;
}

arrow::Status open_pipeline_storage(PipelineConfig& config, const PipelineLayout& layout) {
  ARROW_ASSIGN_OR_RAISE(auto opening, open_pipeline_identity(config, layout));
  config.id = opening.identity.id;
  if (!opening.renamed_from && !opening.moved_from) return arrow::Status::OK();
  EventLog events(config.objects, config.storage, config.name, random_uuid());
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
