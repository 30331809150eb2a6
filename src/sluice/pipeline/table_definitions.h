// Before an update's flows run: every existing table of the pipeline brought in line with its
// definition (COMMENT, column comments and tags, TBLPROPERTIES) by metadata-only commits, or
// refused for what cannot change in place (delta/table_definition.h).
#pragma once

#include <arrow/status.h>

#include "sluice/delta/table_definition.h"
#include "sluice/pipeline/event_log.h"
#include "sluice/pipeline/sql_planner.h"

namespace sluice::pipeline {

// What the pipeline declares about stored dataset `d` (a streaming table or materialized view).
delta::TableDefinition table_definition_of(const SqlPlanner& planner, const Dataset& d);

// One commit per change (Spark's SET/UNSET TBLPROPERTIES, CHANGE COLUMN) and an event
// `table_definition_change` per commit; tables not created yet are created with their
// definition by their flows.
arrow::Status apply_table_definitions(const SqlPlanner& planner, EventLog& events);

}  // namespace sluice::pipeline
