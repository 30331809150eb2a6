// Listing `_delta_log` and validating the log segment of a version before replay.
#include "sluice/delta/log_segment.h"

#include <nlohmann/json.hpp>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "sluice/common/status.h"
#include "sluice/common/status_kind.h"

namespace sluice::delta {

namespace {

// `digits` decimal digits at name[pos..]; nullopt when any is not a digit or the value does
// not fit an int64 (a file named for a version no writer can reach is not a log file).
std::optional<int64_t> parse_digits(const std::string& name, size_t pos, size_t digits) {
  if (name.size() < pos + digits) return std::nullopt;
  int64_t v = 0;
  for (size_t i = pos; i < pos + digits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (INT64_MAX - (c - '0')) / 10) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

std::optional<int64_t> read_last_checkpoint(const LogStore& store) {
  auto text = store.objects()->read((store.log_dir() / "_last_checkpoint").string());
  if (!text.ok()) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto it = j.find("version");
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

namespace {

std::string file_name(DeltaVersion v) { return fmt::format("{:020d}.json", v.value()); }

// What the listing says about the checkpoints in (after, upto] that replay cannot use.
std::string checkpoint_hints(const LogListing& listing, std::optional<DeltaVersion> after,
                             DeltaVersion upto) {
  std::string out;
  for (const auto& [version, files] : listing.checkpoints) {
    if ((after && version <= *after) || version > upto) continue;
    std::set<int> present;
    int parts = 0;
    for (const auto& f : files) {
      present.insert(f.part);
      parts = std::max(parts, f.parts);
    }
    std::vector<int> missing;
    for (int p = 1; p <= parts && missing.size() < 5; ++p) {
      if (!present.count(p)) missing.push_back(p);
    }
    if (!missing.empty()) {
      out += fmt::format("; checkpoint {} is incomplete: part(s) {} of {} are missing", version.value(),
                         fmt::join(missing, ", "), parts);
    }
  }
  if (listing.last_checkpoint && (!after || *listing.last_checkpoint > after->value()) &&
      !listing.checkpoints.count(DeltaVersion(*listing.last_checkpoint))) {
    out += fmt::format("; _last_checkpoint names checkpoint {} but its file is missing",
                       *listing.last_checkpoint);
  }
  return out;
}

}  // namespace

std::optional<DeltaVersion> parse_commit_file_name(const std::string& name) {
  if (name.size() != 25 || name.compare(20, 5, ".json") != 0) return std::nullopt;
  auto v = parse_digits(name, 0, 20);
  if (!v) return std::nullopt;
  return DeltaVersion(*v);
}

std::optional<std::pair<DeltaVersion, CheckpointFile>> parse_checkpoint_file_name(
    const std::string& name) {
  static constexpr std::string_view kInfix = ".checkpoint.";
  static constexpr std::string_view kSuffix = ".parquet";
  if (name.size() < 20 + kInfix.size() || name.compare(20, kInfix.size(), kInfix) != 0) {
    return std::nullopt;
  }
  auto version = parse_digits(name, 0, 20);
  if (!version) return std::nullopt;
  const std::string rest = name.substr(20 + kInfix.size());
  CheckpointFile file;
  if (rest == "parquet") return std::make_pair(DeltaVersion(*version), file);
  // Multi-part: "%010d.%010d.parquet".
  if (rest.size() != 10 + 1 + 10 + kSuffix.size() || rest[10] != '.' ||
      rest.compare(21, kSuffix.size(), kSuffix) != 0) {
    return std::nullopt;
  }
  auto part = parse_digits(rest, 0, 10);
  auto parts = parse_digits(rest, 11, 10);
  if (!part || !parts || *parts < 1 || *part < 1 || *part > *parts || *parts > INT32_MAX) {
    return std::nullopt;
  }
  file.part = static_cast<int>(*part);
  file.parts = static_cast<int>(*parts);
  return std::make_pair(DeltaVersion(*version), file);
}

arrow::Result<LogListing> list_log(const LogStore& store, std::optional<DeltaVersion> after) {
  LogListing listing;
  listing.last_checkpoint = read_last_checkpoint(store);
  const std::string start_after = after ? fmt::format("{:020d}", after->value()) : "";
  ARROW_ASSIGN_OR_RAISE(auto objects, store.objects()->list(store.log_dir().string(), start_after));
  for (const auto& object : objects) {
    const std::string& name = object.name;
    if (auto v = parse_commit_file_name(name)) {
      listing.commits.push_back(*v);
    } else if (auto cp = parse_checkpoint_file_name(name)) {
      cp->second.path = store.log_dir() / name;
      listing.checkpoints[cp->first].push_back(std::move(cp->second));
    }
  }
  std::sort(listing.commits.begin(), listing.commits.end());
  for (auto& [version, files] : listing.checkpoints) {
    std::sort(files.begin(), files.end(), [](const CheckpointFile& a, const CheckpointFile& b) {
      return std::tie(a.parts, a.part) < std::tie(b.parts, b.part);
    });
  }
  return listing;
}

std::optional<CheckpointRef> newest_complete_checkpoint(const LogListing& listing,
                                                        std::optional<DeltaVersion> at) {
  for (auto it = listing.checkpoints.rbegin(); it != listing.checkpoints.rend(); ++it) {
    if (at && it->first > *at) continue;
    // Complete: a single file, or parts 1..n of one n-part checkpoint (files are sorted by
    // (parts, part), so each n-part group is a run).
    std::map<int, std::vector<const CheckpointFile*>> by_parts;
    for (const auto& f : it->second) by_parts[f.parts].push_back(&f);
    for (const auto& [parts, files] : by_parts) {
      std::set<int> present;
      for (const auto* f : files) present.insert(f->part);
      if (static_cast<int>(present.size()) != parts) continue;
      CheckpointRef ref{it->first, {}};
      int last = 0;
      for (const auto* f : files) {
        if (f->part == last) continue;  // same part twice cannot happen with one name per part
        ref.parts.push_back(f->path);
        last = f->part;
      }
      return ref;
    }
  }
  return std::nullopt;
}

namespace {

constexpr const char* kMissingCommit = "sluice::delta::missing_commit";

}  // namespace

arrow::Status check_commits_present(const LogListing& listing, const std::string& table,
                                    DeltaVersion after, DeltaVersion upto) {
  auto it = std::upper_bound(listing.commits.begin(), listing.commits.end(), after);
  for (int64_t v = after.value() + 1; v <= upto.value(); ++v, ++it) {
    if (it == listing.commits.end() || *it != DeltaVersion(v)) {
      return mark_kind(invalid(
          "{}: cannot reconstruct version {}: commit {} is missing from _delta_log (expected "
          "{}){}. The log is corrupt: restore the missing file from a backup; sluice does not "
          "skip a version",
          table, upto.value(), v, file_name(DeltaVersion(v)),
          checkpoint_hints(listing, after, upto)), kMissingCommit);
    }
  }
  return arrow::Status::OK();
}

bool is_missing_commit(const arrow::Status& status) { return is_kind(status, kMissingCommit); }

arrow::Result<LogSegment> build_log_segment(const LogListing& listing, const std::string& table,
                                            std::optional<DeltaVersion> version) {
  auto checkpoint = newest_complete_checkpoint(listing, std::nullopt);
  if (listing.commits.empty() && !checkpoint) {
    if (!listing.checkpoints.empty()) {
      return invalid("{} has no readable version: _delta_log holds no commit and no complete "
                     "checkpoint{}",
                     table, checkpoint_hints(listing, std::nullopt, listing.checkpoints.rbegin()->first));
    }
    return invalid("{} is not a Delta table (no _delta_log commits)", table);
  }
  DeltaVersion latest = listing.commits.empty() ? checkpoint->version : listing.commits.back();
  if (checkpoint && checkpoint->version > latest) latest = checkpoint->version;
  // The hint was read before the listing: a checkpoint newer than every listed file means the
  // log lost its newest files (truncated copy, files deleted), and reading on would silently
  // go back in time.
  DeltaVersion newest_file = latest;
  if (!listing.checkpoints.empty() && listing.checkpoints.rbegin()->first > newest_file) {
    newest_file = listing.checkpoints.rbegin()->first;
  }
  if (listing.last_checkpoint && *listing.last_checkpoint > newest_file.value()) {
    return invalid(
        "{}: _delta_log/_last_checkpoint names version {} but the newest file in _delta_log is "
        "version {}: the commits (and checkpoint) after version {} are missing. Restore them from "
        "a backup; sluice does not read a table that went back in time",
        table, *listing.last_checkpoint, newest_file.value(), newest_file.value());
  }
  const DeltaVersion target = version.value_or(latest);
  if (target > latest) {
    return invalid("{} has no version {} (latest is {})", table, target.value(), latest.value());
  }
  LogSegment segment;
  segment.version = target;
  segment.checkpoint = newest_complete_checkpoint(listing, target);
  const DeltaVersion after =
      segment.checkpoint ? segment.checkpoint->version : DeltaVersion(-1);
  ARROW_RETURN_NOT_OK(check_commits_present(listing, table, after, target));
  for (int64_t v = after.value() + 1; v <= target.value(); ++v) {
    segment.commits.push_back(DeltaVersion(v));
  }
  return segment;
}

}  // namespace sluice::delta
