// Kafka records into bronze's columns: the record timestamp, including ones no TIMESTAMP holds.
#include "sluice/kafka/source_schema.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/kafka/record_view.h"

namespace sluice::kafka {
namespace {

RecordView record(int64_t offset, int64_t timestamp_ms, TimestampType type) {
  RecordView r;
  r.kind = RecordKind::kRecord;
  r.topic = "t";
  r.partition = KafkaPartition(0);
  r.offset = KafkaOffset(offset);
  r.timestamp_ms = timestamp_ms;
  r.timestamp_type = type;
  r.value = "v";
  return r;
}

// A producer may set any int64 of milliseconds where the topic allows it; times 1000 that
// overflowed (signed overflow, UB). Such a record is kept with a null timestamp and its type.
TEST(KafkaRecordBatchBuilderTest, TimestampsBeyondTheMicrosecondRangeAreNullNotOverflow) {
  KafkaRecordBatchBuilder builder(HeadersColumn::kDrop);
  const int64_t kMaxMillis = INT64_MAX / 1000;
  ASSERT_TRUE(builder.append(record(0, 1'700'000'000'123, TimestampType::kCreateTime)).ok());
  ASSERT_TRUE(builder.append(record(1, INT64_MAX, TimestampType::kCreateTime)).ok());
  ASSERT_TRUE(builder.append(record(2, kMaxMillis + 1, TimestampType::kLogAppendTime)).ok());
  ASSERT_TRUE(builder.append(record(3, INT64_MIN, TimestampType::kCreateTime)).ok());
  ASSERT_TRUE(builder.append(record(4, kMaxMillis, TimestampType::kCreateTime)).ok());
  ASSERT_TRUE(builder.append(record(5, -1, TimestampType::kNone)).ok());
  auto batch = builder.finish().ValueOrDie();
  ASSERT_EQ(batch->num_rows(), 6);
  const auto& ts = static_cast<const arrow::TimestampArray&>(*batch->GetColumnByName("timestamp"));
  const auto& type = static_cast<const arrow::Int32Array&>(*batch->GetColumnByName("timestampType"));
  EXPECT_EQ(ts.Value(0), 1'700'000'000'123'000);
  EXPECT_TRUE(ts.IsNull(1) && ts.IsNull(2) && ts.IsNull(3));
  EXPECT_EQ(ts.Value(4), kMaxMillis * 1000);
  EXPECT_TRUE(ts.IsNull(5));
  EXPECT_EQ(type.Value(1), 0);
  EXPECT_EQ(type.Value(2), 1);
  EXPECT_EQ(type.Value(5), -1);
}

// The Parquet writers skip the dictionary for these: Kafka's payload and offset, found by name
// and type (a decoded value, a string `offset` or the key are not them).
TEST(KafkaColumnsNeverRepeatingTest, ValueAndOffsetByNameAndType) {
  const std::vector<std::string> value_and_offset{"value", "offset"};
  EXPECT_EQ(kafka_columns_never_repeating(*kafka_source_schema()), value_and_offset);
  const auto cast = arrow::schema({arrow::field("key", arrow::binary()),
                                   arrow::field("value", arrow::utf8()),
                                   arrow::field("offset", arrow::int64())});
  EXPECT_EQ(kafka_columns_never_repeating(*cast), value_and_offset);
  const auto decoded = arrow::struct_({arrow::field("a", arrow::int32())});
  const auto other = arrow::schema({arrow::field("value", decoded),
                                    arrow::field("offset", arrow::utf8()),
                                    arrow::field("payload", arrow::binary())});
  EXPECT_TRUE(kafka_columns_never_repeating(*other).empty());
}

}  // namespace
}  // namespace sluice::kafka
