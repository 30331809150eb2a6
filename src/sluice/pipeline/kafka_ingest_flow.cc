// The bronze flow: Kafka topic -> Delta table, exactly once.
#include "sluice/pipeline/kafka_ingest_flow.h"

#include "sluice/pipeline/commit_timings.h"
#include "sluice/pipeline/kafka_group_members.h"
#include "sluice/pipeline/run_progress.h"

#include <arrow/record_batch.h>

#include <fmt/ranges.h>

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>

#include "sluice/common/sanitizers.h"
#include "sluice/common/background_stage.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/delta/transaction.h"
#include "sluice/format/payload_decoder.h"
#include "sluice/kafka/consumer.h"
#include "sluice/kafka/record_fingerprint.h"
#include "sluice/kafka/source_schema.h"
#include "sluice/pipeline/streaming_commit.h"

namespace sluice::pipeline {

namespace {

using kafka::TopicPartitionId;

// data_loss reason for a position past a partition's end: truncation and re-creation look alike.
constexpr const char* kPastTheEnd = "log truncated or topic re-created";

struct PartitionProgress {
  KafkaOffset next;  // next offset to read (= txn version)
  KafkaOffset end;   // high-water mark at start: the run stops there
  KafkaOffset high;  // high-water mark at start (end may be lower: ending offsets, rate limit)
  KafkaOffset low;   // low-water mark at start
  // The last record read (committed, or read in this update), to detect a re-created topic.
  std::optional<kafka::RecordFingerprint> last_record;
  // The last record read from the current poll batch, fingerprinted (into last_record) when the
  // batch ends or a commit comes, so only one record per partition and batch is hashed.
  const kafka::RecordView* unsealed = nullptr;
  bool read = false;  // a record of it was read since it was planned
  // The flow's end before max_offsets_per_trigger cut this trigger's `end` (limit_trigger).
  std::optional<KafkaOffset> flow_end = std::nullopt;
  bool done() const { return next >= end; }
};

std::string topic_partition(const TopicPartitionId& tp) {
  return fmt::format("{}[{}]", tp.topic, tp.partition.value());
}

}  // namespace

// Messages taken from librdkafka's queue at once by the flow's read loop.
constexpr size_t kPollBatch = 4096;
// How often a kept consumer's update asks the broker for topics, partitions and watermarks
// (new partitions, a pattern's new topics, expired records); between, librdkafka's last fetch
// tells the high-water marks.
constexpr std::chrono::seconds kReplanInterval{5};

std::shared_ptr<KafkaGroupMembers> make_kafka_group_members() {
  return std::make_shared<KafkaGroupMembers>();
}

namespace {

class IngestRun : public kafka::RebalanceListener {
 public:
  IngestRun(const PipelineConfig& config, const KafkaFlowSpec& table, const IngestOptions& options)
      : config_(config),
        table_(table),
        options_(options),
        selection_(table.selection()),
        query_id_(random_uuid()),
        builder_(table.headers) {
    report_.table = table.table;
    // Only a table with the column (a decoded JSON/Avro value with rescue) counts rescued rows.
    counts_rescued_ = table.output_schema && table.output_schema->GetFieldIndex(format::kRescuedDataColumn) >= 0;
    report_.topic = selection_.is_pattern() ? selection_.pattern : fmt::format("{}", fmt::join(selection_.topics, ","));
  }

  arrow::Result<IngestReport> run() {
    commit_ = table_.commit;
    if (!commit_) {
      ARROW_ASSIGN_OR_RAISE(owned_commit_, StreamingCommit::make(commit_options()));
      commit_ = owned_commit_.get();
    }
    if (options_.record_sources && options_.group_members) {
      return arrow::Status::Invalid(where(), ": records from a record source other than Kafka (sluice test) are read "
                                    "by triggered updates only");
    }
    if (table_.group_mode == GroupMode::kSubscribe && options_.group_members) {
      ARROW_RETURN_NOT_OK(run_as_group_member());
    } else if (keeps_reader()) {
      ARROW_RETURN_NOT_OK(run_kept_reader());
    } else {
      ARROW_ASSIGN_OR_RAISE(owned_source_, make_source());
      source_ = owned_source_.get();
      ARROW_RETURN_NOT_OK(plan_offsets());
      ARROW_RETURN_NOT_OK(consume_and_commit());
    }
    report_.table_version = snapshot() ? snapshot()->version().value() : -1;
    // Present (0 of 0) also for an update that wrote nothing: the table has the column.
    if (counts_rescued_) commit_timings().note_rescued(config_.table_path(table_.table).string(), 0, 0);
    for (const auto& [tp, prog] : progress_) {
      // The backlog is what this flow still has to read: up to the high-water mark, or to its
      // ending offsets/timestamp when those stop it before (records past them it never reads; a
      // `sluice test` continuous case stops on no backlog).
      KafkaOffset stop = prog.high;
      if (end_rule(table_, tp.topic, tp.partition).kind != EndRule::Kind::kHighWaterMark) {
        stop = std::min(stop, prog.flow_end.value_or(prog.end));
      }
      const int64_t lag = std::max<int64_t>(0, stop.value() - prog.next.value());
      report_.backlog += lag;
      report_.kafka_lag.push_back({tp.topic, tp.partition.value(), prog.next.value(), prog.high.value(), lag});
    }
    return report_;
  }

  // Group mode, inside poll(): the group gave this member partitions. What was read so far is
  // committed first, then the new partitions start at the offsets in the latest snapshot.
  std::vector<kafka::PartitionStart> on_assigned(const std::vector<TopicPartitionId>& added) override {
    member_->reseek = true;
    std::vector<kafka::PartitionStart> starts;
    auto st = commit_pending_or_rebase();
    if (st.ok()) st = rebase();
    std::map<TopicPartitionId, PartitionProgress> planned;
    for (const auto& tp : added) {
      if (!st.ok()) break;
      auto prog = plan_partition(tp);
      if (prog.ok()) planned[tp] = *prog;
      st = prog.status();
    }
    if (st.ok()) st = check_last_records(planned);
    for (const auto& tp : added) {
      if (st.ok()) {
        progress_[tp] = planned.at(tp);
        starts.push_back({tp.topic, tp.partition, planned.at(tp).next});
      } else {
        member_->unstarted.push_back(tp);  // the next update starts it
      }
    }
    note_callback_status(st);
    return starts;
  }

  // Group mode, inside poll(): partitions leave this member. A clean revocation commits what
  // was read first; a lost assignment (another member may own them already) drops it.
  void on_revoked(const std::vector<TopicPartitionId>& removed, kafka::RevokeKind kind) override {
    member_->reseek = true;
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

  // The consumer that asks the broker for metadata and offsets: the flow's own, but not a kept
  // reader, whose fetch held open at the end of a partition (fetch.wait.max.ms) the broker
  // answers first on that connection (a plan of 6 idle partitions waited 3 s).
  kafka::RecordSource* asker() const { return asker_ ? asker_ : source_; }

  void note_callback_status(const arrow::Status& st) {
    if (!st.ok() && callback_status_.ok()) callback_status_ = st;
  }

  arrow::Result<std::vector<std::string>> resolve_topics() {
    ARROW_ASSIGN_OR_RAISE(auto existing, asker()->topics(options_.metadata_timeout));
    auto topics = kafka::select_topics(selection_, existing, table_.cluster);
    if (!topics.ok()) return with_context(topics.status(), where());
    return topics;
  }

  arrow::Result<KafkaOffset> offset_at(const TopicPartitionId& tp, int64_t timestamp_ms) {
    ARROW_ASSIGN_OR_RAISE(auto offsets,
                          asker()->offsets_for_times(tp.topic, {{tp.partition, timestamp_ms}},
                                                       options_.metadata_timeout));
    return offsets.at(tp.partition);
  }

  // Where one partition starts (the committed txn, else the starting options) and ends (the
  // high-water mark now, or the ending options).
  arrow::Result<PartitionProgress> plan_partition(const TopicPartitionId& tp) {
    ARROW_ASSIGN_OR_RAISE(auto marks,
                          asker()->watermarks(tp.topic, tp.partition, options_.metadata_timeout));
    std::optional<int64_t> committed = commit_->recorded(commit_->ids().kafka(tp.topic, tp.partition));
    if (committed && *committed < 0) committed.reset();  // reset by a full refresh
    KafkaOffset start = marks.low;
    std::optional<kafka::RecordFingerprint> last_record;
    if (committed) {
      start = KafkaOffset(*committed);
      last_record = committed_fingerprint(tp, start);
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
    if (start < marks.low) {
      ARROW_RETURN_NOT_OK(lose_data(
          {"", tp.topic, tp.partition.value(), start.value(), marks.low.value(), marks.low.value(), "expired"},
          committed
              ? fmt::format("{}: Kafka {} lost data: the table has read up to offset {} but the topic now "
                            "starts at offset {} (records expired by retention or the topic was recreated); "
                            "run a full refresh of the table to start over, or set fail_on_data_loss => false "
                            "to go on at offset {}",
                            where(), topic_partition(tp), start.value(), marks.low.value(), marks.low.value())
              : fmt::format("{}: the starting offset {} of Kafka {} is no longer in the topic, which now "
                            "starts at offset {} (records expired by retention); give a later offset in "
                            "startingOffsets, or set fail_on_data_loss => false to start at offset {}",
                            where(), start.value(), topic_partition(tp), marks.low.value(), marks.low.value())));
      start = marks.low;
    }
    if (start > marks.high && !committed) {
      return invalid("{}: the starting offset {} of Kafka {} is past its end (offset {}); give an offset "
                     "up to the end, or -1 for the end, in startingOffsets",
                     where(), start.value(), topic_partition(tp), marks.high.value());
    }
    if (start > marks.high) {
      // Truncated (unclean leader election) or re-created with fewer records: no way to tell, so
      // go on at the end, as Spark does: re-reading from the first offset would duplicate a
      // truncated log's records; this skips a re-created topic's (logged).
      ARROW_RETURN_NOT_OK(lose_data(
          {"", tp.topic, tp.partition.value(), start.value(), std::nullopt, marks.high.value(), kPastTheEnd},
          fmt::format("{}: Kafka {} ends at offset {} but the table has already read up to {} (the log was "
                      "truncated, e.g. by an unclean leader election, or the topic was deleted and "
                      "recreated); run a full refresh of the table to start over, or set "
                      "fail_on_data_loss => false to go on at its end (offset {})",
                      where(), topic_partition(tp), marks.high.value(), start.value(), marks.high.value())));
      start = marks.high;
      last_record.reset();
      reset_side_tables(tp);
    }
    ARROW_ASSIGN_OR_RAISE(auto end, end_of(tp, start, marks.high));
    return PartitionProgress{start, end, marks.high, marks.low, last_record};
  }

  // Where reading `tp` from `start` stops: its high-water mark, or its endingOffsets before that.
  arrow::Result<KafkaOffset> end_of(const TopicPartitionId& tp, KafkaOffset start, KafkaOffset high) {
    KafkaOffset end = high;
    const auto rule = end_rule(table_, tp.topic, tp.partition);
    if (rule.kind == EndRule::Kind::kOffset) {
      end = std::max(start, std::min(end, KafkaOffset(rule.value)));
    } else if (rule.kind == EndRule::Kind::kTimestamp) {
      ARROW_ASSIGN_OR_RAISE(auto at, offset_at(tp, rule.value));
      end = std::max(start, std::min(end, at));
    }
    return end;
  }

  // The consumer that reads the records check_last_records compares: one beside the flow's (a
  // group member cannot assign at will; in assign mode, the flow's own consumer would wait for
  // the fetch it left open at the end of a partition and refetch what it read ahead).
  arrow::Result<kafka::RecordSource*> probe_consumer() {
    if (member_ || reader_) {
      auto& probe = member_ ? member_->probe : reader_->probe;
      if (!probe) {
        ARROW_ASSIGN_OR_RAISE(probe, kafka::Consumer::make_record_reader(table_.cluster, config_.kafka.at(table_.cluster),
                                                                         table_.consumer_group(config_.name)));
        ++report_.consumers_created;
      }
      return probe.get();
    }
    if (!probe_) {
      if (options_.record_sources) {
        ARROW_ASSIGN_OR_RAISE(probe_, options_.record_sources->record_reader(
                                          table_.cluster, config_.kafka.at(table_.cluster),
                                          table_.consumer_group(config_.name)));
      } else {
        ARROW_ASSIGN_OR_RAISE(probe_, kafka::Consumer::make_record_reader(table_.cluster, config_.kafka.at(table_.cluster),
                                                                          table_.consumer_group(config_.name)));
      }
      ++report_.consumers_created;
    }
    return probe_.get();
  }

  // The fingerprint this table committed for a partition, read at `next`.
  std::optional<kafka::RecordFingerprint> committed_fingerprint(const TopicPartitionId& tp, KafkaOffset next) const {
    auto version = commit_->recorded(commit_->ids().kafka_last_record(tp.topic, tp.partition));
    if (!version) return std::nullopt;
    return kafka::decode_fingerprint(*version, next);
  }

  // Records the table will never hold. An error unless fail_on_data_loss => false; then a
  // warning, and the range goes to the event log.
  // Progress of `tp` went back to the start of a re-created topic: so must the side tables'.
  void reset_side_tables(const TopicPartitionId& tp) const {
    commit_->reset(commit_->ids().kafka(tp.topic, tp.partition));
  }

  arrow::Status lose_data(KafkaDataLoss loss, const std::string& error) {
    if (table_.fail_on_data_loss) return arrow::Status::Invalid(error);
    auto same = [&](const KafkaDataLoss& l) {  // a group member re-plans on every rebase
      return l.topic == loss.topic && l.partition == loss.partition && l.from == loss.from && l.until == loss.until;
    };
    if (std::any_of(unlogged_losses_.begin(), unlogged_losses_.end(), same)) return arrow::Status::OK();
    std::fprintf(stderr, "sluice: warning: %s: Kafka %s[%d] %s: offsets from %lld%s were not read; going on at "
                 "offset %lld (fail_on_data_loss => false)\n", where().c_str(), loss.topic.c_str(), loss.partition,
                 loss.reason.c_str(), static_cast<long long>(loss.from),
                 loss.until ? fmt::format(" to {}", *loss.until - 1).c_str() : " on",
                 static_cast<long long>(loss.resumed_at));
    unlogged_losses_.push_back(std::move(loss));  // reported once a commit goes past it
    return arrow::Status::OK();
  }

  // A topic deleted and re-created starts its offsets again, so a recorded offset may lie
  // within the new topic. The record at the offset the table read last must still be the one
  // it read there; another one means the topic was re-created (data loss: the old topic's
  // unread records are gone). No record there any more (compaction, retention) proves nothing.
  arrow::Status check_last_records(std::map<TopicPartitionId, PartitionProgress>& planned) {
    std::vector<kafka::PartitionStart> at;
    for (const auto& [tp, prog] : planned) {
      if (prog.last_record && prog.last_record->offset >= prog.low && prog.last_record->offset < prog.high) {
        at.push_back({tp.topic, tp.partition, prog.last_record->offset});
      }
    }
    if (at.empty()) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto* probe, probe_consumer());
    auto found = probe->fingerprints_at(at, options_.metadata_timeout);
    if (!found.ok()) return with_context(found.status(), where());
    for (const auto& [tp, record] : *found) {
      auto& prog = planned.at(tp);
      if (!record || record->hash == prog.last_record->hash) continue;
      ARROW_RETURN_NOT_OK(lose_data(
          {"", tp.topic, tp.partition.value(), prog.next.value(), std::nullopt, prog.low.value(), "topic re-created"},
          fmt::format("{}: Kafka {} was deleted and re-created: the record at offset {} is not the one the "
                      "table read there (the table has read up to offset {}; the topic now holds offsets "
                      "{} to {}), so what the old topic held after that is lost; run a full refresh of the "
                      "table to start over, or set fail_on_data_loss => false to read the new topic from "
                      "its start (offset {})",
                      where(), topic_partition(tp), record->offset.value(), prog.next.value() - 1,
                      prog.low.value(), prog.high.value() - 1, prog.low.value())));
      prog.next = prog.low;
      ARROW_ASSIGN_OR_RAISE(prog.end, end_of(tp, prog.next, prog.high));  // planned from the old start
      prog.last_record.reset();
      reset_side_tables(tp);
    }
    return arrow::Status::OK();
  }

  // Assign mode: every partition of every selected topic.
  arrow::Status plan_offsets() {
    ARROW_ASSIGN_OR_RAISE(auto topics, resolve_topics());
    for (const auto& topic : topics) {
      ARROW_ASSIGN_OR_RAISE(auto partitions, asker()->partitions(topic, options_.metadata_timeout));
      for (auto p : partitions) {
        TopicPartitionId tp{topic, p};
        ARROW_ASSIGN_OR_RAISE(progress_[tp], plan_partition(tp));
      }
    }
    return check_last_records(progress_);
  }

  // max_offsets_per_trigger, one trigger (continuous runs): the budget shared among partitions
  // by their lag (as Spark does).
  void limit_trigger() {
    int64_t total_lag = 0;
    for (const auto& [tp, prog] : progress_) total_lag += prog.end.value() - prog.next.value();
    const int64_t budget = *table_.max_offsets_per_trigger;
    if (total_lag <= budget) return;
    for (auto& [tp, prog] : progress_) {
      prog.flow_end = prog.end;
      int64_t lag = prog.end.value() - prog.next.value();
      int64_t share = static_cast<int64_t>(static_cast<double>(budget) * lag / total_lag);
      prog.end = KafkaOffset(prog.next.value() + std::max<int64_t>(share, lag > 0 ? 1 : 0));
    }
  }

  arrow::Status consume_and_commit() {
    if (table_.max_offsets_per_trigger) {
      if (options_.trigger_limit == TriggerLimit::kOneTrigger) {
        limit_trigger();
      } else {
        // Everything available, a trigger's worth of records per commit. Read in one go: a
        // consumer assigned anew per trigger would first wait for the fetch it left open.
        commit_rows_ = std::min(commit_rows_, *table_.max_offsets_per_trigger);
      }
    }
    std::vector<kafka::PartitionStart> assignment;
    int64_t backlog = 0;
    for (const auto& [tp, prog] : progress_) {
      if (!prog.done()) assignment.push_back({tp.topic, tp.partition, prog.next});
      backlog += std::max<int64_t>(0, prog.end.value() - prog.next.value());
    }
    if (options_.progress) options_.progress->add_backlog(table_.table, backlog);
    if (assignment.empty()) {
      // Nothing new. A new table is still created, so readers can open it; progress that moved
      // without records (data loss: resumed at the end) is recorded, and the loss logged.
      if (!snapshot()) return commit();
      return commit_pending();
    }
    ARROW_RETURN_NOT_OK(source_->assign(assignment));
    ARROW_RETURN_NOT_OK(consume());
    return commit_pending();
  }

  // Group mode: this flow's member of the consumer group, kept across updates.
  arrow::Status run_as_group_member() {
    group_mode_ = true;
    const std::string key = config_.name + "/" + table_.flow;
    auto& slot = options_.group_members->slot(options_.group_members->members, key);
    if (!slot) {
      auto member = std::make_unique<KafkaGroupMembers::Member>();
      ARROW_ASSIGN_OR_RAISE(member->consumer,
                            kafka::Consumer::make_group_member(
                                table_.cluster, config_.kafka.at(table_.cluster),
                                table_.consumer_group(config_.name), member.get()));
      ++report_.consumers_created;
      auto st = member->consumer->subscribe(kafka::subscription(selection_));
      if (!st.ok()) return with_context(st, where());
      slot = std::move(member);
    }
    member_ = slot.get();
    consumer_ = member_->consumer.get();
    source_ = consumer_;
    // While this update runs, rebalances come here. Its read positions outlive it only when
    // it ends cleanly: a failed update may have taken messages from the consumer that it never
    // wrote (an error returned between a poll and its records), so the next one seeks every
    // partition to the table's offset instead of reading on from librdkafka's position.
    struct Attach {
      IngestRun* run;
      bool clean = false;
      ~Attach() {
        run->member_->run = nullptr;
        run->member_->positions.clear();
        if (!clean) {
          run->member_->reseek = true;
          return;
        }
        for (const auto& [tp, prog] : run->progress_) run->member_->positions[tp] = prog.next;
      }
    } attach{this};
    member_->run = this;
    for (const auto& [tp, next] : member_->positions) progress_[tp] = {next, next, next, KafkaOffset(0), std::nullopt};
    ARROW_RETURN_NOT_OK(rebase());
    ARROW_RETURN_NOT_OK(consume());
    ARROW_RETURN_NOT_OK(commit_pending_or_rebase());
    if (!snapshot()) {
      // A new table is still created, so readers can open it (racing members: one wins).
      auto st = commit();
      if (!st.ok() && !delta::is_commit_conflict(st)) return st;
      if (!st.ok()) ARROW_RETURN_NOT_OK(rebase());
    }
    attach.clean = callback_status_.ok();
    return arrow::Status::OK();
  }

  // The assign-mode reader of a triggered update: the test's records, or a Kafka consumer.
  arrow::Result<std::unique_ptr<kafka::RecordSource>> make_source() {
    if (!options_.record_sources) return make_consumer();
    ++report_.consumers_created;
    return options_.record_sources->reader(table_.cluster, config_.kafka.at(table_.cluster),
                                           table_.consumer_group(config_.name));
  }

  arrow::Result<std::unique_ptr<kafka::Consumer>> make_consumer() {
    ++report_.consumers_created;
    return kafka::Consumer::make(table_.cluster, config_.kafka.at(table_.cluster), table_.consumer_group(config_.name));
  }

  // Continuous runs keep an assign-mode consumer across updates unless an update's end is
  // planned from the broker's offsets (ending offsets, max_offsets_per_trigger), where a
  // consumer reading on past the end would have to seek back each time.
  bool keeps_reader() const {
    return options_.group_members && table_.group_mode == GroupMode::kAssign && !table_.max_offsets_per_trigger &&
           table_.ending_partition_timestamps.empty() && !table_.ending_timestamp &&
           table_.ending_partition_offsets.empty();
  }

  // Assign mode in a continuous run: the flow's consumer and its position, kept across
  // updates. An update plans from its kept position when the table still records it (else
  // another writer or a failed commit moved it: plan from the table and seek), with the
  // high-water marks of librdkafka's last fetch; every kReplanInterval, or after an error
  // event, it plans from the broker as a new consumer would. The record at each partition's
  // last offset is checked every update (a re-created topic), as before.
  arrow::Status run_kept_reader() {
    auto& slot = options_.group_members->slot(options_.group_members->readers, config_.name + "/" + table_.flow);
    if (!slot) {
      slot = std::make_unique<KafkaGroupMembers::Reader>();
      ARROW_ASSIGN_OR_RAISE(slot->consumer, make_consumer());
    }
    reader_ = slot.get();
    consumer_ = reader_->consumer.get();
    source_ = consumer_;
    ARROW_ASSIGN_OR_RAISE(asker_, probe_consumer());
    // Kept again only when this update ends cleanly.
    const auto kept = std::exchange(reader_->positions, {});
    const auto now = std::chrono::steady_clock::now();
    bool from_kept = !kept.empty() && !reader_->replan_now && now - reader_->planned_at < kReplanInterval;
    for (const auto& [tp, position] : kept) {
      if (!from_kept) break;
      auto marks = consumer_->cached_watermarks(tp.topic, tp.partition);
      if (committed_offset(tp) != position.next.value() || !marks) {
        from_kept = false;
        break;
      }
      const KafkaOffset high = std::max(marks->high, position.next);
      progress_[tp] = PartitionProgress{position.next, high, high, marks->low, position.last_record};
    }
    if (from_kept) {
      ARROW_RETURN_NOT_OK(check_last_records(progress_));
    } else {
      progress_.clear();
      planned_now_ = true;
      reader_->replan_now = false;
      reader_->planned_at = now;
      ARROW_RETURN_NOT_OK(plan_offsets());
    }
    // Every partition stays assigned, so librdkafka prefetches between updates; assigned anew
    // (its queue dropped) only where the plan does not start where the consumer is.
    bool in_place = kept.size() == progress_.size();
    for (const auto& [tp, prog] : progress_) {
      auto it = kept.find(tp);
      in_place = in_place && it != kept.end() && it->second.next == prog.next;
    }
    if (!in_place) {
      std::vector<kafka::PartitionStart> assignment;
      for (const auto& [tp, prog] : progress_) assignment.push_back({tp.topic, tp.partition, prog.next});
      ARROW_RETURN_NOT_OK(consumer_->assign(assignment));
    }
    if (!all_done()) ARROW_RETURN_NOT_OK(consume());
    ARROW_RETURN_NOT_OK(commit_pending());
    if (!snapshot()) ARROW_RETURN_NOT_OK(commit());  // a new table is created, so readers can open it
    for (const auto& [tp, prog] : progress_) reader_->positions[tp] = {prog.next, prog.last_record};
    return arrow::Status::OK();
  }

  // Group mode: re-reads the table and makes every owned partition read from its offset
  // there. Needs nothing pending. Starts partitions assigned while no update ran.
  // A partition is sought where the position this flow holds differs from the table's, and
  // every one after an assignment change or a failed update (member_->reseek): a cooperative
  // rebalance pauses all fetchers and resumes them at librdkafka's own "application
  // position", which is not the flow's (librdkafka 2.2-2.12 moves it one past a partition-EOF
  // event taken in a batch, librdkafka#4844: the record at the old end was skipped, or the
  // fetch failed as out of range at the high-water mark). A seek resets that position.
  arrow::Status rebase() {
    ARROW_RETURN_NOT_OK(commit_->reload());  // the table, its side tables and state
    ARROW_ASSIGN_OR_RAISE(auto owned, consumer_->assignment());
    std::map<TopicPartitionId, PartitionProgress> planned;
    for (const auto& tp : owned) {
      ARROW_ASSIGN_OR_RAISE(planned[tp], plan_partition(tp));
    }
    std::vector<TopicPartitionId> unstarted;
    for (const auto& tp : member_->unstarted) {
      if (planned.count(tp)) continue;
      ARROW_ASSIGN_OR_RAISE(planned[tp], plan_partition(tp));
      unstarted.push_back(tp);
    }
    ARROW_RETURN_NOT_OK(check_last_records(planned));
    for (const auto& tp : owned) {
      auto known = progress_.find(tp);
      if (member_->reseek || known == progress_.end() || known->second.next != planned.at(tp).next) {
        ARROW_RETURN_NOT_OK(consumer_->seek({tp.topic, tp.partition, planned.at(tp).next}, options_.metadata_timeout));
      }
    }
    std::vector<kafka::PartitionStart> starts;
    for (const auto& tp : unstarted) starts.push_back({tp.topic, tp.partition, planned.at(tp).next});
    if (!starts.empty()) ARROW_RETURN_NOT_OK(consumer_->add_partitions(starts));
    member_->unstarted.clear();
    member_->reseek = false;
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
    if (options_.progress) options_.progress->add_read(table_.table, batch->num_rows());
    ARROW_ASSIGN_OR_RAISE(auto* writer, commit_->writer());
    // Partitions with records to come that none of this batch's came from yet: an event-time
    // operator's watermark waits for them, whatever order the broker delivers partitions in.
    std::vector<std::string> awaited;
    for (const auto& [tp, prog] : progress_) {
      if (!prog.read && !prog.done()) awaited.push_back(fmt::format("{}/{}", tp.topic, tp.partition.value()));
    }
    // Decoding, the query and writing run on the stage's thread while this one reads on; every
    // commit and discard drains the stage first, so the operators' state (decoders, window
    // state, side tables) is only ever touched by one thread at a time.
    return stage_.submit([this, batch = std::move(batch), writer, awaited = std::move(awaited)]() mutable -> arrow::Status {
      std::shared_ptr<arrow::RecordBatch> rows = batch;
      if (table_.operators) {
        auto in = exec::OperatorBatch::from_source(batch);
        in.awaited_inputs = std::move(awaited);
        ARROW_ASSIGN_OR_RAISE(auto out, table_.operators->push(std::move(in)));
        rows = std::move(out.rows);
      }
      ARROW_RETURN_NOT_OK(writer->write(*rows));
      if (counts_rescued_) {  // the rows this commit writes that put something in `_rescued_data`
        const int rescued = rows->schema()->GetFieldIndex(format::kRescuedDataColumn);
        pending_rescue_rows_ += rows->num_rows();
        if (rescued >= 0) pending_rescued_ += rows->num_rows() - rows->column(rescued)->null_count();
      }
      commit_->publish(rows);  // to the flow reading this table in process, if any
      return arrow::Status::OK();
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
      source_->poll_batch(std::chrono::milliseconds(500), group_mode_ ? 1 : kPollBatch, polled_messages);
      ARROW_RETURN_NOT_OK(callback_status_);
      auto now = std::chrono::steady_clock::now();
      if (polled_messages.records().empty()) {
        if (!all_done() && now - last_progress > options_.stall_timeout) {
          // Retryable: a broker that went away may come back; what was committed stays.
          return mark_retryable(io_error(
              "{}: no records from Kafka {} for {} s although partitions are behind "
              "their end offsets ({})",
              where(), selection_.describe(), options_.stall_timeout.count() / 1000,
              source_->recent_errors()));
        }
        continue;
      }
      // The partition of the last message (a batch comes in runs of one partition's records);
      // forgotten after a commit, which may re-read the table and change progress_.
      const char* last_topic = nullptr;  // the topic name's address, the same for all its records
      KafkaPartition last_partition(-1);
      auto it = progress_.end();
      for (const kafka::RecordView& rec : polled_messages.records()) {
        if (rec.topic.data() != last_topic || rec.partition != last_partition) {
          last_topic = rec.topic.data();
          last_partition = rec.partition;
          it = !rec.topic.empty() ? progress_.find(TopicPartitionId{std::string(rec.topic), rec.partition})
                                  : progress_.end();
        }
        if (rec.kind == kafka::RecordKind::kPartitionEnd) {
          if (it == progress_.end()) continue;
          auto& prog = it->second;
          // EOF carries the next offset; gaps (compaction, transaction markers) end here too.
          const KafkaOffset eof = rec.offset;
          prog.next = std::max(prog.next, group_mode_ || reader_ ? eof : std::min(eof, prog.end));
          last_progress = now;
          continue;
        }
        if (rec.kind != kafka::RecordKind::kRecord) {
          if (rec.kind == kafka::RecordKind::kTransientError) {
            if (reader_) reader_->replan_now = true;  // the next update asks the broker again
            continue;  // librdkafka reconnects by itself; the stall timeout bounds the wait
          }
          if (rec.kind == kafka::RecordKind::kOffsetOutOfRange && it != progress_.end()) {
            ARROW_RETURN_NOT_OK(skip_lost_records(it->first, it->second));
            last_progress = now;
            continue;
          }
          auto error = io_error("{}: Kafka error on {}[{}] at offset {}: {}", where(),
                                !rec.topic.empty() ? rec.topic : std::string_view("?"), rec.partition.value(),
                                rec.offset.value(), rec.error_text());
          // A kept consumer's error may be about what changed since its last plan (a deleted
          // topic): once, the next update plans anew from the broker and tells what it finds.
          if (reader_ && !planned_now_) return mark_retryable(error);
          return error;
        }
        // Not ours (any more), or a redelivery. Assign mode also skips what lies beyond this
        // update's end; a group member or kept reader keeps its consumer, so it takes
        // everything it gets.
        if (it == progress_.end() || rec.offset < it->second.next || (!group_mode_ && !reader_ && it->second.done())) {
          continue;
        }
        last_progress = now;
        ARROW_RETURN_NOT_OK(builder_.append(rec));
        if (rec.timestamp_ms >= 0) {  // for the end-to-end latency of the commit that makes it visible
          pending_oldest_ms_ = std::min(pending_oldest_ms_.value_or(rec.timestamp_ms), rec.timestamp_ms);
          pending_newest_ms_ = std::max(pending_newest_ms_.value_or(rec.timestamp_ms), rec.timestamp_ms);
        }
        it->second.next = rec.offset.next();
        it->second.unsealed = &rec;
        it->second.read = true;
        ++uncommitted_rows_;
        uncommitted_bytes_ += static_cast<int64_t>((rec.value ? rec.value->size() : 0) + (rec.key ? rec.key->size() : 0));
        if (builder_.num_rows() >= options_.batch_rows ||
            builder_.payload_bytes() >= options_.batch_bytes) {
          ARROW_RETURN_NOT_OK(flush_batch());
        }
        if (uncommitted_rows_ >= commit_rows_ || uncommitted_bytes_ >= options_.commit_bytes ||
            (options_.commit_interval.count() > 0 && now - last_commit_ >= options_.commit_interval)) {
          ARROW_RETURN_NOT_OK(group_mode_ ? commit_pending_or_rebase() : commit_pending());
          last_topic = nullptr;
          it = progress_.end();
        }
      }
      seal_fingerprints();  // before the next poll destroys the batch's messages
    }
    return arrow::Status::OK();
  }

  // The read position left the partition while reading (retention deleted what was next, or the
  // topic was re-created with fewer records). librdkafka would silently jump to the end
  // (auto.offset.reset, which sluice sets to `error`); this is data loss like any other.
  arrow::Status skip_lost_records(const TopicPartitionId& tp, PartitionProgress& prog) {
    ARROW_ASSIGN_OR_RAISE(auto marks, asker()->watermarks(tp.topic, tp.partition, options_.metadata_timeout));
    if (prog.next >= marks.low && prog.next <= marks.high) {
      return mark_retryable(io_error("{}: Kafka {} could not be read at offset {} (out of range) although the "
                                     "topic holds offsets {} to {} now; retrying",
                                     where(), topic_partition(tp), prog.next.value(), marks.low.value(),
                                     marks.high.value() - 1));
    }
    const bool expired = prog.next < marks.low;
    const KafkaOffset resume = expired ? marks.low : marks.high;  // past the end: as in plan_partition
    ARROW_RETURN_NOT_OK(lose_data(
        {"", tp.topic, tp.partition.value(), prog.next.value(),
         expired ? std::optional<int64_t>(marks.low.value()) : std::nullopt, resume.value(),
         expired ? "expired" : kPastTheEnd},
        fmt::format("{}: Kafka {} lost data while the table read it: its next offset {} is no longer in the "
                    "topic, which now holds offsets {} to {} ({}); run a full refresh of the table to start "
                    "over, or set fail_on_data_loss => false to go on at offset {}",
                    where(), topic_partition(tp), prog.next.value(), marks.low.value(), marks.high.value() - 1,
                    expired ? "records expired by retention"
                            : "the log was truncated, e.g. by an unclean leader election, or the topic was "
                              "deleted and recreated",
                    resume.value())));
    prog.next = resume;
    if (!expired) {
      prog.last_record.reset();
      // The stage thread's operators read the side tables' progress: let them finish first.
      ARROW_RETURN_NOT_OK(stage_.drain());
      reset_side_tables(tp);
    }
    return source_->reassign({tp.topic, tp.partition, prog.next});
  }

  void seal_fingerprints() {
    for (auto& [tp, prog] : progress_) {
      if (prog.unsealed == nullptr) continue;
      prog.last_record = kafka::fingerprint_of(*prog.unsealed);
      prog.unsealed = nullptr;
    }
  }

  std::optional<int64_t> committed_offset(const TopicPartitionId& tp) const {
    return commit_->recorded(commit_->ids().kafka(tp.topic, tp.partition));
  }

  // Whether a commit now would record anything: rows, or offsets that moved.
  bool has_pending() const {
    if (builder_.num_rows() > 0 || commit_->has_writer()) return true;
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
    return commit();
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
    commit_->abort();
    uncommitted_rows_ = uncommitted_bytes_ = 0;
    // The dropped rows' Kafka timestamps are not those of the next commit's rows.
    pending_oldest_ms_.reset();
    pending_newest_ms_.reset();
    pending_rescue_rows_ = pending_rescued_ = 0;
  }

  // The protocol of a flow whose caller gave none: the target only.
  StreamingCommitOptions commit_options() const {
    StreamingCommitOptions o;
    o.pipeline = config_.id;
    o.flow = table_.flow;
    o.table = table_.table;
    o.table_path = config_.table_path(table_.table);
    o.objects = config_.objects;
    o.schema = table_.output_schema ? table_.output_schema : kafka::kafka_source_schema(table_.headers);
    o.snapshots = options_.snapshots.get();
    o.write.configuration = table_.properties;
    o.write.partition_columns = table_.partition_columns;
    o.write.clustering_columns = table_.clustering_columns;
    if (!table_.comment.empty()) o.write.description = table_.comment;
    o.write.file.columns_without_dictionary = kafka::kafka_columns_never_repeating(*o.schema);
    return o;
  }

  const delta::Snapshot* snapshot() const { return commit_->snapshot().get(); }

  // One Delta commit through the protocol: the data written so far (if any), every
  // partition's next offset and the fingerprint of the last record read from it.
  arrow::Status commit() {
    seal_fingerprints();
    auto progress = commit_->progress();
    for (const auto& [tp, prog] : progress_) {
      progress.kafka(tp.topic, tp.partition, prog.next);
      // The fingerprint is stored relative to `next`: rewritten whenever either moves.
      progress.kafka_last_record(
          tp.topic, tp.partition,
          prog.last_record ? kafka::encode_fingerprint(*prog.last_record, prog.next).value_or(-1) : -1);
    }
    const int64_t rows = commit_->pending_rows();
    nlohmann::json parameters = nlohmann::json::object();
    parameters["queryId"] = query_id_;
    parameters["epochId"] = std::to_string(epoch_++);
    auto result = commit_->commit(progress, parameters);
    if (!result.ok()) {
      // Its rows are re-read (a retry, a rebase) or the update fails: their timestamps are
      // gathered again when read again.
      pending_oldest_ms_.reset();
      pending_newest_ms_.reset();
      pending_rescue_rows_ = pending_rescued_ = 0;
      return with_context(result.status(), where());
    }
    // Only for a chain without state: a window, dedup or join holds rows back across commits
    // (a commit makes older records' results visible, not those read since the last one), so
    // its flow records no end-to-end latency (README, Metrics).
    const bool stateless = !table_.operators || !table_.operators->stateful();
    if (pending_oldest_ms_ && rows > 0 && stateless) {
      commit_timings().note_kafka_visible(config_.table_path(table_.table).string(), now_millis(),
                                            *pending_oldest_ms_, *pending_newest_ms_);
    }
    pending_oldest_ms_.reset();
    pending_newest_ms_.reset();
    if (counts_rescued_ && pending_rescue_rows_ > 0) {
      commit_timings().note_rescued(config_.table_path(table_.table).string(), pending_rescue_rows_, pending_rescued_);
    }
    pending_rescue_rows_ = pending_rescued_ = 0;
    if (!result->checkpoint_status.ok()) {
      std::fprintf(stderr, "sluice: warning: %s: checkpoint failed: %s\n", where().c_str(),
                   result->checkpoint_status.message().c_str());
    }
    // The skipped ranges are lost for good now that the progress past them is committed.
    for (auto& loss : unlogged_losses_) {
      if (table_.on_data_loss) table_.on_data_loss(loss);
      report_.data_loss.push_back(std::move(loss));
    }
    unlogged_losses_.clear();
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
    if (!offsets.empty()) (void)source_->commit_offsets(offsets);
    return arrow::Status::OK();
  }

  const PipelineConfig& config_;
  const KafkaFlowSpec& table_;
  IngestOptions options_;
  kafka::TopicSelection selection_;
  std::unique_ptr<kafka::RecordSource> owned_source_;  // assign mode: this update's reader
  kafka::Consumer* consumer_ = nullptr;  // a kept reader's or group member's consumer
  kafka::RecordSource* source_ = nullptr;  // what the flow reads: owned_source_ or consumer_
  std::unique_ptr<kafka::RecordSource> probe_;         // assign mode: reads the records to check
  KafkaGroupMembers::Member* member_ = nullptr;      // group mode
  KafkaGroupMembers::Reader* reader_ = nullptr;      // assign mode, kept across updates
  kafka::RecordSource* asker_ = nullptr;             // reader_: its probe (see asker())
  bool planned_now_ = false;                         // reader_: this update asked the broker
  bool group_mode_ = false;
  std::map<TopicPartitionId, PartitionProgress> progress_;
  std::string query_id_;
  int64_t epoch_ = 0;
  kafka::KafkaRecordBatchBuilder builder_;
  // The Kafka timestamps of the oldest and newest record read since the last commit.
  std::optional<int64_t> pending_oldest_ms_, pending_newest_ms_;
  // Rows written since the last commit, and those of them with a non-NULL `_rescued_data`:
  // added on the stage's thread, read and reset on this one after the stage drained.
  bool counts_rescued_ = false;
  int64_t pending_rescue_rows_ = 0, pending_rescued_ = 0;
  std::unique_ptr<StreamingCommit> owned_commit_;  // when the spec gives none
  StreamingCommit* commit_ = nullptr;              // the spec's or owned_commit_; holds the writer
  // After the commit (and its writer): destroyed first, its last job may still write.
  BackgroundStage stage_{"sluice-stage"};
  int64_t uncommitted_rows_ = 0, uncommitted_bytes_ = 0;
  int64_t commit_rows_ = options_.commit_rows;  // records per commit (at most)
  std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::now();
  arrow::Status callback_status_;  // first error inside a rebalance callback
  std::vector<KafkaDataLoss> unlogged_losses_;  // skipped ranges no commit has recorded yet
  IngestReport report_;
};

}  // namespace

arrow::Result<IngestReport> run_kafka_flow_once(const PipelineConfig& config, const KafkaFlowSpec& spec,
                                                const IngestOptions& options) {
  ARROW_RETURN_NOT_OK(check_storage_opened(config));
  arrow::Result<IngestReport> report;
  {
    IngestRun run(config, spec, options);
    report = run.run();
  }
  // The consumer is gone, but glibc keeps its freed prefetch memory (M_TRIM_THRESHOLD, holes
  // in the arenas): hand it back, or a triggered run's downstream flows (on Arrow's allocator)
  // stack their buffers on top of it (bronze + silver peaked at 555 MiB, bronze alone ~490).
  // Not per update of a continuous run, which would fault the pages in again at once.
  // Not under ASan, whose allocator replaces glibc's arenas (malloc_trim SEGVed in mtrim there).
  if (options.trigger_limit == TriggerLimit::kAllAvailable && !kUnderAddressSanitizer) malloc_trim(0);
  return report;
}

}  // namespace sluice::pipeline
