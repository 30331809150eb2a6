// --full-refresh (IngestOptions::full_refresh): the named streaming tables lose their rows,
// their side tables and their progress, and their inferred Kafka value schemas, so that the
// update reprocesses them from their sources.
#pragma once

#include <arrow/status.h>

#include <map>
#include <string>

#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/sql_planner.h"
#include "sluice/pipeline/streaming_commit.h"

namespace sluice::pipeline {

// Before planning: deletes the frozen inferred schemas of the tables the full refresh resets,
// so that planning samples their topics again.
arrow::Status forget_inferred_schemas(const SqlPlanner& planner);

// After planning: resets the tables (and, transitively, the streaming tables that read them)
// in one commit each; an event per table reset. `column_changes_by_table`, when given: the
// columns a reset commit changed (its planned schema merged in), by streaming table, for that
// dataset's flow_progress `schema_change` in this update.
arrow::Status full_refresh(const SqlPlanner& planner, EventLog& events,
                           std::map<std::string, ColumnChanges>* column_changes_by_table = nullptr);

}  // namespace sluice::pipeline
