// pipeline.yaml read without opening its storage: `sluice test` runs a pipeline on a temporary
// local folder, so an s3:// (gs://, az://) storage is checked (its URI and storage_options) but
// never opened, and no credential lookup (instance metadata) or request leaves the machine.
// Apart from pipeline_config.h so that its many includers do not depend on it.
#pragma once

#include <arrow/result.h>

#include <filesystem>

#include "sluice/pipeline/pipeline_config.h"

namespace sluice::pipeline {

enum class StorageOpening {
  kOpened,   // load_pipeline_config: the storage is opened (objects, storage set)
  kChecked,  // checked only: objects is the local store and storage empty; the caller sets both
};

arrow::Result<PipelineConfig> load_pipeline_config(const std::filesystem::path& dir, StorageOpening opening);

}  // namespace sluice::pipeline
