// Strong integer types for values that are easy to mix up: Kafka offsets and partitions,
// Delta versions.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace sluice {

template <typename Tag, typename Rep>
class StrongInt {
 public:
  using rep_type = Rep;
  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep value) : value_(value) {}
  constexpr Rep value() const { return value_; }
  constexpr auto operator<=>(const StrongInt&) const = default;
  constexpr StrongInt next() const { return StrongInt(value_ + 1); }

 private:
  Rep value_{};
};

struct KafkaOffsetTag {};
struct KafkaPartitionTag {};
struct DeltaVersionTag {};

// The offset of a record in a Kafka partition (or the next one to read).
using KafkaOffset = StrongInt<KafkaOffsetTag, int64_t>;
// A Kafka partition id within a topic.
using KafkaPartition = StrongInt<KafkaPartitionTag, int32_t>;
// A Delta table version: the number of a commit file in _delta_log.
using DeltaVersion = StrongInt<DeltaVersionTag, int64_t>;

}  // namespace sluice

template <typename Tag, typename Rep>
struct std::hash<sluice::StrongInt<Tag, Rep>> {
  size_t operator()(const sluice::StrongInt<Tag, Rep>& v) const noexcept {
    return std::hash<Rep>{}(v.value());
  }
};
