// Fingerprints of Kafka records (re-created topic detection).
#include "sluice/kafka/record_fingerprint.h"

namespace sluice::kafka {

namespace {

constexpr int kHashBits = 40;
constexpr uint64_t kHashMask = (uint64_t{1} << kHashBits) - 1;
constexpr int64_t kMaxDistance = (int64_t{1} << (63 - kHashBits)) - 1;

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t fnv(uint64_t h, const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= kFnvPrime;
  }
  return h;
}

// Integers little-endian whatever the machine's byte order.
uint64_t fnv_int(uint64_t h, uint64_t v) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(v >> (8 * i));
  return fnv(h, bytes, sizeof bytes);
}

// Null and empty are different records: a marker byte says which one it is, and the length
// keeps the key's bytes from running into the value's.
uint64_t fnv_field(uint64_t h, const void* data, size_t len) {
  const unsigned char present = data != nullptr ? 1 : 0;
  h = fnv(h, &present, 1);
  h = fnv_int(h, len);
  return data != nullptr ? fnv(h, data, len) : h;
}

}  // namespace

uint64_t fingerprint_hash(int64_t timestamp_ms, const void* key, size_t key_len, const void* value,
                          size_t value_len) {
  uint64_t h = fnv_int(kFnvOffset, static_cast<uint64_t>(timestamp_ms));
  h = fnv_field(h, key, key_len);
  h = fnv_field(h, value, value_len);
  return (h ^ (h >> kHashBits)) & kHashMask;
}

RecordFingerprint fingerprint_of(const RecordView& record) {
  const auto data = [](const std::optional<std::string_view>& bytes) -> const void* {
    return bytes ? bytes->data() : nullptr;
  };
  return {record.offset, fingerprint_hash(record.timestamp_ms, data(record.key), record.key ? record.key->size() : 0,
                                          data(record.value), record.value ? record.value->size() : 0)};
}

std::optional<int64_t> encode_fingerprint(const RecordFingerprint& fingerprint, KafkaOffset next) {
  const int64_t distance = next.value() - 1 - fingerprint.offset.value();
  if (distance < 0 || distance > kMaxDistance) return std::nullopt;
  return (distance << kHashBits) | static_cast<int64_t>(fingerprint.hash & kHashMask);
}

std::optional<RecordFingerprint> decode_fingerprint(int64_t version, KafkaOffset next) {
  if (version < 0) return std::nullopt;
  const int64_t offset = next.value() - 1 - (version >> kHashBits);
  if (offset < 0) return std::nullopt;
  return RecordFingerprint{KafkaOffset(offset), static_cast<uint64_t>(version) & kHashMask};
}

}  // namespace sluice::kafka
