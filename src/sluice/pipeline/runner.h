// Runs a pipeline's flows: checks every source first (so a bad source fails the update
// before any table changes), then runs each flow.
#pragma once

#include <arrow/result.h>

#include <atomic>
#include <vector>

#include "sluice/pipeline/kafka_ingest_flow.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::pipeline {

// The skeleton's bronze table: the Kafka rows unchanged.
arrow::Result<IngestReport> run_kafka_ingest_once(const PipelineConfig& config,
                                                  const BronzeTableConfig& table,
                                                  const IngestOptions& options = {});

// Checks that every topic exists and its cluster answers.
arrow::Status check_sources(const PipelineConfig& config, const IngestOptions& options);

// One triggered update of every table.
arrow::Result<std::vector<IngestReport>> run_pipeline_once(const PipelineConfig& config,
                                                           const IngestOptions& options = {});

}  // namespace sluice::pipeline
