// The pipeline event log.
#include "sluice/pipeline/event_log.h"

#include <arrow/api.h>

#include "sluice/common/ids.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/exec/constraint_checker.h"

namespace sluice::pipeline {

namespace {

std::shared_ptr<arrow::Schema> event_schema() {
  static const auto schema = arrow::schema({
      arrow::field("id", arrow::utf8(), false),
      arrow::field("sequence", arrow::struct_({arrow::field("update_id", arrow::utf8()),
                                               arrow::field("seq", arrow::int64())})),
      arrow::field("origin", arrow::struct_({arrow::field("pipeline_name", arrow::utf8()),
                                             arrow::field("update_id", arrow::utf8()),
                                             arrow::field("flow_name", arrow::utf8()),
                                             arrow::field("dataset_name", arrow::utf8())})),
      arrow::field("timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("level", arrow::utf8()),
      arrow::field("event_type", arrow::utf8()),
      arrow::field("message", arrow::utf8()),
      arrow::field("details", arrow::utf8()),
  });
  return schema;
}

}  // namespace

EventLog::EventLog(std::shared_ptr<storage::ObjectStore> objects, std::filesystem::path storage,
                   std::string pipeline, std::string update_id)
    : objects_(std::move(objects)),
      storage_(std::move(storage)), pipeline_(std::move(pipeline)), update_id_(std::move(update_id)) {}

void EventLog::add(Event event) {
  if (event.timestamp_micros == 0) event.timestamp_micros = now_millis() * 1000;
  std::lock_guard lock(mutex_);
  events_.push_back(std::move(event));
}

arrow::Status EventLog::flush() {
  std::lock_guard lock(mutex_);
  if (events_.empty()) return arrow::Status::OK();
  const auto schema = event_schema();
  arrow::StringBuilder id, level, type, message, details;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), arrow::default_memory_pool());
  auto seq_update = std::make_shared<arrow::StringBuilder>();
  auto seq_n = std::make_shared<arrow::Int64Builder>();
  arrow::StructBuilder sequence(schema->field(1)->type(), arrow::default_memory_pool(), {seq_update, seq_n});
  auto o_pipe = std::make_shared<arrow::StringBuilder>(), o_update = std::make_shared<arrow::StringBuilder>(),
       o_flow = std::make_shared<arrow::StringBuilder>(), o_dataset = std::make_shared<arrow::StringBuilder>();
  arrow::StructBuilder origin(schema->field(2)->type(), arrow::default_memory_pool(), {o_pipe, o_update, o_flow, o_dataset});
  auto opt = [](arrow::StringBuilder& b, const std::string& v) { return v.empty() ? b.AppendNull() : b.Append(v); };
  for (const auto& e : events_) {
    ARROW_RETURN_NOT_OK(id.Append(random_uuid()));
    ARROW_RETURN_NOT_OK(sequence.Append());
    ARROW_RETURN_NOT_OK(seq_update->Append(update_id_));
    ARROW_RETURN_NOT_OK(seq_n->Append(sequence_++));
    ARROW_RETURN_NOT_OK(origin.Append());
    ARROW_RETURN_NOT_OK(o_pipe->Append(pipeline_));
    ARROW_RETURN_NOT_OK(o_update->Append(update_id_));
    ARROW_RETURN_NOT_OK(opt(*o_flow, e.flow));
    ARROW_RETURN_NOT_OK(opt(*o_dataset, e.dataset));
    ARROW_RETURN_NOT_OK(ts.Append(e.timestamp_micros));
    ARROW_RETURN_NOT_OK(level.Append(e.level));
    ARROW_RETURN_NOT_OK(type.Append(e.event_type));
    ARROW_RETURN_NOT_OK(message.Append(e.message));
    ARROW_RETURN_NOT_OK(details.Append(e.details.dump()));
  }
  arrow::ArrayVector columns(8);
  ARROW_RETURN_NOT_OK(id.Finish(&columns[0]));
  ARROW_RETURN_NOT_OK(sequence.Finish(&columns[1]));
  ARROW_RETURN_NOT_OK(origin.Finish(&columns[2]));
  ARROW_RETURN_NOT_OK(ts.Finish(&columns[3]));
  ARROW_RETURN_NOT_OK(level.Finish(&columns[4]));
  ARROW_RETURN_NOT_OK(type.Finish(&columns[5]));
  ARROW_RETURN_NOT_OK(message.Finish(&columns[6]));
  ARROW_RETURN_NOT_OK(details.Finish(&columns[7]));
  auto batch = arrow::RecordBatch::Make(schema, static_cast<int64_t>(events_.size()), columns);

  auto store = std::make_shared<delta::LogStore>(objects_, table_path().string());
  ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(*store));
  delta::WriteOptions options;
  options.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
  options.table_name = "event_log";
  options.description = "sluice pipeline event log";
  ARROW_ASSIGN_OR_RAISE(auto writer, delta::TableWriter::make(store, snapshot, *schema, options));
  ARROW_RETURN_NOT_OK(writer->write(*batch));
  ARROW_ASSIGN_OR_RAISE(auto txn, writer->finish());
  delta::CommitOptions commit;
  commit.operation = "WRITE";
  ARROW_RETURN_NOT_OK(txn.commit(commit).status());
  events_.clear();
  return arrow::Status::OK();
}

}  // namespace sluice::pipeline
