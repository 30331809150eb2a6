// Operator state snapshots as Arrow IPC files keyed by the commit progress they belong to.
#include "sluice/pipeline/state_store.h"

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/api.h>
#include <arrow/util/key_value_metadata.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <system_error>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::pipeline {

namespace fs = std::filesystem;

namespace {

constexpr const char* kProgressKey = "sluice.state.progress";
constexpr const char* kWatermarkKey = "sluice.state.watermark";
constexpr const char* kInputsKey = "sluice.state.input_max_event_time";

// Snapshots in the folder by sequence number (file name <seq>.arrow).
arrow::Result<std::vector<std::pair<int64_t, fs::path>>> snapshots(const storage::ObjectStore& objects,
                                                                   const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  ARROW_ASSIGN_OR_RAISE(auto listed, objects.list(dir.string()));
  for (const auto& object : listed) {
    const fs::path name(object.name);
    if (name.extension() != ".arrow") continue;
    // Not a sequence number ("12abc.arrow", another tool's file): not a snapshot, skipped.
    const auto seq = parse_int64(name.stem().string(), "state snapshot sequence");
    if (seq.ok()) out.emplace_back(*seq, dir / name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Loaded {
  TxnVersions progress;
  exec::WindowState state;
};

arrow::Result<Loaded> read_snapshot(const storage::ObjectStore& objects, const fs::path& path) {
  ARROW_ASSIGN_OR_RAISE(auto bytes, objects.read(path.string()));
  auto file = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(std::move(bytes)));
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
  Loaded out;
  auto meta = reader->schema()->metadata();
  if (!meta) return invalid("{}: not a sluice state snapshot (no metadata)", objects.display(path.string()));
  try {
    ARROW_ASSIGN_OR_RAISE(auto progress, meta->Get(kProgressKey));
    ARROW_ASSIGN_OR_RAISE(auto watermark, meta->Get(kWatermarkKey));
    ARROW_ASSIGN_OR_RAISE(auto inputs, meta->Get(kInputsKey));
    out.progress = nlohmann::json::parse(progress).get<TxnVersions>();
    auto parsed = parse_int64(watermark, kWatermarkKey);
    if (!parsed.ok()) {
      return invalid("{}: damaged state snapshot metadata: {}", objects.display(path.string()),
                     parsed.status().message());
    }
    out.state.watermark = *parsed;
    out.state.input_max_event_time = nlohmann::json::parse(inputs).get<std::map<std::string, int64_t>>();
  } catch (const std::exception& e) {
    return invalid("{}: damaged state snapshot metadata: {}", objects.display(path.string()), e.what());
  }
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int i = 0; i < reader->num_record_batches(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto b, reader->ReadRecordBatch(i));
    batches.push_back(std::move(b));
  }
  auto schema = reader->schema()->WithMetadata(nullptr);
  std::vector<std::shared_ptr<arrow::RecordBatch>> plain;
  for (const auto& b : batches) plain.push_back(arrow::RecordBatch::Make(schema, b->num_rows(), b->columns()));
  ARROW_ASSIGN_OR_RAISE(out.state.open_rows, arrow::Table::FromRecordBatches(schema, plain));
  return out;
}

// The open rows as the bytes of an Arrow IPC file.
arrow::Result<std::string> snapshot_bytes(const std::shared_ptr<arrow::Schema>& schema, const arrow::Table& rows) {
  ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(out, schema));
  arrow::TableBatchReader reader(rows);
  std::shared_ptr<arrow::RecordBatch> batch;
  while (true) {
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (!batch) break;
    ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(
        *arrow::RecordBatch::Make(schema, batch->num_rows(), batch->columns())));
  }
  ARROW_RETURN_NOT_OK(writer->Close());
  ARROW_ASSIGN_OR_RAISE(auto buffer, out->Finish());
  return buffer->ToString();
}

// Deletes snapshots no longer needed; a failure only leaves a file the next save deletes.
void remove_quietly(storage::ObjectStore& objects, const fs::path& path) {
  (void)objects.remove(path.string());
}

}  // namespace

arrow::Result<std::optional<exec::WindowState>> StateStore::load(const TxnVersions& committed,
                                                                 bool missing_is_none) {
  ARROW_ASSIGN_OR_RAISE(auto files, snapshots(*objects_, dir_));
  bool has_progress = false;
  for (const auto& [app, v] : committed) has_progress |= v >= 0;
  if (!has_progress) {
    // A new flow or one reset by a full refresh: no state; older snapshots are stale.
    for (const auto& [seq, path] : files) remove_quietly(*objects_, path);
    last_seq_ = files.empty() ? -1 : files.back().first;
    return std::nullopt;
  }
  arrow::Status damaged;  // the newest unreadable snapshot, named if no other one matches
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    auto loaded = read_snapshot(*objects_, it->second);
    if (!loaded.ok()) {  // a torn write of a commit that never landed, or a damaged file
      if (damaged.ok()) damaged = loaded.status();
      continue;
    }
    bool matches = !loaded->progress.empty();
    for (const auto& [app, v] : loaded->progress) {
      auto c = committed.find(app);
      matches = matches && c != committed.end() && c->second == v;
    }
    if (!matches) continue;
    // Everything else is an orphan (newer) or superseded (older).
    for (const auto& [seq, path] : files) {
      if (seq != it->first) remove_quietly(*objects_, path);
    }
    // The matched snapshot is the newest one left: the next save must keep it until its own
    // commit lands (a later orphan's number would let that save delete it).
    last_seq_ = it->first;
    return std::move(loaded->state);
  }
  if (missing_is_none) {  // no state committed yet: every snapshot is an orphan
    for (const auto& [seq, path] : files) remove_quietly(*objects_, path);
    last_seq_ = files.empty() ? -1 : files.back().first;
    return std::nullopt;
  }
  return invalid("the window state of the table's last commit is missing from {} (the table has progress but no "
                 "state snapshot matches it; was the folder deleted, or the table written by a sluice without "
                 "event time?){}; run a full refresh of the table (--full-refresh <table>)",
                 objects_->display(dir_.string()),
                 damaged.ok() ? std::string() : "; a snapshot there cannot be read: " + damaged.message());
}

arrow::Result<bool> StateStore::carry_forward(const TxnVersions& committed, const TxnVersions& moves) {
  ARROW_ASSIGN_OR_RAISE(auto files, snapshots(*objects_, dir_));
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    auto loaded = read_snapshot(*objects_, it->second);
    if (!loaded.ok()) continue;
    bool matches = !loaded->progress.empty();
    for (const auto& [app, v] : loaded->progress) {
      auto c = committed.find(app);
      matches = matches && c != committed.end() && c->second == v;
    }
    if (!matches) continue;
    bool moved = false;
    for (const auto& [app, v] : loaded->progress) moved = moved || moves.count(app) > 0;
    if (!moved) return true;  // another flow's state: its progress does not change
    // Newer snapshots are orphans: deleted first, so that the save below (numbered right after
    // the matched one) keeps the matched one until the moving commit lands.
    for (const auto& [seq, path] : files) {
      if (seq > it->first) remove_quietly(*objects_, path);
    }
    last_seq_ = it->first;
    TxnVersions progress = loaded->progress;
    for (auto& [app, v] : progress) {
      if (auto m = moves.find(app); m != moves.end()) v = m->second;
    }
    ARROW_RETURN_NOT_OK(save(progress, loaded->state));
    return true;
  }
  return false;
}

arrow::Result<int64_t> StateStore::save(const TxnVersions& progress, const exec::WindowState& state) {
  ARROW_ASSIGN_OR_RAISE(auto files, snapshots(*objects_, dir_));
  const int64_t seq = std::max(last_seq_, files.empty() ? int64_t{-1} : files.back().first) + 1;
  // The commit of the snapshot before the last one has landed (else this run had stopped).
  for (const auto& [s, path] : files) {
    if (s < seq - 1) remove_quietly(*objects_, path);
  }
  auto meta = arrow::key_value_metadata(
      {kProgressKey, kWatermarkKey, kInputsKey},
      {nlohmann::json(progress).dump(), std::to_string(state.watermark),
       nlohmann::json(state.input_max_event_time).dump()});
  auto schema = state.open_rows->schema()->WithMetadata(meta);
  const auto final_path = dir_ / fmt::format("{:020}.arrow", seq);
  const auto shown = objects_->display(final_path.string());
  auto bytes = snapshot_bytes(schema, *state.open_rows);
  if (!bytes.ok()) return io_failure(bytes.status(), "cannot write state snapshot", shown);
  // Durable (local: temp file, fsync, rename, fsync of the folder) before the commit it belongs
  // to, and never seen half-written: after a power loss a commit whose state is missing would
  // need a full refresh. A failed write (a full disk) leaves no partial file behind.
  auto written = objects_->put(final_path.string(), *bytes);
  if (!written.ok()) return io_failure(written, "cannot write state snapshot", shown);
  last_seq_ = seq;
  return static_cast<int64_t>(bytes->size());
}

}  // namespace sluice::pipeline
