// /metrics from events and a catalog: counters summed over updates, gauges from the latest
// progress that recorded them, and the listen address and token rules of the server.
#include "sluice/server/pipeline_metrics.h"

#include <gtest/gtest.h>

#include "sluice/server/http_server.h"

namespace sluice::server {
namespace {

using nlohmann::json;

pipeline::StoredEvent progress(int64_t micros, const std::string& dataset, json flow_progress) {
  pipeline::StoredEvent e;
  e.timestamp_micros = micros;
  e.event_type = "flow_progress";
  e.dataset = dataset;
  e.flow = dataset;
  e.details = {{"flow_progress", std::move(flow_progress)}};
  return e;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(PipelineMetrics, CountersSumEveryUpdateAndGaugesTakeTheLatest) {
  std::vector<pipeline::StoredEvent> events = {
      progress(1'000'000, "bronze",
               {{"status", "COMPLETED"},
                {"duration_ms", 500},
                {"metrics", {{"num_input_rows", 10}, {"num_output_rows", 9}, {"num_dropped_rows", 1},
                             {"num_dead_letter_rows", 2}, {"backlog_records", 7},
                             {"kafka_lag", {{{"topic", "t\"x"}, {"partition", 0}, {"lag", 7}}}}}},
                {"data_quality", {{"expectations", {{{"name", "ok"}, {"passed_records", 9}, {"failed_records", 1}}}}}}}),
      progress(2'000'000, "bronze",
               {{"status", "FAILED"},
                {"duration_ms", 250},
                {"metrics", {{"num_input_rows", 5}, {"num_output_rows", 0}, {"num_dropped_rows", 0},
                             {"num_dead_letter_rows", 1}}},
                {"data_quality", {{"expectations", {{{"name", "ok"}, {"passed_records", 4}, {"failed_records", 1}}}}}}}),
      progress(3'000'000, "bronze", {{"reset", true}}),  // a full refresh's reset: no status, not an update
  };
  const json status = {{"pipeline", "p"}, {"healthy", false}, {"datasets", json::array({json{{"name", "bronze"}}})}};
  MetricsInputs in;
  in.status = &status;
  in.events = &events;
  in.now_micros = 10'000'000;
  auto text = pipeline_metrics_text(in);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const std::string labels = "pipeline=\"p\",dataset=\"bronze\",flow=\"bronze\"";
  EXPECT_TRUE(has_line(*text, "sluice_pipeline_healthy{pipeline=\"p\"} 0")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_input_rows_total{" + labels + "} 15")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_output_rows_total{" + labels + "} 9")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_dropped_rows_total{" + labels + "} 1")) << *text;
  // The key sql_runner writes (metrics.num_dead_letter_rows), summed over every update.
  EXPECT_TRUE(has_line(*text, "sluice_flow_dead_lettered_rows_total{" + labels + "} 3")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_updates_total{" + labels + ",status=\"COMPLETED\"} 1")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_updates_total{" + labels + ",status=\"FAILED\"} 1")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_update_duration_seconds_total{" + labels + "} 0.75")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_last_update_duration_seconds{" + labels + "} 0.25")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_last_update_timestamp_seconds{" + labels + "} 2")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_failed{" + labels + "} 1")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_expectation_passed_records_total{" + labels + ",expectation=\"ok\"} 13")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_expectation_failed_records_total{" + labels + ",expectation=\"ok\"} 2")) << *text;
  // The lag of the latest update that measured it (the FAILED one did not), label escaped.
  EXPECT_TRUE(has_line(*text, "sluice_kafka_lag_records{" + labels + ",topic=\"t\\\"x\",partition=\"0\"} 7")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_kafka_backlog_records{" + labels + "} 7")) << *text;
  // Nothing recorded, nothing written: no quarantine, watermark or state series.
  EXPECT_EQ(text->find("sluice_flow_quarantined_rows_total{"), std::string::npos);
  EXPECT_EQ(text->find("sluice_watermark_timestamp_seconds{"), std::string::npos);
  EXPECT_EQ(text->find("process_cpu_seconds_total "), std::string::npos);  // no process usage given
}

TEST(PipelineMetrics, OnlyDatasetsThePipelineDefinesNowHaveSeries) {
  // "gone" was removed from the SQL after it failed: its events stay in the log, its series go.
  std::vector<pipeline::StoredEvent> events = {
      progress(1'000'000, "gone", {{"status", "FAILED"}, {"metrics", {{"num_input_rows", 3}}}}),
      progress(2'000'000, "kept", {{"status", "COMPLETED"}, {"metrics", {{"num_input_rows", 4}}}}),
  };
  const json status = {{"pipeline", "p"}, {"healthy", true}, {"datasets", json::array({json{{"name", "kept"}}})}};
  MetricsInputs in;
  in.status = &status;
  in.events = &events;
  in.now_micros = 10'000'000;
  auto text = pipeline_metrics_text(in);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_TRUE(has_line(*text, "sluice_flow_input_rows_total{pipeline=\"p\",dataset=\"kept\",flow=\"kept\"} 4")) << *text;
  EXPECT_EQ(text->find("dataset=\"gone\""), std::string::npos) << *text;
}

TEST(PipelineMetrics, RescuedRowsAreSummedOnlyWhereRecorded) {
  // An event written before rs has no rescued_data; a table without the column never has one.
  std::vector<pipeline::StoredEvent> events = {
      progress(1'000'000, "b", {{"status", "COMPLETED"}, {"metrics", {{"num_output_rows", 9}}}}),
      progress(2'000'000, "b", {{"status", "COMPLETED"}, {"metrics", {{"num_output_rows", 20}}},
                                {"rescued_data", {{"num_rows", 20}, {"num_rescued_rows", 5}, {"rescued_rate", 0.25}}}}),
      progress(3'000'000, "b", {{"status", "COMPLETED"}, {"metrics", {{"num_output_rows", 4}}},
                                {"rescued_data", {{"num_rows", 4}, {"num_rescued_rows", 2}, {"rescued_rate", 0.5}}}}),
      // A FAILED update whose first commit landed: its report was dropped (num_output_rows 0), the
      // rows that commit wrote are counted in rescued_data.
      progress(3'500'000, "b", {{"status", "FAILED"}, {"metrics", {{"num_output_rows", 0}}},
                                {"rescued_data", {{"num_rows", 6}, {"num_rescued_rows", 3}, {"rescued_rate", 0.5}}}}),
      progress(3'000'000, "s", {{"status", "COMPLETED"}, {"metrics", {{"num_output_rows", 4}}}}),
  };
  const json status = {{"pipeline", "p"}, {"healthy", true}, {"datasets", {{{"name", "b"}}, {{"name", "s"}}}}};
  MetricsInputs in;
  in.status = &status;
  in.events = &events;
  in.now_micros = 10'000'000;
  auto text = pipeline_metrics_text(in);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_TRUE(has_line(*text, "sluice_rescued_rows_total{pipeline=\"p\",dataset=\"b\",flow=\"b\"} 10")) << *text;
  // The rate's denominator: rows the Kafka flow wrote to the table (not num_output_rows: 33).
  EXPECT_TRUE(has_line(*text, "sluice_rescue_rows_written_total{pipeline=\"p\",dataset=\"b\",flow=\"b\"} 30")) << *text;
  EXPECT_EQ(text->find("sluice_rescued_rows_total{pipeline=\"p\",dataset=\"s\""), std::string::npos) << *text;
  EXPECT_EQ(text->find("sluice_rescue_rows_written_total{pipeline=\"p\",dataset=\"s\""), std::string::npos) << *text;
}

TEST(PipelineMetrics, TablesWatermarkStateAndCost) {
  std::vector<pipeline::StoredEvent> events = {
      progress(5'000'000, "w", {{"status", "COMPLETED"},
                                {"metrics", {{"num_input_rows", 2'000'000}, {"num_output_rows", 1}, {"num_late_rows", 3},
                                             {"state_rows", 4}, {"state_bytes", 400}, {"watermark_micros", 4'000'000}}}}),
  };
  const json status = {{"pipeline", "p"}, {"healthy", true},
                       {"datasets", {{{"name", "w"}, {"reads_kafka", true}}}}};
  const json catalog = {{"datasets", {{{"name", "w"}, {"exists", true}, {"version", 3}, {"num_rows", 5},
                                       {"num_files", 2}, {"size_bytes", 1000}, {"last_update_ms", 6000}},
                                      {{"name", "v"}, {"kind", "view"}}}}};
  MetricsInputs in;
  in.status = &status;
  in.catalog = &catalog;
  in.events = &events;
  in.now_micros = 10'000'000;
  in.process = ProcessUsage{36.0, 1 << 20, 1.0};
  in.cpu_price_per_hour = 2.0;
  in.run_started_micros = 0;
  auto text = pipeline_metrics_text(in);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const std::string labels = "pipeline=\"p\",dataset=\"w\",flow=\"w\"";
  EXPECT_TRUE(has_line(*text, "sluice_flow_late_rows_total{" + labels + "} 3")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_state_rows{" + labels + "} 4")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_state_bytes{" + labels + "} 400")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_watermark_timestamp_seconds{" + labels + "} 4")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_event_time_lag_seconds{" + labels + "} 6")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_table_version{pipeline=\"p\",dataset=\"w\"} 3")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_table_rows{pipeline=\"p\",dataset=\"w\"} 5")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_table_size_bytes{pipeline=\"p\",dataset=\"w\"} 1000")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_table_files{pipeline=\"p\",dataset=\"w\"} 2")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_table_last_commit_timestamp_seconds{pipeline=\"p\",dataset=\"w\"} 6")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_table_freshness_seconds{pipeline=\"p\",dataset=\"w\"} 4")) << *text;
  EXPECT_EQ(text->find("dataset=\"v\""), std::string::npos) << "a view has no table";
  EXPECT_TRUE(has_line(*text, "process_cpu_seconds_total 36")) << *text;
  EXPECT_TRUE(has_line(*text, "process_resident_memory_bytes 1048576")) << *text;
  EXPECT_TRUE(has_line(*text, "process_start_time_seconds 1")) << *text;
  // 36 CPU seconds at 2 per hour = 0.02, over 2 million records: 0.01 per million.
  EXPECT_TRUE(has_line(*text, "sluice_cost_per_million_records{pipeline=\"p\"} 0.01")) << *text;
}

TEST(ProcessUsage, ReadsThisProcess) {
  auto usage = process_usage();
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  EXPECT_GT(usage->resident_bytes, 0);
  EXPECT_GE(usage->cpu_seconds, 0);
  EXPECT_GT(usage->start_time_seconds, 1.6e9);
}

TEST(ListenAddress, ParsesHostsAndPorts) {
  auto a = parse_listen_address("127.0.0.1:0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 0);
  EXPECT_TRUE(is_loopback(*a));
  auto v6 = parse_listen_address("[::1]:9000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(is_loopback(*v6));
  auto any = parse_listen_address("0.0.0.0:8080");
  ASSERT_TRUE(any.ok());
  EXPECT_FALSE(is_loopback(*any));
  EXPECT_TRUE(is_loopback(*parse_listen_address("localhost:1")));
}

TEST(ListenAddress, ErrorsNameTheText) {
  for (const char* bad : {"8080", "127.0.0.1:http", "127.0.0.1:70000", "example.com:80", "1.2.3:80"}) {
    auto a = parse_listen_address(bad);
    ASSERT_FALSE(a.ok()) << bad;
    EXPECT_NE(a.status().message().find(bad), std::string::npos) << a.status().message();
  }
}

TEST(Token, MatchesOnlyTheSameText) {
  EXPECT_TRUE(token_matches("s3cret", "s3cret"));
  EXPECT_FALSE(token_matches("s3cre", "s3cret"));
  EXPECT_FALSE(token_matches("", "s3cret"));
  EXPECT_FALSE(token_matches("s3cret ", "s3cret"));
}

// A reader with nothing to read: the server is started and stopped, never asked.
class EmptyReader : public PipelineReader {
 public:
  nlohmann::json pipeline() const override { return nlohmann::json::object(); }
  arrow::Result<nlohmann::json> status(nlohmann::json*,
                                       const arrow::Result<pipeline::SharedEvents>&) const override {
    return nlohmann::json::object();
  }
  arrow::Result<pipeline::EventLogView> event_log() const override { return pipeline::EventLogView{}; }
  arrow::Result<pipeline::AppendedEvents> appended_since(int64_t) const override { return pipeline::AppendedEvents{}; }
  arrow::Result<nlohmann::json> kpi_series(const pipeline::KpiConfig&) const override {
    return nlohmann::json::object();
  }
};

TEST(HttpServer, StopRightAfterStartReturns) {
  // httplib misses a stop() issued before its listen loop runs, and the join then waits forever:
  // Start returns only once the loop runs. A hang here fails the test by ctest's timeout.
  auto reader = std::make_shared<EmptyReader>();
  for (int i = 0; i < 50; ++i) {
    ServerOptions options;
    options.listen = {"127.0.0.1", 0};
    auto server = HttpServer::Start(options, reader);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    (*server)->stop();
  }
}

}  // namespace
}  // namespace sluice::server

namespace sluice::server {
namespace {

TEST(PipelineMetrics, CommitLatencyEndToEndLatencyAndEventTimeLagFromProgress) {
  // An event written before kp (no "commits", no end-to-end fields) still reads, counting nothing.
  std::vector<pipeline::StoredEvent> events = {
      progress(1'000'000, "bronze", {{"status", "COMPLETED"}, {"metrics", {{"num_input_rows", 1}}}}),
      progress(2'000'000, "bronze",
               {{"status", "COMPLETED"},
                {"commits", {{"num_commits", 3}, {"total_duration_ms", 120.0}, {"max_duration_ms", 80.0}}},
                {"metrics", {{"num_input_rows", 9}, {"end_to_end_latency_max_ms", 4500},
                             {"end_to_end_latency_min_ms", 250}, {"newest_kafka_timestamp_ms", 7'000}}}}),
      progress(3'000'000, "bronze",
               {{"status", "COMPLETED"},
                {"commits", {{"num_commits", 1}, {"total_duration_ms", 30.0}, {"max_duration_ms", 30.0}}},
                {"metrics", {{"num_input_rows", 0}}}}),
      // A windowed flow: its event-time lag is the watermark's, not the Kafka timestamps'.
      progress(3'000'000, "windows",
               {{"status", "COMPLETED"},
                {"metrics", {{"watermark_micros", 4'000'000}, {"end_to_end_latency_max_ms", 10},
                             {"end_to_end_latency_min_ms", 5}, {"newest_kafka_timestamp_ms", 9'000}}}}),
  };
  const json status = {{"pipeline", "p"},
                       {"healthy", true},
                       {"datasets", json::array({json{{"name", "bronze"}}, json{{"name", "windows"}}})}};
  MetricsInputs in;
  in.status = &status;
  in.events = &events;
  in.now_micros = 10'000'000;
  auto text = pipeline_metrics_text(in);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const std::string labels = "pipeline=\"p\",dataset=\"bronze\",flow=\"bronze\"";
  EXPECT_TRUE(has_line(*text, "sluice_flow_commits_total{" + labels + "} 4")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_commit_duration_seconds_total{" + labels + "} 0.15")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_flow_last_commit_duration_max_seconds{" + labels + "} 0.03")) << *text;
  // From the latest update that committed Kafka records (the one before the last).
  EXPECT_TRUE(has_line(*text, "sluice_end_to_end_latency_max_seconds{" + labels + "} 4.5")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_end_to_end_latency_min_seconds{" + labels + "} 0.25")) << *text;
  EXPECT_TRUE(has_line(*text, "sluice_event_time_lag_seconds{" + labels + "} 3")) << *text;  // 10 s - 7 s
  const std::string windows = "pipeline=\"p\",dataset=\"windows\",flow=\"windows\"";
  EXPECT_TRUE(has_line(*text, "sluice_event_time_lag_seconds{" + windows + "} 6")) << *text;  // 10 s - 4 s
  EXPECT_EQ(text->find("sluice_flow_commits_total{" + windows), std::string::npos);
}

}  // namespace
}  // namespace sluice::server
