// Kafka value schemas inferred from a sample of the topic while planning, frozen in
// <storage>/system/inferred_schemas/<flow>.ddl (SqlPlanner, sql_planner.h).
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/format/json_schema_inference.h"
#include "sluice/kafka/schema_sampler.h"
#include "sluice/pipeline/sql_planner.h"
#include "sluice/sql/types.h"

namespace sluice::pipeline {

// read_kafka(value_format => 'json') without value_schema: a schema inferred from the first
// records of the topic, stored at <storage>/system/inferred_schemas/<flow>.ddl the first time
// and read from there afterwards, so the table's schema stays fixed (delete the file, or
// declare value_schema, to change it).
arrow::Result<std::string> SqlPlanner::infer_value_schema(const std::string& flow_name, const exec::PlanSource& src) {
  const auto path = inferred_schema_path(flow_name);
  const auto& target = graph_.flows.at(flow_name).target;
  auto& objects = *config_.objects;
  const auto shown = objects.display(path.string());
  ARROW_ASSIGN_OR_RAISE(auto present, objects.head(path.string()));
  if (present) {
    ARROW_ASSIGN_OR_RAISE(auto ddl, objects.read(path.string()));
    if (!ddl.empty()) {
      schema_notes_[target] = fmt::format("value columns inferred from topic '{}', frozen in {}", src.name, shown);
      return ddl;
    }
  }
  if (inference_ == SchemaInference::kFrozenOnly) {
    // Planning stops here for this dataset (plan_all reads unknown_inferred_): not an error.
    unknown_inferred_ = fmt::format(
        "its value columns are inferred from topic '{}' at the first run and not known yet (sluice validate "
        "--infer-schemas samples the topic now)", src.name);
    return invalid("the value schema of topic '{}' is not known yet", src.name);
  }
  if (src.options.count("topic_pattern") || src.name.find(',') != std::string::npos) {
    return invalid("value_format => 'json' reading several topics needs value_schema => 'a INT, ...' "
                   "(a schema is inferred only for one topic)");
  }
  ARROW_ASSIGN_OR_RAISE(auto cluster, kafka_cluster_of(src, flow_name));
  int64_t wanted = 1000;
  if (auto it = src.options.find("schema_sample_records"); it != src.options.end()) {
    auto n = parse_int64(it->second, "schema_sample_records");
    if (!n.ok() || *n <= 0) return invalid("read_kafka schema_sample_records must be a positive number, not '{}'", it->second);
    wanted = *n;
  }
  std::vector<std::string> samples;
  if (options_.record_sources) {  // sluice test: the fixture's records, through the same sampler
    ARROW_ASSIGN_OR_RAISE(auto reader, options_.record_sources->reader(cluster.first, cluster.second,
                                                                       "sluice-" + config_.name));
    ARROW_ASSIGN_OR_RAISE(samples, kafka::sample_values(*reader, src.name, wanted, options_.metadata_timeout));
  } else {
    ARROW_ASSIGN_OR_RAISE(samples, kafka::sample_values(cluster.first, cluster.second, "sluice-" + config_.name,
                                                        src.name, wanted, options_.metadata_timeout));
  }
  std::vector<std::string_view> views(samples.begin(), samples.end());
  auto schema = format::infer_json_schema(views);
  if (!schema.ok()) return with_context(schema.status(), fmt::format("topic '{}'", src.name));
  std::string ddl;
  for (const auto& f : (*schema)->fields()) {
    ddl += fmt::format("{}`{}` {}", ddl.empty() ? "" : ", ", f->name(), sql::sql_type_name(*f->type()));
  }
  if (inference_ == SchemaInference::kSampleNoFreeze) {
    schema_notes_[target] = fmt::format("value columns sampled from topic '{}' now (not frozen: the first run "
                                        "samples again and freezes them in {})", src.name, shown);
    return ddl;
  }
  // Durably and whole, or not at all (ObjectStore::put): a full disk must not leave a
  // truncated schema.
  auto written = objects.put(path.string(), ddl);
  if (!written.ok()) return io_failure(written, "cannot write inferred schema", shown);
  return ddl;
}

std::filesystem::path SqlPlanner::inferred_schema_path(const std::string& flow_name) const {
  return config_.storage / "system" / "inferred_schemas" / (flow_name + ".ddl");
}

}  // namespace sluice::pipeline
