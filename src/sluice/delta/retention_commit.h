// The mark of a commit that only expired rows under a table's retention policy
// (pipelines.retention, pipeline/table_retention.h): a DELETE whose commitInfo.operationParameters
// carry `sluice.retention`. Streaming readers in a pipeline skip such commits whole (their
// removes and the rewritten files' adds), as Spark's skipChangeCommits would: the rows were
// delivered when they were appended, and expiring them upstream is not a change downstream.
#pragma once

#include <variant>
#include <vector>

#include "sluice/delta/actions.h"

namespace sluice::delta {

// operationParameters keys of a retention commit (values are strings, as Spark's are): the
// duration as written, the column, and the cut-off the rows were compared with.
inline constexpr char kRetentionParameter[] = "sluice.retention";
inline constexpr char kRetentionColumnParameter[] = "sluice.retention.column";
inline constexpr char kRetentionCutoffParameter[] = "sluice.retention.cutoff";

// Whether the commit's actions carry the retention mark.
inline bool is_retention_commit(const std::vector<Action>& actions) {
  for (const auto& a : actions) {
    const auto* info = std::get_if<CommitInfo>(&a);
    if (!info || !info->value.is_object()) continue;
    auto params = info->value.find("operationParameters");
    return params != info->value.end() && params->is_object() && params->contains(kRetentionParameter);
  }
  return false;
}

}  // namespace sluice::delta
