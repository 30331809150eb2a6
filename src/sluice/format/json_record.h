// One JSON record parsed with RapidJSON, in place in a reused NUL-terminated copy: the document
// points into the copy instead of copying every string into its allocator, and RapidJSON scans
// strings and whitespace with SSE2. Every file that uses RapidJSON includes this header first,
// so that all of them see the same RapidJSON configuration (RAPIDJSON_SSE2 changes templates).
#pragma once

#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace sluice::format {

// Thread-compatible; keeps its buffers between records. RapidJSON's pool allocator never frees
// what a document used, so a Document reused for many parses grows by every record's values;
// here the pool restarts in a fixed buffer with each record.
class JsonRecordParser {
 public:
  JsonRecordParser() = default;
  JsonRecordParser(const JsonRecordParser&) = delete;  // doc_ points at pool_
  JsonRecordParser& operator=(const JsonRecordParser&) = delete;

  // Parses `text` into doc(); check failed() (not doc().HasParseError(): RapidJSON takes a NUL
  // byte for the end of the text, so `{"a":1}<NUL>...` would parse). NULs that only trail the
  // text are dropped. The document is valid until the next parse.
  template <unsigned kFlags = rapidjson::kParseFullPrecisionFlag>
  rapidjson::Document& parse(std::string_view text) {
    doc_.SetNull();  // nothing may point into the pool when it restarts (a failed parse keeps the old value)
    pool_.Clear();
    while (!text.empty() && text.back() == '\0') text.remove_suffix(1);  // C strings sent with their NUL
    const void* nul = text.empty() ? nullptr : std::memchr(text.data(), '\0', text.size());
    nul_offset_ = nul ? static_cast<const char*>(nul) - text.data() : -1;
    if (nul) return doc_;
    scratch_.assign(text);  // keeps its capacity, and std::string ends in a NUL
    doc_.ParseInsitu<kFlags>(scratch_.data());
    return doc_;
  }
  bool failed() const { return nul_offset_ >= 0 || doc_.HasParseError(); }
  // What failed, with its byte offset ("invalid JSON at byte 7: ...").
  std::string error() const {
    if (nul_offset_ >= 0) return "invalid JSON at byte " + std::to_string(nul_offset_) + ": a NUL byte";
    return "invalid JSON at byte " + std::to_string(doc_.GetErrorOffset()) + ": " +
           rapidjson::GetParseError_En(doc_.GetParseError());
  }
  rapidjson::Document& doc() { return doc_; }

 private:
  static constexpr size_t kPoolBytes = 16 * 1024;  // a record's values; larger ones take chunks
  alignas(16) char pool_buffer_[kPoolBytes];
  rapidjson::MemoryPoolAllocator<> pool_{pool_buffer_, kPoolBytes};
  std::string scratch_;
  std::ptrdiff_t nul_offset_ = -1;  // of a NUL byte in the text, or -1
  rapidjson::Document doc_{&pool_};
};

}  // namespace sluice::format
