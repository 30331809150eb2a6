// String functions: case, trim, slice, search, pad, regex, split, concat and base64, with
// Spark's semantics (positions count characters from 1, not bytes).
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <arrow/util/utf8.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <limits>
#include <map>
#include <regex>

#include "sluice/common/status.h"
#include "sluice/common/utf8.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/functions/row_kernels.h"
#include "sluice/exec/kernel_registry.h"
#include "sluice/exec/string_functions.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace string_family {

// Bytes of the first `chars` UTF-8 characters of `s` (all of it when shorter).
size_t byte_offset_of_char(std::string_view s, int64_t chars) {
  size_t i = 0;
  for (int64_t c = 0; c < chars && i < s.size(); ++c) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

int64_t chars_before(std::string_view s, size_t bytes) {
  int64_t n = 0;
  for (size_t i = 0; i < bytes && i < s.size(); ++i) n += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
  return n;
}

struct LocateState : cp::KernelState {
  std::string needle;
  int64_t start = 1;  // 1-based character position the search starts at
};

// Spark's StringLocate/StringInstr: the 1-based character position of the needle at or after
// `start`, 0 when absent or start < 1; an empty needle is found at 1.
arrow::Status locate_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto* state = static_cast<const LocateState*>(ctx->kernel()->data.get());
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& in = static_cast<const arrow::StringArray&>(*a);
  arrow::Int32Builder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    if (in.IsNull(r)) {
      builder.UnsafeAppendNull();
      continue;
    }
    auto s = in.GetView(r);
    int64_t found = 0;
    if (state->start >= 1) {
      if (state->needle.empty()) {
        found = 1;
      } else {
        size_t from = byte_offset_of_char(s, state->start - 1);
        size_t at = s.find(state->needle, from);
        if (at != std::string_view::npos) found = chars_before(s, at) + 1;
      }
    }
    builder.UnsafeAppend(static_cast<int32_t>(found));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

arrow::Result<std::string> locate_function(const std::string& needle, int64_t start) {
  const std::string name = fmt::format("sluice_locate_{}_{}", std::hash<std::string>{}(needle), start);
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Unary(), cp::FunctionDoc::Empty());
    auto state = std::make_shared<LocateState>();
    state->needle = needle;
    state->start = start;
    ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(arrow::utf8())}, cp::OutputType(arrow::int32()), locate_exec, state));
    return f;
  });
}

constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

arrow::Status base64_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& in = static_cast<const arrow::BinaryArray&>(*a);
  return map_non_null_rows<arrow::StringBuilder>(in, out, [&](int64_t r, std::string& text) {
    auto v = in.GetView(r);
    for (size_t i = 0; i < v.size(); i += 3) {
      uint32_t n = static_cast<unsigned char>(v[i]) << 16;
      if (i + 1 < v.size()) n |= static_cast<unsigned char>(v[i + 1]) << 8;
      if (i + 2 < v.size()) n |= static_cast<unsigned char>(v[i + 2]);
      text += kBase64Alphabet[(n >> 18) & 63];
      text += kBase64Alphabet[(n >> 12) & 63];
      text += i + 1 < v.size() ? kBase64Alphabet[(n >> 6) & 63] : '=';
      text += i + 2 < v.size() ? kBase64Alphabet[n & 63] : '=';
    }
    return arrow::Status::OK();
  });
}

// Decodes base64 as Java's MIME decoder, which Spark's unbase64 uses: characters outside the
// alphabet are skipped, padding is optional, but a partial last group (one character, or
// padding that does not complete the group) or data after the padding is an error.
arrow::Status unbase64_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  static const auto kDecode = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<int8_t>(i);
    return t;
  }();
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& in = static_cast<const arrow::StringArray&>(*a);
  return map_non_null_rows<arrow::BinaryBuilder>(in, out, [&](int64_t r, std::string& bytes) {
    uint32_t acc = 0;
    int bits = 0, chars = 0, padding = 0;
    bool data_after_padding = false;
    for (char ch : in.GetView(r)) {
      if (ch == '=') {
        ++padding;
        continue;
      }
      const int8_t d = kDecode[static_cast<unsigned char>(ch)];
      if (d < 0) continue;
      if (padding > 0) data_after_padding = true;
      ++chars;
      acc = (acc << 6) | static_cast<uint32_t>(d);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes += static_cast<char>((acc >> bits) & 0xFF);
      }
    }
    const int partial = chars % 4;
    const bool complete = padding == 0 ? partial != 1 : (partial == 2 && padding == 2) || (partial == 3 && padding == 1);
    if (!complete || data_after_padding) {
      return invalid("unbase64: the value in row {} is not base64 (its last 4-character group is incomplete)", r);
    }
    return arrow::Status::OK();
  });
}

arrow::Result<std::string> base64_function(bool decode) {
  const std::string name = decode ? "sluice_unbase64" : "sluice_base64";
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Unary(), cp::FunctionDoc::Empty());
    if (decode) {
      ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(arrow::utf8())}, cp::OutputType(arrow::binary()), unbase64_exec));
    } else {
      ARROW_RETURN_NOT_OK(add_text_kernels(*f, cp::OutputType(arrow::utf8()), base64_exec, nullptr));
    }
    return f;
  });
}

// Spark's initcap: lower case, then the first letter of each space-separated word upper case
// (Arrow's utf8_title also starts a word after punctuation: "a,b" would be "A,B", not "A,b").
arrow::Status initcap_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto in, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto lower, cp::CallFunction("utf8_lower", {in}));
  cp::SplitPatternOptions on_space(" ");
  ARROW_ASSIGN_OR_RAISE(auto words, cp::CallFunction("split_pattern", {lower}, &on_space));
  auto list = std::static_pointer_cast<arrow::ListArray>(words.make_array());
  ARROW_ASSIGN_OR_RAISE(auto capitalized, cp::CallFunction("utf8_capitalize", {list->values()}));
  ARROW_ASSIGN_OR_RAISE(auto rebuilt, arrow::ListArray::FromArrays(*list->offsets(), *capitalized.make_array(),
                                                                    arrow::default_memory_pool(), list->null_bitmap(),
                                                                    list->null_count()));
  ARROW_ASSIGN_OR_RAISE(auto joined, cp::CallFunction("binary_join", {rebuilt, arrow::MakeScalar(" ")}));
  out->value = joined.make_array()->data();
  return arrow::Status::OK();
}

// STRING input as STRING, anything else cast to it (Spark casts implicitly for string functions).
arrow::Result<cp::Expression> as_text(const FunctionCall& c, size_t i) {
  if (is_string_type(c.type(i))) return c.expression(i);
  return cast_expr(c.expression(i), c.type(i), arrow::utf8());
}

arrow::Result<BoundExpression> unary_string(const FunctionCall& c, const std::string& kernel) {
  return c.call(kernel, c.expressions());
}

arrow::Result<BoundExpression> slice(const FunctionCall& c, const cp::Expression& text, int64_t start, int64_t stop) {
  return c.call("utf8_slice_codeunits", {text}, std::make_shared<cp::SliceOptions>(start, stop));
}

arrow::Result<BoundExpression> bind_substring(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(int64_t pos, c.literal_int(1));
  // Spark's pos and len are INTs: clamped to that range, start + len cannot overflow.
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  pos = std::clamp<int64_t>(pos, -kIntMax, kIntMax);
  int64_t start = pos > 0 ? pos - 1 : pos;  // 1-based; negative counts from the end
  int64_t stop = std::numeric_limits<int64_t>::max();
  if (c.size() == 3) {
    ARROW_ASSIGN_OR_RAISE(int64_t len, c.literal_int(2));
    len = std::clamp<int64_t>(len, 0, kIntMax);
    stop = pos < 0 ? (start + len >= 0 ? std::numeric_limits<int64_t>::max() : start + len) : start + len;
  }
  return slice(c, c.expression(0), start, stop);
}

arrow::Result<BoundExpression> bind_left_right(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(int64_t n, c.literal_int(1));
  ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
  if (n <= 0) return slice(c, text, 0, 0);
  if (c.name() == "left") return slice(c, text, 0, n);
  return slice(c, text, -n, std::numeric_limits<int64_t>::max());
}

arrow::Result<BoundExpression> bind_locate(const FunctionCall& c) {
  // instr(str, substr); locate(substr, str[, pos]); position(substr, str[, pos])
  const bool instr = c.name() == "instr";
  const size_t text_arg = instr ? 0 : 1;
  ARROW_ASSIGN_OR_RAISE(auto needle, c.literal_string(instr ? 1 : 0));
  int64_t start = 1;
  if (c.size() == 3) {
    ARROW_ASSIGN_OR_RAISE(start, c.literal_int(2));
  }
  ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, text_arg));
  ARROW_ASSIGN_OR_RAISE(auto function, locate_function(needle, start));
  return c.call(function, {text});
}

arrow::Result<BoundExpression> bind_regexp_extract(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto pattern, c.literal_string(1));
  int64_t group = 1;
  if (c.size() == 3) {
    ARROW_ASSIGN_OR_RAISE(group, c.literal_int(2));
  }
  // Arrow extracts named groups only: name the pattern's capturing groups g1, g2, ... and
  // the whole match g0.
  std::string named = "(?P<g0>";
  int count = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      named += pattern.substr(i, 2);
      ++i;
    } else if (pattern[i] == '(' && (i + 1 >= pattern.size() || pattern[i + 1] != '?')) {
      named += "(?P<g" + std::to_string(++count) + ">";
    } else {
      named += pattern[i];
    }
  }
  named += ")";
  if (group < 0 || group > count) {
    return c.error_at(2, fmt::format("regexp_extract group {} does not exist; the pattern has {}", group, count));
  }
  auto extracted = cp::call("extract_regex", {c.expression(0)}, std::make_shared<cp::ExtractRegexOptions>(named));
  auto field = cp::call("struct_field", {extracted},
                        std::make_shared<cp::StructFieldOptions>(std::vector<int>{static_cast<int>(group)}));
  // Spark gives "" when the pattern does not match (NULL only for NULL input).
  auto empty = cp::call("if_else", {cp::call("is_null", {c.expression(0)}), literal_of(arrow::MakeNullScalar(arrow::utf8())),
                                   literal_of(arrow::MakeScalar(""))});
  return c.call("coalesce", {field, empty});
}

arrow::Result<BoundExpression> bind_pad(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(int64_t width, c.literal_int(1));
  if (width > std::numeric_limits<int32_t>::max()) {  // Spark's len is an INT; Arrow's pad kernel crashed past it
    return c.error_at(1, fmt::format("{}: the width must be at most {} (Spark's INT)", c.name(),
                                     std::numeric_limits<int32_t>::max()));
  }
  std::string pad = " ";
  if (c.size() == 3) {
    ARROW_ASSIGN_OR_RAISE(pad, c.literal_string(2));
  }
  if (pad.empty() || byte_offset_of_char(pad, 1) != pad.size()) {
    return c.error_at(2, fmt::format("{} pads with one character; a pad of {} characters is not supported yet",
                                     c.name(), chars_before(pad, pad.size())));
  }
  // Spark truncates a longer string to the width.
  auto padded = cp::call(c.name() == "lpad" ? "utf8_lpad" : "utf8_rpad", {c.expression(0)},
                         std::make_shared<cp::PadOptions>(width, pad));
  return slice(c, padded, 0, std::max<int64_t>(width, 0));
}

arrow::Result<BoundExpression> bind_match(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto pattern, c.literal_string(1));
  const std::string& name = c.name();
  std::string f = name.rfind("starts", 0) == 0 ? "starts_with"
                  : name.rfind("ends", 0) == 0 ? "ends_with"
                  : name == "contains"         ? "match_substring"
                                               : "match_substring_regex";
  return c.call(f, {c.expression(0)}, std::make_shared<cp::MatchSubstringOptions>(pattern));
}

void add_unary(FunctionRegistry& r, std::string name, std::vector<std::string> aliases, std::string kernel,
               std::string returns = "STRING") {
  r.add({std::move(name), std::move(aliases), 1, 1, "string", std::move(returns),
         [kernel](const FunctionCall& c) { return unary_string(c, kernel); }, ""});
}


// (fa) Row functions of the string family; each is the body of a row kernel (row_kernels.h).

// The code point starting at s[i] and its length in bytes (an invalid byte is itself, length 1).
std::pair<uint32_t, size_t> code_point_at(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
  if (i + n > s.size()) n = 1;
  uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return {cp, n};
}

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    auto [cp, n] = code_point_at(s, i);
    out.push_back(cp);
    i += n;
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Spark's ascii: the code point of the first character, 0 for "".
arrow::Result<RowResult> ascii_row(const LiteralArgs&, std::string_view s, int32_t& out) {
  out = s.empty() ? 0 : static_cast<int32_t>(code_point_at(s, 0).first);
  return RowResult::kValue;
}

// Spark's chr: "" below 0, else the character (n mod 256) of Latin-1.
arrow::Result<RowResult> chr_row(const LiteralArgs&, int64_t n, std::string& out) {
  if (n >= 0) append_utf8(out, static_cast<uint32_t>(n & 0xFF));
  return RowResult::kValue;
}

// UTF8String.levenshteinDistance over characters; with a threshold, -1 past it.
arrow::Result<RowResult> levenshtein_row(const LiteralArgs& args, std::string_view a, std::string_view b, int32_t& out) {
  const auto x = code_points(a), y = code_points(b);
  std::vector<int32_t> prev(y.size() + 1), cur(y.size() + 1);
  for (size_t j = 0; j <= y.size(); ++j) prev[j] = static_cast<int32_t>(j);
  for (size_t i = 1; i <= x.size(); ++i) {
    cur[0] = static_cast<int32_t>(i);
    for (size_t j = 1; j <= y.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  out = prev[y.size()];
  if (!args.ints.empty() && out > args.ints[0]) out = -1;
  return RowResult::kValue;
}

// UTF8String.soundex: American Soundex of an ASCII-letter-led string; anything else unchanged.
arrow::Result<RowResult> soundex_row(const LiteralArgs&, std::string_view s, std::string& out) {
  static constexpr char kCodes[] = "01230127022455012623017202";
  auto upper = [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; };
  if (s.empty() || upper(s[0]) < 'A' || upper(s[0]) > 'Z') {
    out = s;
    return RowResult::kValue;
  }
  out = "0000";
  out[0] = upper(s[0]);
  size_t at = 1;
  char last = kCodes[out[0] - 'A'];
  for (size_t i = 1; i < s.size() && at < 4; ++i) {
    const char c = upper(s[i]);
    if (c < 'A' || c > 'Z') {
      last = '0';
      continue;
    }
    const char code = kCodes[c - 'A'];
    if (code == '7') continue;  // H and W are skipped
    if (code != '0' && code != last) out[at++] = code;
    last = code;
  }
  return RowResult::kValue;
}

// UTF8String.substringSQL: `len` characters from the 1-based (or negative, from the end) `pos`.
std::string_view substring_sql(std::string_view s, int64_t pos, int64_t len) {
  const int64_t chars = chars_before(s, s.size());
  int64_t start = pos > 0 ? pos - 1 : pos < 0 ? chars + pos : 0;
  const int64_t end = start + len;
  start = std::max<int64_t>(start, 0);
  if (start >= end) return {};
  const size_t from = byte_offset_of_char(s, start);
  const size_t to = byte_offset_of_char(s, end);
  return s.substr(from, to - from);
}

// overlay(input, replace, pos[, len]): input with `len` characters from pos replaced (len
// defaults to replace's length).
arrow::Result<RowResult> overlay_row(const LiteralArgs& args, std::string_view input, std::string_view replace,
                                     std::string& out) {
  const int64_t pos = args.ints[0];
  const int64_t len = args.ints[1] >= 0 ? args.ints[1] : chars_before(replace, replace.size());
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  out = substring_sql(input, 1, pos - 1);
  out += replace;
  out += substring_sql(input, pos + len, kIntMax);
  return RowResult::kValue;
}

// substring_index(s, delim, count): before the count-th delim (after the count-th from the end
// when negative); all of s when there are fewer.
arrow::Result<RowResult> substring_index_row(const LiteralArgs& args, std::string_view s, std::string& out) {
  const std::string& delim = args.text[0];
  const int64_t count = args.ints[0];
  if (delim.empty() || count == 0) return RowResult::kValue;
  if (count > 0) {
    size_t at = 0;
    for (int64_t k = 0; k < count; ++k) {
      at = s.find(delim, k == 0 ? 0 : at + delim.size());
      if (at == std::string_view::npos) {
        out = s;
        return RowResult::kValue;
      }
    }
    out = s.substr(0, at);
    return RowResult::kValue;
  }
  size_t at = s.size();
  for (int64_t k = 0; k < -count; ++k) {
    if (at < delim.size()) {
      out = s;
      return RowResult::kValue;
    }
    at = s.rfind(delim, at - delim.size());
    if (at == std::string_view::npos) {
      out = s;
      return RowResult::kValue;
    }
  }
  out = s.substr(at + delim.size());
  return RowResult::kValue;
}

// translate(s, from, to): each character of `from` becomes the one at its position in `to`, or
// is deleted when `to` is shorter; the first occurrence of a repeated character wins.
arrow::Result<RowResult> translate_row(const LiteralArgs& args, std::string_view s, std::string& out) {
  const auto from = code_points(args.text[0]), to = code_points(args.text[1]);
  for (size_t i = 0; i < s.size();) {
    auto [cp, n] = code_point_at(s, i);
    auto it = std::find(from.begin(), from.end(), cp);
    if (it == from.end()) {
      out.append(s.substr(i, n));
    } else if (static_cast<size_t>(it - from.begin()) < to.size()) {
      append_utf8(out, to[it - from.begin()]);
    }
    i += n;
  }
  return RowResult::kValue;
}

// split_part(s, delim, n): the n-th part (from the end when negative), "" past the last.
arrow::Result<RowResult> split_part_row(const LiteralArgs& args, std::string_view s, std::string& out) {
  const std::string& delim = args.text[0];
  const int64_t n = args.ints[0];
  std::vector<std::string_view> parts;
  if (delim.empty()) {
    parts.push_back(s);
  } else {
    size_t from = 0;
    for (;;) {
      size_t at = s.find(delim, from);
      parts.push_back(s.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from));
      if (at == std::string_view::npos) break;
      from = at + delim.size();
    }
  }
  const int64_t size = static_cast<int64_t>(parts.size());
  const int64_t i = n > 0 ? n - 1 : size + n;
  if (i >= 0 && i < size) out = parts[i];
  return RowResult::kValue;
}

// find_in_set(x, list): the 1-based position of x among list's comma-separated items, 0 when
// absent or when x holds a comma.
arrow::Result<RowResult> find_in_set_row(const LiteralArgs&, std::string_view x, std::string_view list, int32_t& out) {
  out = 0;
  if (x.find(',') != std::string_view::npos) return RowResult::kValue;
  int32_t n = 1;
  size_t from = 0;
  for (;;) {
    size_t at = list.find(',', from);
    if (list.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from) == x) {
      out = n;
      return RowResult::kValue;
    }
    if (at == std::string_view::npos) return RowResult::kValue;
    from = at + 1;
    ++n;
  }
}

// luhn_check: digits only, non-empty, and the Luhn sum divisible by 10.
arrow::Result<RowResult> luhn_row(const LiteralArgs&, std::string_view s, bool& out) {
  out = false;
  if (s.empty()) return RowResult::kValue;
  int sum = 0;
  bool twice = false;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] < '0' || s[i] > '9') return RowResult::kValue;
    int d = s[i] - '0';
    if (twice) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    twice = !twice;
  }
  out = sum % 10 == 0;
  return RowResult::kValue;
}

// Java's URLEncoder (UTF-8): letters, digits and ".-*_" stay, a space is '+', every other byte %XX.
arrow::Result<RowResult> url_encode_row(const LiteralArgs&, std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : s) {
    const auto b = static_cast<unsigned char>(ch);
    if (std::isalnum(b) || ch == '.' || ch == '-' || ch == '*' || ch == '_') {
      out += ch;
    } else if (ch == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return RowResult::kValue;
}

int hex_digit(char ch) {
  return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

// Java's URLDecoder (UTF-8): '+' is a space, %XX a byte; a broken escape is an error
// (url_decode, Spark's CANNOT_DECODE_URL) or NULL (try_url_decode, args.ints[0] == 1). Bytes
// that are not UTF-8 become U+FFFD.
arrow::Result<RowResult> url_decode_row(const LiteralArgs& args, std::string_view s, std::string& out) {
  std::string bytes;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      bytes += ' ';
    } else if (s[i] == '%') {
      const int hi = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        if (!args.ints.empty() && args.ints[0] == 1) return RowResult::kNull;
        return arrow::Status::Invalid(fmt::format("url_decode: a value has a broken %-escape at byte {} (CANNOT_DECODE_URL)", i));
      }
      bytes += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      bytes += s[i];
    }
  }
  // Each maximal invalid subpart becomes U+FFFD, as Java's decoder (and Spark) do. (Arrow's
  // ValidateUTF8 needs InitializeUTF8() first and accepted everything without it: review of fa.)
  if (sluice::is_valid_utf8(bytes)) {
    out = std::move(bytes);
  } else {
    out.clear();
    sluice::append_valid_utf8(bytes, &out);
  }
  return RowResult::kValue;
}

// is_valid_utf8 / make_valid_utf8 / validate_utf8 / try_validate_utf8 (args.ints[0]: which).
arrow::Result<RowResult> is_valid_utf8_row(const LiteralArgs&, std::string_view s, bool& out) {
  out = sluice::is_valid_utf8(s);
  return RowResult::kValue;
}

arrow::Result<RowResult> valid_utf8_row(const LiteralArgs& args, std::string_view s, std::string& out) {
  if (sluice::is_valid_utf8(s)) {
    out = s;
    return RowResult::kValue;
  }
  const int64_t mode = args.ints[0];  // 0 make valid, 1 error, 2 NULL
  if (mode == 2) return RowResult::kNull;
  if (mode == 1) return arrow::Status::Invalid("validate_utf8: a value is not valid UTF-8 (INVALID_UTF8_STRING)");
  out.clear();
  sluice::append_valid_utf8(s, &out);
  return RowResult::kValue;
}

// Groups the digits of `integer` (no sign) by thousands with ','.
std::string group_thousands(std::string_view digits) {
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Spark's format_number(x, d): Java's DecimalFormat "#,###,##0.00..." (d decimals, HALF_EVEN on
// the exact binary value, which glibc's printf rounding also is).
arrow::Result<RowResult> format_number_row(const LiteralArgs& args, double x, std::string& out) {
  const int64_t d = args.ints[0];
  if (std::isnan(x)) {
    out = "NaN";
    return RowResult::kValue;
  }
  if (std::isinf(x)) {
    out = x < 0 ? "-\xE2\x88\x9E" : "\xE2\x88\x9E";
    return RowResult::kValue;
  }
  // glibc's printf rounds the exact binary value, ties to even: DecimalFormat's HALF_EVEN.
  const int precision = static_cast<int>(d);
  std::string text(static_cast<size_t>(std::snprintf(nullptr, 0, "%.*f", precision, x)), '\0');
  std::snprintf(text.data(), text.size() + 1, "%.*f", precision, x);
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) text.erase(0, 1);
  const size_t dot = text.find('.');
  out = negative ? "-" : "";
  out += group_thousands(std::string_view(text).substr(0, dot));
  if (dot != std::string::npos) out += text.substr(dot);
  return RowResult::kValue;
}

arrow::Result<RowResult> format_number_int_row(const LiteralArgs& args, int64_t x, std::string& out) {
  std::string digits = std::to_string(x);
  const bool negative = digits[0] == '-';
  if (negative) digits.erase(0, 1);
  out = negative ? "-" : "";
  out += group_thousands(digits);
  if (args.ints[0] > 0) out += "." + std::string(static_cast<size_t>(args.ints[0]), '0');
  return RowResult::kValue;
}

// Binds a row kernel over argument 0 as text (and argument 1 with bind_text_row2).
arrow::Result<BoundExpression> bind_text_row(const FunctionCall& c, const std::string& base, const LiteralArgs& args,
                                             std::shared_ptr<arrow::DataType> out, cp::ArrayKernelExec exec) {
  ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
  ARROW_ASSIGN_OR_RAISE(auto function, row_function(base, args, {arrow::utf8()}, std::move(out), exec));
  return c.call(function, {text});
}

arrow::Result<BoundExpression> bind_text_row2(const FunctionCall& c, const std::string& base, const LiteralArgs& args,
                                              std::shared_ptr<arrow::DataType> out, cp::ArrayKernelExec exec) {
  ARROW_ASSIGN_OR_RAISE(auto a, as_text(c, 0));
  ARROW_ASSIGN_OR_RAISE(auto b, as_text(c, 1));
  ARROW_ASSIGN_OR_RAISE(auto function, row_function(base, args, {arrow::utf8(), arrow::utf8()}, std::move(out), exec));
  return c.call(function, {a, b});
}

arrow::Status need_utf8_charset(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto charset, c.literal_string(1));
  std::string upper;
  for (char ch : charset) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (upper == "UTF-8" || upper == "UTF8") return arrow::Status::OK();
  return c.error_at(1, fmt::format("{}: charset '{}' is not supported; sluice supports UTF-8 only", c.name(), charset));
}

}  // namespace string_family

void register_string_functions(FunctionRegistry& r) {
  using namespace string_family;  // NOLINT: this file's own helpers
  add_unary(r, "lower", {"lcase"}, "utf8_lower");
  add_unary(r, "upper", {"ucase"}, "utf8_upper");
  add_unary(r, "trim", {}, "utf8_trim_whitespace");
  add_unary(r, "ltrim", {}, "utf8_ltrim_whitespace");
  add_unary(r, "rtrim", {}, "utf8_rtrim_whitespace");
  add_unary(r, "reverse", {}, "utf8_reverse");
  r.add({"initcap", {}, 1, 1, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once("sluice_initcap", []() -> arrow::Result<std::shared_ptr<cp::Function>> {
             auto f = std::make_shared<cp::ScalarFunction>("sluice_initcap", cp::Arity::Unary(), cp::FunctionDoc::Empty());
             ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(arrow::utf8())}, cp::OutputType(arrow::utf8()), initcap_exec));
             return f;
           }));
           return c.call(function, {text});
         }, ""});
  add_unary(r, "length", {"char_length", "character_length", "len"}, "utf8_length", "INT");
  r.add({"octet_length", {}, 1, 1, "string", "INT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           return c.call("binary_length", {text});
         }, ""});
  r.add({"bit_length", {}, 1, 1, "string", "INT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           return c.call("multiply_checked", {cp::call("binary_length", {text}), literal_of(arrow::MakeScalar(int32_t{8}))});
         }, ""});
  r.add({"concat", {}, 1, kVariadic, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           std::vector<cp::Expression> parts;
           for (size_t i = 0; i < c.size(); ++i) {
             ARROW_ASSIGN_OR_RAISE(auto part, cast_expr(c.expression(i), c.type(i), arrow::utf8()));
             parts.push_back(std::move(part));
           }
           parts.push_back(literal_of(arrow::MakeScalar("")));
           return c.call("binary_join_element_wise", parts);
         }, ""});
  r.add({"concat_ws", {}, 2, kVariadic, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           // Own kernel: Arrow 26's binary_join_element_wise with SKIP drops all-null rows.
           ARROW_ASSIGN_OR_RAISE(auto separator, c.literal_string(0));
           std::vector<cp::Expression> parts;
           for (size_t i = 1; i < c.size(); ++i) {
             ARROW_ASSIGN_OR_RAISE(auto part, cast_expr(c.expression(i), c.type(i), arrow::utf8()));
             parts.push_back(std::move(part));
           }
           ARROW_ASSIGN_OR_RAISE(auto function, concat_ws_function(separator));
           return c.call(function, parts);
         }, "the separator must be a literal"});
  r.add({"regexp_extract", {}, 2, 3, "string", "STRING", bind_regexp_extract,
         "the pattern is RE2 syntax, not Java's (no backreferences or lookaround)"});
  r.add({"substring", {"substr"}, 2, 3, "string", "STRING", bind_substring, "position and length must be literals"});
  r.add({"left", {}, 2, 2, "string", "STRING", bind_left_right, "the length must be a literal"});
  r.add({"right", {}, 2, 2, "string", "STRING", bind_left_right, "the length must be a literal"});
  r.add({"instr", {}, 2, 2, "string", "INT", bind_locate, "the substring must be a literal"});
  r.add({"locate", {"position"}, 2, 3, "string", "INT", bind_locate, "the substring and position must be literals"});
  r.add({"replace", {}, 2, 3, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto search, c.literal_string(1));
           std::string replacement;
           if (c.size() == 3) {
             ARROW_ASSIGN_OR_RAISE(replacement, c.literal_string(2));
           }
           return c.call("replace_substring", {c.expression(0)},
                         std::make_shared<cp::ReplaceSubstringOptions>(search, replacement));
         }, "search and replacement must be literals"});
  r.add({"regexp_replace", {}, 3, 3, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto pattern, c.literal_string(1));
           ARROW_ASSIGN_OR_RAISE(auto replacement, c.literal_string(2));
           // Spark uses $1 for groups; RE2 uses \1.
           replacement = std::regex_replace(replacement, std::regex(R"(\$(\d))"), "\\$1");
           return c.call("replace_substring_regex", {c.expression(0)},
                         std::make_shared<cp::ReplaceSubstringOptions>(pattern, replacement));
         }, "the pattern is RE2 syntax, not Java's"});
  r.add({"split", {}, 2, 2, "string", "ARRAY<STRING>",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto pattern, c.literal_string(1));
           return c.call("split_pattern_regex", {c.expression(0)}, std::make_shared<cp::SplitPatternOptions>(pattern));
         }, "the pattern is RE2 syntax; no limit argument"});
  r.add({"lpad", {}, 2, 3, "string", "STRING", bind_pad, "width and pad must be literals; the pad one character"});
  r.add({"rpad", {}, 2, 3, "string", "STRING", bind_pad, "width and pad must be literals; the pad one character"});
  r.add({"startswith", {"starts_with"}, 2, 2, "string", "BOOLEAN", bind_match, "the prefix must be a literal"});
  r.add({"endswith", {"ends_with"}, 2, 2, "string", "BOOLEAN", bind_match, "the suffix must be a literal"});
  r.add({"contains", {}, 2, 2, "string", "BOOLEAN", bind_match, "the substring must be a literal"});
  r.add({"regexp_like", {"rlike", "regexp"}, 2, 2, "string", "BOOLEAN", bind_match,
         "the pattern is a literal in RE2 syntax"});
  r.add({"repeat", {}, 2, 2, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(int64_t n, c.literal_int(1));
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           return c.call("binary_repeat", {text, literal_of(arrow::MakeScalar(std::max<int64_t>(n, 0)))});
         }, "the count must be a literal"});
  r.add({"space", {}, 1, 1, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(int64_t n, c.literal_int(0));
           return BoundExpression{literal_of(arrow::MakeScalar(std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 1 << 20)), ' '))),
                                  arrow::utf8(), ""};
         }, "the count must be a literal"});
  r.add({"base64", {}, 1, 1, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (!is_string_type(c.type(0)) && !is_binary_type(c.type(0))) {
             return c.error_at(0, fmt::format("base64 needs BINARY or STRING, not {}", sql::sql_type_name(c.type(0))));
           }
           ARROW_ASSIGN_OR_RAISE(auto function, base64_function(false));
           return c.call(function, {c.expression(0)});
         }, ""});
  r.add({"unbase64", {}, 1, 1, "string", "BINARY",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           ARROW_ASSIGN_OR_RAISE(auto function, base64_function(true));
           return c.call(function, {text});
         }, ""});

  // (fa) more of Spark's string functions
  r.add({"btrim", {}, 1, 2, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           std::string chars = " ";  // btrim(s) trims spaces only, as Spark
           if (c.size() == 2) {
             ARROW_ASSIGN_OR_RAISE(chars, c.literal_string(1));
           }
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           if (chars.empty()) return c.call("utf8_slice_codeunits", {text}, std::make_shared<cp::SliceOptions>(0));
           return c.call("utf8_trim", {text}, std::make_shared<cp::TrimOptions>(chars));
         }, "the characters to trim must be a literal"});
  r.add({"ascii", {}, 1, 1, "string", "INT",
         [](const FunctionCall& c) { return bind_text_row(c, "ascii", {}, arrow::int32(), unary_row_exec<arrow::Int32Type, std::string_view, ascii_row>); }, ""});
  r.add({"chr", {"char"}, 1, 1, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (!arrow::is_integer(c.type(0).id()) && c.type(0).id() != arrow::Type::NA) {
             return c.error_at(0, fmt::format("{} needs an integer, not {}", c.name(), sql::sql_type_name(c.type(0))));
           }
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("chr", {}, {arrow::int64()}, arrow::utf8(),
                                                             unary_row_exec<arrow::StringType, int64_t, chr_row>));
           return c.call(function, {cast_to(c.expression(0), arrow::int64())});
         }, ""});
  r.add({"elt", {}, 2, kVariadic, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (!arrow::is_integer(c.type(0).id()) && c.type(0).id() != arrow::Type::NA) {
             return c.error_at(0, fmt::format("elt needs an integer index, not {}", sql::sql_type_name(c.type(0))));
           }
           // ANSI: an index outside 1..n is an error (`choose` refuses it); a NULL index gives NULL.
           std::vector<cp::Expression> args{cp::call("subtract_checked", {cast_to(c.expression(0), arrow::int64()),
                                                                          literal_of(arrow::MakeScalar(int64_t{1}))})};
           for (size_t i = 1; i < c.size(); ++i) {
             ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, i));
             args.push_back(std::move(text));
           }
           return c.call("choose", args);
         }, ""});
  r.add({"find_in_set", {}, 2, 2, "string", "INT",
         [](const FunctionCall& c) { return bind_text_row2(c, "find_in_set", {}, arrow::int32(), binary_row_exec<arrow::Int32Type, std::string_view, find_in_set_row>); }, ""});
  r.add({"levenshtein", {}, 2, 3, "string", "INT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           LiteralArgs args;
           if (c.size() == 3) {
             ARROW_ASSIGN_OR_RAISE(int64_t threshold, c.literal_int(2));
             args.ints = {threshold};
           }
           return bind_text_row2(c, "levenshtein", args, arrow::int32(), binary_row_exec<arrow::Int32Type, std::string_view, levenshtein_row>);
         }, "the threshold must be a literal"});
  r.add({"soundex", {}, 1, 1, "string", "STRING",
         [](const FunctionCall& c) { return bind_text_row(c, "soundex", {}, arrow::utf8(), unary_row_exec<arrow::StringType, std::string_view, soundex_row>); }, ""});
  r.add({"overlay", {}, 3, 4, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           LiteralArgs args;
           ARROW_ASSIGN_OR_RAISE(int64_t pos, c.literal_int(2));
           int64_t len = -1;
           if (c.size() == 4) {
             ARROW_ASSIGN_OR_RAISE(len, c.literal_int(3));
           }
           constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
           args.ints = {std::clamp<int64_t>(pos, -kIntMax, kIntMax), std::clamp<int64_t>(len, -1, kIntMax)};
           return bind_text_row2(c, "overlay", args, arrow::utf8(), binary_row_exec<arrow::StringType, std::string_view, overlay_row>);
         }, "position and length must be literals"});
  r.add({"substring_index", {}, 3, 3, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           LiteralArgs args;
           ARROW_ASSIGN_OR_RAISE(auto delim, c.literal_string(1));
           ARROW_ASSIGN_OR_RAISE(int64_t count, c.literal_int(2));
           args.text = {delim};
           args.ints = {count};
           return bind_text_row(c, "substring_index", args, arrow::utf8(), unary_row_exec<arrow::StringType, std::string_view, substring_index_row>);
         }, "the delimiter and count must be literals"});
  r.add({"translate", {}, 3, 3, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           LiteralArgs args;
           ARROW_ASSIGN_OR_RAISE(auto from, c.literal_string(1));
           ARROW_ASSIGN_OR_RAISE(auto to, c.literal_string(2));
           args.text = {from, to};
           return bind_text_row(c, "translate", args, arrow::utf8(), unary_row_exec<arrow::StringType, std::string_view, translate_row>);
         }, "the character lists must be literals"});
  r.add({"split_part", {}, 3, 3, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           LiteralArgs args;
           ARROW_ASSIGN_OR_RAISE(auto delim, c.literal_string(1));
           ARROW_ASSIGN_OR_RAISE(int64_t n, c.literal_int(2));
           if (n == 0) return c.error_at(2, "split_part: the part number must not be 0 (Spark's INVALID_INDEX_OF_ZERO)");
           args.text = {delim};
           args.ints = {n};
           return bind_text_row(c, "split_part", args, arrow::utf8(), unary_row_exec<arrow::StringType, std::string_view, split_part_row>);
         }, "the delimiter and part number must be literals"});
  r.add({"luhn_check", {}, 1, 1, "string", "BOOLEAN",
         [](const FunctionCall& c) { return bind_text_row(c, "luhn_check", {}, arrow::boolean(), unary_row_exec<arrow::BooleanType, std::string_view, luhn_row>); }, ""});
  r.add({"url_encode", {}, 1, 1, "string", "STRING",
         [](const FunctionCall& c) { return bind_text_row(c, "url_encode", {}, arrow::utf8(), unary_row_exec<arrow::StringType, std::string_view, url_encode_row>); }, ""});
  for (const char* name : {"url_decode", "try_url_decode"}) {
    r.add({name, {}, 1, 1, "string", "STRING",
           [](const FunctionCall& c) {
             LiteralArgs args;
             args.ints = {c.name() == "try_url_decode" ? 1 : 0};
             return bind_text_row(c, c.name(), args, arrow::utf8(), unary_row_exec<arrow::StringType, std::string_view, url_decode_row>);
           }, ""});
  }
  r.add({"regexp_count", {}, 2, 2, "string", "INT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto pattern, c.literal_string(1));
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           return c.call("count_substring_regex", {text}, std::make_shared<cp::MatchSubstringOptions>(pattern));
         }, "the pattern is a literal in RE2 syntax"});
  r.add({"regexp_substr", {}, 2, 2, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto pattern, c.literal_string(1));
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           auto extracted = cp::call("extract_regex", {text}, std::make_shared<cp::ExtractRegexOptions>("(?P<g0>" + pattern + ")"));
           return c.call("struct_field", {extracted}, std::make_shared<cp::StructFieldOptions>(std::vector<int>{0}));
         }, "the pattern is a literal in RE2 syntax"});
  r.add({"is_valid_utf8", {}, 1, 1, "string", "BOOLEAN",
         [](const FunctionCall& c) { return bind_text_row(c, "is_valid_utf8", {}, arrow::boolean(), unary_row_exec<arrow::BooleanType, std::string_view, is_valid_utf8_row>); },
         "CAST(binary AS STRING) already replaces invalid bytes with U+FFFD in sluice, so a STRING is always valid"});
  for (const char* name : {"make_valid_utf8", "validate_utf8", "try_validate_utf8"}) {
    r.add({name, {}, 1, 1, "string", "STRING",
           [](const FunctionCall& c) {
             LiteralArgs args;
             args.ints = {c.name() == "make_valid_utf8" ? 0 : c.name() == "validate_utf8" ? 1 : 2};
             return bind_text_row(c, c.name(), args, arrow::utf8(), unary_row_exec<arrow::StringType, std::string_view, valid_utf8_row>);
           }, "CAST(binary AS STRING) already replaces invalid bytes with U+FFFD in sluice"});
  }
  r.add({"encode", {}, 2, 2, "string", "BINARY",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_RETURN_NOT_OK(need_utf8_charset(c));
           ARROW_ASSIGN_OR_RAISE(auto text, as_text(c, 0));
           return c.call("cast", {text}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::binary())));
         }, "UTF-8 only; other charsets are refused"});
  r.add({"decode", {}, 2, 2, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_RETURN_NOT_OK(need_utf8_charset(c));
           if (!is_binary_type(c.type(0))) {
             return c.error_at(0, fmt::format("decode needs BINARY, not {}", sql::sql_type_name(c.type(0))));
           }
           // Arrow's cast checks the bytes: malformed UTF-8 is an error, as Spark 4's decode.
           return c.call("cast", {c.expression(0)}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::utf8())));
         }, "UTF-8 only; other charsets and the decode(expr, search, result, ...) form are refused"});
  r.add({"format_number", {}, 2, 2, "string", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (!c.is_literal(1) || c.expr().args[1]->literal_type != "integer") {
             return c.error_at(1, "format_number: the decimals must be an integer literal (a format pattern is not supported yet)");
           }
           ARROW_ASSIGN_OR_RAISE(int64_t d, c.literal_int(1));
           if (d < 0) return BoundExpression{literal_of(arrow::MakeNullScalar(arrow::utf8())), arrow::utf8(), ""};
           if (d > 340) return c.error_at(1, "format_number: at most 340 decimals");
           LiteralArgs args;
           args.ints = {d};
           if (arrow::is_integer(c.type(0).id())) {
             ARROW_ASSIGN_OR_RAISE(auto function, row_function("format_number_int", args, {arrow::int64()}, arrow::utf8(),
                                                               unary_row_exec<arrow::StringType, int64_t, format_number_int_row>));
             return c.call(function, {cast_to(c.expression(0), arrow::int64())});
           }
           if (!arrow::is_floating(c.type(0).id())) {
             return c.error_at(0, fmt::format("format_number of {} is not supported (numbers only; DECIMAL not yet)", sql::sql_type_name(c.type(0))));
           }
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("format_number", args, {arrow::float64()}, arrow::utf8(),
                                                             unary_row_exec<arrow::StringType, double, format_number_row>));
           return c.call(function, {cast_to(c.expression(0), arrow::float64())});
         }, "the decimals must be a literal; DECIMAL input is refused"});
}

}  // namespace sluice::exec
