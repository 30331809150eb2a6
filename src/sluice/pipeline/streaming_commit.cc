// The streaming commit protocol: side tables, state snapshot, then the target with its progress.
#include "sluice/pipeline/streaming_commit.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>

#include "sluice/common/failpoint.h"
#include "sluice/common/status.h"
#include "sluice/delta/schema.h"
#include "sluice/delta/table.h"
#include "sluice/exec/constraint_checker.h"
#include "sluice/pipeline/commit_timings.h"

namespace sluice::pipeline {

ProgressIds::ProgressIds(PipelineId pipeline, std::string flow) : pipeline_(std::move(pipeline)), flow_(std::move(flow)) {}

std::string ProgressIds::kafka(const std::string& topic, KafkaPartition partition) const {
  return kafka_progress_id(pipeline_, flow_, topic, partition);
}

std::string ProgressIds::kafka_last_record(const std::string& topic, KafkaPartition partition) const {
  return kafka_fingerprint_progress_id(pipeline_, flow_, topic, partition);
}

std::string ProgressIds::view_query() const { return view_query_progress_id(pipeline_, flow_); }

std::string ProgressIds::state_kept() const { return state_kept_progress_id(pipeline_, flow_); }

std::string ProgressIds::delta(const std::string& upstream_table_id, DeltaReader reader) const {
  return delta_progress_id(pipeline_, flow_, upstream_table_id, reader);
}

bool ProgressIds::owns(const std::string& app_id) const { return is_flow_progress(app_id, pipeline_, flow_); }

TxnVersions ProgressIds::recorded_in(const delta::Snapshot* snapshot) const {
  TxnVersions out;
  if (!snapshot) return out;
  for (const auto& [app, txn] : snapshot->txns()) {
    if (owns(app)) out[app] = txn.version;
  }
  return out;
}

void SourceProgress::kafka(const std::string& topic, KafkaPartition partition, KafkaOffset next) {
  positions_[ids_.kafka(topic, partition)] = next.value();
}

void SourceProgress::kafka_last_record(const std::string& topic, KafkaPartition partition, int64_t encoded) {
  markers_[ids_.kafka_last_record(topic, partition)] = encoded;
}

void SourceProgress::delta(const std::string& upstream_table_id, DeltaReader reader, DeltaVersion consumed) {
  positions_[ids_.delta(upstream_table_id, reader)] = consumed.value();
}

void SourceProgress::view_query(int64_t fingerprint) { markers_[ids_.view_query()] = fingerprint; }

StreamingCommit::StreamingCommit(StreamingCommitOptions options)
    : options_(std::move(options)), ids_(options_.pipeline, options_.flow) {}

arrow::Result<std::unique_ptr<StreamingCommit>> StreamingCommit::make(StreamingCommitOptions options) {
  std::unique_ptr<StreamingCommit> c(new StreamingCommit(std::move(options)));
  c->options_.write.constraints = exec::sql_constraint_compiler();  // CHECK constraints on every write
  if (c->options_.write.table_name.empty()) c->options_.write.table_name = c->options_.table;
  c->store_ = std::make_shared<delta::LogStore>(c->options_.objects, c->options_.table_path.string());
  ARROW_ASSIGN_OR_RAISE(c->snapshot_, c->load_latest());
  return c;
}

std::optional<int64_t> StreamingCommit::recorded(const std::string& app_id) const {
  if (!snapshot_) return std::nullopt;
  return snapshot_->txn_version(app_id);
}

arrow::Result<SideTable*> StreamingCommit::open_side_table(std::filesystem::path path, std::string name,
                                                           std::shared_ptr<arrow::Schema> schema,
                                                           std::string description) {
  ARROW_ASSIGN_OR_RAISE(auto table, SideTable::make(options_.objects, std::move(path), std::move(name), std::move(schema),
                                                    std::move(description), options_.snapshots));
  side_tables_.push_back(std::move(table));
  return side_tables_.back().get();
}

arrow::Result<std::shared_ptr<const delta::Snapshot>> StreamingCommit::load_latest() const {
  return options_.snapshots ? options_.snapshots->latest_if_exists(*store_) : delta::load_latest_if_exists(*store_);
}

std::filesystem::path StreamingCommit::state_dir(const std::string& part) const {
  auto dir = options_.table_path / "_sluice_state" / options_.flow;
  return part.empty() ? dir : dir / part;
}

namespace {

// A stateful operator (chain) as the commit protocol's state: every snapshot is saved (an
// operator does not track whether its state changed since the last commit).
class OperatorState : public CommittedState {
 public:
  explicit OperatorState(exec::BatchOperator& op) : op_(op) {}
  arrow::Result<std::vector<exec::WindowState>> snapshot_state() override { return op_.snapshot(); }
  arrow::Status restore_state(std::optional<std::vector<exec::WindowState>> parts) override {
    return op_.restore(std::move(parts));
  }

 private:
  exec::BatchOperator& op_;
};

}  // namespace

void StreamingCommit::set_state(exec::BatchOperator& operators) {
  auto state = std::make_unique<OperatorState>(operators);
  set_state(state.get(), operators.state_parts());
  operator_state_ = std::move(state);
}

void StreamingCommit::set_state(CommittedState* state, std::vector<std::string> parts) {
  if (state != operator_state_.get()) operator_state_.reset();
  state_ = state;
  state_parts_ = std::move(parts);
  state_stores_.clear();
  for (const auto& part : state_parts_) state_stores_.push_back(std::make_unique<StateStore>(options_.objects, state_dir(part)));
}

arrow::Status StreamingCommit::load_state(const TxnVersions& committed) {
  if (!state_) return arrow::Status::OK();
  const auto where = fmt::format("table '{}', flow '{}'", options_.table, options_.flow);
  std::vector<exec::WindowState> parts;
  std::vector<std::string> missing;
  for (size_t i = 0; i < state_stores_.size(); ++i) {
    auto loaded = state_stores_[i]->load(committed);
    if (!loaded.ok()) return with_context(loaded.status(), where);
    if (*loaded) {
      parts.push_back(std::move(**loaded));
    } else {
      missing.push_back(state_parts_[i]);
    }
  }
  if (!parts.empty() && !missing.empty()) {
    return invalid("{}: the state has parts [{}] missing under {}; run a full refresh of the table "
                   "(--full-refresh {})",
                   where, fmt::join(missing, ", "), state_dir("").string(), options_.table);
  }
  if (parts.empty()) return state_->restore_state(std::nullopt);
  return state_->restore_state(std::move(parts));
}

arrow::Result<delta::TableWriter*> StreamingCommit::writer() {
  if (!writer_) {
    if (options_.gate) {
      // No auto compaction commits from here to this writer's commit; one that committed since
      // the table was read is read now, so the commit below never races it.
      hold_ = options_.gate->hold_writer();
      if (snapshot_ && options_.gate->compacted_version() > snapshot_->version().value()) {
        auto latest = load_latest();
        if (!latest.ok()) {
          hold_.release();
          return latest.status();
        }
        snapshot_ = std::move(*latest);
      }
    }
    auto made = delta::TableWriter::make(store_, snapshot_, *options_.schema, options_.write);
    if (!made.ok()) {
      hold_.release();
      return made.status();
    }
    writer_ = std::move(*made);
    if (channel_) {
      published_rows_ = 0;
      channel_->begin(snapshot_ ? snapshot_->version().value() : -1);
    }
  }
  return writer_.get();
}

ColumnChanges column_changes(const arrow::Schema& before, const arrow::Schema& after) {
  ColumnChanges out;
  for (const auto& f : after.fields()) {
    const auto was = before.GetFieldByName(f->name());
    if (!was) {
      out.added.push_back(f->name() + " " + delta::delta_type_name(*f->type()));
      continue;
    }
    // Delta type names, not arrow::DataType::Equals: that compares nested fields' nullability
    // too, which would show a nullability change as a retyping to the same name.
    const auto from = delta::delta_type_name(*was->type()), to = delta::delta_type_name(*f->type());
    if (from != to) out.retyped.push_back(fmt::format("{}: {} -> {}", f->name(), from, to));
  }
  for (const auto& f : before.fields()) {
    if (!after.GetFieldByName(f->name())) out.removed.push_back(f->name());
  }
  return out;
}

// The columns this commit changed, for the update's flow_progress `schema_change`
// (commit_timings.h). A table's first commit changes nothing: it is created.
static void note_commit_schema_change(const std::string& table, const delta::Snapshot* before, const delta::Snapshot& after) {
  if (before == nullptr || before->schema()->Equals(*after.schema())) return;
  auto changes = column_changes(*before->schema(), *after.schema());
  if (changes.empty()) return;  // nullability or metadata only
  commit_timings().note_schema_change(table, std::move(changes.added), std::move(changes.removed),
                                      std::move(changes.retyped));
}

arrow::Result<delta::CommitResult> StreamingCommit::commit(const SourceProgress& progress,
                                                           const nlohmann::json& operation_parameters) {
  ARROW_RETURN_NOT_OK(writer().status());
  const auto started = std::chrono::steady_clock::now();
  auto writer = std::move(writer_);
  struct Release {  // the gate, once this commit landed or failed
    TableGate::Hold& hold;
    ~Release() { hold.release(); }
  } release{hold_};
  // The in-process reader learns whether these rows landed, and as which version.
  struct Landed {
    CommitChannel* channel;
    int64_t version = -1;
    ~Landed() {
      if (!channel) return;
      if (version >= 0) {
        channel->committed(version);
      } else {
        channel->lost();
      }
    }
  } landed{channel_};
  const int64_t rows = writer->rows_written();
  // 1. The target's files, not visible yet.
  auto txn = writer->finish();
  if (!txn.ok()) {
    writer->abort();
    return txn.status();
  }
  for (const auto& [app, version] : progress.positions()) {
    if (recorded(app) != version) txn->set_txn(app, version);
  }
  for (const auto& [app, version] : progress.markers()) {
    auto was = recorded(app);
    if (was ? *was != version : version >= 0) txn->set_txn(app, version);
  }
  auto before_target = [&]() -> arrow::Status {
    // 2. Side tables, with the progress the target records next.
    for (auto& side : side_tables_) ARROW_RETURN_NOT_OK(side->commit(progress.positions()));
    // 3. The state, labelled with that progress.
    if (state_) {
      ARROW_ASSIGN_OR_RAISE(auto parts, state_->snapshot_state());
      if (parts.empty()) return arrow::Status::OK();  // unchanged: the last snapshot still holds
      if (parts.size() != state_stores_.size()) {
        return arrow::Status::Invalid("internal: ", parts.size(), " state parts for ", state_stores_.size(), " stores");
      }
      int64_t bytes = 0;
      for (size_t i = 0; i < parts.size(); ++i) {
        ARROW_ASSIGN_OR_RAISE(auto size, state_stores_[i]->save(progress.positions(), parts[i]));
        bytes += size;
      }
      state_file_bytes_ = bytes;
      fail_point("after_state_save");  // tests: the state of a commit that never lands
    }
    return arrow::Status::OK();
  };
  if (auto st = before_target(); !st.ok()) {
    writer->abort();
    return st;
  }
  // 4. The target, with its progress.
  delta::CommitOptions options;
  if (options_.operation.empty()) {
    options = txn->streaming_update(rows);
  } else {
    options.operation = options_.operation;
  }
  for (auto it = operation_parameters.begin(); it != operation_parameters.end(); ++it) {
    options.operation_parameters[it.key()] = it.value();
  }
  auto result = txn->commit(options);
  if (!result.ok()) {
    writer->abort();
    return result.status();
  }
  note_commit_schema_change(options_.table_path.string(), snapshot_.get(), *result->snapshot);
  snapshot_ = result->snapshot;
  if (options_.snapshots) options_.snapshots->remember(*store_, snapshot_);
  if (options_.gate) options_.gate->committed(snapshot_);
  rows_committed_ += rows;
  if (rows == published_rows_) landed.version = result->version.value();
  commit_timings().record_commit(
      options_.table_path.string(),
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count());
  return result;
}

void StreamingCommit::abort() {
  if (writer_) {
    writer_->abort();
    writer_.reset();
    if (channel_) channel_->lost();
  }
  hold_.release();
}

arrow::Status StreamingCommit::reload() {
  abort();
  for (auto& side : side_tables_) ARROW_RETURN_NOT_OK(side->reload());
  ARROW_ASSIGN_OR_RAISE(snapshot_, load_latest());
  return load_state(ids_.recorded_in(snapshot_.get()));
}

void StreamingCommit::reset(const std::string& app_id) {
  for (auto& side : side_tables_) side->reset(app_id);
}

}  // namespace sluice::pipeline
