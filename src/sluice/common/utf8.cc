// UTF-8 validation and replacement of invalid subparts (see the header).
#include "sluice/common/utf8.h"

#include <arrow/api.h>
#include <arrow/util/utf8.h>

#include <cstdint>

namespace sluice {

namespace {

// Length of the well-formed sequence starting at `p` (Unicode Table 3-7), or, when it is
// ill-formed, minus the length of the invalid unit that one U+FFFD replaces (at least 1):
// Unicode's maximal subpart, with Java's rule for encoded surrogates (see below).
int sequence_length(const unsigned char* p, const unsigned char* end) {
  const unsigned char b0 = p[0];
  if (b0 < 0x80) return 1;
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;  // a continuation byte, C0, C1 or F5..FF
  }
  int have = 1;
  while (have < need && p + have < end) {
    const unsigned char b = p[have];
    const bool ok = have == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
    ++have;
  }
  // ED A0..BF starts an encoded surrogate (U+D800..DFFF), never valid. Unicode's maximal
  // subpart would end at ED; Java's decoder, and so Spark, takes the encoded surrogate (or as
  // much of it as there is) for one invalid unit: one U+FFFD, not up to three.
  if (b0 == 0xED && have >= 2 && p[1] >= 0xA0) return -have;
  return have == need ? need : -have;
}

void init_utf8() {
  static const bool initialized = [] {
    arrow::util::InitializeUTF8();
    return true;
  }();
  (void)initialized;
}

template <typename ArrayType, typename BuilderType>
arrow::Result<std::shared_ptr<arrow::Array>> replace_invalid(const arrow::Array& values) {
  const auto& in = static_cast<const ArrayType&>(values);
  BuilderType builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(in.length()));
  ARROW_RETURN_NOT_OK(builder.ReserveData(in.total_values_length()));
  std::string scratch;
  for (int64_t i = 0; i < in.length(); ++i) {
    if (in.IsNull(i)) {
      ARROW_RETURN_NOT_OK(builder.AppendNull());
      continue;
    }
    ARROW_RETURN_NOT_OK(builder.Append(valid_utf8(in.GetView(i), &scratch)));
  }
  return builder.Finish();
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
  init_utf8();
  return arrow::util::ValidateUTF8(bytes);
}

void append_valid_utf8(std::string_view bytes, std::string* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    // Copy the longest valid run at once.
    const unsigned char* run = p;
    int n;
    while (p < end && (n = sequence_length(p, end)) > 0) p += n;
    out->append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    if (p < end) {
      out->append(kReplacementCharacter);
      p += -sequence_length(p, end);
    }
  }
}

std::string_view valid_utf8(std::string_view bytes, std::string* scratch) {
  if (is_valid_utf8(bytes)) return bytes;
  scratch->clear();
  append_valid_utf8(bytes, scratch);
  return *scratch;
}

arrow::Result<std::shared_ptr<arrow::Array>> to_valid_utf8(const std::shared_ptr<arrow::Array>& values) {
  init_utf8();
  const arrow::Type::type id = values->type_id();
  const bool large = id == arrow::Type::LARGE_BINARY || id == arrow::Type::LARGE_STRING;
  if (!large && id != arrow::Type::BINARY && id != arrow::Type::STRING) {
    return arrow::Status::TypeError("to_valid_utf8 needs binary or string values, not ", values->type()->ToString());
  }
  // Value by value: a buffer that is valid as a whole can still split a character between
  // two values. Bytes that are all ASCII split nowhere: one pass over them decides.
  const auto all_valid = [](const auto& a) {
    if (a.length() == 0) return true;
    if (is_ascii(a.raw_data() + a.value_offset(0), a.value_offset(a.length()) - a.value_offset(0))) return true;
    for (int64_t i = 0; i < a.length(); ++i) {
      if (!a.IsNull(i) && !arrow::util::ValidateUTF8(a.GetView(i))) return false;
    }
    return true;
  };
  const bool valid = large ? all_valid(static_cast<const arrow::LargeBinaryArray&>(*values))
                           : all_valid(static_cast<const arrow::BinaryArray&>(*values));
  if (valid) {
    auto data = values->data()->Copy();
    data->type = large ? arrow::large_utf8() : arrow::utf8();
    return arrow::MakeArray(data);
  }
  if (large) return replace_invalid<arrow::LargeBinaryArray, arrow::LargeStringBuilder>(*values);
  return replace_invalid<arrow::BinaryArray, arrow::StringBuilder>(*values);
}

}  // namespace sluice
