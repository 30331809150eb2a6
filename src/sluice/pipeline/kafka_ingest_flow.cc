// The bronze flow: Kafka topic -> Delta table, exactly once.
#include "sluice/pipeline/kafka_ingest_flow.h"

#include <arrow/record_batch.h>
#include <librdkafka/rdkafkacpp.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "sluice/common/background_stage.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/delta/transaction.h"
#include "sluice/kafka/consumer.h"
#include "sluice/kafka/source_schema.h"

namespace sluice::pipeline {

namespace {

using kafka::TopicPartitionId;

struct PartitionProgress {
  KafkaOffset next;  // next offset to read (= txn version)
  KafkaOffset end;   // high-water mark at start: the run stops there
  KafkaOffset high;  // high-water mark at start (end may be lower: ending offsets, rate limit)
  bool done() const { return next >= end; }
};

std::string topic_partition(const TopicPartitionId& tp) {
  return fmt::format("{}[{}]", tp.topic, tp.partition.value());
}

}  // namespace

// Messages taken from librdkafka's queue at once by the flow's read loop.
constexpr size_t kPollBatch = 4096;

// One consumer-group member per flow; see kafka_ingest_flow.h.
class KafkaGroupMembers {
 public:
  // A subscribed consumer and what it delivers next per owned partition. Forwards rebalances
  // to the update in progress (`run`); between updates nothing polls, so only the final
  // revocation in the destructor arrives with no update running.
  struct Member : kafka::RebalanceListener {
    std::unique_ptr<kafka::Consumer> consumer;
    kafka::RebalanceListener* run = nullptr;
    std::map<TopicPartitionId, KafkaOffset> positions;
    std::vector<TopicPartitionId> unstarted;  // owned but not assigned locally yet

    ~Member() override {
      if (consumer) consumer->set_listener(nullptr);
      consumer.reset();  // leaves the group: the others take the partitions over
    }
    std::vector<kafka::PartitionStart> on_assigned(
        const std::vector<TopicPartitionId>& added) override {
      if (run != nullptr) return run->on_assigned(added);
      unstarted.insert(unstarted.end(), added.begin(), added.end());
      return {};
    }
    void on_revoked(const std::vector<TopicPartitionId>& removed, kafka::RevokeKind kind) override {
      if (run != nullptr) run->on_revoked(removed, kind);
      for (const auto& tp : removed) {
        positions.erase(tp);
        std::erase(unstarted, tp);
      }
    }
  };

  std::map<std::string, std::unique_ptr<Member>> members;  // by pipeline/flow
};

std::shared_ptr<KafkaGroupMembers> make_kafka_group_members() {
  return std::make_shared<KafkaGroupMembers>();
}

kafka::TopicSelection KafkaFlowSpec::selection() const {
  if (!topics.topics.empty() || topics.is_pattern()) return topics;
  return kafka::TopicSelection{{topic}, ""};
}

std::string KafkaFlowSpec::consumer_group(const std::string& pipeline) const {
  if (!group_id.empty()) return group_id;
  // Assign mode keeps the group id it always had (lag monitoring only).
  if (group_mode == GroupMode::kAssign) return group_id_prefix + "-" + pipeline;
  return group_id_prefix + "-" + pipeline + "-" + flow;
}

namespace {

std::optional<int64_t> find_value(const PartitionValues& values, const std::string& topic,
                                  KafkaPartition p) {
  auto t = values.find(topic);
  if (t == values.end()) return std::nullopt;
  auto it = t->second.find(p.value());
  if (it == t->second.end()) return std::nullopt;
  return it->second;
}

}  // namespace

StartRule start_rule(const KafkaFlowSpec& spec, const std::string& topic, KafkaPartition p) {
  using K = StartRule::Kind;
  if (auto ts = find_value(spec.starting_partition_timestamps, topic, p)) {
    return {K::kTimestamp, *ts};
  }
  if (spec.starting_timestamp) return {K::kTimestamp, *spec.starting_timestamp};
  if (auto off = find_value(spec.starting_partition_offsets, topic, p)) {
    if (*off == -2) return {K::kEarliest, 0};
    if (*off == -1) return {K::kLatest, 0};
    return {K::kOffset, *off};
  }
  return spec.starting_offsets == StartingOffsets::kEarliest ? StartRule{K::kEarliest, 0}
                                                             : StartRule{K::kLatest, 0};
}

EndRule end_rule(const KafkaFlowSpec& spec, const std::string& topic, KafkaPartition p) {
  using K = EndRule::Kind;
  if (auto ts = find_value(spec.ending_partition_timestamps, topic, p)) {
    return {K::kTimestamp, *ts};
  }
  if (spec.ending_timestamp) return {K::kTimestamp, *spec.ending_timestamp};
  if (auto off = find_value(spec.ending_partition_offsets, topic, p); off && *off >= 0) {
    return {K::kOffset, *off};
  }
  return {K::kHighWaterMark, 0};
}

namespace {

class IngestRun : public kafka::RebalanceListener {
 public:
  IngestRun(const PipelineConfig& config, const KafkaFlowSpec& table, const IngestOptions& options)
      : config_(config),
        table_(table),
        options_(options),
        selection_(table.selection()),
        store_(std::make_shared<delta::LogStore>(config.table_path(table.table))),
        query_id_(random_uuid()),
        builder_(table.headers) {
    report_.table = table.table;
    report_.topic = selection_.is_pattern() ? selection_.pattern : fmt::format("{}", fmt::join(selection_.topics, ","));
  }

  arrow::Result<IngestReport> run() {
    ARROW_ASSIGN_OR_RAISE(snapshot_, delta::load_latest_if_exists(*store_));
    if (table_.group_mode == GroupMode::kSubscribe && options_.group_members) {
      ARROW_RETURN_NOT_OK(run_as_group_member());
    } else {
      ARROW_ASSIGN_OR_RAISE(owned_consumer_,
                            kafka::Consumer::make(table_.cluster, config_.kafka.at(table_.cluster),
                                                  table_.consumer_group(config_.name)));
      consumer_ = owned_consumer_.get();
      ARROW_RETURN_NOT_OK(plan_offsets());
      ARROW_RETURN_NOT_OK(consume_and_commit());
    }
    report_.table_version = snapshot_ ? snapshot_->version().value() : -1;
    for (const auto& [p, prog] : progress_) report_.backlog += std::max<int64_t>(0, prog.high.value() - prog.next.value());
    return report_;
  }

  // Group mode, inside poll(): the group gave this member partitions. What was read so far is
  // committed first, then the new partitions start at the offsets in the latest snapshot.
  std::vector<kafka::PartitionStart> on_assigned(const std::vector<TopicPartitionId>& added) override {
    std::vector<kafka::PartitionStart> starts;
    auto st = commit_pending_or_rebase();
    if (st.ok()) st = rebase();
    for (const auto& tp : added) {
      if (st.ok()) {
        auto prog = plan_partition(tp);
        if (prog.ok()) {
          progress_[tp] = *prog;
          starts.push_back({tp.topic, tp.partition, prog->next});
          continue;
        }
        st = prog.status();
      }
      member_->unstarted.push_back(tp);  // the next update starts it
    }
    note_callback_status(st);
    return starts;
  }

  // Group mode, inside poll(): partitions leave this member. A clean revocation commits what
  // was read first; a lost assignment (another member may own them already) drops it.
  void on_revoked(const std::vector<TopicPartitionId>& removed, kafka::RevokeKind kind) override {
    arrow::Status st;
    if (kind == kafka::RevokeKind::kRevoked) {
      st = commit_pending_or_rebase();
    } else {
      discard_pending();
      st = rebase();
    }
    for (const auto& tp : removed) progress_.erase(tp);
    note_callback_status(st);
  }

 private:
  std::string where() const {
    return fmt::format("pipeline '{}', table '{}'", config_.name, table_.table);
  }

  void note_callback_status(const arrow::Status& st) {
    if (!st.ok() && callback_status_.ok()) callback_status_ = st;
  }

  arrow::Result<std::vector<std::string>> resolve_topics() {
    ARROW_ASSIGN_OR_RAISE(auto existing, consumer_->topics(options_.metadata_timeout));
    auto topics = kafka::select_topics(selection_, existing, table_.cluster);
    if (!topics.ok()) return with_context(topics.status(), where());
    return topics;
  }

  arrow::Result<KafkaOffset> offset_at(const TopicPartitionId& tp, int64_t timestamp_ms) {
    ARROW_ASSIGN_OR_RAISE(auto offsets,
                          consumer_->offsets_for_times(tp.topic, {{tp.partition, timestamp_ms}},
                                                       options_.metadata_timeout));
    return offsets.at(tp.partition);
  }

  // Where one partition starts (the committed txn, else the starting options) and ends (the
  // high-water mark now, or the ending options).
  arrow::Result<PartitionProgress> plan_partition(const TopicPartitionId& tp) {
    ARROW_ASSIGN_OR_RAISE(auto marks,
                          consumer_->watermarks(tp.topic, tp.partition, options_.metadata_timeout));
    const auto app_id = kafka_progress_id(config_.id, table_.flow, tp.topic, tp.partition);
    std::optional<int64_t> committed = snapshot_ ? snapshot_->txn_version(app_id) : std::nullopt;
    if (committed && *committed < 0) committed.reset();  // reset by a full refresh
    KafkaOffset start = marks.low;
    if (committed) {
      start = KafkaOffset(*committed);
    } else {
      const auto rule = start_rule(table_, tp.topic, tp.partition);
      switch (rule.kind) {
        case StartRule::Kind::kEarliest: start = marks.low; break;
        case StartRule::Kind::kLatest: start = marks.high; break;
        case StartRule::Kind::kOffset: start = KafkaOffset(rule.value); break;
        case StartRule::Kind::kTimestamp: {
          ARROW_ASSIGN_OR_RAISE(start, offset_at(tp, rule.value));
          start = std::max(start, marks.low);
          break;
        }
      }
    }
    if (start < marks.low && !table_.fail_on_data_loss) {
      std::fprintf(stderr, "sluice: warning: %s: Kafka %s offsets %lld..%lld expired; continuing at %lld "
                   "(fail_on_data_loss => false)\n", where().c_str(), topic_partition(tp).c_str(),
                   static_cast<long long>(start.value()), static_cast<long long>(marks.low.value() - 1),
                   static_cast<long long>(marks.low.value()));
      start = marks.low;
    }
    if (start < marks.low) {
      return invalid(
          "{}: Kafka {} lost data: the table has read up to offset {} but the topic now "
          "starts at offset {} (records expired by retention or the topic was recreated); "
          "run a full refresh of the table to start over",
          where(), topic_partition(tp), start.value(), marks.low.value());
    }
    if (start > marks.high) {
      return invalid(
          "{}: Kafka {} ends at offset {} but the table has already read up to {} (was the "
          "topic deleted and recreated?); run a full refresh of the table to start over",
          where(), topic_partition(tp), marks.high.value(), start.value());
    }
    KafkaOffset end = marks.high;
    const auto rule = end_rule(table_, tp.topic, tp.partition);
    if (rule.kind == EndRule::Kind::kOffset) {
      end = std::max(start, std::min(end, KafkaOffset(rule.value)));
    } else if (rule.kind == EndRule::Kind::kTimestamp) {
      ARROW_ASSIGN_OR_RAISE(auto at, offset_at(tp, rule.value));
      end = std::max(start, std::min(end, at));
    }
    return PartitionProgress{start, end, marks.high};
  }

  // Assign mode: every partition of every selected topic.
  arrow::Status plan_offsets() {
    ARROW_ASSIGN_OR_RAISE(auto topics, resolve_topics());
    for (const auto& topic : topics) {
      ARROW_ASSIGN_OR_RAISE(auto partitions, consumer_->partitions(topic, options_.metadata_timeout));
      for (auto p : partitions) {
        TopicPartitionId tp{topic, p};
        ARROW_ASSIGN_OR_RAISE(progress_[tp], plan_partition(tp));
      }
    }
    // max_offsets_per_trigger: share the budget among partitions by their lag (as Spark does).
    if (table_.max_offsets_per_trigger) {
      int64_t total_lag = 0;
      for (const auto& [p, prog] : progress_) total_lag += prog.end.value() - prog.next.value();
      const int64_t budget = *table_.max_offsets_per_trigger;
      if (total_lag > budget) {
        for (auto& [p, prog] : progress_) {
          int64_t lag = prog.end.value() - prog.next.value();
          int64_t share = static_cast<int64_t>(static_cast<double>(budget) * lag / total_lag);
          prog.end = KafkaOffset(prog.next.value() + std::max<int64_t>(share, lag > 0 ? 1 : 0));
        }
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status consume_and_commit() {
    std::vector<kafka::PartitionStart> assignment;
    for (const auto& [tp, prog] : progress_) {
      if (!prog.done()) assignment.push_back({tp.topic, tp.partition, prog.next});
    }
    if (assignment.empty()) {
      // Nothing new. A new table is still created, so readers can open it.
      if (!snapshot_) ARROW_RETURN_NOT_OK(commit(nullptr));
      return arrow::Status::OK();
    }
    ARROW_RETURN_NOT_OK(consumer_->assign(assignment));
    ARROW_RETURN_NOT_OK(consume());
    return commit_pending();
  }

  // Group mode: this flow's member of the consumer group, kept across updates.
  arrow::Status run_as_group_member() {
    group_mode_ = true;
    const std::string key = config_.name + "/" + table_.flow;
    auto& slot = options_.group_members->members[key];
    if (!slot) {
      auto member = std::make_unique<KafkaGroupMembers::Member>();
      ARROW_ASSIGN_OR_RAISE(member->consumer,
                            kafka::Consumer::make_group_member(
                                table_.cluster, config_.kafka.at(table_.cluster),
                                table_.consumer_group(config_.name), member.get()));
      auto st = member->consumer->subscribe(kafka::subscription(selection_));
      if (!st.ok()) return with_context(st, where());
      slot = std::move(member);
    }
    member_ = slot.get();
    consumer_ = member_->consumer.get();
    // While this update runs, rebalances come here; its read positions outlive it.
    struct Attach {
      IngestRun* run;
      ~Attach() {
        run->member_->run = nullptr;
        run->member_->positions.clear();
        for (const auto& [tp, prog] : run->progress_) run->member_->positions[tp] = prog.next;
      }
    } attach{this};
    member_->run = this;
    for (const auto& [tp, next] : member_->positions) progress_[tp] = {next, next, next};
    ARROW_RETURN_NOT_OK(rebase());
    ARROW_RETURN_NOT_OK(consume());
    ARROW_RETURN_NOT_OK(commit_pending_or_rebase());
    if (!snapshot_) {
      // A new table is still created, so readers can open it (racing members: one wins).
      auto st = commit(nullptr);
      if (!st.ok() && !delta::is_commit_conflict(st)) return st;
      if (!st.ok()) ARROW_RETURN_NOT_OK(rebase());
    }
    return arrow::Status::OK();
  }

  // Group mode: re-reads the table and makes every owned partition read from its offset
  // there. Needs nothing pending. Starts partitions assigned while no update ran.
  arrow::Status rebase() {
    if (table_.on_rebase) ARROW_RETURN_NOT_OK(table_.on_rebase());
    ARROW_ASSIGN_OR_RAISE(snapshot_, delta::load_latest_if_exists(*store_));
    ARROW_ASSIGN_OR_RAISE(auto owned, consumer_->assignment());
    std::map<TopicPartitionId, PartitionProgress> planned;
    for (const auto& tp : owned) {
      ARROW_ASSIGN_OR_RAISE(auto prog, plan_partition(tp));
      auto known = progress_.find(tp);
      if (known == progress_.end() || known->second.next != prog.next) {
        ARROW_RETURN_NOT_OK(consumer_->seek({tp.topic, tp.partition, prog.next}, options_.metadata_timeout));
      }
      planned[tp] = prog;
    }
    std::vector<kafka::PartitionStart> starts;
    for (const auto& tp : member_->unstarted) {
      if (planned.count(tp)) continue;
      ARROW_ASSIGN_OR_RAISE(auto prog, plan_partition(tp));
      planned[tp] = prog;
      starts.push_back({tp.topic, tp.partition, prog.next});
    }
    if (!starts.empty()) ARROW_RETURN_NOT_OK(consumer_->add_partitions(starts));
    member_->unstarted.clear();
    progress_ = std::move(planned);
    return arrow::Status::OK();
  }

  bool all_done() const {
    for (const auto& [tp, prog] : progress_) {
      if (!prog.done()) return false;
    }
    return true;
  }

  arrow::Status flush_batch() {
    if (builder_.num_rows() == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatch> batch, builder_.finish());
    report_.rows_read += batch->num_rows();
    if (!writer_) {
      ARROW_ASSIGN_OR_RAISE(writer_, make_writer());
    }
    // Decoding, the query and writing run on the stage's thread while this one reads on; every
    // commit and discard drains the stage first, so the transform's state (decoders, window
    // state, side tables) is only ever touched by one thread at a time.
    return stage_.submit([this, batch = std::move(batch), writer = writer_.get()]() -> arrow::Status {
      std::shared_ptr<arrow::RecordBatch> rows = batch;
      if (table_.transform) {
        ARROW_ASSIGN_OR_RAISE(rows, table_.transform(*batch));
      }
      return writer->write(*rows);
    });
  }

  // Reads until every partition reaches its end (or a stop); commits every commit_rows.
  // Group mode polls at least once, so rebalances are served even with nothing assigned.
  arrow::Status consume() {
    auto last_progress = std::chrono::steady_clock::now();
    bool polled = false;
    kafka::PolledMessages polled_messages;
    while ((!polled || !all_done()) && !options_.stopping()) {
      polled = true;
      // A group member takes one message at a time: a rebase (a commit conflict, a rebalance
      // inside the poll) seeks partitions back, and messages taken before it would then be read
      // past the new position; librdkafka drops such stale messages only while they are queued.
      consumer_->poll_batch(std::chrono::milliseconds(500), group_mode_ ? 1 : kPollBatch, polled_messages);
      ARROW_RETURN_NOT_OK(callback_status_);
      auto now = std::chrono::steady_clock::now();
      if (polled_messages.messages().empty()) {
        if (!all_done() && now - last_progress > options_.stall_timeout) {
          // Retryable: a broker that went away may come back; what was committed stays.
          return mark_retryable(io_error(
              "{}: no records from Kafka {} for {} s although partitions are behind "
              "their end offsets ({})",
              where(), selection_.describe(), options_.stall_timeout.count() / 1000,
              consumer_->recent_errors()));
        }
        continue;
      }
      // The partition of the last message (a batch comes in runs of one partition's records);
      // forgotten after a commit, which may re-read the table and change progress_.
      const rd_kafka_topic_t* last_topic = nullptr;
      int32_t last_partition = -1;
      auto it = progress_.end();
      for (const rd_kafka_message_t* msg : polled_messages.messages()) {
        if (msg->rkt != last_topic || msg->partition != last_partition) {
          last_topic = msg->rkt;
          last_partition = msg->partition;
          it = msg->rkt ? progress_.find(TopicPartitionId{rd_kafka_topic_name(msg->rkt), KafkaPartition(msg->partition)})
                        : progress_.end();
        }
        const auto err = msg->err;
        if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          if (it == progress_.end()) continue;
          auto& prog = it->second;
          // EOF carries the next offset; gaps (compaction, transaction markers) end here too.
          const KafkaOffset eof(msg->offset);
          prog.next = std::max(prog.next, group_mode_ ? eof : std::min(eof, prog.end));
          last_progress = now;
          continue;
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
              err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
            continue;  // librdkafka reconnects by itself; the stall timeout bounds the wait
          }
          return io_error("{}: Kafka error on {}[{}] at offset {}: {}", where(),
                          msg->rkt ? rd_kafka_topic_name(msg->rkt) : "?", msg->partition, msg->offset,
                          rd_kafka_message_errstr(msg));
        }
        // Not ours (any more), or a redelivery. Assign mode also skips what lies beyond this
        // update's end; a group member keeps its consumer, so it takes everything it gets.
        if (it == progress_.end() || msg->offset < it->second.next.value() || (!group_mode_ && it->second.done())) {
          continue;
        }
        last_progress = now;
        ARROW_RETURN_NOT_OK(builder_.append(*msg));
        it->second.next = KafkaOffset(msg->offset + 1);
        ++uncommitted_rows_;
        uncommitted_bytes_ += static_cast<int64_t>(msg->len + msg->key_len);
        if (builder_.num_rows() >= options_.batch_rows) ARROW_RETURN_NOT_OK(flush_batch());
        if (uncommitted_rows_ >= options_.commit_rows || uncommitted_bytes_ >= options_.commit_bytes ||
            (options_.commit_interval.count() > 0 && now - last_commit_ >= options_.commit_interval)) {
          ARROW_RETURN_NOT_OK(group_mode_ ? commit_pending_or_rebase() : commit_pending());
          last_topic = nullptr;
          it = progress_.end();
        }
      }
    }
    return arrow::Status::OK();
  }

  std::optional<int64_t> committed_offset(const TopicPartitionId& tp) const {
    if (!snapshot_) return std::nullopt;
    return snapshot_->txn_version(kafka_progress_id(config_.id, table_.flow, tp.topic, tp.partition));
  }

  // Whether a commit now would record anything: rows, or offsets that moved.
  bool has_pending() const {
    if (builder_.num_rows() > 0 || writer_) return true;
    for (const auto& [tp, prog] : progress_) {
      if (committed_offset(tp) != prog.next.value()) return true;
    }
    return false;
  }

  // Commits what was read (rows and offsets) if there is anything.
  arrow::Status commit_pending() {
    if (!has_pending()) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(flush_batch());
    ARROW_RETURN_NOT_OK(stage_.drain());
    uncommitted_rows_ = uncommitted_bytes_ = 0;
    last_commit_ = std::chrono::steady_clock::now();
    return commit(std::move(writer_));
  }

  // Group mode: a commit that lost to another member's progress on one of the same
  // partitions wrote nothing; re-read the table and read again from its offsets.
  arrow::Status commit_pending_or_rebase() {
    auto st = commit_pending();
    if (st.ok() || !delta::is_commit_conflict(st)) return st;
    std::fprintf(stderr, "sluice: warning: %s\n  (rows dropped uncommitted; re-reading from the "
                 "table's offsets)\n", st.message().c_str());
    ++report_.conflicts;
    return rebase();
  }

  void discard_pending() {
    (void)stage_.drain();  // a failure stays with the stage and ends the update later
    if (builder_.num_rows() > 0) (void)builder_.finish();
    if (writer_) {
      writer_->abort();
      writer_.reset();
    }
    uncommitted_rows_ = uncommitted_bytes_ = 0;
  }

  arrow::Result<std::unique_ptr<delta::TableWriter>> make_writer() const {
    delta::WriteOptions options;
    options.table_name = table_.table;
    options.configuration = table_.properties;
    options.partition_columns = table_.partition_columns;
    if (!table_.comment.empty()) options.description = table_.comment;
    const auto& schema =
        table_.output_schema ? table_.output_schema : kafka::kafka_source_schema(table_.headers);
    return delta::TableWriter::make(store_, snapshot_, *schema, options);
  }

  // One Delta commit: the data written so far (if any) and every partition's next offset.
  arrow::Status commit(std::unique_ptr<delta::TableWriter> writer) {
    if (!writer) {
      ARROW_ASSIGN_OR_RAISE(writer, make_writer());
    }
    const int64_t rows = writer->rows_written();
    auto txn = writer->finish();
    if (!txn.ok()) {
      writer->abort();
      return with_context(txn.status(), where());
    }
    std::map<std::string, int64_t> progress;  // what this commit records, for side tables
    for (const auto& [tp, prog] : progress_) {
      const auto app_id = kafka_progress_id(config_.id, table_.flow, tp.topic, tp.partition);
      progress[app_id] = prog.next.value();
      if (committed_offset(tp) == prog.next.value()) continue;  // unchanged
      txn->set_txn(app_id, prog.next.value());
    }
    if (table_.pre_commit) {
      auto st = table_.pre_commit(progress);
      if (!st.ok()) {
        writer->abort();
        return with_context(st, where());
      }
    }
    auto options = txn->streaming_update(rows);
    options.operation_parameters["queryId"] = query_id_;
    options.operation_parameters["epochId"] = std::to_string(epoch_++);
    auto result = txn->commit(options);
    if (!result.ok()) {
      writer->abort();
      return with_context(result.status(), where());
    }
    if (!result->checkpoint_status.ok()) {
      std::fprintf(stderr, "sluice: warning: %s: checkpoint failed: %s\n", where().c_str(),
                   result->checkpoint_status.message().c_str());
    }
    snapshot_ = result->snapshot;
    report_.rows_written += rows;
    report_.commits += 1;

    // A commit between our read snapshot and this one that recorded progress for a partition
    // this commit did not touch is no conflict to Delta, but our position is stale then.
    for (const auto& [tp, prog] : progress_) {
      auto now = committed_offset(tp);
      if (!now || *now < 0 || *now == prog.next.value()) continue;
      auto stale = invalid(
          "{}: another writer recorded offset {} for Kafka {} while this one is at {} (is the "
          "same flow running elsewhere without group_mode => 'subscribe'?)",
          where(), *now, topic_partition(tp), prog.next.value());
      if (!group_mode_) return stale;
      std::fprintf(stderr, "sluice: warning: %s; re-reading\n", stale.message().c_str());
      ARROW_RETURN_NOT_OK(rebase());
      break;
    }

    // Consumer-group offsets follow the Delta commit; they only feed lag monitoring.
    std::vector<kafka::PartitionStart> offsets;
    for (const auto& [tp, prog] : progress_) offsets.push_back({tp.topic, tp.partition, prog.next});
    if (!offsets.empty()) (void)consumer_->commit_offsets(offsets);
    return arrow::Status::OK();
  }

  const PipelineConfig& config_;
  const KafkaFlowSpec& table_;
  IngestOptions options_;
  kafka::TopicSelection selection_;
  std::shared_ptr<delta::LogStore> store_;
  std::shared_ptr<const delta::Snapshot> snapshot_;
  std::unique_ptr<kafka::Consumer> owned_consumer_;  // assign mode: this update's consumer
  kafka::Consumer* consumer_ = nullptr;              // owned_consumer_ or the group member's
  KafkaGroupMembers::Member* member_ = nullptr;      // group mode
  bool group_mode_ = false;
  std::map<TopicPartitionId, PartitionProgress> progress_;
  std::string query_id_;
  int64_t epoch_ = 0;
  kafka::KafkaRecordBatchBuilder builder_;
  std::unique_ptr<delta::TableWriter> writer_;
  BackgroundStage stage_{"sluice-stage"};  // after writer_: destroyed first, its last job may still write
  int64_t uncommitted_rows_ = 0, uncommitted_bytes_ = 0;
  std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::now();
  arrow::Status callback_status_;  // first error inside a rebalance callback
  IngestReport report_;
};

}  // namespace

arrow::Result<IngestReport> run_kafka_flow_once(const PipelineConfig& config, const KafkaFlowSpec& spec,
                                                const IngestOptions& options) {
  ARROW_RETURN_NOT_OK(check_storage_opened(config));
  IngestRun run(config, spec, options);
  return run.run();
}

arrow::Result<IngestReport> run_kafka_ingest_once(const PipelineConfig& config,
                                                  const BronzeTableConfig& table,
                                                  const IngestOptions& options) {
  KafkaFlowSpec spec;
  spec.table = table.table;
  spec.flow = table.table;
  spec.topic = table.topic;
  spec.cluster = table.cluster;
  spec.starting_offsets = table.starting_offsets;
  spec.comment = table.comment;
  return run_kafka_flow_once(config, spec, options);
}

}  // namespace sluice::pipeline
