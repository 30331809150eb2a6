// The dashboard's business-KPI panel (pipeline.yaml `serve: {kpis: [...]}`): checks a KPI's
// columns against a table's schema and reads its points from the table's latest snapshot,
// reading only its x and y columns and keeping at most `limit` rows (the greatest x).
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>
#include <nlohmann/json.hpp>

#include "sluice/delta/log_store.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::server {

// How the x column is charted: time (date, timestamp: seconds since the epoch), number, or
// category (strings, in their sort order, one slot each).
enum class KpiAxis { kTime, kNumber, kCategory };

// The axis of x when the KPI fits `schema` (x a date, timestamp, number or string; each y a
// number); else an error naming the KPI's pipeline.yaml place, the column and its type, or the
// columns there are.
arrow::Result<KpiAxis> check_kpi_columns(const pipeline::KpiConfig& kpi, const arrow::Schema& schema,
                                         const std::string& dataset_kind = "materialized view");

// The KPI as /api/kpis lists it: name, title, dataset, x, y, kind, limit.
nlohmann::json kpi_json(const pipeline::KpiConfig& kpi);

// The KPI's points from the table at `store` (its latest snapshot): kpi_json plus `version`
// (null: the table was never written), `axis`, `columns` ([x, y...]), `data` (one array per
// column, uPlot's layout: x ascending, y null where the value is), `rows` (charted),
// `rows_read` (rows of the table read), `null_x_rows` (skipped: no x), `truncated` (more rows
// than `limit`: the greatest x are kept). Memory stays at about `limit` rows plus a batch.
arrow::Result<nlohmann::json> read_kpi_series(const pipeline::KpiConfig& kpi, const delta::LogStore& store);

}  // namespace sluice::server
