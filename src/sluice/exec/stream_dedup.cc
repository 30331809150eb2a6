// Streaming dedup within the watermark: row hashes over Arrow buffers, a flat hash index,
// exact comparison on equal hashes, eviction behind the watermark.
#include "sluice/exec/stream_dedup.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/bit_util.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "sluice/common/status.h"
#include "sluice/exec/watermark.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {

constexpr uint64_t kNullHash = 0x9e3779b97f4a7c15ULL;

inline uint64_t mix(uint64_t x) {  // murmur3's finalizer
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline void combine(uint64_t& h, uint64_t v) { h = mix(h ^ (v + kNullHash + (h << 6) + (h >> 2))); }

template <typename OffsetType>
void hash_binary(const arrow::ArrayData& d, std::vector<uint64_t>& hashes) {
  const auto* offsets = d.GetValues<OffsetType>(1);
  const auto* data = d.buffers[2] ? reinterpret_cast<const char*>(d.buffers[2]->data()) : "";
  const std::hash<std::string_view> hash;
  for (int64_t i = 0; i < d.length; ++i) {
    if (d.IsNull(i)) {
      combine(hashes[i], kNullHash);
    } else {
      combine(hashes[i], hash(std::string_view(data + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]))));
    }
  }
}

bool hashable(const arrow::DataType& type) {
  if (type.id() == arrow::Type::STRUCT) {
    for (const auto& f : type.fields()) {
      if (!hashable(*f->type())) return false;
    }
    return true;
  }
  return type.id() == arrow::Type::BOOL || arrow::is_base_binary_like(type.id()) ||
         (arrow::is_fixed_width(type.id()) && type.id() != arrow::Type::DICTIONARY &&
          type.id() != arrow::Type::EXTENSION);
}

const arrow::EqualOptions& equal_options() {
  static const arrow::EqualOptions options = arrow::EqualOptions::Defaults().nans_equal(true);
  return options;
}

bool rows_equal(const std::vector<const arrow::Array*>& a, int64_t i, const std::vector<const arrow::Array*>& b,
                int64_t j) {
  for (size_t c = 0; c < a.size(); ++c) {
    if (!a[c]->RangeEquals(i, i + 1, j, *b[c], equal_options())) return false;
  }
  return true;
}

std::vector<const arrow::Array*> column_pointers(const arrow::RecordBatch& batch, const std::vector<int>& columns) {
  std::vector<const arrow::Array*> out;
  for (int c : columns) out.push_back(batch.column(c).get());
  return out;
}

}  // namespace

arrow::Status hash_rows(const arrow::Array& column, std::vector<uint64_t>& hashes) {
  const arrow::ArrayData& d = *column.data();
  const auto id = column.type_id();
  if (id == arrow::Type::STRUCT) {
    const auto& s = static_cast<const arrow::StructArray&>(column);
    for (int f = 0; f < s.num_fields(); ++f) ARROW_RETURN_NOT_OK(hash_rows(*s.field(f), hashes));
    if (s.null_count() > 0) {
      for (int64_t i = 0; i < d.length; ++i) combine(hashes[i], s.IsNull(i) ? kNullHash : 1);
    }
    return arrow::Status::OK();
  }
  switch (id) {
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      hash_binary<int32_t>(d, hashes);
      return arrow::Status::OK();
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      hash_binary<int64_t>(d, hashes);
      return arrow::Status::OK();
    case arrow::Type::BOOL: {
      const uint8_t* bits = d.buffers[1]->data();
      for (int64_t i = 0; i < d.length; ++i) {
        combine(hashes[i], d.IsNull(i) ? kNullHash : arrow::bit_util::GetBit(bits, d.offset + i));
      }
      return arrow::Status::OK();
    }
    case arrow::Type::NA:
      for (int64_t i = 0; i < d.length; ++i) combine(hashes[i], kNullHash);
      return arrow::Status::OK();
    default:
      break;
  }
  if (!arrow::is_fixed_width(id) || id == arrow::Type::DICTIONARY || id == arrow::Type::EXTENSION) {
    return arrow::Status::NotImplemented(
        fmt::format("SELECT DISTINCT over a stream cannot compare {} columns yet", column.type()->ToString()));
  }
  const int width = column.type()->byte_width();
  const uint8_t* values = d.buffers[1]->data() + d.offset * width;
  const std::hash<std::string_view> hash;
  for (int64_t i = 0; i < d.length; ++i) {
    if (d.IsNull(i)) {
      combine(hashes[i], kNullHash);
      continue;
    }
    const uint8_t* v = values + i * width;
    uint64_t x = 0;
    if (width <= 8) {
      std::memcpy(&x, v, static_cast<size_t>(width));
    } else {
      x = hash(std::string_view(reinterpret_cast<const char*>(v), static_cast<size_t>(width)));
    }
    combine(hashes[i], x);
  }
  return arrow::Status::OK();
}

void KeyIndex::reserve(size_t more) {
  size_t capacity = slots_.empty() ? 1024 : slots_.size();
  while ((size_ + more) * 2 > capacity) capacity *= 2;
  if (capacity == slots_.size()) return;
  std::vector<Entry> old = std::move(slots_);
  slots_.assign(capacity, Entry{});
  size_ = 0;
  for (const auto& e : old) {
    if (e.chunk != kEmpty) insert(e.hash, e.chunk, e.row);
  }
}

size_t KeyIndex::insert(uint64_t hash, uint32_t chunk, uint32_t row) {
  const size_t mask = slots_.size() - 1;
  size_t s = hash & mask;
  while (slots_[s].chunk != kEmpty) s = (s + 1) & mask;
  slots_[s] = Entry{hash, chunk, row};
  ++size_;
  return s;
}

arrow::Result<std::unique_ptr<StreamDedup>> StreamDedup::make(const SelectPlan& plan, WatermarkPolicy policy) {
  if (!plan.distinct() || plan.aggregates()) return arrow::Status::Invalid("streaming dedup needs SELECT DISTINCT without GROUP BY");
  if (!plan.watermark()) return arrow::Status::Invalid("SELECT DISTINCT over a stream needs WATERMARK ts DELAY OF INTERVAL ...");
  std::unique_ptr<StreamDedup> op(new StreamDedup());
  op->schema_ = plan.output_schema();
  op->policy_ = policy;
  op->event_time_index_ = op->schema_->GetFieldIndex(plan.watermark()->column);
  if (op->event_time_index_ < 0) {
    return invalid("SELECT DISTINCT over a stream drops a row as a duplicate only while its event time is not behind "
                   "the watermark: select the WATERMARK column '{}'", plan.watermark()->column);
  }
  for (const auto& name : plan.distinct_on()) op->key_columns_.push_back(op->schema_->GetFieldIndex(name));
  if (op->key_columns_.empty()) {
    for (int c = 0; c < op->schema_->num_fields(); ++c) op->key_columns_.push_back(c);
  } else {
    op->horizon_micros_ = policy.delay_micros;  // Spark's dropDuplicatesWithinWatermark
  }
  for (int c : op->key_columns_) {
    if (c < 0) return invalid("DISTINCT ON column is not among the query's columns");
    const auto& f = op->schema_->field(c);
    if (!hashable(*f->type())) {
      return arrow::Status::NotImplemented(fmt::format(
          "SELECT DISTINCT over a stream cannot compare column '{}' of type {} yet (lists and maps): select "
          "scalar columns or structs of them", f->name(), f->type()->ToString()));
    }
  }
  return op;
}

int64_t StreamDedup::Chunk::behind(int64_t watermark, int64_t horizon) const {
  if (watermark == WindowState::kNoWatermark) return 0;
  return std::lower_bound(event_times.begin(), event_times.end(), watermark - horizon) - event_times.begin();
}

int64_t StreamDedup::rows_behind() const {
  int64_t rows = 0;
  for (const auto& c : chunks_) rows += c.behind(state_.watermark, horizon_micros_);
  return rows;
}

arrow::Status StreamDedup::add_chunk(const std::shared_ptr<arrow::RecordBatch>& rows, const std::vector<uint64_t>& hashes,
                                     const std::vector<size_t>* slots) {
  ARROW_ASSIGN_OR_RAISE(auto order_d, cp::SortIndices(*rows->column(event_time_index_)));
  const auto& order = static_cast<const arrow::UInt64Array&>(*order_d);
  ARROW_ASSIGN_OR_RAISE(auto sorted, cp::Take(arrow::Datum(rows), arrow::Datum(order_d)));
  Chunk chunk;
  chunk.rows = sorted.record_batch();
  chunk.columns = column_pointers(*chunk.rows, key_columns_);
  ARROW_ASSIGN_OR_RAISE(auto ts, event_time_micros(chunk.rows->column(event_time_index_)));
  chunk.event_times.assign(ts->raw_values(), ts->raw_values() + ts->length());
  const auto id = static_cast<uint32_t>(chunks_.size());
  const int64_t n = chunk.rows->num_rows();
  chunk.hashes.resize(static_cast<size_t>(n));
  if (!slots) index_.reserve(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) {
    const auto k = static_cast<size_t>(order.Value(p));
    chunk.hashes[static_cast<size_t>(p)] = hashes[k];
    if (slots) {
      auto& e = index_.at((*slots)[k]);
      e.chunk = id;
      e.row = static_cast<uint32_t>(p);
    } else {
      index_.insert(hashes[k], id, static_cast<uint32_t>(p));
    }
  }
  chunks_.push_back(std::move(chunk));
  return arrow::Status::OK();
}

arrow::Result<StreamDedup::Result> StreamDedup::consume(const arrow::RecordBatch& rows,
                                                        const std::vector<std::string>& input_ids,
                                                        const std::vector<int32_t>& input_of_row,
                                                        std::chrono::steady_clock::time_point now) {
  Result result;
  const int64_t n = rows.num_rows();
  if (static_cast<int64_t>(input_of_row.size()) != n) return arrow::Status::Invalid("dedup: one input id per row expected");
  if (!rows.schema()->Equals(*schema_, /*check_metadata=*/false)) {
    return invalid("dedup: rows {} do not match the query's columns {}", rows.schema()->ToString(), schema_->ToString());
  }
  ARROW_ASSIGN_OR_RAISE(auto event_time, event_time_micros(rows.column(event_time_index_)));
  std::vector<uint64_t> hashes(static_cast<size_t>(n), 0);
  for (int c : key_columns_) ARROW_RETURN_NOT_OK(hash_rows(*rows.column(c), hashes));
  const auto current = column_pointers(rows, key_columns_);
  constexpr uint32_t kCurrent = KeyIndex::kEmpty - 1;  // a row of this batch
  index_.reserve(static_cast<size_t>(n));

  WatermarkAdvance advance(state_, last_seen_, policy_, input_ids, awaited_, now);
  arrow::Int64Builder late, late_wm, kept;
  std::vector<size_t> kept_slots;
  std::vector<uint64_t> kept_hashes;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t watermark = advance.watermark();
    const bool valid = event_time->IsValid(i);
    const int64_t ts = valid ? event_time->Value(i) : 0;
    const bool is_late = !valid || (watermark != WindowState::kNoWatermark && ts < watermark);
    if (valid) advance.observe(input_of_row[i], ts);  // a late row still shows its input has data
    if (is_late) {
      ARROW_RETURN_NOT_OK(late.Append(i));
      ARROW_RETURN_NOT_OK(late_wm.Append(watermark));
      continue;
    }
    const uint64_t h = hashes[i];
    // A seen row counts while it is not behind the horizon (evicted lazily, so check).
    const int64_t live_from = watermark == WindowState::kNoWatermark ? INT64_MIN : watermark - horizon_micros_;
    const int64_t seen = index_.find(h, [&](uint32_t chunk, uint32_t row) {
      if (chunk == kCurrent) return event_time->Value(row) >= live_from && rows_equal(current, i, current, row);
      return chunks_[chunk].event_times[row] >= live_from && rows_equal(current, i, chunks_[chunk].columns, row);
    });
    if (seen >= 0) {
      ++duplicates_;
      continue;
    }
    kept_slots.push_back(index_.insert(h, kCurrent, static_cast<uint32_t>(i)));
    kept_hashes.push_back(h);
    ARROW_RETURN_NOT_OK(kept.Append(i));
  }
  advance.finish();
  ARROW_ASSIGN_OR_RAISE(result.late_rows, late.Finish());
  ARROW_ASSIGN_OR_RAISE(result.late_watermarks, late_wm.Finish());
  ARROW_ASSIGN_OR_RAISE(auto kept_indices, kept.Finish());
  if (kept_indices->length() == 0) {
    ARROW_ASSIGN_OR_RAISE(result.output, arrow::RecordBatch::MakeEmpty(schema_));
  } else {
    ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(arrow::Datum(arrow::RecordBatch::Make(schema_, n, rows.columns())),
                                               arrow::Datum(kept_indices)));
    result.output = taken.record_batch();
    ARROW_RETURN_NOT_OK(add_chunk(result.output, kept_hashes, &kept_slots));
  }
  // Rows behind the watermark can never equal a live row (their event time differs), so they
  // may stay a while: evicted once they are half the rows (amortised O(1) per row).
  const int64_t behind = rows_behind();
  if (behind > 0 && behind * 2 >= stored_rows()) ARROW_RETURN_NOT_OK(evict());
  return result;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> StreamDedup::live_rows(std::vector<uint64_t>* hashes) const {
  arrow::Int64Builder keep;
  arrow::RecordBatchVector batches;
  int64_t base = 0;
  for (const auto& c : chunks_) {
    for (int64_t i = c.behind(state_.watermark, horizon_micros_); i < c.rows->num_rows(); ++i) {
      ARROW_RETURN_NOT_OK(keep.Append(base + i));
      if (hashes) hashes->push_back(c.hashes[static_cast<size_t>(i)]);
    }
    base += c.rows->num_rows();
    batches.push_back(c.rows);
  }
  if (batches.empty()) return arrow::RecordBatch::MakeEmpty(schema_);
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(schema_, batches));
  ARROW_ASSIGN_OR_RAISE(auto indices, keep.Finish());
  ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(arrow::Datum(table), arrow::Datum(indices)));
  ARROW_ASSIGN_OR_RAISE(auto batch, taken.table()->CombineChunksToBatch());
  if (!batch) return arrow::RecordBatch::MakeEmpty(schema_);
  return batch;
}

arrow::Status StreamDedup::evict() {
  std::vector<uint64_t> hashes;
  ARROW_ASSIGN_OR_RAISE(auto live, live_rows(&hashes));
  chunks_.clear();
  index_.clear();
  if (live->num_rows() == 0) return arrow::Status::OK();
  return add_chunk(live, hashes, nullptr);
}

arrow::Result<WindowState> StreamDedup::state() const {
  WindowState out = state_;
  ARROW_ASSIGN_OR_RAISE(auto live, live_rows(nullptr));
  ARROW_ASSIGN_OR_RAISE(out.open_rows, arrow::Table::FromRecordBatches(schema_, {live}));
  return out;
}

arrow::Status StreamDedup::restore(WindowState state) {
  if (state.open_rows && !state.open_rows->schema()->Equals(*schema_, /*check_metadata=*/false)) {
    return invalid("the saved dedup state has columns {} but the query now needs {}; the query changed since the "
                   "state was saved: run a full refresh of the table (--full-refresh <table>)",
                   state.open_rows->schema()->ToString(), schema_->ToString());
  }
  std::shared_ptr<arrow::Table> rows = std::move(state.open_rows);
  state_ = std::move(state);
  chunks_.clear();
  index_.clear();
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, max] : state_.input_max_event_time) last_seen_[id] = now;
  if (!rows || rows->num_rows() == 0) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto batch, rows->CombineChunksToBatch());
  std::vector<uint64_t> hashes(static_cast<size_t>(batch->num_rows()), 0);
  for (int c : key_columns_) ARROW_RETURN_NOT_OK(hash_rows(*batch->column(c), hashes));
  return add_chunk(batch, hashes, nullptr);
}

int64_t StreamDedup::stored_rows() const {
  int64_t rows = 0;
  for (const auto& c : chunks_) rows += c.rows->num_rows();
  return rows;
}

int64_t StreamDedup::state_rows() const { return stored_rows() - rows_behind(); }

int64_t StreamDedup::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& c : chunks_) {
    bytes += static_cast<int64_t>(c.hashes.size() * sizeof(uint64_t));
    for (const auto& column : c.rows->columns()) {
      for (const auto& buffer : column->data()->buffers) {
        if (buffer) bytes += buffer->size();
      }
    }
  }
  return bytes + static_cast<int64_t>(index_.size() * sizeof(KeyIndex::Entry));
}

}  // namespace sluice::exec
