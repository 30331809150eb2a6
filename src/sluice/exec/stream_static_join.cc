// Stream-static joins with hash tables kept between batches (see stream_static_join.h).
#include "sluice/exec/stream_static_join.h"

#include <arrow/api.h>
#include <fmt/format.h>

namespace sluice::exec {

arrow::Result<std::unique_ptr<StreamStaticJoin>> StreamStaticJoin::make(const SelectPlan& plan, StaticTables* statics) {
  if (!plan.joins() || !plan.streams_on_left_only()) {
    return arrow::Status::Invalid("a stream-static join needs a join with its stream on the left");
  }
  for (const SelectPlan* p = &plan; p->joins(); p = p->join_left()) {
    ARROW_RETURN_NOT_OK(probe_join_type(p->join_type()).status());
  }
  return std::unique_ptr<StreamStaticJoin>(new StreamStaticJoin(plan, statics));
}

int64_t StreamStaticJoin::build_bytes() const {
  int64_t bytes = 0;
  for (const auto& [join, build] : builds_by_join_) bytes += build.table->build_bytes();
  return bytes;
}

arrow::Result<std::shared_ptr<arrow::Table>> StreamStaticJoin::run(const arrow::RecordBatch& stream_rows) {
  return run_plan(plan_, stream_rows);
}

arrow::Result<std::shared_ptr<arrow::Table>> StreamStaticJoin::run_plan(const SelectPlan& p,
                                                                        const arrow::RecordBatch& stream_rows) {
  if (!p.joins()) {
    return p.run([&](const PlanSource& s) -> arrow::Result<std::shared_ptr<arrow::Table>> {
      if (!s.streaming) {
        return arrow::Status::Invalid(fmt::format("'{}' is read statically on the stream's side of a join", s.name));
      }
      auto batch = arrow::RecordBatch::Make(stream_rows.schema(), stream_rows.num_rows(), stream_rows.columns());
      return arrow::Table::FromRecordBatches(stream_rows.schema(), {batch});
    });
  }
  ARROW_ASSIGN_OR_RAISE(auto left, run_plan(*p.join_left(), stream_rows));
  ARROW_ASSIGN_OR_RAISE(auto* build, build_of(p));
  ARROW_ASSIGN_OR_RAISE(auto joined, build->probe(*left, p.joined_schema()));
  return p.run_on(joined);
}

arrow::Result<JoinHashTable*> StreamStaticJoin::build_of(const SelectPlan& join) {
  const SelectPlan& right = *join.join_right();
  auto it = builds_by_join_.find(&join);
  if (it != builds_by_join_.end()) {
    bool unchanged = true;
    for (const auto& [name, version] : it->second.versions) {
      ARROW_ASSIGN_OR_RAISE(auto latest, statics_->latest_version(name));
      unchanged = unchanged && latest == version;
      if (!unchanged) break;
    }
    if (unchanged) return it->second.table.get();
  }
  // The versions actually read (a table may get a new commit between listing and reading).
  Build build;
  ARROW_ASSIGN_OR_RAISE(auto rows, right.run([&](const PlanSource& s) -> arrow::Result<std::shared_ptr<arrow::Table>> {
    if (s.streaming) {
      return arrow::Status::Invalid(fmt::format("'{}' is a stream on the static side of a join", s.name));
    }
    ARROW_ASSIGN_OR_RAISE(auto table, statics_->read(s.name));
    build.versions.emplace_back(s.name, table.version);
    return table.rows;
  }));
  JoinHashTable::Spec spec;
  ARROW_ASSIGN_OR_RAISE(spec.type, probe_join_type(join.join_type()));
  spec.left_keys = join.join_left_keys();
  spec.right_keys = join.join_right_keys();
  spec.filter = join.join_filter();
  if (it != builds_by_join_.end()) builds_by_join_.erase(it);  // the old build goes before the new one is made
  ARROW_ASSIGN_OR_RAISE(build.table, JoinHashTable::make(std::move(spec), rows));
  ++builds_;
  auto& kept = builds_by_join_[&join] = std::move(build);
  return kept.table.get();
}

}  // namespace sluice::exec
