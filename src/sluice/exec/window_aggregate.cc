// Event-time windowed aggregation: window assignment, watermark, late rows, emission.
#include "sluice/exec/window_aggregate.h"

#include "sluice/exec/partial_groups.h"

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "sluice/common/status.h"
#include "sluice/exec/watermark.h"

// GCC 12 reports a false maybe-uninitialized in arrow::FieldRef's std::variant when SortKeys
// are built here (inlining-dependent, like GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

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
    const auto ne_array = ne_d.make_array();  // owns the array `ne` refers to
    const auto& ne = static_cast<const arrow::BooleanArray&>(*ne_array);
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
    if (!PartialGroups::supports(f, in_type)) {
      op->partial_ = false;  // count DISTINCT, stddev, decimals: keep the rows
      continue;
    }
    auto type = PartialGroups::partial_type(f, in_type);
    if (f == "hash_mean") {
      partial.push_back(arrow::field(fmt::format("__s{}", a), type));
      partial.push_back(arrow::field(fmt::format("__c{}", a), arrow::int64()));
    } else {
      partial.push_back(arrow::field(fmt::format("__p{}", a), type));
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

  WatermarkAdvance advance(state_, last_seen_, policy_, input_ids, awaited_, now);

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

  // The assigned (row, window) pairs: into each window's hash table, or buffered as rows.
  ARROW_ASSIGN_OR_RAISE(auto take_indices, take.Finish());
  ARROW_ASSIGN_OR_RAISE(auto window_starts, starts.Finish());
  if (partial_) {
    ARROW_RETURN_NOT_OK(add_partials(rows, static_cast<const arrow::Int64Array&>(*take_indices),
                                     static_cast<const arrow::Int64Array&>(*window_starts)));
  } else if (take_indices->length() > 0) {
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
    if (session) ARROW_RETURN_NOT_OK(add_to_sessions(*assigned));
    pending_.push_back(std::move(assigned));
  }
  ARROW_ASSIGN_OR_RAISE(result.output, emit_closed());
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
  if (partial_) {  // closed windows leave with their hash tables, one row per (window, keys)
    std::vector<std::shared_ptr<arrow::RecordBatch>> closed;
    while (!windows_.empty() && windows_.begin()->first <= watermark - w.size_micros) {
      ARROW_ASSIGN_OR_RAISE(auto batch, window_rows(windows_.begin()->first, *windows_.begin()->second));
      closed.push_back(std::move(batch));
      windows_.erase(windows_.begin());
    }
    min_open_start_ = windows_.empty() ? INT64_MAX : windows_.begin()->first;
    ARROW_ASSIGN_OR_RAISE(auto all, arrow::Table::FromRecordBatches(buffer_schema_, closed));
    ARROW_ASSIGN_OR_RAISE(auto batch, all->CombineChunksToBatch());
    return finalize(batch);
  }
  // Split the buffer into closed and open windows.
  ARROW_ASSIGN_OR_RAISE(auto buffered, take_buffer());
  ARROW_ASSIGN_OR_RAISE(auto closed_mask,
                        cp::CallFunction("less_equal", {buffered->GetColumnByName("__ws"),
                                                        arrow::Datum(watermark - w.size_micros)}));
  ARROW_ASSIGN_OR_RAISE(auto open_mask, cp::Invert(closed_mask));
  ARROW_ASSIGN_OR_RAISE(auto closed_d, cp::Filter(buffered, closed_mask));
  ARROW_ASSIGN_OR_RAISE(auto open_d, cp::Filter(buffered, open_mask));
  ARROW_ASSIGN_OR_RAISE(state_.open_rows, arrow::Table::FromRecordBatches(buffer_schema_, {open_d.record_batch()}));
  min_open_start_ = min_window_start(*state_.open_rows);
  return finalize(closed_d.record_batch());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::finalize(
    const std::shared_ptr<arrow::RecordBatch>& closed) {
  const auto& w = *agg_.window;
  const bool session = w.gap_micros > 0;
  // Aggregate the closed windows (arrival order kept: first/last).
  std::shared_ptr<arrow::RecordBatch> g;
  if (partial_) {  // one row of partials per (window, keys) already
    g = closed;
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
    // The list aggregates (collect_list, max_by, ...) group the buffered rows' numbers.
    bool lists = false;
    for (size_t a = 0; a < agg_.functions.size(); ++a) lists = lists || list_aggregate(agg_, a);
    std::shared_ptr<arrow::RecordBatch> numbered = closed;
    if (lists) {
      arrow::Int64Builder rows;
      ARROW_RETURN_NOT_OK(rows.Reserve(closed->num_rows()));
      for (int64_t r = 0; r < closed->num_rows(); ++r) rows.UnsafeAppend(r);
      ARROW_ASSIGN_OR_RAISE(auto row_numbers, rows.Finish());
      ARROW_ASSIGN_OR_RAISE(numbered, closed->AddColumn(closed->num_columns(), "__row", row_numbers));
    }
    ARROW_ASSIGN_OR_RAISE(auto closed_table, arrow::Table::FromRecordBatches(numbered->schema(), {numbered}));
    arrow::acero::Declaration declaration = arrow::acero::Declaration::Sequence({
        {"table_source", arrow::acero::TableSourceNodeOptions(closed_table)},
        {"aggregate", arrow::acero::AggregateNodeOptions(acero_aggregates(agg_, true), keys)},
    });
    ARROW_ASSIGN_OR_RAISE(auto grouped_table, arrow::acero::DeclarationToTable(std::move(declaration), /*use_threads=*/false));
    ARROW_ASSIGN_OR_RAISE(g, grouped_table->CombineChunksToBatch());
    for (size_t a = 0; g && a < agg_.functions.size(); ++a) {
      const ListAggregate* list = list_aggregate(agg_, a);
      if (!list) continue;
      const auto name = fmt::format("__a{}", a);
      const int at = g->schema()->GetFieldIndex(name);
      auto input = closed->GetColumnByName(fmt::format("__in{}", a));
      if (at < 0 || !input) return invalid("window aggregation lost column {}", name);
      const auto& field = agg_.grouped_schema->GetFieldByName(name);
      std::shared_ptr<arrow::Array> finished;
      if (g->num_rows() == 0) {
        ARROW_ASSIGN_OR_RAISE(finished, arrow::MakeEmptyArray(field->type()));
      } else {
        ARROW_ASSIGN_OR_RAISE(finished, finish_list_aggregate(*list, *g->column(at), input, field->type()));
      }
      ARROW_ASSIGN_OR_RAISE(g, g->SetColumn(at, field, std::move(finished)));
    }
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
  if (parts.empty()) return arrow::RecordBatch::MakeEmpty(buffer_schema_);
  ARROW_ASSIGN_OR_RAISE(auto all, arrow::ConcatenateTables(parts));
  ARROW_ASSIGN_OR_RAISE(auto batch, all->CombineChunksToBatch());
  if (!batch) return arrow::RecordBatch::MakeEmpty(buffer_schema_);
  return batch;
}

namespace {

// The (row, window start) pairs of a batch split by window, in arrival order within each; rows
// are null when the pairs are the rows 0..n-1 of a single window (nothing to take).
struct WindowRows {
  int64_t start;
  std::shared_ptr<arrow::Int64Array> rows;
};

arrow::Result<std::vector<WindowRows>> split_by_window(const arrow::Int64Array& rows, const arrow::Int64Array& starts,
                                                       int64_t batch_rows) {
  const int64_t m = rows.length();
  std::vector<WindowRows> out;
  if (m == 0) return out;
  const int64_t* r = rows.raw_values();
  const int64_t* ws = starts.raw_values();
  bool one_window = true;
  for (int64_t i = 1; i < m && one_window; ++i) one_window = ws[i] == ws[0];
  if (one_window) {
    const bool all_rows = m == batch_rows;  // pairs come in row order, one per row
    out.push_back({ws[0], all_rows ? nullptr : std::make_shared<arrow::Int64Array>(rows.data())});
    return out;
  }
  // Consecutive pairs mostly share a window (tumbling) or cycle through a few (sliding): the
  // last one hit first, else a hash look-up, so many windows per row stay linear.
  std::vector<std::vector<int64_t>> per_window;
  std::vector<int64_t> window_starts;
  std::unordered_map<int64_t, size_t> index_of;
  size_t hit = 0;
  for (int64_t i = 0; i < m; ++i) {
    if (window_starts.empty() || window_starts[hit] != ws[i]) {
      auto [it, added] = index_of.try_emplace(ws[i], window_starts.size());
      if (added) {
        window_starts.push_back(ws[i]);
        per_window.emplace_back();
      }
      hit = it->second;
    }
    per_window[hit].push_back(r[i]);
  }
  for (size_t w = 0; w < window_starts.size(); ++w) {
    const auto n = static_cast<int64_t>(per_window[w].size());
    out.push_back({window_starts[w], std::make_shared<arrow::Int64Array>(n, arrow::Buffer::FromVector(std::move(per_window[w])))});
  }
  return out;
}

arrow::Result<arrow::ArrayVector> take_all(const arrow::ArrayVector& columns, const std::shared_ptr<arrow::Int64Array>& rows) {
  if (!rows) return columns;
  arrow::ArrayVector out;
  for (const auto& c : columns) {
    if (!c) {
      out.push_back(nullptr);
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(*c, *rows));
    out.push_back(std::move(taken));
  }
  return out;
}

}  // namespace

arrow::Result<PartialGroups*> WindowAggregate::window_groups(int64_t start) {
  auto it = windows_.find(start);
  if (it != windows_.end()) return it->second.get();
  std::vector<std::shared_ptr<arrow::DataType>> key_types, input_types;
  for (size_t k = 0; k < agg_.key_inputs.size(); ++k) {
    if (k != agg_.window->key_index) key_types.push_back(agg_.key_inputs[k].type);
  }
  for (const auto& in : agg_.aggregate_inputs) input_types.push_back(in.type);
  ARROW_ASSIGN_OR_RAISE(auto groups, PartialGroups::make(key_types, agg_.functions, input_types));
  return windows_.emplace(start, std::move(groups)).first->second.get();
}

arrow::Status WindowAggregate::add_partials(const arrow::RecordBatch& rows, const arrow::Int64Array& take,
                                            const arrow::Int64Array& starts) {
  if (take.length() == 0) return arrow::Status::OK();
  // Keys and inputs are evaluated once per batch, then taken per window.
  auto evaluated = [&](const BoundExpression& e) -> arrow::Result<std::shared_ptr<arrow::Array>> {
    ARROW_ASSIGN_OR_RAISE(auto c, evaluate(e, rows));
    if (c->type()->Equals(*e.type)) return c;
    return cp::Cast(*c, e.type);
  };
  arrow::ArrayVector keys, inputs;
  for (size_t k = 0; k < agg_.key_inputs.size(); ++k) {
    if (k == agg_.window->key_index) continue;
    ARROW_ASSIGN_OR_RAISE(auto c, evaluated(agg_.key_inputs[k]));
    keys.push_back(std::move(c));
  }
  for (size_t a = 0; a < agg_.functions.size(); ++a) {
    if (agg_.functions[a] == "hash_count_all") {
      inputs.push_back(nullptr);
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto c, evaluated(agg_.aggregate_inputs[a]));
    inputs.push_back(std::move(c));
  }
  ARROW_ASSIGN_OR_RAISE(auto split, split_by_window(take, starts, rows.num_rows()));
  for (const auto& part : split) {
    ARROW_ASSIGN_OR_RAISE(auto* groups, window_groups(part.start));
    ARROW_ASSIGN_OR_RAISE(auto part_keys, take_all(keys, part.rows));
    ARROW_ASSIGN_OR_RAISE(auto part_inputs, take_all(inputs, part.rows));
    ARROW_RETURN_NOT_OK(groups->consume(part_keys, part_inputs, part.rows ? part.rows->length() : rows.num_rows()));
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WindowAggregate::window_rows(int64_t start,
                                                                                const PartialGroups& groups) const {
  ARROW_ASSIGN_OR_RAISE(auto columns, groups.finish());
  const int64_t n = groups.num_groups();
  ARROW_ASSIGN_OR_RAISE(auto ws, arrow::MakeArrayFromScalar(arrow::Int64Scalar(start), n));
  columns.insert(columns.begin(), ws);
  return arrow::RecordBatch::Make(buffer_schema_, n, std::move(columns));
}

arrow::Result<WindowState> WindowAggregate::state() const {
  WindowState out = state_;
  std::vector<std::shared_ptr<arrow::Table>> parts;
  if (partial_) {
    for (const auto& [start, groups] : windows_) {
      ARROW_ASSIGN_OR_RAISE(auto batch, window_rows(start, *groups));
      ARROW_ASSIGN_OR_RAISE(auto t, arrow::Table::FromRecordBatches(buffer_schema_, {batch}));
      parts.push_back(std::move(t));
    }
  }
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
  windows_.clear();
  min_open_start_ = state_.open_rows && state_.open_rows->num_rows() ? min_window_start(*state_.open_rows) : INT64_MAX;
  if (partial_ && state_.open_rows) {  // partials back into each window's hash table
    ARROW_ASSIGN_OR_RAISE(auto saved, state_.open_rows->CombineChunksToBatch());
    state_.open_rows.reset();
    const auto keys = static_cast<int64_t>(agg_.key_inputs.size()) - 1;  // all but the window
    if (saved && saved->num_rows() > 0) {
      const auto& ws = static_cast<const arrow::Int64Array&>(*saved->column(0));
      arrow::Int64Builder all;
      ARROW_RETURN_NOT_OK(all.Reserve(saved->num_rows()));
      for (int64_t i = 0; i < saved->num_rows(); ++i) all.UnsafeAppend(i);
      ARROW_ASSIGN_OR_RAISE(auto rows, all.Finish());
      ARROW_ASSIGN_OR_RAISE(auto split, split_by_window(static_cast<const arrow::Int64Array&>(*rows), ws, saved->num_rows()));
      const auto& columns = saved->columns();
      const arrow::ArrayVector key_columns(columns.begin() + 1, columns.begin() + 1 + keys);
      const arrow::ArrayVector partial_columns(columns.begin() + 1 + keys, columns.end());
      for (const auto& part : split) {
        ARROW_ASSIGN_OR_RAISE(auto* groups, window_groups(part.start));
        ARROW_ASSIGN_OR_RAISE(auto part_keys, take_all(key_columns, part.rows));
        ARROW_ASSIGN_OR_RAISE(auto part_partials, take_all(partial_columns, part.rows));
        ARROW_RETURN_NOT_OK(groups->merge(part_keys, part_partials, part.rows ? part.rows->length() : saved->num_rows()));
      }
    }
  }
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
  for (const auto& [start, groups] : windows_) rows += groups->num_groups();
  for (const auto& b : pending_) rows += b->num_rows();
  return rows;
}

int64_t WindowAggregate::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& [start, groups] : windows_) bytes += groups->bytes();
  // Every buffer of the rows kept, children included (a struct's or list's values: max_by's
  // (value, ordering) pairs, collect_list over arrays).
  auto add = [&](const arrow::ArrayData& d) { bytes += arrow::util::TotalBufferSize(d); };
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
