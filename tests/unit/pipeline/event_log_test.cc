// The event log read back: what an update wrote comes back in order with its details, a table
// without the log's columns is refused naming the column, and the numbers line of a
// flow_progress event carries every count of its details.
#include "sluice/pipeline/event_log.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "../temp_dir.h"

namespace sluice::pipeline {
namespace {

TEST(EventLogRead, NoLogYetIsNotAnError) {
  sluice::testing::TempDir dir;
  auto events = read_event_log(storage::local_store(), dir.path());
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_FALSE(events->has_value());
}

TEST(EventLogRead, ReadsBackWhatUpdatesWroteOldestFirst) {
  sluice::testing::TempDir dir;
  for (const char* update : {"u1", "u2"}) {
    EventLog log(dir.path(), "p", update);
    log.add({"flow_progress", "INFO", std::string("Flow 'a' has COMPLETED in ") + update, "a", "a",
             {{"flow_progress", {{"status", "COMPLETED"}}}}, update[1] == '1' ? 1000 : 2000});
    log.add({"update_progress", "INFO", "done", "", "", {}, update[1] == '1' ? 1001 : 2001});
    ASSERT_TRUE(log.flush().ok());
  }
  auto events = read_event_log(storage::local_store(), dir.path());
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_TRUE(events->has_value());
  const auto& e = **events;
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].update_id, "u1");
  EXPECT_EQ(e[0].dataset, "a");
  EXPECT_EQ(e[0].details["flow_progress"]["status"], "COMPLETED");
  EXPECT_EQ(e[1].event_type, "update_progress");
  EXPECT_EQ(e[1].dataset, "");  // null origin
  EXPECT_EQ(e[2].update_id, "u2");
  EXPECT_EQ(e[3].timestamp_micros, 2001);
}

// The server's cache: each data file is read once, what an append adds is read alone, and the
// result equals read_event_log's; an unchanged log gives back the same vector, not a copy.
TEST(EventLogCache, ReadsOnlyTheAppendedFilesAndAgreesWithAFullRead) {
  sluice::testing::TempDir dir;
  EventLogCache cache(storage::local_store(), dir.path());
  auto none = cache.read();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->events, nullptr);
  EXPECT_EQ(none->version, -1);
  EventLog log(dir.path(), "p", "u1");
  auto append = [&](int64_t ts) {
    log.add({"flow_progress", "INFO", "m", "a", "a", {{"n", ts}}, ts});
    ASSERT_TRUE(log.flush().ok());
  };
  append(3000);
  append(1000);  // an earlier timestamp in a later commit: the order is by time, then update and sequence
  auto first = cache.read();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_NE(first->events, nullptr);
  EXPECT_EQ(first->version, 1);
  EXPECT_EQ(cache.files_read(), 2);
  auto again = cache.read();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->events.get(), first->events.get());  // nothing appended: the same vector
  EXPECT_EQ(cache.files_read(), 2);
  append(2000);
  auto third = cache.read();
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(cache.files_read(), 3);  // the new file only
  auto full = read_event_log(storage::local_store(), dir.path());
  ASSERT_TRUE(full.ok() && full->has_value());
  ASSERT_EQ(third->events->size(), (*full)->size());
  std::vector<int64_t> got, want;
  for (const auto& e : *third->events) got.push_back(e.details["n"].get<int64_t>());
  for (const auto& e : **full) want.push_back(e.details["n"].get<int64_t>());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got, (std::vector<int64_t>{1000, 2000, 3000}));
}

TEST(EventLogRead, InvalidUtf8FromAnyCallerIsReplacedNotThrown) {
  // A cut multi-byte character (\xc3 without its continuation) and a stray byte, in the message,
  // the dataset name and a details string: flush() neither throws nor writes invalid UTF-8.
  sluice::testing::TempDir dir;
  const std::string cut = "caf\xc3";
  {
    EventLog log(dir.path(), "p", "u1");
    log.add({"alert", "WARN", "alert: " + cut, "a", "d\xff", {{"alert", {{"detail", cut + "..."}}}}, 1000});
    auto st = log.flush();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  auto events = read_event_log(storage::local_store(), dir.path());
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_TRUE(events->has_value());
  const auto& e = (**events).at(0);
  EXPECT_EQ(e.message, "alert: caf\xEF\xBF\xBD");
  EXPECT_EQ(e.dataset, "d\xEF\xBF\xBD");
  ASSERT_FALSE(e.details.is_discarded());
  EXPECT_EQ(e.details["alert"]["detail"], "caf\xEF\xBF\xBD...");
}

// A log deleted and written anew up to the same version is another log: the cache must not
// serve the old one's events (text `forget` scrubbed among them). Review finding 3 (dbfix).
TEST(EventLogCache, LogWrittenAnewToTheSameVersionIsReadAgain) {
  sluice::testing::TempDir dir;
  EventLogCache cache(storage::local_store(), dir.path());
  auto write = [&](const std::string& message) {
    EventLog log(dir.path(), "p", "u");
    for (int i = 0; i < 2; ++i) {
      log.add({"flow_progress", "INFO", message, "a", "a", {}, 1000 + i});
      ASSERT_TRUE(log.flush().ok());
    }
  };
  write("old secret");
  auto old = cache.read();
  ASSERT_TRUE(old.ok() && old->events) << old.status().ToString();
  ASSERT_EQ(old->version, 1);
  std::filesystem::remove_all(dir.path() / "system");
  write("new");
  auto fresh = cache.read();
  ASSERT_TRUE(fresh.ok() && fresh->events) << fresh.status().ToString();
  EXPECT_EQ(fresh->version, 1);
  ASSERT_EQ(fresh->events->size(), 2u);
  for (const auto& e : *fresh->events) EXPECT_EQ(e.message, "new");
}

// /api/stream reads what each commit appended, in commit order, whatever the events' times: an
// event stamped before one already streamed, committed later, is not skipped (review finding 1).
TEST(EventLogCache, AppendedSinceGivesEachCommitsRowsInCommitOrder) {
  sluice::testing::TempDir dir;
  EventLogCache cache(storage::local_store(), dir.path());
  EventLog a(dir.path(), "p", "ua");
  EventLog b(dir.path(), "p", "ub");
  a.add({"flow_progress", "INFO", "A", "a", "a", {}, 2'000'000});
  ASSERT_TRUE(a.flush().ok());  // version 0
  b.add({"flow_progress", "INFO", "B", "a", "a", {}, 1'500'000});
  b.add({"flow_progress", "INFO", "B2", "a", "a", {}, 1'600'000});
  ASSERT_TRUE(b.flush().ok());  // version 1: older times, a later commit
  a.add({"flow_progress", "INFO", "A2", "a", "a", {}, 3'000'000});
  ASSERT_TRUE(a.flush().ok());  // version 2
  auto got = cache.appended_since(1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->latest_version, 2);
  ASSERT_EQ(got->commits.size(), 2u);
  std::vector<std::string> messages;
  for (const auto& c : got->commits) {
    for (size_t i : c.rows) messages.push_back(std::to_string(c.version) + ":" + (*got->events)[i].message);
  }
  EXPECT_EQ(messages, (std::vector<std::string>{"1:B", "1:B2", "2:A2"}));
  auto none = cache.appended_since(3);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->commits.empty());
  // The events are held once: the appended rows point into the list read() returns.
  auto view = cache.read();
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->events.get(), got->events.get());
}

TEST(EventLogRead, BatchWithoutTheLogsColumnsIsRefusedNamingTheColumn) {
  auto schema = arrow::schema({arrow::field("timestamp", arrow::utf8())});
  arrow::StringBuilder b;
  ASSERT_TRUE(b.Append("x").ok());
  auto batch = arrow::RecordBatch::Make(schema, 1, {b.Finish().ValueOrDie()});
  auto events = events_from_batch(*batch);
  ASSERT_FALSE(events.ok());
  EXPECT_NE(events.status().message().find("column 'timestamp'"), std::string::npos) << events.status().message();
}

TEST(FlowProgressNumbers, DatasetLineCarriesEveryCount) {
  nlohmann::json details = {{"flow_progress",
                             {{"status", "COMPLETED"},
                              {"metrics", {{"num_input_rows", 10}, {"num_output_rows", 6}, {"num_dropped_rows", 2},
                                           {"num_quarantined_rows", 1}, {"num_dead_letter_rows", 1},
                                           {"backlog_records", 7}}},
                              {"data_quality",
                               {{"expectations",
                                 {{{"name", "positive"}, {"passed_records", 8}, {"failed_records", 2}},
                                  {{"name", "has_id"}, {"passed_records", 10}, {"failed_records", 0}}}}}},
                              {"table_version", 3},
                              {"duration_ms", 42}}}};
  EXPECT_EQ(flow_progress_numbers(details),
            "table version 3; 10 read, 6 written, 2 dropped, 1 quarantined, 1 dead-lettered; "
            "expectations positive: 8 passed/2 failed, has_id: 10 passed/0 failed; backlog 7; 42 ms");
}

TEST(FlowProgressNumbers, SinkLineHasNoDroppedRows) {
  nlohmann::json details = {{"flow_progress",
                             {{"status", "COMPLETED"},
                              {"metrics", {{"num_input_rows", 5}, {"num_output_rows", 5}}},
                              {"upstream_version", 9},
                              {"duration_ms", 3}}}};
  EXPECT_EQ(flow_progress_numbers(details), "upstream version 9; 5 read, 5 written; 3 ms");
}

TEST(FlowProgressNumbers, EventsWithoutMetricsHaveNone) {
  EXPECT_EQ(flow_progress_numbers({{"flow_progress", {{"status", "SKIPPED"}, {"reason", "upstream failed"}}}}), "");
  EXPECT_EQ(flow_progress_numbers({{"full_refresh", {{"table_version", 2}}}}), "");
  EXPECT_EQ(flow_progress_numbers(nlohmann::json::value_t::discarded), "");
}

}  // namespace
}  // namespace sluice::pipeline
