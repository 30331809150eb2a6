// Fingerprints of Kafka records: how a flow recognises at its next start that the record it
// read last is still the one at that offset. A topic deleted and re-created starts its offsets
// at 0 again, so a recorded offset can be "in range" of a different incarnation of the topic;
// librdkafka 2.0 exposes no topic ids to tell them apart (docs/decisions.md).
#pragma once

#include <cstdint>
#include <optional>

#include "sluice/common/strong_types.h"
#include "sluice/kafka/record_view.h"

namespace sluice::kafka {

// The last record a flow read from a partition: its offset and a 40-bit hash of its
// timestamp, key and value.
struct RecordFingerprint {
  KafkaOffset offset;
  uint64_t hash = 0;
  auto operator<=>(const RecordFingerprint&) const = default;
};

// The fingerprint of a consumed record (kind RecordKind::kRecord).
RecordFingerprint fingerprint_of(const RecordView& record);
// The hash alone; exposed for tests. FNV-1a 64 folded to 40 bits: stable across builds and
// platforms, because fingerprints are stored in tables.
uint64_t fingerprint_hash(int64_t timestamp_ms, const void* key, size_t key_len, const void* value,
                          size_t value_len);

// A fingerprint stored as a Delta txn version beside the partition's progress `next` (the
// offset after it): the distance next-1-offset in bits 40..62, the hash in bits 0..39. Empty
// when the distance does not fit in 23 bits (a gap of over 8 M offsets of transaction markers
// or compacted records between the last record and `next`).
std::optional<int64_t> encode_fingerprint(const RecordFingerprint& fingerprint, KafkaOffset next);
// Empty for a negative version (none stored, or reset by a full refresh) or one that would
// point before offset 0.
std::optional<RecordFingerprint> decode_fingerprint(int64_t version, KafkaOffset next);

}  // namespace sluice::kafka
