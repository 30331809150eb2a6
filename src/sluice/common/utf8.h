// Making arbitrary bytes valid UTF-8, the one rule for every place bytes become a string
// column (Kafka header keys, CAST(binary AS STRING), JSON and Avro decoding): each invalid
// sequence becomes one U+FFFD exactly as Spark shows it (Java's UTF-8 decoder): Unicode's
// "substitution of maximal subparts" (Python's errors="replace" too), except that an encoded
// surrogate (ED A0..BF xx, or its truncated start) is one invalid sequence, not one per byte.
#pragma once

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace sluice {

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

bool is_valid_utf8(std::string_view bytes);

// Whether every byte is ASCII (below 0x80), and so valid UTF-8 however the bytes are split
// into values: one pass over a whole column's bytes instead of one validation per value.
inline bool is_ascii(const uint8_t* data, int64_t size) {
  uint64_t seen = 0;
  int64_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, 8);
    seen |= word;
  }
  for (; i < size; ++i) seen |= data[i];
  return (seen & 0x8080808080808080ull) == 0;
}

// Appends `bytes` to `out`, each maximal invalid subpart replaced by U+FFFD.
void append_valid_utf8(std::string_view bytes, std::string* out);

// `bytes` itself when it is valid UTF-8, else a copy with the invalid subparts replaced,
// stored in `*scratch` (which the returned view then points into).
std::string_view valid_utf8(std::string_view bytes, std::string* scratch);

// A utf8 array of `values` (binary, large_binary, string or large_string; the large types
// give large_utf8) with invalid subparts replaced. Valid input is reused without a copy.
arrow::Result<std::shared_ptr<arrow::Array>> to_valid_utf8(const std::shared_ptr<arrow::Array>& values);

}  // namespace sluice
