// Event-time windowed aggregation: window assignment, watermark, late rows, emission.
#include "sluice/exec/window_aggregate.h"

#include "sluice/exec/group_by.h"

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>

#include "sluice/common/status.h"
#include "sluice/exec/watermark.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {

// floor(a / b) for b > 0, also for negative a (event times before 1970).
int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

arrow::Result<std::shared_ptr<arrow::Int64Array>> as_micros(const std::shared_ptr<arrow::Array>& time) {
  std::shared_ptr<arrow::Array> micros = time;
  if (!time->type()->Equals(*arrow::timestamp(arrow::TimeUnit::MICRO))) {
    ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(*time, arrow::timestamp(arrow::TimeUnit::MICRO)));
    micros = cast;
  }
  ARROW_ASSIGN_OR_RAISE(auto ints, micros->View(arrow::int64()));
  return std::static_pointer_cast<arrow::Int64Array>(ints);
}

int64_t min_window_start(const arrow::Table& table) {
  int64_t out = INT64_MAX;
  for (const auto& chunk : table.GetColumnByName("__ws")->chunks()) {
    const auto& ws = static_cast<const arrow::Int64Array&>(*chunk);
    for (int64_t i = 0; i < ws.length(); ++i) out = std::min(out, ws.Value(i));
  }
  return out;
}

// Marks in `new_key` (size n) the rows of `sorted` whose `keys` differ from the row before.
arrow::Status mark_key_changes(const arrow::RecordBatch& sorted, const std::vector<std::string>& keys,
                               std::vector<uint8_t>& new_key) {
  const int64_t n = sorted.num_rows();
  new_key.assign(static_cast<size_t>(n), 0);
  if (n > 0) new_key[0] = 1;
  for (const auto& name : keys) {
    auto column = sorted.GetColumnByName(name);
    auto next = column->Slice(1), prev = column->Slice(0, n - 1);
    ARROW_ASSIGN_OR_RAISE(auto ne_d, cp::CallFunction("not_equal", {next, prev}));
    const auto& ne = static_cast<const arrow::BooleanArray&>(*ne_d.make_array());
    for (int64_t r = 0; r + 1 < n; ++r) {
      const bool differ = ne.IsValid(r) ? ne.Value(r) : next->IsNull(r) != prev->IsNull(r);
      new_key[static_cast<size_t>(r + 1)] |= differ;
    }
  }
  return arrow::Status::OK();
}

}  // namespace

// Open sessions as intervals (keys, __ss first event, __sl last event) merged into one row per
// session: sorted by keys and start, an interval joins the session before it when it has the
// same keys and starts less than `gap` after that session's last event.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::merge_sessions(
    const std::shared_ptr<arrow::RecordBatch>& intervals) const {
  const int64_t n = intervals->num_rows();
  if (n == 0) return intervals;
  std::vector<cp::SortKey> sort_keys;
  for (const auto& k : session_keys_) sort_keys.emplace_back(k);
  sort_keys.emplace_back("__ss");
  ARROW_ASSIGN_OR_RAISE(auto order, cp::SortIndices(arrow::Datum(intervals), cp::SortOptions(sort_keys)));
  ARROW_ASSIGN_OR_RAISE(auto sorted_d, cp::Take(arrow::Datum(intervals), arrow::Datum(order)));
  auto sorted = sorted_d.record_batch();
  std::vector<uint8_t> new_key;
  ARROW_RETURN_NOT_OK(mark_key_changes(*sorted, session_keys_, new_key));
  const auto& ss = static_cast<const arrow::Int64Array&>(*sorted->GetColumnByName("__ss"));
  const auto& sl = static_cast<const arrow::Int64Array&>(*sorted->GetColumnByName("__sl"));
  arrow::Int64Builder firsts, starts, lasts;
  const int64_t gap = agg_.window->gap_micros;
  for (int64_t r = 0; r < n;) {
    int64_t last = sl.Value(r);
    int64_t e = r + 1;
    while (e < n && !new_key[static_cast<size_t>(e)] && ss.Value(e) - last < gap) last = std::max(last, sl.Value(e++));
    ARROW_RETURN_NOT_OK(firsts.Append(r));
    ARROW_RETURN_NOT_OK(starts.Append(ss.Value(r)));
    ARROW_RETURN_NOT_OK(lasts.Append(last));
    r = e;
  }
  ARROW_ASSIGN_OR_RAISE(auto first_rows, firsts.Finish());
  ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(arrow::Datum(sorted), arrow::Datum(first_rows)));
  auto columns = taken.record_batch()->columns();
  ARROW_ASSIGN_OR_RAISE(columns[columns.size() - 2], starts.Finish());
  ARROW_ASSIGN_OR_RAISE(columns[columns.size() - 1], lasts.Finish());
  return arrow::RecordBatch::Make(intervals->schema(), first_rows->length(), columns);
}

// Sessions: `rows` (buffer rows, __ws the event time) as one-event intervals.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::session_intervals(const arrow::RecordBatch& rows) const {
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (const auto& k : session_keys_) {
    fields.push_back(rows.schema()->GetFieldByName(k));
    columns.push_back(rows.GetColumnByName(k));
  }
  fields.push_back(arrow::field("__ss", arrow::int64(), false));
  fields.push_back(arrow::field("__sl", arrow::int64(), false));
  columns.push_back(rows.GetColumnByName("__ws"));
  columns.push_back(rows.GetColumnByName("__ws"));
  return arrow::RecordBatch::Make(arrow::schema(fields), rows.num_rows(), columns);
}

// Sessions: merges `rows` into the open sessions; min_open_end_ becomes their earliest end.
arrow::Status WindowAggregate::add_to_sessions(const arrow::RecordBatch& rows) {
  ARROW_ASSIGN_OR_RAISE(auto intervals, session_intervals(rows));
  if (open_sessions_ && open_sessions_->num_rows() > 0) {
    ARROW_ASSIGN_OR_RAISE(auto both, arrow::Table::FromRecordBatches(intervals->schema(), {open_sessions_, intervals}));
    ARROW_ASSIGN_OR_RAISE(intervals, both->CombineChunksToBatch());
  }
  ARROW_ASSIGN_OR_RAISE(open_sessions_, merge_sessions(intervals));
  min_open_end_ = INT64_MAX;
  const auto& sl = static_cast<const arrow::Int64Array&>(*open_sessions_->GetColumnByName("__sl"));
  for (int64_t i = 0; i < sl.length(); ++i) min_open_end_ = std::min(min_open_end_, sl.Value(i) + agg_.window->gap_micros);
  return arrow::Status::OK();
}

arrow::Result<std::unique_ptr<WindowAggregate>> WindowAggregate::make(const SelectPlan& plan, WatermarkPolicy policy) {
  if (!plan.aggregate_spec() || !plan.aggregate_spec()->window) {
    return arrow::Status::Invalid("windowed aggregation needs GROUP BY window(ts, '<duration>')");
  }
  if (!plan.watermark()) return arrow::Status::Invalid("windowed aggregation needs WATERMARK ts DELAY OF INTERVAL ...");
  std::unique_ptr<WindowAggregate> op(new WindowAggregate());
  op->agg_ = *plan.aggregate_spec();
  op->output_schema_ = plan.output_schema();
  op->policy_ = policy;
  op->watermark_column_ = plan.watermark()->column;
  const auto& w = *op->agg_.window;
  op->window_type_ = op->agg_.grouped_schema->field(static_cast<int>(w.key_index))->type();
  arrow::FieldVector raw = {arrow::field("__ws", arrow::int64(), false)};
  for (size_t k = 0; k < op->agg_.key_inputs.size(); ++k) {
    if (k == w.key_index) continue;
    raw.push_back(arrow::field(fmt::format("__k{}", k), op->agg_.key_inputs[k].type));
  }
  arrow::FieldVector partial = raw;
  op->partial_ = w.gap_micros == 0;  // sessions merge: keep the rows, group them when they close
  for (size_t k = 0; k < op->agg_.key_inputs.size(); ++k) {
    if (k != w.key_index) op->session_keys_.push_back(fmt::format("__k{}", k));
  }
  for (size_t a = 0; a < op->agg_.functions.size(); ++a) {
    const auto& f = op->agg_.functions[a];
    const auto& in_type = op->agg_.aggregate_inputs[a].type;
    if (f != "hash_count_all") raw.push_back(arrow::field(fmt::format("__in{}", a), in_type));
    const bool decimal = in_type->id() == arrow::Type::DECIMAL128;
    if (f == "hash_count" || f == "hash_count_all") {
      partial.push_back(arrow::field(fmt::format("__p{}", a), arrow::int64()));
    } else if ((f == "hash_sum" || f == "hash_mean") && !decimal) {
      auto sum_type = arrow::is_integer(in_type->id()) ? arrow::int64() : arrow::float64();
      if (f == "hash_sum") {
        partial.push_back(arrow::field(fmt::format("__p{}", a), sum_type));
      } else {
        partial.push_back(arrow::field(fmt::format("__s{}", a), sum_type));
        partial.push_back(arrow::field(fmt::format("__c{}", a), arrow::int64()));
      }
    } else if (f == "hash_min" || f == "hash_max" || f == "hash_first" || f == "hash_last") {
      partial.push_back(arrow::field(fmt::format("__p{}", a), in_type));
    } else {
      op->partial_ = false;  // count DISTINCT, stddev, decimal sums: keep the rows
    }
  }
  op->raw_schema_ = arrow::schema(raw);
  op->buffer_schema_ = op->partial_ ? arrow::schema(partial) : op->raw_schema_;
  return op;
}

arrow::Result<WindowAggregate::Result> WindowAggregate::consume(const arrow::RecordBatch& rows,
                                                                const std::vector<std::string>& input_ids,
                                                                const std::vector<int32_t>& input_of_row,
                                                                std::chrono::steady_clock::time_point now) {
  Result result;
  const int64_t n = rows.num_rows();
  if (static_cast<int64_t>(input_of_row.size()) != n) {
    return arrow::Status::Invalid("window aggregation: one input id per row expected");
  }
  const auto& w = *agg_.window;
  auto wm_column = rows.GetColumnByName(watermark_column_);
  if (!wm_column) return invalid("WATERMARK column '{}' is not among the query's input columns", watermark_column_);
  ARROW_ASSIGN_OR_RAISE(auto event_time, as_micros(wm_column));
  ARROW_ASSIGN_OR_RAISE(auto window_time_column, evaluate(w.time, rows));
  ARROW_ASSIGN_OR_RAISE(auto window_time, as_micros(window_time_column));

  WatermarkAdvance advance(state_, last_seen_, policy_, input_ids, now);

  // One pass in arrival order: lateness, watermark, window assignment.
  arrow::Int64Builder late, late_wm, take, starts;
  const bool session = w.gap_micros > 0;
  const int64_t per_row = session ? 1 : (w.size_micros + w.slide_micros - 1) / w.slide_micros;
  ARROW_RETURN_NOT_OK(take.Reserve(n * per_row));
  ARROW_RETURN_NOT_OK(starts.Reserve(n * per_row));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t watermark = advance.watermark();
    const bool valid = event_time->IsValid(i) && window_time->IsValid(i);
    const int64_t ts = valid ? event_time->Value(i) : 0;
    const bool is_late = !valid || (watermark != WindowState::kNoWatermark && ts < watermark);
    if (is_late) {
      ARROW_RETURN_NOT_OK(late.Append(i));
      ARROW_RETURN_NOT_OK(late_wm.Append(watermark));
      if (!valid) continue;
    }
    // A late row still tells that its input has data (it then holds the watermark back).
    advance.observe(input_of_row[i], ts);
    if (is_late) continue;
    const int64_t t = window_time->Value(i);
    if (session) {  // the row's own time; sessions are formed when something may close
      take.UnsafeAppend(i);
      starts.UnsafeAppend(t);
      continue;
    }
    for (int64_t start = floor_div(t, w.slide_micros) * w.slide_micros; start + w.size_micros > t;
         start -= w.slide_micros) {
      if (take.length() == take.capacity()) {
        ARROW_RETURN_NOT_OK(take.Reserve(n));
        ARROW_RETURN_NOT_OK(starts.Reserve(n));
      }
      take.UnsafeAppend(i);
      starts.UnsafeAppend(start);
      min_open_start_ = std::min(min_open_start_, start);
    }
  }
  advance.finish();
  ARROW_ASSIGN_OR_RAISE(result.late_rows, late.Finish());
  ARROW_ASSIGN_OR_RAISE(result.late_watermarks, late_wm.Finish());

  // The assigned (row, window) pairs, as buffer columns.
  ARROW_ASSIGN_OR_RAISE(auto take_indices, take.Finish());
  ARROW_ASSIGN_OR_RAISE(auto window_starts, starts.Finish());
  if (take_indices->length() > 0) {
    arrow::ArrayVector columns = {window_starts};
    for (size_t k = 0; k < agg_.key_inputs.size(); ++k) {
      if (k == w.key_index) continue;
      ARROW_ASSIGN_OR_RAISE(auto c, evaluate(agg_.key_inputs[k], rows));
      ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(*c, *take_indices));
      columns.push_back(taken);
    }
    for (size_t a = 0; a < agg_.functions.size(); ++a) {
      if (agg_.functions[a] == "hash_count_all") continue;
      ARROW_ASSIGN_OR_RAISE(auto c, evaluate(agg_.aggregate_inputs[a], rows));
      ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(*c, *take_indices));
      columns.push_back(taken);
    }
    auto assigned = arrow::RecordBatch::Make(raw_schema_, take_indices->length(), std::move(columns));
    if (partial_) {
      ARROW_ASSIGN_OR_RAISE(assigned, pre_aggregate(assigned));
    }
    if (session) ARROW_RETURN_NOT_OK(add_to_sessions(*assigned));
    pending_rows_ += assigned->num_rows();
    pending_.push_back(std::move(assigned));
  }
  ARROW_ASSIGN_OR_RAISE(result.output, emit_closed());
  // Partials of many batches fold into one row per (window, keys) now and then.
  const int64_t open = state_.open_rows ? state_.open_rows->num_rows() : 0;
  if (partial_ && pending_rows_ > std::max(compaction_rows_, open)) ARROW_RETURN_NOT_OK(compact());
  return result;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::emit_closed() {
  const auto& w = *agg_.window;
  if (w.gap_micros > 0) {
    ARROW_ASSIGN_OR_RAISE(auto closed, close_sessions());
    if (!closed) return arrow::RecordBatch::MakeEmpty(output_schema_);
    return finalize(closed);
  }
  const int64_t watermark = state_.watermark;
  const bool any_closed = watermark != WindowState::kNoWatermark && min_open_start_ != INT64_MAX &&
                          min_open_start_ <= watermark - w.size_micros;
  if (!any_closed) return arrow::RecordBatch::MakeEmpty(output_schema_);
  // Split the buffer into closed and open windows.
  ARROW_ASSIGN_OR_RAISE(auto buffered, take_buffer());
  ARROW_ASSIGN_OR_RAISE(auto closed_mask,
                        cp::CallFunction("less_equal", {buffered->GetColumnByName("__ws"),
                                                        arrow::Datum(watermark - w.size_micros)}));
  ARROW_ASSIGN_OR_RAISE(auto open_mask, cp::Invert(closed_mask));
  ARROW_ASSIGN_OR_RAISE(auto closed_d, cp::Filter(buffered, closed_mask));
  ARROW_ASSIGN_OR_RAISE(auto open_d, cp::Filter(buffered, open_mask));
  auto open = open_d.record_batch();
  if (partial_) {
    ARROW_ASSIGN_OR_RAISE(open, merge(open));
  }
  ARROW_ASSIGN_OR_RAISE(state_.open_rows, arrow::Table::FromRecordBatches(buffer_schema_, {open}));
  min_open_start_ = min_window_start(*state_.open_rows);
  return finalize(closed_d.record_batch());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::finalize(
    const std::shared_ptr<arrow::RecordBatch>& closed) {
  const auto& w = *agg_.window;
  const bool session = w.gap_micros > 0;
  // Aggregate the closed windows (arrival order kept: first/last).
  std::shared_ptr<arrow::RecordBatch> g;
  if (partial_) {
    ARROW_ASSIGN_OR_RAISE(g, merge(closed));
    // Final values: avg = sum / count (null when no value counted).
    arrow::FieldVector fields = g->schema()->fields();
    arrow::ArrayVector columns = g->columns();
    for (size_t a = 0; a < agg_.functions.size(); ++a) {
      if (agg_.functions[a] != "hash_mean") {
        fields.push_back(arrow::field(fmt::format("__a{}", a), g->GetColumnByName(fmt::format("__p{}", a))->type()));
        columns.push_back(g->GetColumnByName(fmt::format("__p{}", a)));
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto sum, cp::Cast(*g->GetColumnByName(fmt::format("__s{}", a)), arrow::float64()));
      ARROW_ASSIGN_OR_RAISE(auto count, cp::Cast(*g->GetColumnByName(fmt::format("__c{}", a)), arrow::float64()));
      ARROW_ASSIGN_OR_RAISE(auto mean, cp::CallFunction("divide", {sum, count}));
      fields.push_back(arrow::field(fmt::format("__a{}", a), arrow::float64()));
      columns.push_back(mean.make_array());
    }
    g = arrow::RecordBatch::Make(arrow::schema(fields), g->num_rows(), columns);
  } else {
    std::vector<arrow::FieldRef> keys = {arrow::FieldRef("__ws")};
    if (session) keys.emplace_back("__we");  // one end per session start and keys
    for (size_t k = 0; k < agg_.key_inputs.size(); ++k) {
      if (k != w.key_index) keys.emplace_back(fmt::format("__k{}", k));
    }
    ARROW_ASSIGN_OR_RAISE(auto closed_table, arrow::Table::FromRecordBatches(closed->schema(), {closed}));
    arrow::acero::Declaration declaration = arrow::acero::Declaration::Sequence({
        {"table_source", arrow::acero::TableSourceNodeOptions(closed_table)},
        {"aggregate", arrow::acero::AggregateNodeOptions(acero_aggregates(agg_, true), keys)},
    });
    ARROW_ASSIGN_OR_RAISE(auto grouped_table, arrow::acero::DeclarationToTable(std::move(declaration), /*use_threads=*/false));
    ARROW_ASSIGN_OR_RAISE(g, grouped_table->CombineChunksToBatch());
  }
  if (!g) return arrow::RecordBatch::MakeEmpty(output_schema_);

  arrow::ArrayVector ordered;
  for (int f = 0; f < agg_.grouped_schema->num_fields(); ++f) {
    const auto& field = agg_.grouped_schema->field(f);
    std::shared_ptr<arrow::Array> c;
    if (f == static_cast<int>(w.key_index)) {
      auto ws = g->GetColumnByName("__ws");
      arrow::Datum we = session ? arrow::Datum(g->GetColumnByName("__we"))
                                : arrow::Datum();
      if (!session) {
        ARROW_ASSIGN_OR_RAISE(we, cp::CallFunction("add", {ws, arrow::Datum(w.size_micros)}));
      }
      const auto& struct_type = static_cast<const arrow::StructType&>(*window_type_);
      auto ts_type = struct_type.field(0)->type();
      auto to_ts = [&](const std::shared_ptr<arrow::Array>& micros) -> arrow::Result<std::shared_ptr<arrow::Array>> {
        ARROW_ASSIGN_OR_RAISE(auto as_us, micros->View(arrow::timestamp(arrow::TimeUnit::MICRO)));
        if (as_us->type()->Equals(*ts_type)) return as_us;
        return cp::Cast(*as_us, ts_type);
      };
      ARROW_ASSIGN_OR_RAISE(auto start, to_ts(ws));
      ARROW_ASSIGN_OR_RAISE(auto end, to_ts(we.make_array()));
      ARROW_ASSIGN_OR_RAISE(c, arrow::StructArray::Make({start, end}, struct_type.fields()));
    } else {
      c = g->GetColumnByName(field->name());
      if (!c) return invalid("window aggregation lost column {}", field->name());
      if (!c->type()->Equals(*field->type())) {
        ARROW_ASSIGN_OR_RAISE(c, cp::Cast(*c, field->type()));
      }
    }
    ordered.push_back(std::move(c));
  }
  auto grouped = arrow::RecordBatch::Make(agg_.grouped_schema, g->num_rows(), ordered);
  if (agg_.having) {
    ARROW_ASSIGN_OR_RAISE(auto mask, evaluate(*agg_.having, *grouped));
    ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(grouped, mask));
    grouped = filtered.record_batch();
  }
  arrow::ArrayVector outs;
  for (const auto& o : agg_.outputs) {
    ARROW_ASSIGN_OR_RAISE(auto c, evaluate(o, *grouped));
    outs.push_back(c);
  }
  return arrow::RecordBatch::Make(output_schema_, grouped->num_rows(), outs);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::close_sessions() {
  const int64_t gap = agg_.window->gap_micros;
  const int64_t watermark = state_.watermark;
  if (watermark == WindowState::kNoWatermark || min_open_end_ == INT64_MAX || min_open_end_ > watermark) return nullptr;
  ARROW_ASSIGN_OR_RAISE(auto buffered, take_buffer());
  const int64_t n = buffered->num_rows();
  min_open_end_ = INT64_MAX;
  if (n == 0) {
    ARROW_ASSIGN_OR_RAISE(state_.open_rows, arrow::Table::FromRecordBatches(buffer_schema_, {buffered}));
    return nullptr;
  }
  // Sessions from all buffered rows: sorted by keys and time, a new one where the keys change
  // or the time is `gap` or more past the session's last event.
  std::vector<cp::SortKey> sort_keys;
  for (const auto& k : session_keys_) sort_keys.emplace_back(k);
  sort_keys.emplace_back("__ws");
  ARROW_ASSIGN_OR_RAISE(auto order_d, cp::SortIndices(arrow::Datum(buffered), cp::SortOptions(sort_keys)));
  auto order = std::static_pointer_cast<arrow::UInt64Array>(order_d);
  ARROW_ASSIGN_OR_RAISE(auto sorted_d, cp::Take(arrow::Datum(buffered), arrow::Datum(order)));
  auto sorted = sorted_d.record_batch();
  std::vector<uint8_t> new_key;  // row r's keys differ from row r - 1's
  ARROW_RETURN_NOT_OK(mark_key_changes(*sorted, session_keys_, new_key));
  const auto& ts = static_cast<const arrow::Int64Array&>(*sorted->GetColumnByName("__ws"));
  arrow::Int64Builder start_b, end_b;
  ARROW_RETURN_NOT_OK(start_b.AppendEmptyValues(n));
  ARROW_RETURN_NOT_OK(end_b.AppendEmptyValues(n));
  ARROW_ASSIGN_OR_RAISE(auto start_a, start_b.Finish());
  ARROW_ASSIGN_OR_RAISE(auto end_a, end_b.Finish());
  auto* starts = start_a->data()->GetMutableValues<int64_t>(1);
  auto* ends = end_a->data()->GetMutableValues<int64_t>(1);
  for (int64_t r = 0; r < n;) {  // one session per iteration
    int64_t last = ts.Value(r);
    int64_t e = r + 1;
    while (e < n && !new_key[static_cast<size_t>(e)] && ts.Value(e) - last < gap) last = ts.Value(e++);
    for (int64_t x = r; x < e; ++x) {
      const auto row = static_cast<int64_t>(order->Value(x));
      starts[row] = ts.Value(r);
      ends[row] = last + gap;
    }
    r = e;
  }
  arrow::BooleanBuilder closed_b;
  ARROW_RETURN_NOT_OK(closed_b.Reserve(n));
  for (int64_t i = 0; i < n; ++i) {
    const bool closed = ends[i] <= watermark;
    closed_b.UnsafeAppend(closed);
    if (!closed) min_open_end_ = std::min(min_open_end_, ends[i]);
  }
  if (open_sessions_) {  // the summaries of the sessions that stay open
    const auto& sl = static_cast<const arrow::Int64Array&>(*open_sessions_->GetColumnByName("__sl"));
    arrow::BooleanBuilder open_b;
    ARROW_RETURN_NOT_OK(open_b.Reserve(sl.length()));
    for (int64_t i = 0; i < sl.length(); ++i) open_b.UnsafeAppend(sl.Value(i) + gap > watermark);
    ARROW_ASSIGN_OR_RAISE(auto open_sessions_mask, open_b.Finish());
    ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(open_sessions_, open_sessions_mask));
    open_sessions_ = kept.record_batch();
  }
  ARROW_ASSIGN_OR_RAISE(auto closed_mask, closed_b.Finish());
  ARROW_ASSIGN_OR_RAISE(auto open_mask, cp::Invert(closed_mask));
  ARROW_ASSIGN_OR_RAISE(auto open_d, cp::Filter(buffered, open_mask));
  ARROW_ASSIGN_OR_RAISE(state_.open_rows, arrow::Table::FromRecordBatches(buffer_schema_, {open_d.record_batch()}));
  // The closed rows, in arrival order, with __ws the session's start and __we its end.
  auto fields = buffered->schema()->fields();
  auto columns = buffered->columns();
  columns[0] = start_a;
  fields.push_back(arrow::field("__we", arrow::int64(), false));
  columns.push_back(end_a);
  auto with_sessions = arrow::RecordBatch::Make(arrow::schema(fields), n, columns);
  ARROW_ASSIGN_OR_RAISE(auto closed_d, cp::Filter(with_sessions, closed_mask));
  if (closed_d.record_batch()->num_rows() == 0) return nullptr;
  return closed_d.record_batch();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::take_buffer() {
  std::vector<std::shared_ptr<arrow::Table>> parts;
  if (state_.open_rows) parts.push_back(state_.open_rows);
  if (!pending_.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto t, arrow::Table::FromRecordBatches(buffer_schema_, pending_));
    parts.push_back(t);
  }
  pending_.clear();
  pending_rows_ = 0;
  if (parts.empty()) return arrow::RecordBatch::MakeEmpty(buffer_schema_);
  ARROW_ASSIGN_OR_RAISE(auto all, arrow::ConcatenateTables(parts));
  ARROW_ASSIGN_OR_RAISE(auto batch, all->CombineChunksToBatch());
  if (!batch) return arrow::RecordBatch::MakeEmpty(buffer_schema_);
  return batch;
}

namespace {

// Groups `input` by __ws and the keys (group_by.h), keeping arrival order.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> group(const std::shared_ptr<arrow::RecordBatch>& input,
                                                         const std::vector<cp::Aggregate>& aggregates,
                                                         const std::shared_ptr<arrow::Schema>& schema, size_t keys) {
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(input->schema(), {input}));
  return group_by(table, aggregates, schema, keys);
}

std::shared_ptr<cp::FunctionOptions> skip_nulls() {
  return std::make_shared<cp::ScalarAggregateOptions>(/*skip_nulls=*/true, /*min_count=*/1);
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::pre_aggregate(
    const std::shared_ptr<arrow::RecordBatch>& raw) const {
  std::vector<cp::Aggregate> aggregates;
  for (size_t a = 0; a < agg_.functions.size(); ++a) {
    const auto& f = agg_.functions[a];
    const auto in = fmt::format("__in{}", a);
    const auto out = fmt::format("__p{}", a);
    if (f == "hash_count_all") {
      aggregates.emplace_back("hash_count_all", nullptr, std::vector<arrow::FieldRef>{}, out);
    } else if (f == "hash_count") {
      aggregates.emplace_back("hash_count", std::make_shared<cp::CountOptions>(cp::CountOptions::ONLY_VALID),
                              arrow::FieldRef(in), out);
    } else if (f == "hash_mean") {
      aggregates.emplace_back("hash_sum", skip_nulls(), arrow::FieldRef(in), fmt::format("__s{}", a));
      aggregates.emplace_back("hash_count", std::make_shared<cp::CountOptions>(cp::CountOptions::ONLY_VALID),
                              arrow::FieldRef(in), fmt::format("__c{}", a));
    } else if (f == "hash_first" || f == "hash_last") {
      aggregates.emplace_back(f, nullptr, arrow::FieldRef(in), out);
    } else {
      aggregates.emplace_back(f, skip_nulls(), arrow::FieldRef(in), out);  // sum, min, max
    }
  }
  return group(raw, aggregates, buffer_schema_, agg_.key_inputs.size());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::merge(
    const std::shared_ptr<arrow::RecordBatch>& partials) const {
  std::vector<cp::Aggregate> aggregates = partial_merge_aggregates(agg_.functions);
  return group(partials, aggregates, buffer_schema_, agg_.key_inputs.size());
}

arrow::Status WindowAggregate::compact() {
  ARROW_ASSIGN_OR_RAISE(auto all, take_buffer());
  if (partial_) {
    ARROW_ASSIGN_OR_RAISE(all, merge(all));
  }
  ARROW_ASSIGN_OR_RAISE(state_.open_rows, arrow::Table::FromRecordBatches(buffer_schema_, {all}));
  return arrow::Status::OK();
}

arrow::Result<WindowState> WindowAggregate::state() const {
  WindowState out = state_;
  std::vector<std::shared_ptr<arrow::Table>> parts;
  if (state_.open_rows) parts.push_back(state_.open_rows);
  if (!pending_.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto t, arrow::Table::FromRecordBatches(buffer_schema_, pending_));
    parts.push_back(t);
  }
  if (parts.empty()) {
    ARROW_ASSIGN_OR_RAISE(out.open_rows, arrow::Table::MakeEmpty(buffer_schema_));
  } else {
    ARROW_ASSIGN_OR_RAISE(out.open_rows, arrow::ConcatenateTables(parts));
  }
  return out;
}

arrow::Status WindowAggregate::restore(WindowState state) {
  if (state.open_rows && !state.open_rows->schema()->Equals(*buffer_schema_, /*check_metadata=*/false)) {
    return invalid("the saved window state has columns {} but the query now needs {}; the query changed since the "
                   "state was saved: run a full refresh of the table (--full-refresh <table>)",
                   state.open_rows->schema()->ToString(), buffer_schema_->ToString());
  }
  state_ = std::move(state);
  pending_.clear();
  pending_rows_ = 0;
  min_open_start_ = state_.open_rows && state_.open_rows->num_rows() ? min_window_start(*state_.open_rows) : INT64_MAX;
  open_sessions_.reset();
  min_open_end_ = INT64_MAX;
  if (agg_.window->gap_micros > 0 && state_.open_rows && state_.open_rows->num_rows() > 0) {
    ARROW_ASSIGN_OR_RAISE(auto rows, state_.open_rows->CombineChunksToBatch());
    ARROW_RETURN_NOT_OK(add_to_sessions(*rows));
  }
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, max] : state_.input_max_event_time) last_seen_[id] = now;
  return arrow::Status::OK();
}

int64_t WindowAggregate::state_rows() const {
  int64_t rows = state_.open_rows ? state_.open_rows->num_rows() : 0;
  for (const auto& b : pending_) rows += b->num_rows();
  return rows;
}

int64_t WindowAggregate::state_bytes() const {
  int64_t bytes = 0;
  auto add = [&](const arrow::ArrayData& d) {
    for (const auto& buffer : d.buffers) {
      if (buffer) bytes += buffer->size();
    }
  };
  if (state_.open_rows) {
    for (const auto& column : state_.open_rows->columns()) {
      for (const auto& chunk : column->chunks()) add(*chunk->data());
    }
  }
  for (const auto& b : pending_) {
    for (const auto& column : b->columns()) add(*column->data());
  }
  return bytes;
}

}  // namespace sluice::exec
