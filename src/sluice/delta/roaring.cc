// RoaringBitmapArray portable (de)serialization (RoaringFormatSpec, Spark's RoaringBitmapArray).
#include "sluice/delta/roaring.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "sluice/common/status.h"

namespace sluice::delta {

namespace {

constexpr uint32_t kSerialCookieNoRun = 12346;
constexpr uint32_t kSerialCookie = 12347;
constexpr uint32_t kNoOffsetThreshold = 4;
constexpr uint32_t kMaxArrayCardinality = 4096;
constexpr size_t kBitmapBytes = 8192;

// Little-endian reads with bounds checks; every failure names the byte offset.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  size_t position() const { return pos_; }

  template <typename T>
  arrow::Result<T> read(const char* what) {
    if (bytes_.size() - pos_ < sizeof(T)) {
      return invalid("deletion vector bitmap is truncated: {} at byte {} runs past its end ({} "
                     "bytes)",
                     what, pos_, bytes_.size());
    }
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v |= static_cast<T>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += sizeof(T);
    return v;
  }

  arrow::Status skip(size_t n, const char* what) {
    if (bytes_.size() - pos_ < n) {
      return invalid("deletion vector bitmap is truncated: {} at byte {} runs past its end ({} "
                     "bytes)",
                     what, pos_, bytes_.size());
    }
    pos_ += n;
    return arrow::Status::OK();
  }

  std::string_view take(size_t n) {
    auto out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

// One 32-bit Roaring bitmap (portable format), its values ORed with `high` << 32.
arrow::Status parse_bitmap32(ByteReader& in, uint64_t high, uint64_t max_values, std::vector<uint64_t>* out) {
  ARROW_ASSIGN_OR_RAISE(uint32_t cookie, in.read<uint32_t>("cookie"));
  uint32_t size = 0;
  std::string_view run_flags;
  if ((cookie & 0xFFFF) == kSerialCookie) {
    size = (cookie >> 16) + 1;
    const size_t flag_bytes = (size + 7) / 8;
    ByteReader probe = in;
    ARROW_RETURN_NOT_OK(probe.skip(flag_bytes, "run flags"));
    run_flags = in.take(flag_bytes);
  } else if (cookie == kSerialCookieNoRun) {
    ARROW_ASSIGN_OR_RAISE(size, in.read<uint32_t>("container count"));
  } else {
    return invalid("deletion vector bitmap has an unknown Roaring cookie {} at byte {}", cookie,
                   in.position() - 4);
  }
  if (size > 65536) {
    return invalid("deletion vector bitmap declares {} containers (at most 65536)", size);
  }
  std::vector<std::pair<uint16_t, uint32_t>> headers(size);  // (key, cardinality)
  for (auto& [key, cardinality] : headers) {
    ARROW_ASSIGN_OR_RAISE(key, in.read<uint16_t>("container key"));
    ARROW_ASSIGN_OR_RAISE(uint16_t c, in.read<uint16_t>("container cardinality"));
    cardinality = static_cast<uint32_t>(c) + 1;
  }
  if (run_flags.empty() || size >= kNoOffsetThreshold) {
    ARROW_RETURN_NOT_OK(in.skip(4ull * size, "container offsets"));
  }
  for (uint32_t i = 0; i < size; ++i) {
    const uint64_t base = (high << 32) | (static_cast<uint64_t>(headers[i].first) << 16);
    const bool is_run = !run_flags.empty() &&
                        ((static_cast<unsigned char>(run_flags[i / 8]) >> (i % 8)) & 1) != 0;
    if (is_run) {
      ARROW_ASSIGN_OR_RAISE(uint16_t runs, in.read<uint16_t>("run count"));
      uint64_t values = 0;
      for (uint16_t r = 0; r < runs; ++r) {
        ARROW_ASSIGN_OR_RAISE(uint16_t start, in.read<uint16_t>("run start"));
        ARROW_ASSIGN_OR_RAISE(uint16_t length, in.read<uint16_t>("run length"));
        // Overlapping runs could expand a few bytes into billions of values.
        values += static_cast<uint64_t>(length) + 1;
        if (values > 65536) {
          return invalid("deletion vector bitmap has a run container of more than 65536 values "
                         "at byte {}",
                         in.position());
        }
        for (uint32_t v = start; v <= static_cast<uint32_t>(start) + length && v <= 0xFFFF; ++v) {
          out->push_back(base | v);
        }
      }
    } else if (headers[i].second > kMaxArrayCardinality) {
      for (uint32_t w = 0; w < kBitmapBytes / 8; ++w) {
        ARROW_ASSIGN_OR_RAISE(uint64_t word, in.read<uint64_t>("bitmap container"));
        while (word) {
          const int bit = __builtin_ctzll(word);
          out->push_back(base | (w * 64 + bit));
          word &= word - 1;
        }
      }
    } else {
      for (uint32_t k = 0; k < headers[i].second; ++k) {
        ARROW_ASSIGN_OR_RAISE(uint16_t v, in.read<uint16_t>("array container"));
        out->push_back(base | v);
      }
    }
    if (out->size() > max_values) {  // checked per container: at most 65536 values past it
      return invalid("deletion vector bitmap holds more than the {} rows its descriptor counts "
                     "(at byte {})",
                     max_values, in.position());
    }
  }
  return arrow::Status::OK();
}

void put_le(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// The values sharing one high key, as a 32-bit Roaring bitmap without run containers.
void serialize_bitmap32(const uint64_t* begin, const uint64_t* end, std::string* out) {
  std::vector<std::pair<const uint64_t*, const uint64_t*>> containers;
  for (const uint64_t* p = begin; p != end;) {
    const uint64_t key = (*p >> 16) & 0xFFFF;
    const uint64_t* q = p;
    while (q != end && ((*q >> 16) & 0xFFFF) == key) ++q;
    containers.emplace_back(p, q);
    p = q;
  }
  put_le(out, kSerialCookieNoRun, 4);
  put_le(out, containers.size(), 4);
  for (const auto& [b, e] : containers) {
    put_le(out, (*b >> 16) & 0xFFFF, 2);
    put_le(out, static_cast<uint64_t>(e - b) - 1, 2);
  }
  uint64_t offset = out->size() + 4 * containers.size();
  const size_t start = out->size() - 8 - 4 * containers.size();  // of this bitmap
  for (const auto& [b, e] : containers) {
    put_le(out, offset - start, 4);
    const auto n = static_cast<uint64_t>(e - b);
    offset += n > kMaxArrayCardinality ? kBitmapBytes : 2 * n;
  }
  for (const auto& [b, e] : containers) {
    if (static_cast<uint64_t>(e - b) > kMaxArrayCardinality) {
      uint64_t words[kBitmapBytes / 8] = {};
      for (const uint64_t* p = b; p != e; ++p) words[(*p & 0xFFFF) / 64] |= 1ull << (*p & 63);
      for (uint64_t w : words) put_le(out, w, 8);
    } else {
      for (const uint64_t* p = b; p != e; ++p) put_le(out, *p & 0xFFFF, 2);
    }
  }
}

}  // namespace

arrow::Result<std::vector<uint64_t>> parse_roaring_bitmap_array(std::string_view bytes, uint64_t max_values) {
  ByteReader in(bytes);
  ARROW_ASSIGN_OR_RAISE(uint32_t magic, in.read<uint32_t>("magic number"));
  if (magic != kRoaringBitmapArrayPortableMagic) {
    return invalid("deletion vector bitmap has magic number {}, not {} (the portable "
                   "RoaringBitmapArray format{})",
                   magic, kRoaringBitmapArrayPortableMagic,
                   magic == kRoaringBitmapArrayPortableMagic - 1
                       ? "; this is Spark's native format, which sluice does not read"
                       : "");
  }
  ARROW_ASSIGN_OR_RAISE(uint64_t count, in.read<uint64_t>("bitmap count"));
  if (count > bytes.size()) {
    return invalid("deletion vector bitmap declares {} bitmaps in {} bytes", count, bytes.size());
  }
  std::vector<uint64_t> out;
  for (uint64_t i = 0; i < count; ++i) {
    ARROW_ASSIGN_OR_RAISE(uint32_t high, in.read<uint32_t>("bitmap key"));
    ARROW_RETURN_NOT_OK(parse_bitmap32(in, high, max_values, &out));
  }
  // Keys and containers come in ascending order from every writer; sort anyway, since the
  // scan relies on order and a hostile file must not break it.
  if (!std::is_sorted(out.begin(), out.end())) std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string serialize_roaring_bitmap_array(const std::vector<uint64_t>& values) {
  std::string out;
  put_le(&out, kRoaringBitmapArrayPortableMagic, 4);
  const uint64_t bitmaps = values.empty() ? 0 : (values.back() >> 32) + 1;
  put_le(&out, bitmaps, 8);
  const uint64_t* p = values.data();
  const uint64_t* end = values.data() + values.size();
  for (uint64_t high = 0; high < bitmaps; ++high) {
    put_le(&out, high, 4);
    const uint64_t* q = p;
    while (q != end && (*q >> 32) == high) ++q;
    serialize_bitmap32(p, q, &out);
    p = q;
  }
  return out;
}

}  // namespace sluice::delta
