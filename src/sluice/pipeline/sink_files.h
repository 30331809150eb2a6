// The upstream files a sink flow (Kafka or Delta) sends next, from the upstream version its
// progress names: what both sink flows decide the same way (kafka_sink_flow.cc,
// delta_sink_flow.cc).
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"

namespace sluice::pipeline {

// The files to send after upstream version `done` up to `snapshot`'s version: none (nullopt)
// when the upstream is not past `done`; every file of the snapshot, as of its version, on the
// first run (no `done`); later, the files the commits after `done` added, a commit that only
// removes rows (a full refresh of the upstream) passed over — records once sent cannot be
// taken back, so the rows written after it are sent as new ones. A commit that rewrites rows
// (or a commit missing from the log) is the error of delta::added_files_between, for the
// caller to explain in its sink's terms.
arrow::Result<std::optional<std::vector<delta::AddedFile>>> sink_files_to_send(const delta::LogStore& upstream,
                                                                               const delta::Snapshot& snapshot,
                                                                               std::optional<int64_t> done);

}  // namespace sluice::pipeline
