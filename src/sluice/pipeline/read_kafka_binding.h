// read_kafka(...) in FROM bound to the source a plan reads: its named arguments normalised and
// checked offline, its schema (Kafka's source row, or with value_format the decoded value
// struct) from the declared options alone. A JSON value schema that is not declared comes from
// the caller's inference (sampling the topic is the run's decision, not the planner's), so
// exec/ plans read_kafka without knowing Kafka or contacting a broker.
#pragma once

#include <arrow/result.h>

#include <functional>
#include <map>
#include <string>

#include "sluice/exec/select_plan.h"
#include "sluice/format/kafka_values.h"
#include "sluice/sql/ast.h"
#include "sluice/sql/source.h"

namespace sluice::pipeline {

// read_kafka(...)'s named arguments, aliases (camelCase, lower case) resolved to the snake_case
// names the plan's source options use: the one normalisation of them (the planner's and the
// run lock's). kafka.* properties are checked offline, so `validate` refuses what `run` would.
arrow::Result<std::map<std::string, std::string>> read_kafka_options(const sql::TableRef& from,
                                                                      const sql::SourceFile& file);

// read_kafka's value_format, value_schema, schema_registry_url, schema_registry_subject and
// rescued_data_column arguments (kind kNone when there is no value_format).
arrow::Result<format::ValueFormat> value_format_of(const std::map<std::string, std::string>& read_kafka_options);

// read_kafka(value_format => 'json') without value_schema: the schema to decode with (a DDL
// string), e.g. inferred from a sample of the topic and then kept fixed.
using ValueSchemaInference = std::function<arrow::Result<std::string>(const exec::PlanSource&)>;

// The source `from` (a table function) reads; errors point into `file`. Without `infer`, a JSON
// value_format needs a declared value_schema. An Avro value_format without a declared reader
// schema takes the subject's latest from the schema registry.
arrow::Result<exec::PlanSource> bind_read_kafka(const sql::TableRef& from, const sql::SourceFile& file,
                                                const ValueSchemaInference& infer);

// bind_read_kafka with `infer`, as SelectPlan::make takes it.
exec::SelectPlan::TableFunctionBinder read_kafka_binder(ValueSchemaInference infer = {});

}  // namespace sluice::pipeline
