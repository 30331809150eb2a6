// The pipeline's flow operators and the planner of a flow's chain (flow_operators.h).
#include "sluice/pipeline/flow_operators.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "sluice/delta/schema_evolution.h"
#include "sluice/format/kafka_values.h"

namespace sluice::pipeline {

namespace cp = arrow::compute;

std::string KafkaPositions::describe(const exec::OperatorBatch& batch, int64_t i) const {
  const auto& input = *batch.source;
  const auto& topic = static_cast<const arrow::StringArray&>(*input.GetColumnByName("topic"));
  const auto& partition = static_cast<const arrow::Int32Array&>(*input.GetColumnByName("partition"));
  const auto& offset = static_cast<const arrow::Int64Array&>(*input.GetColumnByName("offset"));
  return fmt::format("Kafka topic '{}' partition {} offset {}", topic.GetString(i), partition.Value(i),
                     offset.Value(i));
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> KafkaPositions::quarantine_rows(
    const exec::OperatorBatch& batch, const Expectations::Dropped& dropped,
    const std::shared_ptr<arrow::Array>& rows, const SideTable& quarantine) const {
  const auto& input = *batch.source;
  ARROW_ASSIGN_OR_RAISE(auto topic, cp::Take(input.GetColumnByName("topic"), rows));
  ARROW_ASSIGN_OR_RAISE(auto partition, cp::Take(input.GetColumnByName("partition"), rows));
  ARROW_ASSIGN_OR_RAISE(auto offset, cp::Take(input.GetColumnByName("offset"), rows));
  auto t = std::static_pointer_cast<arrow::StringArray>(topic.make_array());
  auto p = std::static_pointer_cast<arrow::Int32Array>(partition.make_array());
  auto o = std::static_pointer_cast<arrow::Int64Array>(offset.make_array());
  return quarantine_batch(*quarantine.schema(), dropped, t, p, o, [&](int64_t i) {
    return o->Value(i) < quarantine.committed(ids_.kafka(t->GetString(i), KafkaPartition(p->Value(i))));
  });
}

std::string DeltaPositions::describe(const exec::OperatorBatch& batch, int64_t) const {
  return fmt::format("table '{}' (the commit of version {})", upstream_, batch.source_version);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> DeltaPositions::quarantine_rows(
    const exec::OperatorBatch& batch, const Expectations::Dropped& dropped, const std::shared_ptr<arrow::Array>&,
    const SideTable& quarantine) const {
  const int64_t version = batch.source_version;
  const int64_t n = dropped.rows->num_rows();
  ARROW_ASSIGN_OR_RAISE(auto name, arrow::MakeArrayFromScalar(arrow::StringScalar(upstream_), n));
  ARROW_ASSIGN_OR_RAISE(auto partition, arrow::MakeArrayOfNull(arrow::int32(), n));
  ARROW_ASSIGN_OR_RAISE(auto offset, arrow::MakeArrayFromScalar(arrow::Int64Scalar(version), n));
  const bool there = version <= quarantine.committed(app_id_);
  return quarantine_batch(*quarantine.schema(), dropped, name, partition, offset, [&](int64_t) { return there; });
}

arrow::Result<exec::OperatorBatch> DecodeOperator::push(exec::OperatorBatch batch) {
  ARROW_ASSIGN_OR_RAISE(auto decoded, format::decode_values(*batch.rows, *decoder_, value_schema_));
  if (decoded.dead_letters) {
    const auto& dl = *decoded.dead_letters;
    const auto& topic = static_cast<const arrow::StringArray&>(*dl.GetColumnByName("topic"));
    const auto& partition = static_cast<const arrow::Int32Array&>(*dl.GetColumnByName("partition"));
    const auto& offset = static_cast<const arrow::Int64Array&>(*dl.GetColumnByName("offset"));
    arrow::BooleanBuilder fresh;  // not already in the table from before a crash
    for (int64_t i = 0; i < dl.num_rows(); ++i) {
      auto app = ids_.kafka(topic.GetString(i), KafkaPartition(partition.Value(i)));
      ARROW_RETURN_NOT_OK(fresh.Append(offset.Value(i) >= dead_letters_.committed(app)));
    }
    ARROW_ASSIGN_OR_RAISE(auto mask, fresh.Finish());
    ARROW_ASSIGN_OR_RAISE(auto rows, cp::Filter(decoded.dead_letters, mask));
    report_.rows_dead_lettered += rows.record_batch()->num_rows();
    ARROW_RETURN_NOT_OK(dead_letters_.write(*rows.record_batch()));
  }
  // The decoded rows are the source rows from here on (they keep topic, partition, offset).
  return exec::OperatorBatch::from_source(std::move(decoded.rows), batch.source_version);
}

arrow::Result<exec::OperatorBatch> WindowOperator::push(exec::OperatorBatch batch) {
  if (upstream_.empty()) {
    if (batch.lineage != exec::OperatorBatch::Lineage::kSourceRows) {
      return arrow::Status::Invalid("the event-time window of a Kafka flow needs each row's source row");
    }
    ARROW_ASSIGN_OR_RAISE(batch.rows, flow_.consume_kafka(*batch.source, *batch.rows, *batch.source_rows, std::move(batch.awaited_inputs)));
  } else {
    ARROW_ASSIGN_OR_RAISE(batch.rows, flow_.consume_delta(*batch.rows, upstream_, app_id_, batch.source_version));
  }
  batch.source_rows.reset();  // window rows have no single source row
  batch.lineage = exec::OperatorBatch::Lineage::kNone;
  return batch;
}

arrow::Result<std::vector<exec::WindowState>> WindowOperator::snapshot() const {
  ARROW_ASSIGN_OR_RAISE(auto state, flow_.state());
  std::vector<exec::WindowState> parts;
  parts.push_back(std::move(state));
  return parts;
}

arrow::Status WindowOperator::restore(std::optional<std::vector<exec::WindowState>> parts) {
  if (!parts) return flow_.restore(std::nullopt);
  if (parts->size() != 1) {
    return arrow::Status::Invalid("internal: an event-time window's state has one part, not ", parts->size());
  }
  return flow_.restore(std::move(parts->front()));
}

arrow::Result<exec::OperatorBatch> ConformOperator::push(exec::OperatorBatch batch) {
  ARROW_ASSIGN_OR_RAISE(batch.rows, delta::conform_batch(*batch.rows, schema_));
  return batch;
}

arrow::Result<exec::OperatorBatch> ExpectationsOperator::push(exec::OperatorBatch batch) {
  using Lineage = exec::OperatorBatch::Lineage;
  if (batch.lineage == Lineage::kNone) {  // windows, joins: no source position to name or keep
    ARROW_ASSIGN_OR_RAISE(batch.rows, expectations_.apply(batch.rows, report_));
    return batch;
  }
  if (!positions_) return arrow::Status::Invalid("expectations over source rows need their positions");
  const auto* source_rows = batch.lineage == Lineage::kSourceRows
                                ? static_cast<const arrow::Int64Array*>(batch.source_rows.get())
                                : nullptr;
  auto row_source = [&](int64_t r) {
    return positions_->describe(batch, source_rows ? source_rows->Value(r) : r);
  };
  if (!quarantine_) {
    ARROW_ASSIGN_OR_RAISE(batch.rows, expectations_.apply(batch.rows, report_, nullptr, row_source));
    return batch;
  }
  Expectations::Dropped dropped;
  ARROW_ASSIGN_OR_RAISE(auto kept, expectations_.apply(batch.rows, report_, &dropped, row_source));
  if (dropped.rows) {
    std::shared_ptr<arrow::Array> rows = dropped.indices;
    if (source_rows) {
      ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(batch.source_rows, dropped.indices));
      rows = taken.make_array();
    }
    ARROW_ASSIGN_OR_RAISE(auto qrows, positions_->quarantine_rows(batch, dropped, rows, *quarantine_));
    report_.rows_quarantined += qrows->num_rows();
    ARROW_RETURN_NOT_OK(quarantine_->write(*qrows));
  }
  batch.rows = std::move(kept);
  return batch;
}

arrow::Result<std::unique_ptr<exec::OperatorChain>> plan_flow_operators(FlowOperatorsSpec spec) {
  const auto& plan = *spec.plan;
  auto chain = std::make_unique<exec::OperatorChain>();
  if (spec.decoder) {
    if (!spec.dead_letters || !spec.ids) {
      return arrow::Status::Invalid("decoding Kafka values needs a dead-letter table and the flow's progress ids");
    }
    chain->add(std::make_unique<DecodeOperator>(std::move(spec.decoder), spec.value_schema, *spec.dead_letters,
                                                *spec.ids, *spec.report));
  }
  if (plan.joins()) {
    if (!spec.static_join) return arrow::Status::Invalid("a stream-static join needs its join");
    chain->add(std::make_unique<exec::StreamStaticJoinOperator>(*spec.static_join));
  } else {
    chain->add(std::make_unique<exec::ProjectFilterOperator>(plan));
  }
  if (spec.windowed) chain->add(std::make_unique<WindowOperator>(*spec.windowed, spec.upstream, spec.app_id));
  chain->add(std::make_unique<ConformOperator>(spec.schema));
  chain->add(std::make_unique<ExpectationsOperator>(*spec.expectations, *spec.report, spec.positions,
                                                    spec.windowed ? nullptr : spec.quarantine));
  if (spec.commit && chain->stateful()) {
    spec.commit->set_state(*chain);
    ARROW_RETURN_NOT_OK(spec.commit->load_state(spec.commit->ids().recorded_in(spec.commit->snapshot().get())));
  }
  return chain;
}

}  // namespace sluice::pipeline
