// VACUUM: what Spark's VacuumCommand deletes, chosen the same way, committed the same way.
#include "sluice/delta/vacuum.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <map>

#include "sluice/common/failpoint.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/delta/snapshot.h"
#include "sluice/delta/table_features.h"
#include "sluice/delta/transaction.h"
#include "sluice/storage/object_store.h"

namespace sluice::delta {

namespace fs = std::filesystem;

// A path of an add/remove action or a deletion vector relative to the table root; none when it
// lies outside the table (an absolute path elsewhere: never listed, never deleted). An object
// store's absolute URI ("s3://bucket/key") is "bucket/key" in its namespace, as the root.
std::optional<std::string> vacuum_relative_path(const std::string& decoded, const std::string& root) {
  std::string p = decoded;
  bool absolute = false;
  if (p.rfind("file://", 0) == 0) {
    p = p.substr(7);
  } else if (p.rfind("file:", 0) == 0) {
    p = p.substr(5);
  } else if (const size_t scheme = p.find("://"); scheme != std::string::npos) {
    p = p.substr(scheme + 3);
    absolute = true;
    // Azure's "abfss://container@account.dfs.core.windows.net/path" names the container first,
    // as the root does ("container/path"): without this a live file would seem to lie outside
    // the table and be deleted.
    const size_t slash = p.find('/');
    if (const size_t at = p.find('@'); at != std::string::npos && at < slash) {
      p = p.substr(0, at) + (slash == std::string::npos ? "" : p.substr(slash));
    }
  }
  if (!absolute && (p.empty() || p[0] != '/')) return p;  // already relative
  const std::string prefix = fs::path(root).lexically_normal().string() + "/";
  const std::string normal = fs::path(p).lexically_normal().string();
  if (normal.rfind(prefix, 0) != 0) return std::nullopt;
  return normal.substr(prefix.size());
}

namespace {

constexpr int64_t kMillisPerDay = 24ll * 3600 * 1000;

// Unit of an interval word (singular or plural), in microseconds; 0 when unknown, -1 for
// months and years (which have no fixed length: Delta refuses them in retention properties).
int64_t interval_unit_micros(std::string unit) {
  unit = to_lower(std::move(unit));
  if (unit.size() > 1 && unit.back() == 's') unit.pop_back();
  if (unit == "week") return 7 * kMillisPerDay * 1000;
  if (unit == "day") return kMillisPerDay * 1000;
  if (unit == "hour") return 3600ll * 1'000'000;
  if (unit == "minute") return 60ll * 1'000'000;
  if (unit == "second") return 1'000'000;
  if (unit == "millisecond") return 1000;
  if (unit == "microsecond") return 1;
  if (unit == "month" || unit == "year") return -1;
  return 0;
}

arrow::Result<int64_t> retention_property(const Metadata& metadata, const std::string& table, const char* key,
                                          int64_t default_millis) {
  auto it = metadata.configuration.find(key);
  if (it == metadata.configuration.end()) return default_millis;
  auto parsed = parse_interval_millis(it->second);
  if (!parsed.ok()) {
    return invalid("table {}: property {} = '{}': {}; set it to a duration such as 'interval 7 days'", table, key,
                   it->second, parsed.status().message());
  }
  return *parsed;
}

// The ancestors of a relative path ("a/b/c.parquet" -> "a", "a/b").
void insert_with_folders(std::set<std::string>& out, const std::string& path) {
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    out.insert(path.substr(0, slash));
  }
  out.insert(path);
}

// Every file and folder under `root` that Spark lists for VACUUM: hidden names (and what is
// below a hidden folder) left out. Modification times from lstat (a link is a file here).
arrow::Result<std::vector<ListedFile>> list_local_table(const std::string& root,
                                                        const std::vector<std::string>& partition_columns) {
  std::vector<ListedFile> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    const bool is_dir = it->is_directory(ec) && !it->is_symlink(ec);
    if (is_hidden_for_vacuum(name, partition_columns)) {
      if (is_dir) it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // deleted while listing
      return io_failure(errno, "cannot stat", p.string());
    }
    ListedFile f;
    f.path = p.lexically_relative(root).generic_string();
    f.is_dir = is_dir;
    f.size = is_dir ? 0 : static_cast<int64_t>(st.st_size);
    f.mtime_millis = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    out.push_back(std::move(f));
  }
  if (ec) return io_error("cannot list {} for vacuum: {}", root, ec.message());
  return out;
}

// The same on an object store (S3, GCS, Azure): one recursive prefix listing; a name is hidden
// when any folder on its way is. Object stores have no folders to delete; a zero-byte "x/"
// folder marker is not a file and is left alone.
arrow::Result<std::vector<ListedFile>> list_object_table(const storage::ObjectStore& objects, const std::string& root,
                                                         const std::vector<std::string>& partition_columns) {
  auto listed = objects.list_recursive(root);
  if (!listed.ok()) return with_context(listed.status(), fmt::format("cannot list {} for vacuum", objects.display(root)));
  std::vector<ListedFile> out;
  for (auto& o : *listed) {
    if (o.name.empty() || o.name.back() == '/') continue;
    bool hidden = false;
    for (size_t begin = 0; begin <= o.name.size() && !hidden;) {
      const size_t slash = std::min(o.name.find('/', begin), o.name.size());
      hidden = is_hidden_for_vacuum(std::string_view(o.name).substr(begin, slash - begin), partition_columns);
      begin = slash + 1;
    }
    if (hidden) continue;
    ListedFile f;
    f.path = std::move(o.name);
    f.size = o.size;
    f.mtime_millis = o.mtime_nanos / 1'000'000;
    out.push_back(std::move(f));
  }
  return out;
}

std::string hours_text(int64_t millis) {
  return fmt::format("{:g} hours", static_cast<double>(millis) / 3'600'000.0);
}

}  // namespace

arrow::Result<int64_t> parse_interval_millis(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  size_t i = 0;
  if (!words.empty() && to_lower(words[0]) == "interval") i = 1;
  if (i >= words.size()) return invalid("'{}' is not a duration (write e.g. 'interval 7 days')", text);
  if ((words.size() - i) % 2 != 0) {
    return invalid("'{}' is not a duration: each number needs a unit (write e.g. 'interval 7 days')", text);
  }
  int64_t micros = 0;
  for (; i < words.size(); i += 2) {
    const std::string& number = words[i];
    const int64_t unit = interval_unit_micros(words[i + 1]);
    if (unit == 0) {
      return invalid("'{}' is not a duration: unknown unit '{}' (use weeks, days, hours, minutes, seconds, "
                     "milliseconds or microseconds)", text, words[i + 1]);
    }
    if (unit < 0) {
      return invalid("'{}': months and years have no fixed length; Delta refuses them in a retention duration "
                     "(use days)", text);
    }
    const bool fraction = number.find('.') != std::string::npos;
    if (fraction && unit != 1'000'000) {
      return invalid("'{}': only seconds may have a fraction, as in Spark (write e.g. '90 minutes')", text);
    }
    const auto value = parse_double(number, "duration");
    if (!value.ok() || std::fabs(*value) * static_cast<double>(unit) > 9e18) {
      return invalid("'{}' is not a duration: '{}' is not a number in range", quote_for_error(text),
                     quote_for_error(number));
    }
    micros += static_cast<int64_t>(std::llround(*value * static_cast<double>(unit)));
  }
  return micros / 1000;
}

arrow::Result<int64_t> deleted_file_retention_millis(const Metadata& metadata, const std::string& table) {
  return retention_property(metadata, table, "delta.deletedFileRetentionDuration", 7 * kMillisPerDay);
}

arrow::Result<int64_t> log_retention_millis(const Metadata& metadata, const std::string& table) {
  return retention_property(metadata, table, "delta.logRetentionDuration", 30 * kMillisPerDay);
}

arrow::Result<int64_t> checkpoint_retention_millis(const Metadata& metadata, const std::string& table) {
  return retention_property(metadata, table, "delta.checkpointRetentionDuration", 2 * kMillisPerDay);
}

arrow::Result<std::optional<std::string>> deletion_vector_file(std::string_view storage_type,
                                                               std::string_view path_or_inline_dv) {
  if (storage_type == "i") return std::optional<std::string>{};
  if (storage_type == "p") return std::optional<std::string>{std::string(path_or_inline_dv)};
  if (storage_type != "u") {
    return invalid("deletion vector storageType '{}' is not one of 'u', 'p', 'i'", storage_type);
  }
  if (path_or_inline_dv.size() < 20) {
    return invalid("deletion vector pathOrInlineDv '{}' is shorter than a Z85-encoded uuid", path_or_inline_dv);
  }
  static constexpr std::string_view kZ85 =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  const std::string_view prefix = path_or_inline_dv.substr(0, path_or_inline_dv.size() - 20);
  const std::string_view encoded = path_or_inline_dv.substr(path_or_inline_dv.size() - 20);
  std::string hex;
  for (size_t group = 0; group < 4; ++group) {
    uint64_t value = 0;
    for (size_t k = 0; k < 5; ++k) {
      const size_t digit = kZ85.find(encoded[group * 5 + k]);
      if (digit == std::string_view::npos) {
        return invalid("deletion vector pathOrInlineDv '{}' is not Z85 (character '{}')", path_or_inline_dv,
                       encoded[group * 5 + k]);
      }
      value = value * 85 + digit;
    }
    if (value > 0xffffffffULL) return invalid("deletion vector pathOrInlineDv '{}' is not Z85", path_or_inline_dv);
    hex += fmt::format("{:08x}", value);
  }
  const std::string uuid = fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4), hex.substr(12, 4),
                                       hex.substr(16, 4), hex.substr(20, 12));
  std::string file = "deletion_vector_" + uuid + ".bin";
  if (!prefix.empty()) file = std::string(prefix) + "/" + file;
  return std::optional<std::string>{std::move(file)};
}

bool is_hidden_for_vacuum(std::string_view name, const std::vector<std::string>& partition_columns) {
  if (name == "metadata") return true;
  if (name.empty() || (name[0] != '.' && name[0] != '_')) return false;
  if (name.rfind("_delta_index", 0) == 0 || name.rfind("_change_data", 0) == 0) return false;
  for (const auto& c : partition_columns) {
    if (name.rfind(c + "=", 0) == 0) return false;
  }
  return true;
}

std::vector<ListedFile> select_vacuum_candidates(const std::vector<ListedFile>& listing,
                                                 const std::set<std::string>& valid,
                                                 int64_t delete_before_millis) {
  // Spark counts each path: a folder once for itself and once per old file below it, a file
  // once; what is counted once and not valid goes.
  std::map<std::string, std::pair<int64_t, const ListedFile*>> counts;
  for (const auto& f : listing) {
    if (f.is_dir) {
      auto& c = counts[f.path];
      ++c.first;
      c.second = &f;
      continue;
    }
    if (f.mtime_millis >= delete_before_millis) continue;
    auto& c = counts[f.path];
    ++c.first;
    c.second = &f;
    for (size_t slash = f.path.find('/'); slash != std::string::npos; slash = f.path.find('/', slash + 1)) {
      ++counts[f.path.substr(0, slash)].first;
    }
  }
  std::vector<ListedFile> out;
  for (const auto& [path, c] : counts) {
    if (c.first == 1 && c.second != nullptr && !valid.count(path)) out.push_back(*c.second);
  }
  return out;
}

namespace {

// The paths (relative to the root, with the folders above them) that the commits after `decided`
// name, each with the first version naming it: adds with their deletion vectors, cdc files.
// `newest` is set to the newest version listed.
arrow::Result<std::map<std::string, int64_t>> named_since(const LogStore& store, DeltaVersion decided,
                                                          DeltaVersion& newest) {
  ARROW_ASSIGN_OR_RAISE(auto versions, store.list_commits());
  const std::string root = store.table_root().string();
  std::map<std::string, int64_t> named;
  newest = decided;
  int64_t version = 0;
  auto name = [&](const std::string& encoded) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto decoded, uri_decode_path(encoded));
    if (auto rel = vacuum_relative_path(decoded, root)) {
      std::set<std::string> with_folders;
      insert_with_folders(with_folders, *rel);
      for (const auto& p : with_folders) named.emplace(p, version);
    }
    return arrow::Status::OK();
  };
  for (const auto v : versions) {
    if (v.value() > newest.value()) newest = v;
    if (v.value() <= decided.value()) continue;
    version = v.value();
    ARROW_ASSIGN_OR_RAISE(auto text, store.read_commit(v));
    ARROW_ASSIGN_OR_RAISE(auto actions, parse_commit(text, store.display(store.commit_path(v))));
    for (const auto& action : actions) {
      if (const auto* add = std::get_if<Add>(&action)) {
        ARROW_RETURN_NOT_OK(name(add->path));
        if (add->deletion_vector) {
          auto file = deletion_vector_file(add->deletion_vector->storage_type, add->deletion_vector->path_or_inline_dv);
          if (file.ok() && *file) ARROW_RETURN_NOT_OK(name(**file));
        }
      } else if (const auto* other = std::get_if<OtherAction>(&action)) {
        if (other->kind == "cdc" && other->value.contains("path") && other->value["path"].is_string()) {
          ARROW_RETURN_NOT_OK(name(other->value["path"].get<std::string>()));
        }
      }
    }
  }
  return named;
}

}  // namespace

arrow::Result<int64_t> drop_committed_since(const LogStore& store, DeltaVersion decided,
                                            std::vector<ListedFile>& candidates, DeltaVersion* newest_read) {
  DeltaVersion newest{0};
  ARROW_ASSIGN_OR_RAISE(auto named, named_since(store, decided, newest));
  if (newest_read) *newest_read = newest;
  int64_t dropped = 0;
  std::erase_if(candidates, [&](const ListedFile& f) {
    const bool keep = named.count(f.path) > 0;
    dropped += keep && !f.is_dir;
    return keep;
  });
  return dropped;
}

arrow::Result<VacuumResult> vacuum(const std::shared_ptr<LogStore>& store, const VacuumOptions& options) {
  const std::string table = store->location();
  ARROW_ASSIGN_OR_RAISE(auto snapshot, Snapshot::load(*store));
  const auto& protocol = snapshot->protocol();
  // vacuumProtocolCheck: a vacuum must understand the table as a reader and as a writer.
  ARROW_RETURN_NOT_OK(check_read_supported(protocol, table));
  ARROW_RETURN_NOT_OK(check_write_supported(protocol, snapshot->metadata(), table));
  ARROW_ASSIGN_OR_RAISE(const int64_t configured, deleted_file_retention_millis(snapshot->metadata(), table));
  VacuumResult result;
  result.read_version = snapshot->version();
  result.retention_millis = options.retain_millis.value_or(configured);
  if (result.retention_millis < 0) {
    return invalid("vacuum of {}: the retention {} is negative; give a duration of 0 or more", table,
                   hours_text(result.retention_millis));
  }
  if (options.check == RetentionCheck::kEnforced && result.retention_millis < configured) {
    return invalid(
        "vacuum of {}: a retention of {} is shorter than the table's delta.deletedFileRetentionDuration ({}): "
        "a writer still writing to the table, or a reader of a version inside that window, could lose files it "
        "needs. If no operation is running on the table, give --force (Spark: "
        "spark.databricks.delta.retentionDurationCheck.enabled = false)",
        table, hours_text(result.retention_millis), hours_text(configured));
  }
  result.delete_before_millis = now_millis() - result.retention_millis;

  const std::string root = store->table_root().string();
  std::set<std::string> valid;
  auto keep = [&](const std::string& encoded) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto decoded, uri_decode_path(encoded));
    if (auto rel = vacuum_relative_path(decoded, root)) insert_with_folders(valid, *rel);
    return arrow::Status::OK();
  };
  // A file's deletion vector is kept with it (Spark's VacuumCommand: the vector of every live
  // file and unexpired tombstone); vectors no such file names go like any other stray file.
  auto keep_vector = [&](const std::optional<DeletionVectorDescriptor>& dv) -> arrow::Status {
    if (!dv) return arrow::Status::OK();
    auto file = deletion_vector_file(dv->storage_type, dv->path_or_inline_dv);
    if (!file.ok()) return with_context(file.status(), fmt::format("vacuum of {}", table));
    return *file ? keep(**file) : arrow::Status::OK();
  };
  for (const auto& add : snapshot->files()) {
    ARROW_RETURN_NOT_OK(keep(add.path));
    ARROW_RETURN_NOT_OK(keep_vector(add.deletion_vector));
  }
  for (const auto& r : snapshot->tombstones()) {
    if (options.tombstones == TombstoneRule::kIgnore) break;
    if (r.deletion_timestamp.value_or(0) < result.delete_before_millis) continue;
    ARROW_RETURN_NOT_OK(keep(r.path));
    ARROW_RETURN_NOT_OK(keep_vector(r.deletion_vector));
  }
  const auto& partition_columns = snapshot->metadata().partition_columns;
  ARROW_ASSIGN_OR_RAISE(auto listing, store->is_local() ? list_local_table(root, partition_columns)
                                                        : list_object_table(*store->objects(), root, partition_columns));
  const int64_t files_before = options.keep_modified_since_millis
                                   ? std::min(result.delete_before_millis, *options.keep_modified_since_millis)
                                   : result.delete_before_millis;
  result.candidates = select_vacuum_candidates(listing, valid, files_before);
  int64_t num_files = 0;
  for (const auto& f : result.candidates) {
    result.bytes += f.size;
    num_files += !f.is_dir;
  }
  if (options.mode == VacuumMode::kDryRun) return result;
  fail_point("vacuum_after_choice");  // tests: another writer commits one of the candidates

  // Spark's VacuumStart / VacuumEnd operations, commitInfo only; values as strings, as Spark
  // serializes them.
  CommitOptions start;
  start.operation = "VACUUM START";
  start.operation_parameters = {
      {"retentionCheckEnabled", options.check == RetentionCheck::kEnforced ? "true" : "false"},
      {"defaultRetentionMillis", std::to_string(configured)},
      {"vacuumType", "FULL"}};
  if (options.retain_millis) start.operation_parameters["specifiedRetentionMillis"] = std::to_string(*options.retain_millis);
  start.operation_metrics = {{"numFilesToDelete", std::to_string(num_files)},
                             {"sizeOfDataToDelete", std::to_string(result.bytes)}};
  Transaction start_txn(store, snapshot);
  ARROW_ASSIGN_OR_RAISE(auto started, start_txn.commit(start));
  result.start_version = started.version;
  // The log read again after the choice: a writer that takes no maintenance lock (Spark) may
  // have committed a file it wrote before the cut-off since the listing. Kept, not deleted.
  DeltaVersion rechecked{0};
  ARROW_ASSIGN_OR_RAISE(const int64_t named,
                        drop_committed_since(*store, snapshot->version(), result.candidates, &rechecked));
  if (named > 0) {
    num_files = 0;
    result.bytes = 0;
    for (const auto& f : result.candidates) {
      result.bytes += f.is_dir ? 0 : f.size;
      num_files += !f.is_dir;
    }
  }

  fail_point("vacuum_before_delete");  // tests: a commit after the re-read

  arrow::Status failure;
  // Files first, then folders deepest first (a folder still holding files is left for later).
  for (const auto& f : result.candidates) {
    if (f.is_dir) continue;
    const std::string path = (store->table_root() / f.path).string();
    auto st = store->objects()->remove(path);
    if (!st.ok()) {
      failure = io_failure(st, "cannot delete", path);
      break;
    }
    ++result.deleted_files;
  }
  std::vector<const ListedFile*> dirs;
  for (const auto& f : result.candidates) {
    if (f.is_dir) dirs.push_back(&f);
  }
  std::sort(dirs.begin(), dirs.end(), [](const ListedFile* a, const ListedFile* b) { return a->path > b->path; });
  for (const auto* d : failure.ok() ? dirs : std::vector<const ListedFile*>{}) {
    const std::string path = (store->table_root() / d->path).string();
    if (::rmdir(path.c_str()) == 0) {
      ++result.deleted_dirs;
    } else if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT) {
      failure = io_failure(errno, "cannot delete folder", path);
      break;
    }
  }

  // Once more after the deletions: a commit that landed after the re-read and names a file
  // just deleted cannot be undone here (Delta has no lock a lockless writer would honour), but
  // it is not left unsaid: the vacuum fails naming the version and the file.
  DeltaVersion checked{0};
  arrow::Status lost;
  auto late = named_since(*store, rechecked, checked);
  if (!late.ok()) {
    if (failure.ok()) failure = with_context(late.status(), "reading the log after the deletions");
  } else {
    for (const auto& f : result.candidates) {
      auto it = late->find(f.path);
      if (f.is_dir || it == late->end() || !lost.ok()) continue;
      lost = arrow::Status::Invalid(fmt::format(
          "version {} of {}, committed by another writer while vacuum deleted files, names {}, which this vacuum "
          "deleted (it was unreferenced and older than the retention when chosen): that version now names a "
          "missing file. Undo it (RESTORE the table to version {}) or write the file again; a writer that commits "
          "files older than the retention must not run beside a vacuum",
          it->second, table, f.path, it->second - 1));
    }
    result.checked_through = checked;
  }

  CommitOptions end;
  end.operation = "VACUUM END";
  end.operation_parameters = {{"status", failure.ok() && lost.ok() ? "COMPLETED" : "FAILED"}};
  end.operation_metrics = {{"numDeletedFiles", std::to_string(result.deleted_files)},
                           {"numVacuumedDirectories", std::to_string(result.deleted_dirs)}};
  Transaction end_txn(store, started.snapshot);
  ARROW_ASSIGN_OR_RAISE(auto ended, end_txn.commit(end));
  result.end_version = ended.version;
  if (!lost.ok()) return with_context(lost, fmt::format("vacuum of {}", table));
  if (!failure.ok()) {
    return with_context(failure, fmt::format("vacuum of {} (deleted {} of {} files; run it again)", table,
                                             result.deleted_files, num_files));
  }
  return result;
}

}  // namespace sluice::delta
