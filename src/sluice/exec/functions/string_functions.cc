// String functions: case, trim, slice, search, pad, regex, split, concat and base64, with
// Spark's semantics (positions count characters from 1, not bytes).
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <regex>

#include "sluice/common/status.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
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
}

}  // namespace sluice::exec
