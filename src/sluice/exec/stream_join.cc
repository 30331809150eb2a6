// Stream-stream interval joins over buffered Arrow tables (see stream_join.h).
#include "sluice/exec/stream_join.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <vector>

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {

constexpr const char* kMatched = "__sj_matched";
constexpr const char* kRow = "__sj_row";

int64_t micros_per_unit(const arrow::DataType& type) {
  switch (static_cast<const arrow::TimestampType&>(type).unit()) {
    case arrow::TimeUnit::SECOND: return 1'000'000;
    case arrow::TimeUnit::MILLI: return 1'000;
    case arrow::TimeUnit::MICRO: return 1;
    case arrow::TimeUnit::NANO: return 0;  // divide by 1000
  }
  return 1;
}

// Event times in µs; null rows get kNoTime.
std::vector<int64_t> event_times(const arrow::ChunkedArray& column) {
  std::vector<int64_t> out;
  out.reserve(column.length());
  const int64_t factor = micros_per_unit(*column.type());
  for (const auto& chunk : column.chunks()) {
    const auto& a = static_cast<const arrow::TimestampArray&>(*chunk);
    const int64_t* v = a.raw_values();
    for (int64_t i = 0; i < a.length(); ++i) {
      if (a.IsNull(i)) {
        out.push_back(StreamJoinState::kNoTime);
      } else {
        out.push_back(factor == 0 ? v[i] / 1000 : v[i] * factor);
      }
    }
  }
  return out;
}

arrow::Result<std::shared_ptr<arrow::Array>> bools(const std::vector<uint8_t>& flags) {
  arrow::BooleanBuilder b;
  ARROW_RETURN_NOT_OK(b.Reserve(static_cast<int64_t>(flags.size())));
  for (uint8_t f : flags) b.UnsafeAppend(f != 0);
  return b.Finish();
}

arrow::Result<std::shared_ptr<arrow::Array>> row_numbers(int64_t n) {
  arrow::Int64Builder b;
  ARROW_RETURN_NOT_OK(b.Reserve(n));
  for (int64_t i = 0; i < n; ++i) b.UnsafeAppend(i);
  return b.Finish();
}

arrow::Result<std::shared_ptr<arrow::Table>> filter(const std::shared_ptr<arrow::Table>& table,
                                                    const std::vector<uint8_t>& keep) {
  ARROW_ASSIGN_OR_RAISE(auto mask, bools(keep));
  ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(table, mask));
  return kept.table()->CombineChunks();
}

arrow::Result<std::shared_ptr<arrow::Table>> append(const std::shared_ptr<arrow::Table>& a,
                                                    const std::shared_ptr<arrow::Table>& b) {
  if (b->num_rows() == 0) return a;
  ARROW_ASSIGN_OR_RAISE(auto both, arrow::ConcatenateTables({a, b}));
  return both->CombineChunks();
}

}  // namespace

arrow::Result<std::unique_ptr<StreamJoin>> StreamJoin::make(const SelectPlan& plan) {
  if (!plan.joins()) return arrow::Status::Invalid("not a join");
  const SelectPlan* left = plan.join_left();
  const SelectPlan* right = plan.join_right();
  if (left->joins() || right->joins()) {
    return arrow::Status::NotImplemented(
        "a stream-stream join in a streaming table joins exactly two streams; join two of them into a streaming "
        "table first, then join that one with the third");
  }
  const auto type = plan.join_type();
  if (type != "INNER" && type != "LEFT") {
    return arrow::Status::NotImplemented(fmt::format(
        "a stream-stream join is INNER or LEFT (OUTER) with the stream whose unmatched rows are kept on the left, "
        "not {}", type));
  }
  for (const auto* side : {left, right}) {
    if (!side->watermark()) {
      return arrow::Status::Invalid(fmt::format(
          "each side of a stream-stream join needs a watermark; '{}' has none: write STREAM({}) WATERMARK ts DELAY "
          "OF INTERVAL 1 MINUTE alias",
          side->source().name, side->source().name));
    }
  }
  const auto& bound = plan.join_time_bound();
  if (!bound) {
    return arrow::Status::Invalid(
        "a stream-stream join needs ON to bound one side's WATERMARK column by the other's, e.g. "
        "b.ts BETWEEN a.ts AND a.ts + INTERVAL 10 MINUTES (else its state could never be evicted)");
  }
  if (bound->lower_micros > bound->upper_micros) {
    return arrow::Status::Invalid("the join's time bound is empty: its lower end is above its upper end");
  }
  std::unique_ptr<StreamJoin> j(new StreamJoin());
  j->plan_ = &plan;
  j->bound_ = *bound;
  j->left_outer_ = type == "LEFT";
  j->left_delay_ = left->watermark()->delay_micros;
  j->right_delay_ = right->watermark()->delay_micros;
  j->left_schema_ = left->output_schema();
  j->right_schema_ = right->output_schema();
  ARROW_ASSIGN_OR_RAISE(j->left_state_schema_,
                        j->left_schema_->AddField(j->left_schema_->num_fields(), arrow::field(kMatched, arrow::boolean())));
  ARROW_RETURN_NOT_OK(j->restore({}));
  return j;
}

arrow::Status StreamJoin::restore(StreamJoinState state) {
  if (!state.left_rows) {
    ARROW_ASSIGN_OR_RAISE(state.left_rows, arrow::Table::MakeEmpty(left_state_schema_));
  }
  if (!state.right_rows) {
    ARROW_ASSIGN_OR_RAISE(state.right_rows, arrow::Table::MakeEmpty(right_schema_));
  }
  if (!state.left_rows->schema()->Equals(*left_state_schema_) || !state.right_rows->schema()->Equals(*right_schema_)) {
    return arrow::Status::Invalid(
        "the saved join state does not fit the query (was the query changed?); run a full refresh of the table");
  }
  state_ = std::move(state);
  return arrow::Status::OK();
}

int64_t StreamJoin::watermark(JoinSide side) const {
  const int64_t max = side == JoinSide::kLeft ? state_.left_max_time : state_.right_max_time;
  if (max == StreamJoinState::kNoTime) return StreamJoinState::kNoTime;
  return max - (side == JoinSide::kLeft ? left_delay_ : right_delay_);
}

int64_t StreamJoin::state_rows() const { return state_.left_rows->num_rows() + state_.right_rows->num_rows(); }

int64_t StreamJoin::state_bytes() const {
  return arrow::util::TotalBufferSize(*state_.left_rows) + arrow::util::TotalBufferSize(*state_.right_rows);
}

arrow::Result<StreamJoin::Result> StreamJoin::consume(JoinSide side, const arrow::RecordBatch& input) {
  const bool is_left = side == JoinSide::kLeft;
  const SelectPlan* side_plan = is_left ? plan_->join_left() : plan_->join_right();
  ARROW_ASSIGN_OR_RAISE(auto rows, side_plan->apply_row_stages(input));
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(rows->schema(), {rows}));
  const auto& time_column = is_left ? bound_.left_time : bound_.right_time;
  auto times = event_times(*table->GetColumnByName(time_column));
  // Late rows: below the side's watermark as it stood before this batch (WatermarkStep::
  // kPerBatch: the sides are Delta tables, whose rows interleave their Kafka partitions).
  int64_t& max = is_left ? state_.left_max_time : state_.right_max_time;
  const int64_t delay = is_left ? left_delay_ : right_delay_;
  const int64_t max_before = max;
  std::vector<uint8_t> keep(times.size());
  Result result;
  for (size_t i = 0; i < times.size(); ++i) {
    const int64_t t = times[i];
    const bool late =
        t == StreamJoinState::kNoTime || (max_before != StreamJoinState::kNoTime && t < max_before - delay);
    keep[i] = !late;
    result.late_rows += late;
    if (!late && t > max) max = t;
  }
  if (result.late_rows) {
    ARROW_ASSIGN_OR_RAISE(table, filter(table, keep));
  }
  ARROW_ASSIGN_OR_RAISE(auto joined, join_new(side, table));
  ARROW_ASSIGN_OR_RAISE(auto evicted, evict());
  ARROW_ASSIGN_OR_RAISE(result.output, finish({joined, evicted}));
  return result;
}

arrow::Result<std::shared_ptr<arrow::Table>> StreamJoin::join_new(JoinSide side,
                                                                  const std::shared_ptr<arrow::Table>& rows) {
  const int64_t n = rows->num_rows();
  std::shared_ptr<arrow::Table> joined;
  if (side == JoinSide::kLeft) {
    std::vector<uint8_t> matched(n, 0);
    if (n > 0 && state_.right_rows->num_rows() > 0) {
      ARROW_ASSIGN_OR_RAISE(auto ids, row_numbers(n));
      ARROW_ASSIGN_OR_RAISE(auto numbered, rows->AddColumn(rows->num_columns(), arrow::field(kRow, arrow::int64()),
                                                           std::make_shared<arrow::ChunkedArray>(ids)));
      ARROW_ASSIGN_OR_RAISE(joined, plan_->join_tables(numbered, state_.right_rows, SelectPlan::JoinAs::kInner, {kRow}));
      for (const auto& chunk : joined->GetColumnByName(kRow)->chunks()) {
        const auto& a = static_cast<const arrow::Int64Array&>(*chunk);
        for (int64_t i = 0; i < a.length(); ++i) matched[a.Value(i)] = 1;
      }
      ARROW_ASSIGN_OR_RAISE(joined, joined->RemoveColumn(joined->num_columns() - 1));
    }
    ARROW_ASSIGN_OR_RAISE(auto flags, bools(matched));
    ARROW_ASSIGN_OR_RAISE(auto with_flags, rows->AddColumn(rows->num_columns(), arrow::field(kMatched, arrow::boolean()),
                                                           std::make_shared<arrow::ChunkedArray>(flags)));
    ARROW_ASSIGN_OR_RAISE(state_.left_rows,
                          append(state_.left_rows, arrow::Table::Make(left_state_schema_, with_flags->columns(), n)));
  } else {
    const int64_t buffered = state_.left_rows->num_rows();
    if (n > 0 && buffered > 0) {
      const int flag_index = state_.left_rows->num_columns() - 1;
      ARROW_ASSIGN_OR_RAISE(auto ids, row_numbers(buffered));
      ARROW_ASSIGN_OR_RAISE(auto numbered, state_.left_rows->SetColumn(flag_index, arrow::field(kRow, arrow::int64()),
                                                                       std::make_shared<arrow::ChunkedArray>(ids)));
      ARROW_ASSIGN_OR_RAISE(joined, plan_->join_tables(numbered, rows, SelectPlan::JoinAs::kInner, {kRow}));
      if (left_outer_ && joined->num_rows() > 0) {
        std::vector<uint8_t> matched;
        matched.reserve(buffered);
        for (const auto& chunk : state_.left_rows->column(flag_index)->chunks()) {
          const auto& a = static_cast<const arrow::BooleanArray&>(*chunk);
          for (int64_t i = 0; i < a.length(); ++i) matched.push_back(a.Value(i));
        }
        for (const auto& chunk : joined->GetColumnByName(kRow)->chunks()) {
          const auto& a = static_cast<const arrow::Int64Array&>(*chunk);
          for (int64_t i = 0; i < a.length(); ++i) matched[a.Value(i)] = 1;
        }
        ARROW_ASSIGN_OR_RAISE(auto flags, bools(matched));
        ARROW_ASSIGN_OR_RAISE(state_.left_rows, state_.left_rows->SetColumn(flag_index, left_state_schema_->field(flag_index),
                                                                            std::make_shared<arrow::ChunkedArray>(flags)));
      }
      ARROW_ASSIGN_OR_RAISE(joined, joined->RemoveColumn(joined->num_columns() - 1));
    }
    ARROW_ASSIGN_OR_RAISE(state_.right_rows,
                          append(state_.right_rows, arrow::Table::Make(right_schema_, rows->columns(), n)));
  }
  return joined;
}

arrow::Result<std::shared_ptr<arrow::Table>> StreamJoin::evict() {
  std::shared_ptr<arrow::Table> emitted;
  const int64_t right_wm = watermark(JoinSide::kRight);
  if (right_wm != StreamJoinState::kNoTime && state_.left_rows->num_rows() > 0) {
    auto times = event_times(*state_.left_rows->GetColumnByName(bound_.left_time));
    std::vector<uint8_t> keep(times.size()), gone(times.size());
    bool any = false;
    for (size_t i = 0; i < times.size(); ++i) {
      keep[i] = !(times[i] + bound_.upper_micros < right_wm);
      gone[i] = !keep[i];
      any |= gone[i];
    }
    if (any) {
      if (left_outer_) {
        // Rows leaving without a match: emitted once, null-extended.
        const int flag_index = state_.left_rows->num_columns() - 1;
        int64_t i = 0;
        for (const auto& chunk : state_.left_rows->column(flag_index)->chunks()) {
          const auto& a = static_cast<const arrow::BooleanArray&>(*chunk);
          for (int64_t k = 0; k < a.length(); ++k, ++i) gone[i] = gone[i] && !a.Value(k);
        }
        ARROW_ASSIGN_OR_RAISE(auto unmatched, filter(state_.left_rows, gone));
        if (unmatched->num_rows() > 0) {
          const auto& schema = plan_->joined_schema();
          arrow::ChunkedArrayVector columns;
          for (int c = 0; c < left_schema_->num_fields(); ++c) columns.push_back(unmatched->column(c));
          for (int c = left_schema_->num_fields(); c < schema->num_fields(); ++c) {
            ARROW_ASSIGN_OR_RAISE(auto nulls, arrow::MakeArrayOfNull(schema->field(c)->type(), unmatched->num_rows()));
            columns.push_back(std::make_shared<arrow::ChunkedArray>(nulls));
          }
          emitted = arrow::Table::Make(schema, columns, unmatched->num_rows());
        }
      }
      ARROW_ASSIGN_OR_RAISE(state_.left_rows, filter(state_.left_rows, keep));
    }
  }
  const int64_t left_wm = watermark(JoinSide::kLeft);
  if (left_wm != StreamJoinState::kNoTime && state_.right_rows->num_rows() > 0) {
    auto times = event_times(*state_.right_rows->GetColumnByName(bound_.right_time));
    std::vector<uint8_t> keep(times.size());
    bool any = false;
    for (size_t i = 0; i < times.size(); ++i) {
      keep[i] = !(times[i] - bound_.lower_micros < left_wm);
      any |= !keep[i];
    }
    if (any) {
      ARROW_ASSIGN_OR_RAISE(state_.right_rows, filter(state_.right_rows, keep));
    }
  }
  return emitted;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> StreamJoin::finish(
    const std::vector<std::shared_ptr<arrow::Table>>& joined) {
  const auto& schema = plan_->joined_schema();
  std::vector<std::shared_ptr<arrow::Table>> parts;
  for (const auto& t : joined) {
    if (t && t->num_rows() > 0) parts.push_back(arrow::Table::Make(schema, t->columns(), t->num_rows()));
  }
  std::shared_ptr<arrow::RecordBatch> batch;
  if (parts.empty()) {
    ARROW_ASSIGN_OR_RAISE(batch, arrow::RecordBatch::MakeEmpty(schema));
  } else {
    ARROW_ASSIGN_OR_RAISE(auto all, arrow::ConcatenateTables(parts));
    ARROW_ASSIGN_OR_RAISE(batch, all->CombineChunksToBatch());
  }
  return plan_->apply_row_stages(*batch);
}

arrow::Result<std::unique_ptr<StreamJoinOperator>> StreamJoinOperator::make(const SelectPlan& plan) {
  ARROW_ASSIGN_OR_RAISE(auto join, StreamJoin::make(plan));
  return std::unique_ptr<StreamJoinOperator>(new StreamJoinOperator(std::move(join)));
}

arrow::Result<OperatorBatch> StreamJoinOperator::push(OperatorBatch batch) {
  if (batch.input != 0 && batch.input != 1) {
    return arrow::Status::Invalid("internal: a stream-stream join has inputs 0 (left) and 1 (right), not ", batch.input);
  }
  ARROW_ASSIGN_OR_RAISE(auto r, join_->consume(batch.input == 0 ? JoinSide::kLeft : JoinSide::kRight, *batch.rows));
  late_rows_ += r.late_rows;
  OperatorBatch joined;  // joined rows have no single source row
  joined.rows = std::move(r.output);
  joined.lineage = OperatorBatch::Lineage::kNone;
  return joined;
}

arrow::Result<std::vector<WindowState>> StreamJoinOperator::snapshot() const {
  const auto& st = join_->state();
  std::vector<WindowState> parts(2);
  parts[0] = {st.left_max_time, {}, st.left_rows};
  parts[1] = {st.right_max_time, {}, st.right_rows};
  return parts;
}

arrow::Status StreamJoinOperator::restore(std::optional<std::vector<WindowState>> parts) {
  StreamJoinState state;
  if (parts) {
    if (parts->size() != 2) {
      return arrow::Status::Invalid("internal: a stream-stream join's state has two parts, not ", parts->size());
    }
    state.left_max_time = (*parts)[0].watermark;
    state.right_max_time = (*parts)[1].watermark;
    state.left_rows = (*parts)[0].open_rows;
    state.right_rows = (*parts)[1].open_rows;
  }
  return join_->restore(std::move(state));
}

}  // namespace sluice::exec
