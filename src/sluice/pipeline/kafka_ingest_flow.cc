// The bronze flow: Kafka topic -> Delta table, exactly once.
#include "sluice/pipeline/kafka_ingest_flow.h"

#include <arrow/record_batch.h>
#include <librdkafka/rdkafkacpp.h>

#include <cstdio>
#include <map>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/kafka/consumer.h"
#include "sluice/kafka/source_schema.h"

namespace sluice::pipeline {

namespace {

struct PartitionProgress {
  KafkaOffset next;  // next offset to read (= txn version)
  KafkaOffset end;   // high-water mark at start: the run stops there
  KafkaOffset high;  // high-water mark at start (end may be lower: ending offsets, rate limit)
  bool done() const { return next >= end; }
};

class IngestRun {
 public:
  IngestRun(const PipelineConfig& config, const KafkaFlowSpec& table, const IngestOptions& options)
      : config_(config),
        table_(table),
        options_(options),
        store_(std::make_shared<delta::LogStore>(config.table_path(table.table))),
        query_id_(random_uuid()) {
    report_.table = table.table;
    report_.topic = table.topic;
  }

  arrow::Result<IngestReport> run() {
    ARROW_ASSIGN_OR_RAISE(snapshot_, delta::load_latest_if_exists(*store_));
    ARROW_ASSIGN_OR_RAISE(consumer_, kafka::Consumer::make(table_.cluster,
                                                           config_.kafka.at(table_.cluster),
                                                           "sluice-" + config_.name));
    ARROW_RETURN_NOT_OK(plan_offsets());
    ARROW_RETURN_NOT_OK(consume_and_commit());
    report_.table_version = snapshot_ ? snapshot_->version().value() : -1;
    for (const auto& [p, prog] : progress_) report_.backlog += std::max<int64_t>(0, prog.high.value() - prog.next.value());
    return report_;
  }

 private:
  std::string where() const {
    return fmt::format("pipeline '{}', table '{}'", config_.name, table_.table);
  }

  // Decides, per partition, where this run starts (the committed txn, else starting_offsets)
  // and ends (the high-water mark now).
  arrow::Status plan_offsets() {
    ARROW_ASSIGN_OR_RAISE(auto partitions,
                          consumer_->partitions(table_.topic, options_.metadata_timeout));
    for (auto p : partitions) {
      ARROW_ASSIGN_OR_RAISE(auto marks,
                            consumer_->watermarks(table_.topic, p, options_.metadata_timeout));
      const auto app_id = kafka_txn_app_id(config_.name, table_.flow, table_.topic, p);
      std::optional<int64_t> committed = snapshot_ ? snapshot_->txn_version(app_id) : std::nullopt;
      if (committed && *committed < 0) committed.reset();  // reset by a full refresh
      KafkaOffset start = committed ? KafkaOffset(*committed)
                          : table_.starting_offsets == StartingOffsets::kEarliest ? marks.low
                                                                                  : marks.high;
      if (!committed) {
        if (auto it = table_.starting_partition_offsets.find(p.value()); it != table_.starting_partition_offsets.end()) {
          start = it->second == -2 ? marks.low : it->second == -1 ? marks.high : KafkaOffset(it->second);
        }
      }
      if (start < marks.low && !table_.fail_on_data_loss) {
        std::fprintf(stderr, "sluice: warning: %s: Kafka %s[%d] offsets %lld..%lld expired; continuing at %lld "
                     "(fail_on_data_loss => false)\n", where().c_str(), table_.topic.c_str(), p.value(),
                     static_cast<long long>(start.value()), static_cast<long long>(marks.low.value() - 1),
                     static_cast<long long>(marks.low.value()));
        start = marks.low;
      }
      if (start < marks.low) {
        return invalid(
            "{}: Kafka {}[{}] lost data: the table has read up to offset {} but the topic now "
            "starts at offset {} (records expired by retention or the topic was recreated); "
            "run a full refresh of the table to start over",
            where(), table_.topic, p.value(), start.value(), marks.low.value());
      }
      if (start > marks.high) {
        return invalid(
            "{}: Kafka {}[{}] ends at offset {} but the table has already read up to {} (was the "
            "topic deleted and recreated?); run a full refresh of the table to start over",
            where(), table_.topic, p.value(), marks.high.value(), start.value());
      }
      KafkaOffset end = marks.high;
      if (auto it = table_.ending_partition_offsets.find(p.value()); it != table_.ending_partition_offsets.end() &&
                                                                      it->second >= 0) {
        end = std::max(start, std::min(end, KafkaOffset(it->second)));
      }
      progress_[p] = PartitionProgress{start, end, marks.high};
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
    for (const auto& [p, prog] : progress_) {
      if (!prog.done()) assignment.push_back({table_.topic, p, prog.next});
    }
    if (assignment.empty()) {
      // Nothing new. A new table is still created, so readers can open it.
      if (!snapshot_) ARROW_RETURN_NOT_OK(commit(nullptr));
      return arrow::Status::OK();
    }
    ARROW_RETURN_NOT_OK(consumer_->assign(assignment));

    kafka::KafkaRecordBatchBuilder builder;
    std::unique_ptr<delta::TableWriter> writer;
    int64_t uncommitted_rows = 0, uncommitted_bytes = 0;
    auto last_progress = std::chrono::steady_clock::now();
    auto last_commit = last_progress;

    auto flush_batch = [&]() -> arrow::Status {
      if (builder.num_rows() == 0) return arrow::Status::OK();
      ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatch> batch, builder.finish());
      report_.rows_read += batch->num_rows();
      if (table_.transform) {
        ARROW_ASSIGN_OR_RAISE(batch, table_.transform(*batch));
      }
      if (!writer) {
        ARROW_ASSIGN_OR_RAISE(writer, make_writer());
      }
      return writer->write(*batch);
    };
    auto all_done = [&] {
      for (const auto& [p, prog] : progress_) {
        if (!prog.done()) return false;
      }
      return true;
    };

    while (!all_done() && !options_.stopping()) {
      auto msg = consumer_->poll(std::chrono::milliseconds(500));
      auto now = std::chrono::steady_clock::now();
      if (!msg) {
        if (now - last_progress > options_.stall_timeout) {
          // Retryable: a broker that went away may come back; what was committed stays.
          return mark_retryable(io_error(
              "{}: no records from Kafka topic '{}' for {} s although partitions are behind "
              "their end offsets ({})",
              where(), table_.topic, options_.stall_timeout.count() / 1000,
              consumer_->recent_errors()));
        }
        continue;
      }
      const auto err = msg->err();
      if (err == RdKafka::ERR__PARTITION_EOF) {
        auto& prog = progress_[KafkaPartition(msg->partition())];
        // EOF carries the next offset; gaps (compaction, transaction markers) end here too.
        prog.next = std::max(prog.next, std::min(KafkaOffset(msg->offset()), prog.end));
        last_progress = now;
        continue;
      }
      if (err != RdKafka::ERR_NO_ERROR) {
        if (err == RdKafka::ERR__TRANSPORT || err == RdKafka::ERR__ALL_BROKERS_DOWN) {
          continue;  // librdkafka reconnects by itself; the stall timeout bounds the wait
        }
        return io_error("{}: Kafka error on {}[{}] at offset {}: {}", where(), table_.topic,
                        msg->partition(), msg->offset(), msg->errstr());
      }
      auto it = progress_.find(KafkaPartition(msg->partition()));
      if (it == progress_.end() || it->second.done() || msg->offset() < it->second.next.value()) {
        continue;  // beyond this run's end, or a redelivery
      }
      last_progress = now;
      ARROW_RETURN_NOT_OK(builder.append(*msg));
      it->second.next = KafkaOffset(msg->offset() + 1);
      ++uncommitted_rows;
      uncommitted_bytes += static_cast<int64_t>(msg->len() + msg->key_len());
      if (builder.num_rows() >= options_.batch_rows) ARROW_RETURN_NOT_OK(flush_batch());
      if (uncommitted_rows >= options_.commit_rows || uncommitted_bytes >= options_.commit_bytes ||
          (options_.commit_interval.count() > 0 && now - last_commit >= options_.commit_interval)) {
        ARROW_RETURN_NOT_OK(flush_batch());
        ARROW_RETURN_NOT_OK(commit(std::move(writer)));
        uncommitted_rows = uncommitted_bytes = 0;
        last_commit = now;
      }
    }
    ARROW_RETURN_NOT_OK(flush_batch());
    return commit(std::move(writer));
  }

  arrow::Result<std::unique_ptr<delta::TableWriter>> make_writer() const {
    delta::WriteOptions options;
    options.table_name = table_.table;
    options.configuration = table_.properties;
    options.partition_columns = table_.partition_columns;
    if (!table_.comment.empty()) options.description = table_.comment;
    const auto& schema = table_.output_schema ? table_.output_schema : kafka::kafka_source_schema();
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
    std::map<std::string, int64_t> progress;
    for (const auto& [p, prog] : progress_) {
      const auto app_id = kafka_txn_app_id(config_.name, table_.flow, table_.topic, p);
      progress[app_id] = prog.next.value();
      auto committed = snapshot_ ? snapshot_->txn_version(app_id) : std::nullopt;
      if (committed && *committed == prog.next.value()) continue;  // unchanged
      txn->set_txn(app_id, prog.next.value());
    }
    if (table_.pre_commit) {
      auto st = table_.pre_commit(progress);
      if (!st.ok()) {
        writer->abort();
        return with_context(st, where());
      }
    }
    delta::CommitOptions options;
    options.operation = "STREAMING UPDATE";
    options.operation_parameters = {{"outputMode", "Append"},
                                    {"queryId", query_id_},
                                    {"epochId", std::to_string(epoch_++)}};
    options.operation_metrics = {{"numAddedFiles", std::to_string(txn->adds().size())},
                                 {"numOutputRows", std::to_string(rows)},
                                 {"numOutputBytes", std::to_string(writer->bytes_written())},
                                 {"numRemovedFiles", "0"}};
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

    // Consumer-group offsets follow the Delta commit; they only feed lag monitoring.
    std::vector<kafka::PartitionStart> offsets;
    for (const auto& [p, prog] : progress_) offsets.push_back({table_.topic, p, prog.next});
    (void)consumer_->commit_offsets(offsets);
    return arrow::Status::OK();
  }

  const PipelineConfig& config_;
  const KafkaFlowSpec& table_;
  IngestOptions options_;
  std::shared_ptr<delta::LogStore> store_;
  std::shared_ptr<const delta::Snapshot> snapshot_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::map<KafkaPartition, PartitionProgress> progress_;
  std::string query_id_;
  int64_t epoch_ = 0;
  IngestReport report_;
};

}  // namespace

std::string kafka_txn_app_id(const std::string& pipeline, const std::string& flow,
                             const std::string& topic, KafkaPartition partition) {
  return fmt::format("{}/{}/{}/{}", pipeline, flow, topic, partition.value());
}

arrow::Result<IngestReport> run_kafka_flow_once(const PipelineConfig& config, const KafkaFlowSpec& spec,
                                                const IngestOptions& options) {
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
