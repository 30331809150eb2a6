// Snapshots of a flow's operator state, each tied to the Delta commit it belongs to (DESIGN.md
// §4): written before the commit under <table>/_sluice_state/<flow>/, named by a sequence
// number and labelled with the progress (txn appId -> version) that commit records. At start
// the snapshot whose progress equals the table's committed txns is the state to continue
// from; a snapshot of a commit that never landed (a crash between the two) is an orphan and
// is deleted, as are snapshots older than the one loaded.
#pragma once

#include <arrow/result.h>

#include <filesystem>
#include <optional>

#include "sluice/exec/event_time_operator.h"
#include "sluice/pipeline/side_table.h"
#include "sluice/storage/object_store.h"

namespace sluice::pipeline {

// Thread-compatible: owned by one flow run.
class StateStore {
 public:
  // Snapshots in folder `dir` of `objects` (the pipeline's storage: local or an object store).
  StateStore(std::shared_ptr<storage::ObjectStore> objects, std::filesystem::path dir)
      : objects_(std::move(objects)), dir_(std::move(dir)) {}
  explicit StateStore(std::filesystem::path dir) : StateStore(storage::local_store(), std::move(dir)) {}

  // The state of the last landed commit. `committed`: the table's txn versions of this flow.
  // None when the flow has no progress yet (or it was reset: versions < 0). An error when the
  // flow has progress but its state is missing, unless `missing_is_none`: for a flow whose
  // table may hold progress from before it kept state (and has committed none since), no
  // snapshot matching `committed` means none, and the snapshots there (orphans of commits that
  // never landed) are deleted.
  arrow::Result<std::optional<exec::WindowState>> load(const TxnVersions& committed, bool missing_is_none = false);
  // Saves `state` for the commit about to record `progress` (atomically: ObjectStore::put, a
  // temp file + rename locally, one PUT on an object store).
  // Returns the file's size in bytes.
  arrow::Result<int64_t> save(const TxnVersions& progress, const exec::WindowState& state);

  // For a commit that moves progress ids without changing the state (forget moving a reader
  // past an upstream's erasure): saves the snapshot matching `committed` again, same content,
  // its progress with `moves` applied, so that it matches once that commit lands (the matched
  // one is kept until then). False when no snapshot matches `committed` (nothing is changed).
  arrow::Result<bool> carry_forward(const TxnVersions& committed, const TxnVersions& moves);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::shared_ptr<storage::ObjectStore> objects_;
  std::filesystem::path dir_;
  int64_t last_seq_ = -1;  // sequence number of the newest snapshot (saved or loaded)
};

}  // namespace sluice::pipeline
