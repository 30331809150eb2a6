// The upstream files a sink flow sends next (sink_files.h).
#include "sluice/pipeline/sink_files.h"

namespace sluice::pipeline {

arrow::Result<std::optional<std::vector<delta::AddedFile>>> sink_files_to_send(const delta::LogStore& upstream,
                                                                               const delta::Snapshot& snapshot,
                                                                               std::optional<int64_t> done) {
  const int64_t latest = snapshot.version().value();
  if (done && *done >= latest) return std::nullopt;
  std::vector<delta::AddedFile> files;
  if (!done) {
    for (const auto& f : snapshot.files()) files.push_back({DeltaVersion(latest), f});
    return files;
  }
  ARROW_ASSIGN_OR_RAISE(files, delta::added_files_between(upstream, DeltaVersion(*done), DeltaVersion(latest),
                                                          delta::ChangePolicy::kIgnoreDeletes));
  return files;
}

}  // namespace sluice::pipeline
