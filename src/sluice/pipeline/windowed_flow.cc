// Event-time windowed flows: input ids per row, late rows, state snapshots per commit.
#include "sluice/pipeline/windowed_flow.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <string_view>

#include "sluice/common/status.h"
#include "sluice/exec/stream_dedup.h"
#include "sluice/exec/window_aggregate.h"
#include "sluice/pipeline/kafka_ingest_flow.h"

namespace sluice::pipeline {

namespace cp = arrow::compute;

std::shared_ptr<arrow::Schema> late_rows_schema(const arrow::Schema& rows) {
  auto fields = rows.fields();
  fields.push_back(arrow::field("_watermark", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  fields.push_back(arrow::field("_source_name", arrow::utf8()));
  fields.push_back(arrow::field("_source_partition", arrow::int32()));
  fields.push_back(arrow::field("_source_offset", arrow::int64()));
  return arrow::schema(fields);
}

arrow::Result<std::unique_ptr<WindowedFlow>> WindowedFlow::make(const exec::SelectPlan& plan, WindowedFlowOptions options,
                                                                StreamingCommit& commit) {
  std::unique_ptr<WindowedFlow> flow(new WindowedFlow());
  if (plan.distinct() && !plan.aggregates()) {
    ARROW_ASSIGN_OR_RAISE(flow->op_, exec::StreamDedup::make(plan, options.policy));
  } else {
    ARROW_ASSIGN_OR_RAISE(flow->op_, exec::WindowAggregate::make(plan, options.policy));
  }
  flow->commit_ = &commit;
  flow->late_schema_ = late_rows_schema(*plan.row_stage_schema());
  if (options.write_late_rows) {
    ARROW_ASSIGN_OR_RAISE(flow->late_, commit.open_side_table(options.late_table_path, options.table + "_late", flow->late_schema_,
                                                              fmt::format("rows of '{}' that arrived behind the watermark", options.table)));
  }
  flow->options_ = std::move(options);
  return flow;
}

arrow::Status WindowedFlow::restore(std::optional<exec::WindowState> state) {
  return op_->restore(state ? std::move(*state) : exec::WindowState{});
}

arrow::Status WindowedFlow::write_late(const arrow::RecordBatch& rows, const exec::EventTimeOperator::Result& r,
                                       const std::shared_ptr<arrow::Array>& source_name,
                                       const std::shared_ptr<arrow::Array>& source_partition,
                                       const std::shared_ptr<arrow::Array>& source_offset,
                                       const std::function<bool(int64_t)>& already_written) {
  const int64_t n = r.late_rows->length();
  late_rows_ += n;
  if (!late_ || n == 0) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(arrow::Datum(arrow::RecordBatch::Make(rows.schema(), rows.num_rows(), rows.columns())), arrow::Datum(r.late_rows)));
  auto columns = taken.record_batch()->columns();
  ARROW_ASSIGN_OR_RAISE(auto wm, r.late_watermarks->View(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  columns.push_back(wm);
  columns.push_back(source_name);
  columns.push_back(source_partition);
  columns.push_back(source_offset);
  auto batch = arrow::RecordBatch::Make(late_schema_, n, columns);
  // After a crash between the late table's commit and the target's, the replay must not
  // write again what the late table already holds.
  arrow::BooleanBuilder fresh;
  ARROW_RETURN_NOT_OK(fresh.Reserve(n));
  for (int64_t i = 0; i < n; ++i) fresh.UnsafeAppend(!already_written(i));
  ARROW_ASSIGN_OR_RAISE(auto mask, fresh.Finish());
  ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(batch, mask));
  return late_->write(*kept.record_batch());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowedFlow::consume_kafka(const arrow::RecordBatch& input,
                                                                              const arrow::RecordBatch& rows,
                                                                              const arrow::Array& input_rows,
                                                                              std::vector<std::string> awaited_inputs) {
  ARROW_ASSIGN_OR_RAISE(auto topic_d, cp::Take(input.GetColumnByName("topic"), input_rows));
  ARROW_ASSIGN_OR_RAISE(auto partition_d, cp::Take(input.GetColumnByName("partition"), input_rows));
  ARROW_ASSIGN_OR_RAISE(auto offset_d, cp::Take(input.GetColumnByName("offset"), input_rows));
  auto topic = std::static_pointer_cast<arrow::StringArray>(topic_d.make_array());
  auto partition = std::static_pointer_cast<arrow::Int32Array>(partition_d.make_array());
  auto offset = std::static_pointer_cast<arrow::Int64Array>(offset_d.make_array());
  // Dense input ids per row; a batch holds few partitions, so compare with the last one seen.
  std::vector<std::string> ids;
  std::vector<std::pair<std::string_view, int32_t>> keys;
  std::vector<int32_t> input_of_row(rows.num_rows());
  int32_t last = -1;
  for (int64_t i = 0; i < rows.num_rows(); ++i) {
    const std::pair<std::string_view, int32_t> key{topic->GetView(i), partition->Value(i)};
    if (last < 0 || keys[last] != key) {
      auto it = std::find(keys.begin(), keys.end(), key);
      if (it == keys.end()) {
        keys.push_back(key);
        ids.push_back(fmt::format("{}/{}", key.first, key.second));
        it = keys.end() - 1;
      }
      last = static_cast<int32_t>(it - keys.begin());
    }
    input_of_row[i] = last;
  }
  op_->await_inputs(std::move(awaited_inputs));
  ARROW_ASSIGN_OR_RAISE(auto r, op_->consume(rows, ids, input_of_row));
  if (r.late_rows->length() > 0) {
    ARROW_ASSIGN_OR_RAISE(auto t, cp::Take(*topic, *r.late_rows));
    ARROW_ASSIGN_OR_RAISE(auto p, cp::Take(*partition, *r.late_rows));
    ARROW_ASSIGN_OR_RAISE(auto o, cp::Take(*offset, *r.late_rows));
    const auto& late_topic = static_cast<const arrow::StringArray&>(*t);
    const auto& late_partition = static_cast<const arrow::Int32Array&>(*p);
    const auto& late_offset = static_cast<const arrow::Int64Array&>(*o);
    ARROW_RETURN_NOT_OK(write_late(rows, r, t, p, o, [&](int64_t i) {
      auto app = commit_->ids().kafka(late_topic.GetString(i), KafkaPartition(late_partition.Value(i)));
      return late_offset.Value(i) < late_->committed(app);
    }));
  }
  return r.output;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowedFlow::consume_delta(const arrow::RecordBatch& rows,
                                                                              const std::string& upstream,
                                                                              const std::string& app_id, int64_t version) {
  std::vector<int32_t> input_of_row(rows.num_rows(), 0);
  ARROW_ASSIGN_OR_RAISE(auto r, op_->consume(rows, {"delta:" + upstream}, input_of_row));
  const int64_t n = r.late_rows->length();
  if (n > 0) {
    ARROW_ASSIGN_OR_RAISE(auto name, arrow::MakeArrayFromScalar(arrow::StringScalar(upstream), n));
    ARROW_ASSIGN_OR_RAISE(auto partition, arrow::MakeArrayOfNull(arrow::int32(), n));
    ARROW_ASSIGN_OR_RAISE(auto offset, arrow::MakeArrayFromScalar(arrow::Int64Scalar(version), n));
    const bool there = late_ && version <= late_->committed(app_id);
    ARROW_RETURN_NOT_OK(write_late(rows, r, name, partition, offset, [&](int64_t) { return there; }));
  }
  return r.output;
}

}  // namespace sluice::pipeline
