// The common JSON record, scanned without RapidJSON: one object of scalar members, strings
// without escapes or control bytes, numbers the exact fast path converts. What it cannot vouch
// for it leaves to RapidJSON (see FlatRecordScanner), so it never changes a verdict.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "sluice/common/utf8.h"

namespace sluice::format::internal {

// One top-level field's value in a record, as a parser met it. Integers are normalised as
// RapidJSON's document does: whatever fits int64 is kInt64 (IsInt64), only larger unsigned
// values are kUint64. Strings point into the text (or the parser's buffer).
struct JsonSlot {
  enum Kind : uint8_t { kAbsent, kNull, kBool, kInt64, kUint64, kDouble, kString, kContainer };
  Kind kind;
  bool b;
  int64_t i;
  uint64_t u;
  double d;
  const char* s;
  uint32_t len;
};

// A struct's field names looked up by key: exact first, then ASCII case-insensitively
// (find_field's rule, Spark's); among fields of equal names the first. Open addressing on a
// hash of a few of the key's bytes, so a key costs one hash and usually one comparison.
class JsonFieldIndex {
 public:
  explicit JsonFieldIndex(const std::vector<std::string>& names);
  int find(const char* key, size_t len) const {
    const uint32_t h = hash(key, len, false);
    for (uint32_t k = h & mask_;; k = (k + 1) & mask_) {
      const Entry& e = exact_[k];
      if (e.field < 0) break;
      if (e.hash == h && equal(names_[e.field], key, len)) {
        return e.field;
      }
    }
    const uint32_t f = hash(key, len, true);
    for (uint32_t k = f & mask_;; k = (k + 1) & mask_) {
      const Entry& e = folded_[k];
      if (e.field < 0) break;
      if (e.hash == f && equal_folded(lower_[e.field], key, len)) return e.field;
    }
    return -1;
  }

 private:
  struct Entry {
    uint32_t hash = 0;
    int field = -1;
  };
  // std::tolower in the "C" locale, as find_field uses it: ASCII letters only.
  static char fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
  // Length and the first, middle and last bytes: enough to tell a struct's field names apart
  // without a loop over every key byte (a collision costs only a comparison more).
  static uint32_t hash(const char* key, size_t len, bool folded) {
    if (len == 0) return 0;
    auto byte = [&](size_t i) { return static_cast<unsigned char>(folded ? fold(key[i]) : key[i]); };
    return ((static_cast<uint32_t>(len) * 0x9E3779B1u) ^ (byte(0) << 16) ^ (byte(len / 2) << 8) ^ byte(len - 1)) *
           0x85EBCA6Bu >> 7;
  }
  static bool equal(const std::string& name, const char* key, size_t len) {
    if (name.size() != len) return false;
    for (size_t i = 0; i < len; ++i) {
      if (name[i] != key[i]) return false;
    }
    return true;
  }
  static bool equal_folded(const std::string& lower, const char* key, size_t len) {
    if (lower.size() != len) return false;
    for (size_t i = 0; i < len; ++i) {
      if (lower[i] != fold(key[i])) return false;
    }
    return true;
  }
  std::vector<std::string> names_, lower_;
  std::vector<Entry> exact_, folded_;
  uint32_t mask_ = 0;
};

inline JsonFieldIndex::JsonFieldIndex(const std::vector<std::string>& names) : names_(names) {
  for (const auto& n : names_) {
    std::string l = n;
    for (auto& c : l) c = fold(c);
    lower_.push_back(std::move(l));
  }
  uint32_t size = 8;
  while (size < 4 * names_.size()) size *= 2;
  mask_ = size - 1;
  exact_.assign(size, Entry{});
  folded_.assign(size, Entry{});
  // Only the first field of a name (or of a folded name) goes in, as find_field's scans find it.
  auto insert = [this](std::vector<Entry>& table, const std::vector<std::string>& keys, int field, bool folded) {
    const uint32_t h = hash(keys[field].data(), keys[field].size(), folded);
    uint32_t k = h & mask_;
    for (; table[k].field >= 0; k = (k + 1) & mask_) {
      if (table[k].hash == h && keys[table[k].field] == keys[field]) return;
    }
    table[k] = Entry{h, field};
  };
  for (int i = 0; i < static_cast<int>(names_.size()); ++i) {
    insert(exact_, names_, i, false);
    insert(folded_, lower_, i, true);
  }
}

// Scans a record when it is the common kind: valid UTF-8, one object (whitespace around it
// allowed) whose members are strings without `\` or control bytes, true/false/null, integers of
// at most 18 digits, or numbers of at most 15 significant digits whose decimal exponent is
// within +-22 (exact in a double: the value RapidJSON's full-precision fast path computes, the
// same operations). For each decoded field's first key it fills that field's slot. Anything
// else (escapes, containers, long numbers, a non-string value for a string field, a NUL, bytes
// after the object, malformed text) returns false without a verdict: the caller then parses
// the record with RapidJSON, whose acceptance and values stand. Thread-compatible.
class FlatRecordScanner {
 public:
  FlatRecordScanner(const JsonFieldIndex& index, const std::vector<bool>& decoded, const std::vector<bool>& is_string,
                    JsonSlot* slots)
      : index_(index), decoded_(decoded), is_string_(is_string), slots_(slots), n_(static_cast<int>(decoded.size())) {}

  bool scan(std::string_view text) {
    for (int i = 0; i < n_; ++i) slots_[i].kind = JsonSlot::kAbsent;
    const char* p = text.data();
    const char* const end = p + text.size();
    skip_ws(p, end);
    if (p == end || *p != '{') return false;
    ++p;
    skip_ws(p, end);
    if (p == end) return false;
    if (*p == '}') {
      ++p;
    } else {
      int position = 0;
      for (;;) {
        const char* key;
        uint32_t key_len;
        if (p == end || *p != '"' || !scan_string(p, end, &key, &key_len)) return false;
        skip_ws(p, end);
        if (p == end || *p != ':') return false;
        ++p;
        skip_ws(p, end);
        if (p == end) return false;
        const int field = find_field(position++, key, key_len);
        const bool take = field >= 0 && decoded_[field] && slots_[field].kind == JsonSlot::kAbsent;
        JsonSlot ignored;
        JsonSlot* s = take ? &slots_[field] : &ignored;
        if (!scan_value(p, end, s)) return false;
        // A string field's non-string value is kept as its JSON text, which RapidJSON writes.
        if (take && is_string_[field] && s->kind != JsonSlot::kString && s->kind != JsonSlot::kNull) return false;
        skip_ws(p, end);
        if (p == end) return false;
        if (*p == ',') {
          ++p;
          skip_ws(p, end);
          continue;
        }
        if (*p != '}') return false;
        ++p;
        break;
      }
    }
    skip_ws(p, end);
    // Checked last (a malformed record is left to RapidJSON anyway): invalid UTF-8 is replaced first.
    return p == end && (input_ascii_ || is_valid_utf8(text));
  }

  // The caller found every byte of the texts it will scan ASCII (is_ascii over the column's
  // bytes, once per batch): each record's own UTF-8 check is then skipped.
  void set_input_ascii(bool ascii) { input_ascii_ = ascii; }

 private:
  // A batch's records mostly repeat one key order: the key at each position is remembered with
  // the field the index found for it, so a repeated key costs one comparison instead of the
  // index's hash and probes (twice for a key that names no field: exact, then folded). The
  // field of a key depends only on its bytes, so a remembered answer is the index's answer.
  static constexpr int kRememberedPositions = 16;
  static constexpr uint32_t kRememberedKeyBytes = 32;
  struct RememberedKey {
    uint32_t len = kRememberedKeyBytes + 1;  // matches no key until set
    int field = -1;
    char bytes[kRememberedKeyBytes];
  };

  int find_field(int position, const char* key, uint32_t len) {
    if (position >= kRememberedPositions || len > kRememberedKeyBytes) return index_.find(key, len);
    RememberedKey& r = remembered_[position];
    if (r.len == len && same_bytes(r.bytes, key, len)) return r.field;
    r.field = index_.find(key, len);
    r.len = len;
    std::memcpy(r.bytes, key, len);
    return r.field;
  }

  // Equal bytes of one length, with word loads from both ends for the short keys JSON records have.
  static bool same_bytes(const char* a, const char* b, uint32_t len) {
    if (len >= 8 && len <= 16) {
      uint64_t a0, a1, b0, b1;
      std::memcpy(&a0, a, 8);
      std::memcpy(&a1, a + len - 8, 8);
      std::memcpy(&b0, b, 8);
      std::memcpy(&b1, b + len - 8, 8);
      return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (len >= 4 && len < 8) {
      uint32_t a0, a1, b0, b1;
      std::memcpy(&a0, a, 4);
      std::memcpy(&a1, a + len - 4, 4);
      std::memcpy(&b0, b, 4);
      std::memcpy(&b1, b + len - 4, 4);
      return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    return std::memcmp(a, b, len) == 0;
  }

  static void skip_ws(const char*& p, const char* end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  // From the opening quote; on success p is past the closing one.
  static bool scan_string(const char*& p, const char* end, const char** out, uint32_t* len) {
    ++p;
    const char* start = p;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\'), control = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                       _mm_cmpeq_epi8(_mm_max_epu8(v, control), control));  // bytes <= 0x1F
      const int bits = _mm_movemask_epi8(hit);
      if (bits != 0) {
        p += __builtin_ctz(static_cast<unsigned>(bits));
        goto found;
      }
      p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && static_cast<unsigned char>(*p) >= 0x20) ++p;
    if (p == end) return false;
#if defined(__SSE2__)
  found:
#endif
    if (*p != '"') return false;
    *out = start;
    *len = static_cast<uint32_t>(p - start);
    ++p;
    return true;
  }

  static bool literal(const char*& p, const char* end, const char* word, size_t n) {
    if (static_cast<size_t>(end - p) < n || std::memcmp(p, word, n) != 0) return false;
    p += n;
    return true;
  }

  static bool scan_value(const char*& p, const char* end, JsonSlot* s) {
    switch (*p) {
      case '"':
        s->kind = JsonSlot::kString;
        return scan_string(p, end, &s->s, &s->len);
      case 't':
        s->kind = JsonSlot::kBool;
        s->b = true;
        return literal(p, end, "true", 4);
      case 'f':
        s->kind = JsonSlot::kBool;
        s->b = false;
        return literal(p, end, "false", 5);
      case 'n':
        s->kind = JsonSlot::kNull;
        return literal(p, end, "null", 4);
      default:
        return scan_number(p, end, s);
    }
  }

  static bool scan_number(const char*& p, const char* end, JsonSlot* s) {
    static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char* q = p;
    const bool negative = *q == '-';
    if (negative) ++q;
    if (q == end || !is_digit(*q)) return false;
    uint64_t significand = 0;
    int digits = 0;
    if (*q == '0') {
      ++q;
      if (q < end && is_digit(*q)) return false;  // a leading zero: RapidJSON's verdict
    } else {
      for (; q < end && is_digit(*q); ++q) {
        if (++digits > 18) return false;
        significand = significand * 10 + static_cast<uint64_t>(*q - '0');
      }
    }
    bool is_double = false;
    int exponent = 0;
    if (q < end && *q == '.') {
      is_double = true;
      ++q;
      if (q == end || !is_digit(*q)) return false;
      for (; q < end && is_digit(*q); ++q) {
        if (++digits > 15) return false;
        significand = significand * 10 + static_cast<uint64_t>(*q - '0');
        --exponent;
      }
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
      is_double = true;
      ++q;
      bool negative_exponent = false;
      if (q < end && (*q == '+' || *q == '-')) negative_exponent = *q++ == '-';
      if (q == end || !is_digit(*q)) return false;
      int e = 0, exponent_digits = 0;
      for (; q < end && is_digit(*q); ++q) {
        if (++exponent_digits > 3) return false;
        e = e * 10 + (*q - '0');
      }
      exponent += negative_exponent ? -e : e;
    }
    p = q;
    if (!is_double) {
      s->kind = JsonSlot::kInt64;
      s->i = negative ? -static_cast<int64_t>(significand) : static_cast<int64_t>(significand);
      return true;
    }
    if (digits > 15 || exponent < -22 || exponent > 22) return false;
    // significand < 10^15 < 2^53 and 10^|exponent| are exact doubles: one correctly rounded
    // operation, what RapidJSON's StrtodFast does for the same digits and exponent.
    double d = static_cast<double>(significand);
    d = exponent >= 0 ? d * kPow10[exponent] : d / kPow10[-exponent];
    s->kind = JsonSlot::kDouble;
    s->d = negative ? -d : d;
    return true;
  }

  const JsonFieldIndex& index_;
  const std::vector<bool>& decoded_;
  const std::vector<bool>& is_string_;
  JsonSlot* slots_;
  int n_;
  bool input_ascii_ = false;
  RememberedKey remembered_[kRememberedPositions];
};

}  // namespace sluice::format::internal
