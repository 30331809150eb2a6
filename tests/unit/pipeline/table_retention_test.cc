// Retention policies (pipeline/table_retention.h): the properties checked, the cut-off's steps,
// and the DELETE on real tables (whole files dropped unread, files split by the cut-off
// rewritten or given deletion vectors, change data feed rows), skipped by streaming reads.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "../temp_dir.h"
#include "sluice/delta/change_feed.h"
#include "sluice/delta/retention_commit.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/pipeline/table_retention.h"

namespace sluice::pipeline {
namespace {

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kDay = 24 * kHour;
// 2026-12-06 00:00:00 UTC.
constexpr int64_t kNow = 20793 * kDay;

std::shared_ptr<arrow::Schema> event_schema() {
  return arrow::schema({arrow::field("id", arrow::int64()),
                        arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                        arrow::field("d", arrow::date32()), arrow::field("s", arrow::utf8())});
}

std::map<std::string, std::string> props(const std::string& duration, const std::string& column) {
  std::map<std::string, std::string> out;
  if (!duration.empty()) out[kRetentionProperty] = duration;
  if (!column.empty()) out[kRetentionColumnProperty] = column;
  return out;
}

TEST(RetentionPolicyTest, ParsesTheDurationAndFindsTheColumnIgnoringCase) {
  auto policy = retention_policy(props("interval 2 days 6 hours", "TS"), *event_schema());
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  ASSERT_TRUE(policy->has_value());
  EXPECT_EQ((*policy)->column, "ts");
  EXPECT_EQ((*policy)->duration_millis, 2 * kDay + 6 * kHour);
  auto none = retention_policy({{"pipelines.reset.allowed", "true"}}, *event_schema());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(RetentionPolicyTest, RefusesWhatItCannotApply) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {props("2 days", ""), "needs pipelines.retention.column"},
      {props("", "ts"), "pipelines.retention.column = 'ts' without pipelines.retention"},
      {props("2 fortnights", "ts"), "pipelines.retention = '2 fortnights' is not a duration"},
      {props("1 year", "ts"), "pipelines.retention = '1 year' is not a duration"},
      {props("0 seconds", "ts"), "must be longer than zero"},
      {props("2 days", "tz"), "names no column of the table (did you mean 'ts'?) (its columns: id, ts, d, s)"},
      {props("2 days", "s"), "names a column of type STRING"},
      {props("2 days", "id"), "names a column of type BIGINT"},
  };
  for (const auto& [properties, message] : cases) {
    auto policy = retention_policy(properties, *event_schema());
    ASSERT_FALSE(policy.ok()) << message;
    EXPECT_NE(policy.status().message().find(message), std::string::npos) << policy.status().message();
  }
}

TEST(RetentionPolicyTest, TheCutoffMovesInSteps) {
  const int64_t now = kNow + 12 * kHour + 34 * 60 * 1000 + 56 * 1000;  // 12:34:56
  RetentionPolicy days{"2 days", 2 * kDay, "ts"};
  auto ts = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  auto cut = retention_cutoff(days, ts, now).ValueOrDie();
  EXPECT_EQ(std::static_pointer_cast<arrow::TimestampScalar>(cut)->value, (kNow - 2 * kDay + 12 * kHour) * 1000);
  RetentionPolicy hours{"3 hours", 3 * kHour, "ts"};
  cut = retention_cutoff(hours, ts, now).ValueOrDie();
  EXPECT_EQ(std::static_pointer_cast<arrow::TimestampScalar>(cut)->value,
            (kNow + 9 * kHour + 34 * 60 * 1000) * 1000);  // 09:34:00
  RetentionPolicy seconds{"90 seconds", 90 * 1000, "ts"};
  cut = retention_cutoff(seconds, ts, now).ValueOrDie();
  EXPECT_EQ(std::static_pointer_cast<arrow::TimestampScalar>(cut)->value,
            (kNow + 12 * kHour + 33 * 60 * 1000 + 26 * 1000) * 1000);
  // A day expires once all of it is before now - duration: at 12:00 two days ago, the day
  // before that is the newest one gone.
  cut = retention_cutoff(days, arrow::date32(), now).ValueOrDie();
  EXPECT_EQ(std::static_pointer_cast<arrow::Date32Scalar>(cut)->value, 20793 - 2);
}

class RetentionDeleteTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  std::shared_ptr<delta::LogStore> store_ = std::make_shared<delta::LogStore>(dir_.path() / "t");

  // One file of events at these hours after kNow - 4 days (ts; d its day), with a null ts for
  // the ids in `null_ts`.
  void write(const std::vector<int64_t>& hours, std::map<std::string, std::string> configuration = {},
             std::vector<int64_t> null_ts = {}) {
    arrow::Int64Builder id;
    arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), arrow::default_memory_pool());
    arrow::Date32Builder d;
    arrow::StringBuilder s;
    for (int64_t h : hours) {
      const int64_t millis = kNow - 4 * kDay + h * kHour;
      ASSERT_TRUE(id.Append(h).ok());
      if (std::find(null_ts.begin(), null_ts.end(), h) != null_ts.end()) {
        ASSERT_TRUE(ts.AppendNull().ok());
      } else {
        ASSERT_TRUE(ts.Append(millis * 1000).ok());
      }
      ASSERT_TRUE(d.Append(static_cast<int32_t>(millis / kDay)).ok());
      ASSERT_TRUE(s.Append("x").ok());
    }
    auto batch = arrow::RecordBatch::Make(event_schema(), static_cast<int64_t>(hours.size()),
                                          {*id.Finish(), *ts.Finish(), *d.Finish(), *s.Finish()});
    auto snap = delta::load_latest_if_exists(*store_).ValueOrDie();
    delta::WriteOptions options;
    options.configuration = std::move(configuration);
    auto writer = delta::TableWriter::make(store_, snap, *event_schema(), options).ValueOrDie();
    ASSERT_TRUE(writer->write(*batch).ok());
    ASSERT_TRUE(writer->finish().ValueOrDie().commit({}).ok());
  }

  std::vector<int64_t> ids() {
    auto snap = delta::Snapshot::load(*store_).ValueOrDie();
    auto table = delta::scan_table(*store_, *snap).ValueOrDie();
    auto batch = table->CombineChunksToBatch().ValueOrDie();
    std::vector<int64_t> out;
    if (!batch) return out;
    auto id = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("id"));
    for (int64_t i = 0; i < id->length(); ++i) out.push_back(id->Value(i));
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<delta::Action> commit(int64_t version) {
    auto text = store_->read_commit(DeltaVersion(version)).ValueOrDie();
    return delta::parse_commit(text, "commit").ValueOrDie();
  }

  static int count_adds(const std::vector<delta::Action>& actions) {
    return static_cast<int>(std::count_if(actions.begin(), actions.end(),
                                          [](const auto& a) { return std::holds_alternative<delta::Add>(a); }));
  }
};

TEST_F(RetentionDeleteTest, WholeFilesGoUnreadAndASplitFileIsRewritten) {
  write({0, 1, 2});       // version 0: wholly before the cut-off (kNow - 2 days)
  write({10, 47, 48, 60}, {}, {10});  // version 1: split; a null ts never expires
  write({50, 70});        // version 2: wholly inside
  RetentionPolicy policy{"2 days", 2 * kDay, "ts"};
  auto out = apply_retention(store_, "t", policy, kNow);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->committed);
  EXPECT_EQ(out->version, 3);
  EXPECT_EQ(out->rows_deleted, 4);  // 0, 1, 2, 47
  EXPECT_EQ(out->files_removed, 2);
  EXPECT_EQ(out->files_added, 1);
  EXPECT_EQ(out->cutoff, "TIMESTAMP '2026-12-04 00:00:00.000'");
  EXPECT_EQ(ids(), (std::vector<int64_t>{10, 48, 50, 60, 70}));
  auto actions = commit(3);
  EXPECT_TRUE(delta::is_retention_commit(actions));
  EXPECT_EQ(count_adds(actions), 1);
  // Nothing newly expired within the same hour: no commit.
  auto again = apply_retention(store_, "t", policy, kNow + 59 * 60 * 1000);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->committed);
  EXPECT_EQ(store_->latest_version().ValueOrDie()->value(), 3);
  // A streaming read skips the retention commit: versions 0-2's files, none of version 3.
  auto added = delta::added_files_between(*store_, DeltaVersion(-1), DeltaVersion(3), delta::ChangePolicy::kFail);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(added->size(), 3u);
  EXPECT_EQ(retention_commit_versions(*store_, DeltaVersion(-1), DeltaVersion(3)).ValueOrDie(), (std::set<int64_t>{3}));
}

TEST_F(RetentionDeleteTest, ADateColumnLosesOnlyWholeDays) {
  write({0, 23, 24, 47, 48});  // days kNow-4d, kNow-4d, kNow-3d, kNow-3d, kNow-2d
  RetentionPolicy policy{"2 days", 2 * kDay, "d"};
  auto out = apply_retention(store_, "t", policy, kNow + 6 * kHour);  // cut-off 2026-12-04 06:00
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->cutoff, "DATE '2026-12-04'");
  EXPECT_EQ(ids(), (std::vector<int64_t>{48}));
}

TEST_F(RetentionDeleteTest, DeletionVectorsMarkTheExpiredRows) {
  const std::map<std::string, std::string> dv = {{"delta.enableDeletionVectors", "true"}};
  write({0, 1}, dv);
  write({10, 47, 48, 60}, dv);
  auto out = apply_retention(store_, "t", RetentionPolicy{"2 days", 2 * kDay, "ts"}, kNow);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(ids(), (std::vector<int64_t>{48, 60}));
  int with_vector = 0;
  for (const auto& a : commit(2)) {
    if (const auto* add = std::get_if<delta::Add>(&a)) with_vector += add->deletion_vector.has_value();
  }
  EXPECT_EQ(with_vector, 1);  // the split file keeps its data, a vector marks 10 and 47
}

TEST_F(RetentionDeleteTest, TheChangeFeedRecordsEveryExpiredRow) {
  const std::map<std::string, std::string> cdf = {{"delta.enableChangeDataFeed", "true"}};
  write({0, 1}, cdf);
  write({10, 48}, cdf);
  auto out = apply_retention(store_, "t", RetentionPolicy{"2 days", 2 * kDay, "ts"}, kNow);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  auto feed = delta::read_table_changes(*store_, "t", "2", "2").ValueOrDie();
  auto batch = feed->CombineChunksToBatch().ValueOrDie();
  auto id = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("id"));
  auto kind = std::static_pointer_cast<arrow::StringArray>(batch->GetColumnByName("_change_type"));
  std::vector<std::pair<int64_t, std::string>> got;
  for (int64_t i = 0; i < batch->num_rows(); ++i) got.emplace_back(id->Value(i), kind->GetString(i));
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::pair<int64_t, std::string>>{{0, "delete"}, {1, "delete"}, {10, "delete"}}));
}

}  // namespace
}  // namespace sluice::pipeline
