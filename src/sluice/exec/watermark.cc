// Row-by-row watermark advance over the inputs of one batch.
#include "sluice/exec/watermark.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <algorithm>

namespace sluice::exec {

WatermarkAdvance::WatermarkAdvance(WindowState& state, std::map<std::string, Clock::time_point>& last_seen,
                                   const WatermarkPolicy& policy, const std::vector<std::string>& input_ids,
                                   const std::vector<std::string>& awaited, Clock::time_point now)
    : state_(state), last_seen_(last_seen), policy_(policy), input_ids_(input_ids), now_(now) {
  for (const auto& [id, max] : state_.input_max_event_time) {
    ids_.push_back(id);
    maxes_.push_back(max);
    auto seen = last_seen_.find(id);
    const bool idle = policy_.idle_timeout.count() > 0 && seen != last_seen_.end() &&
                      now_ - seen->second > policy_.idle_timeout;
    active_.push_back(!idle);
    held_.push_back(0);
  }
  // An input new to the state: it has no maximum to hold the watermark at, so it holds it
  // where it is (its rows later in this batch, or in a later one, may be far behind).
  auto add_new = [&](const std::string& id) {
    ids_.push_back(id);
    maxes_.push_back(INT64_MIN);
    active_.push_back(0);
    held_.push_back(1);
    return ids_.end() - 1;
  };
  dense_.assign(input_ids_.size(), -1);
  for (size_t j = 0; j < input_ids_.size(); ++j) {
    auto it = std::find(ids_.begin(), ids_.end(), input_ids_[j]);
    if (it == ids_.end()) it = add_new(input_ids_[j]);
    dense_[j] = static_cast<int32_t>(it - ids_.begin());
  }
  for (const auto& id : awaited) {
    if (std::find(ids_.begin(), ids_.end(), id) == ids_.end()) add_new(id);
  }
}

int64_t WatermarkAdvance::candidate() const {
  int64_t lowest = INT64_MAX, highest = INT64_MIN;
  bool any_active = false;
  for (size_t j = 0; j < ids_.size(); ++j) {
    if (maxes_[j] == INT64_MIN) {
      if (held_[j]) return WindowState::kNoWatermark;
      continue;
    }
    highest = std::max(highest, maxes_[j]);
    if (active_[j]) {
      lowest = std::min(lowest, maxes_[j]);
      any_active = true;
    }
  }
  if (highest == INT64_MIN) return WindowState::kNoWatermark;
  return (any_active ? lowest : highest) - policy_.delay_micros;
}

void WatermarkAdvance::finish() {
  if (policy_.step == WatermarkStep::kPerBatch) {
    const int64_t c = candidate();
    if (c > state_.watermark) state_.watermark = c;
  }
  for (size_t j = 0; j < ids_.size(); ++j) {
    if (maxes_[j] != INT64_MIN) state_.input_max_event_time[ids_[j]] = maxes_[j];
  }
  for (const auto& id : input_ids_) last_seen_[id] = now_;
}


arrow::Result<std::shared_ptr<arrow::Int64Array>> event_time_micros(const std::shared_ptr<arrow::Array>& time) {
  std::shared_ptr<arrow::Array> micros = time;
  if (!time->type()->Equals(*arrow::timestamp(arrow::TimeUnit::MICRO))) {
    ARROW_ASSIGN_OR_RAISE(micros, arrow::compute::Cast(*time, arrow::timestamp(arrow::TimeUnit::MICRO)));
  }
  ARROW_ASSIGN_OR_RAISE(auto ints, micros->View(arrow::int64()));
  return std::static_pointer_cast<arrow::Int64Array>(ints);
}

}  // namespace sluice::exec
