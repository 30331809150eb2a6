// Classic Parquet checkpoints (PROTOCOL.md "Checkpoints"): writing `N.checkpoint.parquet` and
// `_last_checkpoint`, finding the checkpoint to start a replay from, and reading its actions.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <optional>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/log_segment.h"
#include "sluice/delta/log_store.h"

namespace sluice::delta {

class Snapshot;

// The Parquet schema readers expect of a classic checkpoint: one struct column per action
// kind (txn, add, remove, metaData, protocol); each row sets exactly one.
const std::shared_ptr<arrow::Schema>& checkpoint_schema();

// Writes the checkpoint of `snapshot` (its live files, unexpired tombstones, every txn,
// protocol and metadata), then `_last_checkpoint`, each atomically. `drop_tombstones`: none at
// all (forget, after a vacuum with no retention: a tombstone's path and partition values can
// quote an erased value, and its file is gone).
arrow::Status write_checkpoint(const LogStore& store, const Snapshot& snapshot, bool drop_tombstones = false);

// The actions a checkpoint holds. Errors name the file; a file that is not a checkpoint
// (unreadable Parquet, an action column of the wrong shape, a malformed action) is an error,
// never fewer actions.
arrow::Result<std::vector<Action>> read_checkpoint(const LogStore& store, const CheckpointRef& checkpoint);
// The same for one checkpoint file already in memory (`source` names it in errors).
arrow::Result<std::vector<Action>> read_checkpoint_bytes(std::shared_ptr<arrow::Buffer> bytes,
                                                         const std::string& source);

// Converts between the JSON form of an action body and Arrow struct cells; shared by the
// checkpoint writer and reader.
arrow::Status append_json(arrow::ArrayBuilder& builder, const nlohmann::json& value);
nlohmann::json cell_to_json(const arrow::Array& array, int64_t row);

}  // namespace sluice::delta
