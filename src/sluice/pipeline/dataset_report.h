// What one run of a dataset did: rows in and out, expectation counts, side-table rows, the
// table version it left, Kafka backlog. Reported to the CLI and the event log.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::pipeline {

// Kafka records a flow skipped for good (fail_on_data_loss => false): offsets [from, until) of
// a partition, until unknown when the topic was deleted and re-created (what the old topic
// held after `from` cannot be asked any more). Reading went on at `resumed_at`.
struct KafkaDataLoss {
  std::string flow;  // set by the SQL runner
  std::string topic;
  int32_t partition = 0;
  int64_t from = 0;
  std::optional<int64_t> until;
  int64_t resumed_at = 0;
  std::string reason;  // "expired" or "topic re-created"
};

// How far a Kafka partition's table lags behind the partition: the offset the table reads next,
// the high-water mark the update saw (at its start, or librdkafka's last fetch for a kept
// consumer), and the records between them.
struct KafkaPartitionLag {
  std::string topic;
  int32_t partition = 0;
  int64_t next_offset = 0;
  int64_t high_water_mark = 0;
  int64_t lag = 0;
};

struct DatasetReport {
  std::string dataset;
  std::string kind;
  int64_t rows_read = 0;
  int64_t rows_written = 0;
  // Streaming tables reading a stored table: rows taken in process from its writer this run
  // (commit_channel.h), and rows read from its files.
  int64_t rows_in_process = 0;
  int64_t rows_from_files = 0;
  int64_t version = -1;
  std::map<std::string, int64_t> expectation_failures;  // per constraint
  std::map<std::string, int64_t> expectation_rows;      // rows each constraint was checked on
  int64_t duration_ms = 0;
  int64_t rows_dropped = 0;
  int64_t rows_quarantined = 0;    // rows written to <table>_quarantine
  int64_t rows_dead_lettered = 0;  // records that could not be decoded at all
  std::optional<int64_t> backlog;
  std::vector<KafkaPartitionLag> kafka_lag;  // per partition read this update (sums to backlog)
  std::optional<int64_t> kafka_consumers_created;  // continuous runs: consumers this update made
  std::vector<KafkaDataLoss> data_loss;  // each range as its own data_loss event
  // Windowed flows: rows behind the watermark, the open windows' state and the watermark.
  int64_t rows_late = 0;
  int64_t rows_duplicate = 0;  // SELECT DISTINCT: rows dropped as duplicates
  std::optional<int64_t> state_rows;
  std::optional<int64_t> state_bytes;
  // Materialized views: "incremental" or "full", and why.
  std::optional<std::string> refresh_mode;
  std::string refresh_reason;
  std::optional<int64_t> watermark;  // µs since the epoch  // Kafka records behind the end offsets after the update
};

}  // namespace sluice::pipeline
