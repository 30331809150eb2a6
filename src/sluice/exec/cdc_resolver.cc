// APPLY CHANGES: a micro-batch of changes against the per-key state (cdc_resolver.h).
#include "sluice/exec/cdc_resolver.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "sluice/common/status.h"
#include "sluice/exec/cdc_values.h"

namespace sluice::exec {

namespace {

constexpr const char* kStateSequence = "__sequence";
constexpr const char* kStateDeleted = "__deleted";
constexpr const char* kStateDeletedAt = "__deleted_at_ms";

}  // namespace

arrow::Result<std::unique_ptr<CdcResolver>> CdcResolver::make(CdcSpec spec, std::shared_ptr<arrow::Schema> source,
                                                              std::shared_ptr<arrow::DataType> sequence) {
  std::unique_ptr<CdcResolver> r(new CdcResolver());
  arrow::FieldVector state_fields, change_fields;
  for (const auto& k : spec.keys) {
    auto f = source->GetFieldByName(k);
    if (!f) return invalid("APPLY CHANGES: key '{}' is not a column of the source", k);
    state_fields.push_back(f);
  }
  for (const auto& c : spec.columns) {
    auto f = source->GetFieldByName(c);
    if (!f) return invalid("APPLY CHANGES: '{}' is not a column of the source", c);
    change_fields.push_back(f->WithNullable(true));
  }
  state_fields.push_back(arrow::field(kStateSequence, sequence));
  state_fields.push_back(arrow::field(kStateDeleted, arrow::boolean()));
  state_fields.push_back(arrow::field(kStateDeletedAt, arrow::int64()));
  change_fields.push_back(arrow::field(kActionColumn, arrow::int8()));
  r->spec_ = std::move(spec);
  r->source_ = std::move(source);
  r->state_schema_ = arrow::schema(state_fields);
  r->changes_schema_ = arrow::schema(change_fields);
  return r;
}

arrow::Result<CdcOutcome> CdcResolver::resolve(const std::shared_ptr<arrow::Table>& state_in, const CdcBatch& batch,
                                               int64_t now_ms, int64_t gc_before_ms) const {
  std::shared_ptr<arrow::Table> state = state_in;
  if (state) {
    if (!state->schema()->Equals(*state_schema_, /*check_metadata=*/false)) {
      return invalid("APPLY CHANGES: the saved state has the columns {} but the changes now need {} (the source's "
                     "keys or SEQUENCE BY type changed); run a full refresh of the target",
                     state->schema()->ToString(), state_schema_->ToString());
    }
    ARROW_ASSIGN_OR_RAISE(state, state->CombineChunks());
    if (state->num_rows() == 0) state.reset();  // no chunk to read the flags from
  }
  const auto& rows = *batch.rows;
  const int64_t ns = state ? state->num_rows() : 0;
  const int64_t nb = rows.num_rows();
  const int64_t n = ns + nb;
  if (batch.sequence->null_count() > 0) {
    return invalid("APPLY CHANGES: {} change row(s) have a null SEQUENCE BY value, which cannot be ordered; filter "
                   "them out in the source (WHERE <sequence> IS NOT NULL)",
                   batch.sequence->null_count());
  }
  ARROW_ASSIGN_OR_RAISE(auto sequence, cdc_values::concat(state ? state->GetColumnByName(kStateSequence) : nullptr, batch.sequence));
  ARROW_ASSIGN_OR_RAISE(auto ranks, cdc_values::sequence_ranks(sequence));
  arrow::ArrayVector key_columns;
  for (const auto& k : spec_.keys) {
    ARROW_ASSIGN_OR_RAISE(auto c, cdc_values::concat(state ? state->GetColumnByName(k) : nullptr, rows.GetColumnByName(k)));
    key_columns.push_back(std::move(c));
  }
  ARROW_ASSIGN_OR_RAISE(auto keys, cdc_values::encode_keys(key_columns, n));

  struct Group {
    int64_t state_row = -1;
    std::vector<int64_t> rows;  // combined indices of its batch rows
  };
  std::unordered_map<std::string, size_t> group_of;
  std::vector<Group> groups;
  auto group = [&](int64_t i) -> Group& {
    auto [it, fresh] = group_of.emplace(keys[i], groups.size());
    if (fresh) groups.emplace_back();
    return groups[it->second];
  };
  for (int64_t i = 0; i < ns; ++i) group(i).state_row = i;
  std::vector<int64_t> truncates;
  for (int64_t b = 0; b < nb; ++b) {
    if (cdc_values::flag(batch.is_truncate, b)) {
      truncates.push_back(ns + b);
    } else {
      group(ns + b).rows.push_back(ns + b);
    }
  }
  auto by_rank = [&](int64_t a, int64_t b) { return ranks[a] < ranks[b]; };
  std::stable_sort(truncates.begin(), truncates.end(), by_rank);

  const auto* deleted_in = state ? static_cast<const arrow::BooleanArray*>(
                                       state->GetColumnByName(kStateDeleted)->chunk(0).get())
                                 : nullptr;
  const auto* deleted_at_in = state ? static_cast<const arrow::Int64Array*>(
                                          state->GetColumnByName(kStateDeletedAt)->chunk(0).get())
                                    : nullptr;
  CdcOutcome out;
  // The new state: key and sequence values by combined index.
  std::vector<int64_t> state_key_rows, state_seq_rows;
  arrow::BooleanBuilder state_deleted;
  arrow::Int64Builder state_deleted_at;
  // The changes: key values by combined index, other columns by batch row, per column.
  std::vector<int64_t> change_key_rows;
  std::vector<std::vector<int64_t>> change_value_rows(spec_.columns.size());
  arrow::Int8Builder actions;
  for (auto& g : groups) {
    std::stable_sort(g.rows.begin(), g.rows.end(), by_rank);
    bool exists = g.state_row >= 0;
    bool deleted = exists && deleted_in->Value(g.state_row);
    int64_t rank = exists ? ranks[g.state_row] : 0;
    int64_t seq_row = g.state_row;
    int64_t deleted_at = exists ? deleted_at_in->Value(g.state_row) : 0;
    const bool was_in_target = exists && !deleted;
    bool based_on_target = was_in_target;  // the values build on the target's row (IGNORE NULL UPDATES)
    std::vector<int64_t> chain;            // batch rows whose values make the row, oldest first
    bool changed = false;
    size_t t = 0;
    size_t r = 0;
    while (r < g.rows.size() || t < truncates.size()) {
      const bool truncate = r == g.rows.size() || (t < truncates.size() && ranks[truncates[t]] <= ranks[g.rows[r]]);
      const int64_t row = truncate ? truncates[t++] : g.rows[r++];
      if (exists && ranks[row] <= rank) {
        if (!truncate) ++out.ignored;
        continue;
      }
      const bool del = !truncate && cdc_values::flag(batch.is_delete, row - ns);
      if (truncate && (!exists || deleted)) continue;
      changed = true;
      exists = true;
      rank = ranks[row];
      seq_row = row;
      if (truncate || del) {
        deleted = true;
        deleted_at = now_ms;
        chain.clear();
        based_on_target = false;
        continue;
      }
      // IGNORE NULL UPDATES builds on the live row (the target's or the batch's); anything
      // else replaces it.
      if (!spec_.ignore_null_updates || deleted) {
        chain.clear();
        based_on_target = false;
      }
      deleted = false;
      chain.push_back(row);
    }
    const int64_t key_row = g.state_row >= 0 ? g.state_row : g.rows.front();
    if (changed && deleted && was_in_target) {
      ++out.deletes;
      change_key_rows.push_back(key_row);
      for (auto& v : change_value_rows) v.push_back(-1);
      ARROW_RETURN_NOT_OK(actions.Append(static_cast<int8_t>(CdcAction::kDelete)));
    } else if (changed && !deleted) {
      ++out.upserts;
      change_key_rows.push_back(key_row);
      for (size_t c = 0; c < spec_.columns.size(); ++c) {
        int64_t from = chain.back();
        if (spec_.ignore_null_updates) {
          const auto& column = rows.GetColumnByName(spec_.columns[c]);
          from = -1;
          for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            if (!column->IsNull(*it - ns)) {
              from = *it;
              break;
            }
          }
        }
        change_value_rows[c].push_back(from < 0 ? -1 : from - ns);
      }
      const auto action = spec_.ignore_null_updates && based_on_target ? CdcAction::kUpsertKeepNull
                                                                        : CdcAction::kUpsert;
      ARROW_RETURN_NOT_OK(actions.Append(static_cast<int8_t>(action)));
    }
    if (!exists) continue;
    if (deleted && deleted_at < gc_before_ms) {
      ++out.tombstones_collected;
      continue;
    }
    state_key_rows.push_back(key_row);
    state_seq_rows.push_back(seq_row);
    ARROW_RETURN_NOT_OK(state_deleted.Append(deleted));
    ARROW_RETURN_NOT_OK(state_deleted_at.Append(deleted ? deleted_at : 0));
  }

  arrow::ArrayVector state_columns;
  for (const auto& k : key_columns) {
    ARROW_ASSIGN_OR_RAISE(auto c, cdc_values::take(k, state_key_rows));
    state_columns.push_back(std::move(c));
  }
  ARROW_ASSIGN_OR_RAISE(auto seq, cdc_values::take(sequence, state_seq_rows));
  state_columns.push_back(std::move(seq));
  ARROW_ASSIGN_OR_RAISE(auto del, state_deleted.Finish());
  ARROW_ASSIGN_OR_RAISE(auto del_at, state_deleted_at.Finish());
  state_columns.push_back(std::move(del));
  state_columns.push_back(std::move(del_at));
  out.state = arrow::Table::Make(state_schema_, state_columns, static_cast<int64_t>(state_key_rows.size()));

  arrow::ArrayVector change_columns;
  for (size_t c = 0; c < spec_.columns.size(); ++c) {
    const auto& name = spec_.columns[c];
    auto key = std::find(spec_.keys.begin(), spec_.keys.end(), name);
    std::shared_ptr<arrow::Array> column;
    if (key != spec_.keys.end()) {
      ARROW_ASSIGN_OR_RAISE(column, cdc_values::take(key_columns[key - spec_.keys.begin()], change_key_rows));
    } else {
      ARROW_ASSIGN_OR_RAISE(column, cdc_values::take(rows.GetColumnByName(name), change_value_rows[c]));
    }
    change_columns.push_back(std::move(column));
  }
  ARROW_ASSIGN_OR_RAISE(auto action_column, actions.Finish());
  change_columns.push_back(std::move(action_column));
  out.changes = arrow::Table::Make(changes_schema_, change_columns, static_cast<int64_t>(change_key_rows.size()));
  return out;
}

}  // namespace sluice::exec
