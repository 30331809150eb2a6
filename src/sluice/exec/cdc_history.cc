// APPLY CHANGES into an SCD type 2 target: histories replayed with the new changes (cdc_history.h).
#include "sluice/exec/cdc_history.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "sluice/common/status.h"
#include "sluice/exec/cdc_values.h"

namespace sluice::exec {

namespace {

constexpr const char* kTombstoneSequence = "__sequence";
constexpr const char* kTombstoneDeletedAt = "__deleted_at_ms";

// The tombstones after a batch: the kept rows of the old state, then the new ones (key rows of
// `keys`, sequence rows of `sequence`, deleted now).
arrow::Result<std::shared_ptr<arrow::Table>> tombstone_state(
    const std::shared_ptr<arrow::Schema>& schema, const std::shared_ptr<arrow::RecordBatch>& old,
    const std::vector<int64_t>& kept, const arrow::ArrayVector& keys, const std::shared_ptr<arrow::Array>& sequence,
    const std::vector<int64_t>& key_rows, const std::vector<int64_t>& seq_rows, int64_t now_ms) {
  const size_t nk = keys.size();
  arrow::ArrayVector columns;
  for (size_t c = 0; c < nk + 2; ++c) {
    arrow::ArrayVector parts;
    if (old && !kept.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto taken, cdc_values::take(old->column(static_cast<int>(c)), kept));
      parts.push_back(std::move(taken));
    }
    if (c < nk) {
      ARROW_ASSIGN_OR_RAISE(auto taken, cdc_values::take(keys[c], key_rows));
      parts.push_back(std::move(taken));
    } else if (c == nk) {
      ARROW_ASSIGN_OR_RAISE(auto taken, cdc_values::take(sequence, seq_rows));
      parts.push_back(std::move(taken));
    } else {
      arrow::Int64Builder at;
      ARROW_RETURN_NOT_OK(at.AppendValues(std::vector<int64_t>(key_rows.size(), now_ms)));
      ARROW_ASSIGN_OR_RAISE(auto built, at.Finish());
      parts.push_back(std::move(built));
    }
    ARROW_ASSIGN_OR_RAISE(auto column, arrow::Concatenate(parts));
    columns.push_back(std::move(column));
  }
  return arrow::Table::Make(schema, columns, static_cast<int64_t>(kept.size() + key_rows.size()));
}

}  // namespace

arrow::Result<std::unique_ptr<CdcHistoryResolver>> CdcHistoryResolver::make(CdcHistorySpec spec,
                                                                            std::shared_ptr<arrow::Schema> source,
                                                                            std::shared_ptr<arrow::DataType> sequence) {
  std::unique_ptr<CdcHistoryResolver> r(new CdcHistoryResolver());
  arrow::FieldVector fields;
  for (const auto& c : spec.columns) {
    auto f = source->GetFieldByName(c);
    if (!f) return invalid("APPLY CHANGES: '{}' is not a column of the source", c);
    fields.push_back(f->WithNullable(true));
  }
  for (const auto& k : spec.keys) {
    if (std::find(spec.columns.begin(), spec.columns.end(), k) == spec.columns.end()) {
      return invalid("APPLY CHANGES: key '{}' is not a column of the target", k);
    }
  }
  for (const auto& c : spec.tracked) {
    if (std::find(spec.columns.begin(), spec.columns.end(), c) == spec.columns.end()) {
      return invalid("APPLY CHANGES: TRACK HISTORY ON names '{}', which is not a column of the target", c);
    }
  }
  if (spec.tracked.empty()) spec.tracked = spec.columns;
  arrow::FieldVector state_fields;
  for (const auto& k : spec.keys) state_fields.push_back(source->GetFieldByName(k)->WithNullable(true));
  state_fields.push_back(arrow::field(kTombstoneSequence, sequence));
  state_fields.push_back(arrow::field(kTombstoneDeletedAt, arrow::int64()));
  r->state_schema_ = arrow::schema(state_fields);
  fields.push_back(arrow::field(kStartAt, sequence));
  fields.push_back(arrow::field(kEndAt, sequence));
  fields.push_back(arrow::field(kActionColumn, arrow::int8()));
  r->spec_ = std::move(spec);
  r->changes_schema_ = arrow::schema(fields);
  return r;
}

arrow::Result<CdcOutcome> CdcHistoryResolver::resolve(const std::shared_ptr<arrow::Table>& target,
                                                      const CdcBatch& batch,
                                                      const std::shared_ptr<arrow::Table>& tombstones_in,
                                                      int64_t now_ms, int64_t gc_before_ms) const {
  if (tombstones_in && !tombstones_in->schema()->Equals(*state_schema_, /*check_metadata=*/false)) {
    return invalid("APPLY CHANGES: the saved state has the columns {} but SCD type 2 tombstones are {} (was the "
                   "target switched from SCD type 1, or its keys or SEQUENCE BY type changed?); run a full refresh "
                   "of the target",
                   tombstones_in->schema()->ToString(), state_schema_->ToString());
  }
  const auto& rows = *batch.rows;
  const int64_t nb = rows.num_rows();
  if (batch.sequence->null_count() > 0) {
    return invalid("APPLY CHANGES: {} change row(s) have a null SEQUENCE BY value, which cannot be ordered; filter "
                   "them out in the source (WHERE <sequence> IS NOT NULL)",
                   batch.sequence->null_count());
  }
  arrow::ArrayVector batch_keys;
  for (const auto& k : spec_.keys) batch_keys.push_back(rows.GetColumnByName(k));
  ARROW_ASSIGN_OR_RAISE(auto batch_codes, cdc_values::encode_keys(batch_keys, nb));
  const std::unordered_set<std::string> wanted(batch_codes.begin(), batch_codes.end());

  // The target's rows of the batch's keys: columns, __START_AT, __END_AT.
  std::vector<std::string> target_columns = spec_.columns;
  target_columns.push_back(kStartAt);
  target_columns.push_back(kEndAt);
  arrow::ArrayVector t;  // by target_columns
  int64_t nt = 0;
  if (target && target->num_rows() > 0) {
    ARROW_ASSIGN_OR_RAISE(auto all, target->CombineChunksToBatch());
    arrow::ArrayVector keys;
    for (const auto& k : spec_.keys) keys.push_back(all->GetColumnByName(k));
    ARROW_ASSIGN_OR_RAISE(auto codes, cdc_values::encode_keys(keys, all->num_rows()));
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < all->num_rows(); ++i) {
      if (wanted.count(codes[i])) keep.push_back(i);
    }
    nt = static_cast<int64_t>(keep.size());
    for (const auto& name : target_columns) {
      auto column = all->GetColumnByName(name);
      if (!column) return invalid("APPLY CHANGES: the SCD type 2 target has no column '{}'", name);
      ARROW_ASSIGN_OR_RAISE(auto taken, cdc_values::take(column, keep));
      t.push_back(std::move(taken));
    }
  }
  const size_t start_col = spec_.columns.size();
  const size_t end_col = start_col + 1;

  // Sequence values: the target's starts, its ends, then the batch's; ranked together.
  arrow::ArrayVector sequence_parts;
  if (nt > 0) {
    sequence_parts.push_back(t[start_col]);
    sequence_parts.push_back(t[end_col]);
  }
  sequence_parts.push_back(batch.sequence);
  // The tombstones (state): their keys' codes, sequence values (ranked with the rest) and times.
  std::shared_ptr<arrow::RecordBatch> ts;
  std::vector<std::string> ts_codes;
  int64_t ns = 0;
  if (tombstones_in && tombstones_in->num_rows() > 0) {
    ARROW_ASSIGN_OR_RAISE(ts, tombstones_in->CombineChunksToBatch());
    ns = ts->num_rows();
    arrow::ArrayVector ts_keys;  // in column order, as the key codes below
    for (const auto& c : spec_.columns) {
      if (std::find(spec_.keys.begin(), spec_.keys.end(), c) != spec_.keys.end()) {
        ts_keys.push_back(ts->GetColumnByName(c));
      }
    }
    ARROW_ASSIGN_OR_RAISE(ts_codes, cdc_values::encode_keys(ts_keys, ns));
    sequence_parts.push_back(ts->GetColumnByName(kTombstoneSequence));
  }
  ARROW_ASSIGN_OR_RAISE(auto sequence, arrow::Concatenate(sequence_parts));
  ARROW_ASSIGN_OR_RAISE(auto ranks, cdc_values::sequence_ranks(sequence));
  // Values: the target's rows, then the batch's.
  arrow::ArrayVector values, tracked, keys;
  for (size_t c = 0; c < spec_.columns.size(); ++c) {
    const auto& name = spec_.columns[c];
    arrow::ArrayVector parts;
    if (nt > 0) parts.push_back(t[c]);
    parts.push_back(rows.GetColumnByName(name));
    ARROW_ASSIGN_OR_RAISE(auto column, arrow::Concatenate(parts));
    if (std::find(spec_.tracked.begin(), spec_.tracked.end(), name) != spec_.tracked.end()) tracked.push_back(column);
    if (std::find(spec_.keys.begin(), spec_.keys.end(), name) != spec_.keys.end()) keys.push_back(column);
    values.push_back(std::move(column));
  }
  ARROW_ASSIGN_OR_RAISE(auto full_code, cdc_values::encode_keys(values, nt + nb));
  ARROW_ASSIGN_OR_RAISE(auto tracked_code, cdc_values::encode_keys(tracked, nt + nb));
  ARROW_ASSIGN_OR_RAISE(auto key_code, cdc_values::encode_keys(keys, nt + nb));

  struct Event {
    int64_t rank;
    int64_t seq_row;    // into `sequence`
    int64_t value_row;  // into `values`; -1 for a delete
    int64_t key_row;    // into `values` (a target or batch row), or -1 - the tombstone's row
  };
  struct Group {
    std::vector<Event> events;
    std::map<int64_t, int64_t> old_rows;  // start rank -> target row
  };
  std::unordered_map<std::string, size_t> group_of;
  std::vector<Group> groups;
  auto group = [&](int64_t value_row) -> Group& {
    auto [it, fresh] = group_of.emplace(key_code[value_row], groups.size());
    if (fresh) groups.emplace_back();
    return groups[it->second];
  };
  for (int64_t i = 0; i < nt; ++i) group(i).old_rows[ranks[i]] = i;
  for (int64_t i = 0; i < nt; ++i) {
    Group& g = group(i);
    g.events.push_back({ranks[i], i, i, i});
    // A closed version that no other version follows ended with a delete.
    if (!t[end_col]->IsNull(i) && !g.old_rows.count(ranks[nt + i])) {
      g.events.push_back({ranks[nt + i], nt + i, -1, i});
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    const bool del = cdc_values::flag(batch.is_delete, b);
    group(nt + b).events.push_back({ranks[2 * nt + b], 2 * nt + b, del ? -1 : nt + b, nt + b});
  }
  // Tombstones of the batch's keys join their replay; the others stay as they are (unless old).
  std::vector<int64_t> kept_tombstones;  // rows of `ts`
  const auto deleted_at = [&](int64_t row) {
    return static_cast<const arrow::Int64Array&>(*ts->GetColumnByName(kTombstoneDeletedAt)).Value(row);
  };
  for (int64_t s = 0; s < ns; ++s) {
    if (auto it = group_of.find(ts_codes[s]); it != group_of.end()) {
      groups[it->second].events.push_back({ranks[2 * nt + nb + s], 2 * nt + nb + s, -1, -1 - s});
    } else if (deleted_at(s) >= gc_before_ms) {
      kept_tombstones.push_back(s);
    }
  }
  std::vector<int64_t> new_tombstones;  // events' key rows (>= 0) with their seq rows
  std::vector<int64_t> new_tombstone_seq;

  CdcOutcome out;
  std::vector<int64_t> out_values, out_start, out_end;
  arrow::Int8Builder actions;
  for (auto& g : groups) {
    // The target's events come first, so a change as old as one already applied is a duplicate.
    // Then the tombstones: a change as old as a delete already applied is a duplicate too.
    const auto origin = [&](const Event& e) { return e.seq_row < 2 * nt ? 0 : e.seq_row >= 2 * nt + nb ? 1 : 2; };
    std::stable_sort(g.events.begin(), g.events.end(), [&](const Event& a, const Event& b) {
      return a.rank != b.rank ? a.rank < b.rank : origin(a) < origin(b);
    });
    struct Version {
      int64_t start_row, end_row, value_row;
    };
    std::vector<Version> versions;
    bool open = false;
    for (size_t e = 0; e < g.events.size(); ++e) {
      const Event& ev = g.events[e];
      if (e > 0 && g.events[e - 1].rank == ev.rank) {
        if (origin(ev) == 2) ++out.ignored;
        continue;
      }
      if (ev.value_row < 0) {
        if (open) {
          versions.back().end_row = ev.seq_row;
        } else if (ev.key_row >= 0) {  // closes nothing: remembered
          new_tombstones.push_back(ev.key_row);
          new_tombstone_seq.push_back(ev.seq_row);
        } else if (deleted_at(-1 - ev.key_row) >= gc_before_ms) {
          kept_tombstones.push_back(-1 - ev.key_row);
        }
        open = false;
        continue;
      }
      if (open && tracked_code[versions.back().value_row] == tracked_code[ev.value_row]) {
        versions.back().value_row = ev.value_row;  // an untracked column changed: in place
        continue;
      }
      if (open) versions.back().end_row = ev.seq_row;
      versions.push_back({ev.seq_row, -1, ev.value_row});
      open = true;
    }
    std::unordered_set<int64_t> kept_starts;
    for (const auto& v : versions) {
      const int64_t start_rank = ranks[v.start_row];
      kept_starts.insert(start_rank);
      auto old = g.old_rows.find(start_rank);
      if (old != g.old_rows.end()) {
        const int64_t i = old->second;
        const bool old_open = t[end_col]->IsNull(i);
        const bool same_end = (old_open && v.end_row < 0) ||
                              (!old_open && v.end_row >= 0 && ranks[nt + i] == ranks[v.end_row]);
        if (same_end && full_code[i] == full_code[v.value_row]) continue;
      }
      ++out.upserts;
      out_values.push_back(v.value_row);
      out_start.push_back(v.start_row);
      out_end.push_back(v.end_row);
      ARROW_RETURN_NOT_OK(actions.Append(static_cast<int8_t>(CdcAction::kUpsert)));
    }
    for (const auto& [start_rank, i] : g.old_rows) {
      if (kept_starts.count(start_rank)) continue;
      ++out.deletes;
      out_values.push_back(i);
      out_start.push_back(i);
      out_end.push_back(nt + i);
      ARROW_RETURN_NOT_OK(actions.Append(static_cast<int8_t>(CdcAction::kDelete)));
    }
  }
  arrow::ArrayVector columns;
  for (const auto& v : values) {
    ARROW_ASSIGN_OR_RAISE(auto c, cdc_values::take(v, out_values));
    columns.push_back(std::move(c));
  }
  ARROW_ASSIGN_OR_RAISE(auto start, cdc_values::take(sequence, out_start));
  ARROW_ASSIGN_OR_RAISE(auto end, cdc_values::take(sequence, out_end));
  ARROW_ASSIGN_OR_RAISE(auto action, actions.Finish());
  columns.push_back(std::move(start));
  columns.push_back(std::move(end));
  columns.push_back(std::move(action));
  out.changes = arrow::Table::Make(changes_schema_, columns, static_cast<int64_t>(out_values.size()));
  arrow::ArrayVector state_keys;  // in the state's (KEYS) order
  for (const auto& k : spec_.keys) {
    const auto at = std::find(spec_.columns.begin(), spec_.columns.end(), k) - spec_.columns.begin();
    state_keys.push_back(values[at]);
  }
  ARROW_ASSIGN_OR_RAISE(out.state, tombstone_state(state_schema_, ts, kept_tombstones, state_keys, sequence,
                                                   new_tombstones, new_tombstone_seq, now_ms));
  return out;
}

}  // namespace sluice::exec
