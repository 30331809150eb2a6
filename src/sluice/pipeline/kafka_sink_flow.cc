// Kafka sink flows (kafka_sink_flow.h).
#include "sluice/pipeline/kafka_sink_flow.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>

#include "sluice/common/failpoint.h"
#include "sluice/common/status.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"
#include "sluice/format/avro_encoder.h"
#include "sluice/format/json_row_encoder.h"
#include "sluice/format/schema_registry.h"
#include "sluice/pipeline/progress_id.h"
#include "sluice/pipeline/sink_capture.h"
#include "sluice/pipeline/sink_files.h"

namespace sluice::pipeline {

namespace {

constexpr std::chrono::milliseconds kKafkaTimeout{60000};

// The progress a transaction commits: the next upstream version to read as the offset, and
// the upstream table's id with the version read as the offset's metadata.
kafka::CommittedProgress progress_of(const std::string& table_id, int64_t version) {
  return {version + 1, nlohmann::json{{"table_id", table_id}, {"version", version}}.dump()};
}

// The upstream version a committed progress says was read; none when it is of another
// upstream table (re-created: read from its start, as a Delta source's txn of another table id).
arrow::Result<std::optional<int64_t>> version_read(const kafka::CommittedProgress& p, const std::string& table_id,
                                                   const std::string& group) {
  auto doc = nlohmann::json::parse(p.metadata, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("table_id") || !doc.contains("version") || !doc["version"].is_number_integer() ||
      !doc["table_id"].is_string()) {
    return invalid("consumer group '{}' holds an offset that sluice did not write (metadata is not a sink's "
                   "progress): the group name is reserved for this sink flow; delete the group "
                   "(kafka-consumer-groups.sh --delete --group {}) to start the flow from the beginning",
                   group, group);
  }
  if (doc["table_id"].get<std::string>() != table_id) return std::nullopt;
  return doc["version"].get<int64_t>();
}

// An upstream commit the sink cannot follow (rows rewritten, a commit missing from the log):
// the reader's advice (ignoreChanges, a full refresh of the reader, a backup) does not apply to
// records already sent, so it is replaced by what does: resending the current snapshot.
arrow::Status cannot_follow(const arrow::Status& st, const std::string& group, const std::string& topic) {
  std::string what = st.message();
  for (const char* advice : {". Use ignoreDeletes", ". The log is corrupt"}) {
    if (auto at = what.find(advice); at != std::string::npos) what.resize(at);
  }
  return arrow::Status(st.code(), fmt::format(
      "{}. A sink cannot take back records it sent nor skip this commit: to send the upstream table's "
      "current rows again (after those already on topic '{}'), stop the pipeline and delete consumer "
      "group '{}' (kafka-consumer-groups.sh --bootstrap-server <host:port> --delete --group {})",
      what, topic, group, group));
}

// The columns that make a record's value: all but the headers column.
std::vector<int> value_columns(const KafkaSinkSpec& spec, const arrow::Schema& rows) {
  std::vector<int> out;
  for (int i = 0; i < rows.num_fields(); ++i) {
    if (!spec.headers_column || rows.field(i)->name() != *spec.headers_column) out.push_back(i);
  }
  return out;
}

// value_format => 'avro': the value columns' Avro schema registered under <topic>-value (Confluent's
// TopicNameStrategy); the id each record's value names.
arrow::Result<int32_t> register_value_schema(const KafkaSinkSpec& spec, const arrow::Schema& rows) {
  std::map<std::string, std::string> properties;
  if (!spec.registry_auth.empty()) properties["basic.auth.user.info"] = spec.registry_auth;
  if (!spec.registry_ca_location.empty()) properties["ssl.ca.location"] = spec.registry_ca_location;
  ARROW_ASSIGN_OR_RAISE(auto registry, format::SchemaRegistryClient::make(spec.registry_url, properties));
  std::string record = spec.sink;  // an SQL name; Avro's names are stricter
  for (auto& c : record) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  if (record.empty() || std::isdigit(static_cast<unsigned char>(record[0]))) record = "_" + record;
  ARROW_ASSIGN_OR_RAISE(auto schema, format::avro_schema_of(rows, value_columns(spec, rows), record, "sluice"));
  return registry->register_schema(spec.topic + "-value", schema);
}

// sluice test: a sink's transactions kept in the installed capture; records become visible
// (and the progress committed) only at commit, as read_committed readers of a cluster see them.
class CapturedOutput : public kafka::TransactionalOutput {
 public:
  CapturedOutput(SinkCapture& capture, std::string sink, kafka::KafkaProperties properties)
      : capture_(capture), sink_(std::move(sink)), properties_(std::move(properties)) {}

  arrow::Status init(std::chrono::milliseconds) override { return arrow::Status::OK(); }
  arrow::Result<std::optional<kafka::CommittedProgress>> committed(const std::string& group, const std::string&,
                                                                   std::chrono::milliseconds) override {
    return capture_.committed(group);
  }
  arrow::Result<int> partition_count(const std::string& topic, std::chrono::milliseconds) override {
    return capture_.partition_count(topic);
  }
  arrow::Status begin() override {
    pending_.clear();
    return arrow::Status::OK();
  }
  arrow::Status produce(const std::string& topic, std::optional<std::string_view> key, std::string_view value,
                        const std::vector<kafka::OutgoingHeader>& headers) override {
    CapturedRecord r;
    r.topic = topic;
    ARROW_ASSIGN_OR_RAISE(r.partition, kafka::partition_for_key(properties_, key, capture_.partition_count(topic)));
    if (key) r.key = std::string(*key);
    r.value = std::string(value);
    for (const auto& h : headers) {
      r.headers.emplace_back(std::string(h.key), h.value ? std::optional<std::string>(std::string(*h.value)) : std::nullopt);
    }
    pending_.push_back(std::move(r));
    return arrow::Status::OK();
  }
  arrow::Status flush(std::chrono::milliseconds) override { return arrow::Status::OK(); }
  arrow::Status commit(const std::string& group, const std::string&, const kafka::CommittedProgress& progress,
                       std::chrono::milliseconds) override {
    capture_.commit(sink_, std::move(pending_), group, progress);
    pending_.clear();
    return arrow::Status::OK();
  }
  arrow::Status abort(std::chrono::milliseconds) override {
    pending_.clear();
    return arrow::Status::OK();
  }

 private:
  SinkCapture& capture_;
  const std::string sink_;
  const kafka::KafkaProperties properties_;
  std::vector<CapturedRecord> pending_;  // the open transaction's records
};

std::atomic<SinkCapture*> installed_capture{nullptr};

}  // namespace

SinkCapture* active_sink_capture() { return installed_capture.load(); }
void install_sink_capture(SinkCapture* capture) { installed_capture.store(capture); }

arrow::Result<KafkaSinks::FlowState*> KafkaSinks::state(const KafkaSinkSpec& spec, const std::string& flow) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = flows_.find(flow); it != flows_.end()) return &it->second;
  }
  std::unique_ptr<kafka::TransactionalOutput> made;
  if (auto* capture = active_sink_capture()) {
    capture->ran_kafka(spec.sink);
    made = std::make_unique<CapturedOutput>(*capture, spec.sink, spec.properties);
  } else {
    ARROW_ASSIGN_OR_RAISE(made, kafka::TransactionalProducer::make(spec.cluster_name, spec.properties,
                                                                   sink_transactional_id(config_.id, flow)));
  }
  ARROW_ASSIGN_OR_RAISE(int partitions, made->partition_count(spec.topic, kKafkaTimeout));
  if (partitions == 0) {
    return invalid("sink '{}': topic '{}' does not exist on Kafka cluster '{}': create it (e.g. kafka-topics.sh "
                   "--create --topic {}); a sink does not create topics",
                   spec.sink, spec.topic, spec.cluster_name, spec.topic);
  }
  int32_t schema_id = -1;
  if (spec.value_format == KafkaSinkSpec::ValueFormat::kAvro) {
    ARROW_ASSIGN_OR_RAISE(schema_id, register_value_schema(spec, *planner_.flow_plans().at(flow).output_schema()));
  }
  ARROW_RETURN_NOT_OK(made->init(kKafkaTimeout));
  const auto group = sink_progress_group(config_.id, flow);
  ARROW_ASSIGN_OR_RAISE(auto committed, made->committed(group, spec.topic, kKafkaTimeout));
  std::lock_guard lock(mutex_);
  auto& out = flows_[flow];
  out.producer = std::move(made);
  out.committed = std::move(committed);
  out.schema_id = schema_id;
  return &out;
}

arrow::Status KafkaSinks::run(const Sink& sink, DatasetReport& report) {
  report.dataset = sink.name;
  report.kind = "sink";
  const auto& spec = planner_.sink_specs().at(sink.name);
  if (auto* capture = active_sink_capture(); capture && spec.value_format == KafkaSinkSpec::ValueFormat::kAvro) {
    // Its value schema would be registered with a registry: not done offline (yet).
    capture->not_run(sink.name, "its values are Avro (value_format => 'avro'), whose schema a test cannot register");
    return arrow::Status::OK();
  }
  for (const auto& flow : sink.flows) {
    auto st = run_flow(sink, spec, flow, report);
    if (!st.ok()) {
      std::lock_guard lock(mutex_);
      flows_.erase(flow);  // made again, its progress read again from the cluster
      return with_context(st, fmt::format("sink '{}', flow '{}'", sink.name, flow));
    }
  }
  return arrow::Status::OK();
}

arrow::Status KafkaSinks::run_flow(const Sink& sink, const KafkaSinkSpec& spec, const std::string& flow,
                                   DatasetReport& report) {
  const auto& plan = planner_.flow_plans().at(flow);
  const auto src = SqlPlanner::streaming_source(plan);
  ARROW_ASSIGN_OR_RAISE(auto* flow_state, state(spec, flow));
  auto* producer = flow_state->producer.get();
  const auto group = sink_progress_group(config_.id, flow);
  const auto& committed = flow_state->committed;

  delta::LogStore upstream(config_.objects, config_.table_path(src.name).string());
  const auto& options = planner_.options();
  ARROW_ASSIGN_OR_RAISE(auto snapshot,
                        options.snapshots ? options.snapshots->latest(upstream) : delta::Snapshot::load(upstream));
  const std::string table_id = snapshot->metadata().id;
  std::optional<int64_t> done;
  if (committed) {
    ARROW_ASSIGN_OR_RAISE(done, version_read(*committed, table_id, group));
  }
  const int64_t latest = snapshot->version().value();
  // A commit that rewrites rows is refused by name, as in any streaming read.
  auto to_send = sink_files_to_send(upstream, *snapshot, done);
  if (!to_send.ok()) return cannot_follow(to_send.status(), group, spec.topic);
  if (!*to_send) {
    report.version = *done;
    return arrow::Status::OK();
  }
  const auto& files = **to_send;

  // Which columns go where: the headers column is not part of the value.
  const auto columns = value_columns(spec, *plan.output_schema());
  bool open = false;
  bool stopped_during_produce = false;
  int64_t in_transaction = 0;
  auto commit_upto = [&](int64_t version) -> arrow::Status {
    if (!open) ARROW_RETURN_NOT_OK(producer->begin());  // progress alone still moves on
    ARROW_RETURN_NOT_OK(producer->flush(kKafkaTimeout));
    fail_point("sink_before_commit");  // tests: the records are on the broker, uncommitted
    auto progress = progress_of(table_id, version);
    ARROW_RETURN_NOT_OK(producer->commit(group, spec.topic, progress, kKafkaTimeout));
    flow_state->committed = std::move(progress);
    open = false;
    report.rows_written += in_transaction;
    in_transaction = 0;
    report.version = version;
    return arrow::Status::OK();
  };
  std::vector<kafka::OutgoingHeader> headers;
  for (size_t i = 0; i < files.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto reader, delta::open_data_file(upstream, *snapshot, files[i].add));
    std::shared_ptr<arrow::RecordBatch> batch;
    while (true) {
      ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
      if (!batch) break;
      report.rows_read += batch->num_rows();
      report.rows_from_files += batch->num_rows();
      ARROW_ASSIGN_OR_RAISE(auto rows, plan.apply_row_stages(*batch));
      if (rows->num_rows() == 0) continue;
      std::shared_ptr<arrow::BinaryArray> values;
      if (spec.value_format == KafkaSinkSpec::ValueFormat::kAvro) {
        ARROW_ASSIGN_OR_RAISE(values, format::rows_to_avro(*rows, columns, flow_state->schema_id));
      } else {
        ARROW_ASSIGN_OR_RAISE(auto json, format::rows_to_json(*rows, columns));
        values = json;  // a StringArray is a BinaryArray
      }
      std::shared_ptr<arrow::BinaryArray> keys;
      if (spec.key_column) {
        ARROW_ASSIGN_OR_RAISE(auto k, format::key_bytes(rows->GetColumnByName(*spec.key_column)));
        keys = std::static_pointer_cast<arrow::BinaryArray>(k);
      }
      std::shared_ptr<arrow::ListArray> header_lists;
      std::shared_ptr<arrow::StructArray> header_items;
      if (spec.headers_column) {
        header_lists = std::static_pointer_cast<arrow::ListArray>(rows->GetColumnByName(*spec.headers_column));
        header_items = std::static_pointer_cast<arrow::StructArray>(header_lists->values());
      }
      if (!open) {
        ARROW_RETURN_NOT_OK(producer->begin());
        open = true;
      }
      for (int64_t r = 0; r < rows->num_rows(); ++r) {
        std::optional<std::string_view> key;
        if (keys && !keys->IsNull(r)) key = keys->GetView(r);
        headers.clear();
        if (header_lists && !header_lists->IsNull(r)) {
          const auto& hk = static_cast<const arrow::BinaryArray&>(*header_items->field(0));
          const auto& hv = static_cast<const arrow::BinaryArray&>(*header_items->field(1));
          for (int64_t h = header_lists->value_offset(r); h < header_lists->value_offset(r + 1); ++h) {
            if (header_items->IsNull(h) || hk.IsNull(h)) continue;
            headers.push_back({hk.GetView(h), hv.IsNull(h) ? std::nullopt : std::optional(hv.GetView(h))});
          }
        }
        ARROW_RETURN_NOT_OK(producer->produce(spec.topic, key, values->GetView(r), headers));
        ++in_transaction;  // counted as written once its transaction commits
        if (!stopped_during_produce && in_transaction * 2 >= rows->num_rows() && rows->num_rows() > 1) {
          // tests: half of a transaction's records are on the broker, the rest not produced
          stopped_during_produce = true;
          fail_point("sink_during_produce", [&] { (void)producer->flush(kKafkaTimeout); });
        }
      }
    }
    // A transaction ends at an upstream version boundary once it holds enough records.
    const bool boundary = i + 1 == files.size() || files[i + 1].version != files[i].version;
    if (open && boundary && i + 1 < files.size() && in_transaction >= spec.max_rows_per_transaction) {
      ARROW_RETURN_NOT_OK(commit_upto(files[i].version.value()));
      fail_point("sink_between_transactions");  // tests: one transaction committed, more to send
    }
  }
  return commit_upto(latest);
}

}  // namespace sluice::pipeline
