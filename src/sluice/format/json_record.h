// One JSON record parsed with RapidJSON, in place in a reused NUL-terminated copy: the document
// points into the copy instead of copying every string into its allocator, and RapidJSON scans
// strings and whitespace with SSE2. Every file that uses RapidJSON includes this header first,
// so that all of them see the same RapidJSON configuration (RAPIDJSON_SSE2 changes templates).
#pragma once

#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif
#if defined(RAPIDJSON_STRTOD_) && !defined(SLUICE_RAPIDJSON_STRTOD_PATCHED)
#error "include sluice/format/json_record.h before any RapidJSON header (it patches RapidJSON's strtod.h)"
#endif
#include "sluice/format/json_rapidjson_strtod.h"  // before <rapidjson/document.h>: replaces its strtod.h
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "sluice/common/nesting.h"
#include "sluice/common/utf8.h"

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
  // text are dropped. Invalid UTF-8 is replaced by U+FFFD per maximal invalid subpart, and
  // `\u` escapes of unpaired surrogates by `\uFFFD`, before parsing (as Spark's JSON reader
  // decodes its input), so every string of the document is valid UTF-8. Text nested deeper
  // than kMaxNestingDepth objects/arrays fails before RapidJSON (which recurses per level)
  // sees it. The document is valid until the next parse.
  template <unsigned kFlags = rapidjson::kParseFullPrecisionFlag>
  rapidjson::Document& parse(std::string_view text) {
    doc_.SetNull();  // nothing may point into the pool when it restarts (a failed parse keeps the old value)
    pool_.Clear();
    if (!prepare(text)) return doc_;
    doc_.ParseInsitu<kFlags>(scratch_.data());
    if (doc_.HasParseError()) parse_error_.Set(doc_.GetParseError(), doc_.GetErrorOffset());
    return doc_;
  }

  // The same text, the same checks and the same grammar as parse(), but as RapidJSON SAX
  // events sent to `handler` instead of a document: no tree is built. Strings and keys passed
  // to the handler point into the reused buffer and stay valid until the next parse. A handler
  // returning false stops the parse (failed() is then true). Returns !failed().
  template <unsigned kFlags = rapidjson::kParseFullPrecisionFlag, typename Handler>
  bool parse_events(std::string_view text, Handler& handler) {
    if (!prepare(text)) return false;
    rapidjson::InsituStringStream stream(scratch_.data());
    parse_error_ = reader_.Parse<kFlags | rapidjson::kParseInsituFlag>(stream, handler);
    return !failed();
  }

  bool failed() const { return nul_offset_ >= 0 || too_deep_offset_ >= 0 || parse_error_.IsError(); }
  // What failed, with its byte offset ("invalid JSON at byte 7: ...").
  std::string error() const {
    if (nul_offset_ >= 0) return "invalid JSON at byte " + std::to_string(nul_offset_) + ": a NUL byte";
    if (too_deep_offset_ >= 0) {
      return "JSON nested deeper than " + std::to_string(kMaxNestingDepth) + " levels of objects/arrays at byte " +
             std::to_string(too_deep_offset_) + " (sluice's limit: deeper columns are not readable by every Delta " +
             "reader); flatten the record, or send the deep part as a JSON string";
    }
    return "invalid JSON at byte " + std::to_string(parse_error_.Offset()) + ": " +
           rapidjson::GetParseError_En(parse_error_.Code());
  }
  rapidjson::Document& doc() { return doc_; }

  // Whether prepare_in_place can change anything: not when the text has no backslash and too
  // few brackets to nest too deep, as most records (one branch-free pass the compiler
  // vectorises, where the exact scan costs as much as RapidJSON's own).
  static bool needs_preparing(std::string_view text) {
    if (std::memchr(text.data(), '\\', text.size()) != nullptr) return true;
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    size_t brackets = 0;
    for (size_t i = 0; i < text.size();) {
      // Blocks of at most 255 bytes keep the count in a byte, so the loop vectorises;
      // (c | 0x20) == '{' holds for '{' and '[' only.
      const size_t end = i + std::min<size_t>(text.size() - i, 255);
      unsigned char in_block = 0;
      for (; i < end; ++i) in_block += static_cast<unsigned char>((p[i] | 0x20) == '{');
      brackets += in_block;
      if (brackets > static_cast<size_t>(kMaxNestingDepth)) return true;
    }
    return false;
  }

  // One pass over the text outside RapidJSON: the byte offset of the first '{' or '[' nested
  // deeper than kMaxNestingDepth (or -1), and unpaired surrogate escapes rewritten to \uFFFD
  // (RapidJSON 1.1 refuses a lone high surrogate and encodes a lone low one as invalid UTF-8).
  // Bytes after the end of the JSON value are left for RapidJSON to refuse.
  static std::ptrdiff_t prepare_in_place(std::string& text) {
    char* s = text.data();
    const size_t n = text.size();
    int depth = 0;
    for (size_t i = 0; i < n; ++i) {
      const char c = s[i];
      if (c == '"') {
        // To the closing quote with memchr (most bytes of a record are inside strings),
        // stopping only at backslashes before it.
        ++i;
        for (;;) {
          const char* quote = static_cast<const char*>(std::memchr(s + i, '"', n - i));
          const size_t q = quote ? static_cast<size_t>(quote - s) : n;
          const char* slash = static_cast<const char*>(std::memchr(s + i, '\\', q - i));
          if (!slash) {
            i = q;  // the closing quote (or the end of an unterminated string)
            break;
          }
          i = static_cast<size_t>(slash - s);
          if (i + 5 < n && s[i + 1] == 'u') {
            const int cp = hex4(s + i + 2);
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 11 < n && s[i + 6] == '\\' && s[i + 7] == 'u') {
              const int low = hex4(s + i + 8);
              if (low >= 0xDC00 && low <= 0xDFFF) {
                i += 12;  // a valid pair
                continue;
              }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) std::memcpy(s + i + 2, "FFFD", 4);
            i += 6;
          } else {
            i += 2;  // the escaped character (a quote or backslash must not end or start anything)
          }
          if (i >= n) break;
        }
      } else if (c == '{' || c == '[') {
        if (++depth > kMaxNestingDepth) return static_cast<std::ptrdiff_t>(i);
      } else if (c == '}' || c == ']') {
        --depth;
      }
    }
    return -1;
  }

 private:
  static constexpr size_t kSimdPadding = 16;
  static constexpr size_t kPoolBytes = 16 * 1024;  // a record's values; larger ones take chunks
  alignas(16) char pool_buffer_[kPoolBytes];
  rapidjson::MemoryPoolAllocator<> pool_{pool_buffer_, kPoolBytes};
  std::string scratch_;
  // Everything parse() and parse_events() do before RapidJSON runs: false when the text fails
  // already (a NUL byte, too deep); else scratch_ holds the prepared text and its padding.
  bool prepare(std::string_view text) {
    parse_error_.Clear();
    too_deep_offset_ = -1;
    while (!text.empty() && text.back() == '\0') text.remove_suffix(1);  // C strings sent with their NUL
    const void* nul = text.empty() ? nullptr : std::memchr(text.data(), '\0', text.size());
    nul_offset_ = nul ? static_cast<const char*>(nul) - text.data() : -1;
    if (nul) return false;
    // scratch_ keeps its capacity, and std::string ends in a NUL
    if (is_valid_utf8(text)) {
      scratch_.assign(text);
    } else {
      scratch_.clear();
      append_valid_utf8(text, &scratch_);
    }
    too_deep_offset_ = needs_preparing(scratch_) ? prepare_in_place(scratch_) : -1;
    if (too_deep_offset_ >= 0) return false;
    // RapidJSON's SSE2 scanning loads aligned 16-byte blocks, up to 15 bytes past the text's
    // terminating NUL: keep them inside the buffer (found by the json_decoder fuzzer under ASan).
    scratch_.append(kSimdPadding, '\0');
    return true;
  }
  static int hex4(const char* p) {
    int v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = p[k];
      int d;
      if (h >= '0' && h <= '9') d = h - '0';
      else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
      else return -1;
      v = v * 16 + d;
    }
    return v;
  }

  std::ptrdiff_t nul_offset_ = -1;  // of a NUL byte in the text, or -1
  std::ptrdiff_t too_deep_offset_ = -1;  // of the first container nested too deep, or -1
  rapidjson::ParseResult parse_error_;  // RapidJSON's verdict on the last parse
  rapidjson::Document doc_{&pool_};
  rapidjson::Reader reader_;  // parse_events' (in situ, its stack stays empty between records)
};

}  // namespace sluice::format
