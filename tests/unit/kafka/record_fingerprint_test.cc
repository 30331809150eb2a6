// Fingerprints of Kafka records: the stored form and the hash that identifies a record.
#include "sluice/kafka/record_fingerprint.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::kafka {
namespace {

uint64_t hash_of(int64_t ts, const char* key, const char* value) {
  return fingerprint_hash(ts, key, key ? std::string(key).size() : 0, value,
                          value ? std::string(value).size() : 0);
}

// Values from an independent implementation of the documented rule (FNV-1a 64 over the
// little-endian timestamp, then per field a presence byte, its little-endian length and its
// bytes, folded to 40 bits), in Python: fingerprints are stored in tables, so the hash must
// never change.
TEST(RecordFingerprint, HashIsTheDocumentedFnv1a) {
  EXPECT_EQ(hash_of(1700000000000, "user-1", "{\"amount\": 12.5}"), 941309972420u);
  EXPECT_EQ(hash_of(-1, nullptr, ""), 142261206294u);
}

TEST(RecordFingerprint, HashTellsNullFromEmptyAndKeyFromValue) {
  EXPECT_NE(hash_of(1, nullptr, "v"), hash_of(1, "", "v"));
  EXPECT_NE(hash_of(1, "ab", "c"), hash_of(1, "a", "bc"));
  EXPECT_NE(hash_of(1, "k", "v"), hash_of(2, "k", "v"));
  EXPECT_LT(hash_of(1, "k", "v"), uint64_t{1} << 40);
}

TEST(RecordFingerprint, StoredRelativeToNextAndReadBack) {
  const RecordFingerprint last{KafkaOffset(99), 0xABCDEF1234};
  // Usual case: the last record is just before next.
  auto v = encode_fingerprint(last, KafkaOffset(100));
  ASSERT_TRUE(v.has_value());
  EXPECT_GE(*v, 0);
  EXPECT_EQ(decode_fingerprint(*v, KafkaOffset(100)), last);
  // A transaction marker after the last record: next is two further.
  v = encode_fingerprint(last, KafkaOffset(101));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(decode_fingerprint(*v, KafkaOffset(101)), last);
  // Offsets far beyond 32 bits.
  const RecordFingerprint far{KafkaOffset(int64_t{1} << 50), 7};
  v = encode_fingerprint(far, KafkaOffset((int64_t{1} << 50) + 1));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(decode_fingerprint(*v, KafkaOffset((int64_t{1} << 50) + 1)), far);
}

TEST(RecordFingerprint, GapTooLargeOrNoneIsNotStored) {
  const RecordFingerprint last{KafkaOffset(0), 1};
  const auto widest = encode_fingerprint(last, KafkaOffset(int64_t{1} << 23));  // gap 2^23 - 1
  ASSERT_TRUE(widest.has_value());
  EXPECT_EQ(decode_fingerprint(*widest, KafkaOffset(int64_t{1} << 23)), last);
  EXPECT_FALSE(encode_fingerprint(last, KafkaOffset((int64_t{1} << 23) + 1)).has_value());
  EXPECT_FALSE(encode_fingerprint(last, KafkaOffset(0)).has_value());  // record not before next
  EXPECT_FALSE(decode_fingerprint(-1, KafkaOffset(10)).has_value());  // none / full refresh
  // A stored distance pointing before offset 0 (a table edited by hand): no fingerprint.
  EXPECT_FALSE(decode_fingerprint(int64_t{5} << 40, KafkaOffset(3)).has_value());
}

}  // namespace
}  // namespace sluice::kafka
