// --full-refresh (IngestOptions::full_refresh): the named streaming tables lose their rows,
// their side tables and their progress, and their inferred Kafka value schemas, so that the
// update reprocesses them from their sources.
#pragma once

#include <arrow/status.h>

#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/sql_planner.h"

namespace sluice::pipeline {

// Before planning: deletes the frozen inferred schemas of the tables the full refresh resets,
// so that planning samples their topics again.
arrow::Status forget_inferred_schemas(const SqlPlanner& planner);

// After planning: resets the tables (and, transitively, the streaming tables that read them)
// in one commit each; an event per table reset.
arrow::Status full_refresh(const SqlPlanner& planner, EventLog& events);

}  // namespace sluice::pipeline
