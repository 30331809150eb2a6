// Test rows for the event-time operators: (k STRING, ts TIMESTAMP, v BIGINT) events given in
// minutes, made into Arrow batches, and select plans over that source.
#pragma once

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "sluice/exec/select_plan.h"
#include "sluice/sql/parser.h"

namespace sluice::exec::testing {

constexpr int64_t kMinute = 60'000'000;

struct Event {
  std::string key;
  int64_t minute;  // event time in minutes
  int64_t value;
};

// Owns the parsed SQL a plan points into; one per test fixture.
class EventSource {
 public:
  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }

  // The plan of `CREATE OR REFRESH STREAMING TABLE t AS <select>`, every table read as this source.
  SelectPlan plan(const std::string& select) {
    file_ = sql::SourceFile{"t.sql", "CREATE OR REFRESH STREAMING TABLE t AS " + select + ";"};
    statements_ = sql::parse_statements(file_).ValueOrDie();
    auto lookup = [this](const std::string&) -> arrow::Result<std::shared_ptr<arrow::Schema>> { return schema_; };
    auto p = SelectPlan::make(*statements_[0].dataset->query, file_, lookup);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.MoveValueUnsafe();
  }

  std::shared_ptr<arrow::RecordBatch> batch(const std::vector<Event>& events) const {
    arrow::StringBuilder k;
    arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), arrow::default_memory_pool());
    arrow::Int64Builder v;
    for (const auto& e : events) {
      EXPECT_TRUE(k.Append(e.key).ok());
      EXPECT_TRUE(ts.Append(e.minute * kMinute).ok());
      EXPECT_TRUE(v.Append(e.value).ok());
    }
    return arrow::RecordBatch::Make(schema_, static_cast<int64_t>(events.size()),
                                    {k.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
  }

 private:
  std::shared_ptr<arrow::Schema> schema_ = arrow::schema({arrow::field("k", arrow::utf8()),
                                                          arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                                                          arrow::field("v", arrow::int64())});
  sql::SourceFile file_;
  std::vector<sql::Statement> statements_;
};

}  // namespace sluice::exec::testing
