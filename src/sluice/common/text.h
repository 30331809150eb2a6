// Small text helpers shared by the SQL front end and config parsing.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

std::string to_lower(std::string s);
std::string to_upper(std::string s);

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `name` within a small distance, or "" when none is close.
std::string closest_match(const std::string& name, const std::vector<std::string>& candidates);

// Checked number parsing, the one family sluice uses (scripts/check-boundaries.sh refuses
// std::sto*, ato* and strto* in src/: they throw std::out_of_range past every handler or take
// "12abc" as 12). The whole of `text` as a number, or an Invalid status that names `what` was
// being read ("--limit", "SCD TYPE", "the watermark of state snapshot <path>") and the text
// (its first 64 characters when longer, control bytes escaped). Refused: empty text, anything
// before or after the number (spaces, a '+', "12abc"), and a value outside the type's range.
// Decimal only ("010" is ten, "0x10" is refused). Doubles must be finite ("1e999", "nan" and
// "inf" are refused). Callers that know the file:line:col or option put it in front; an empty
// `what` leaves the message without a "what: " prefix (CLI11 puts the option's name there).
arrow::Result<int64_t> parse_int64(std::string_view text, std::string_view what);
arrow::Result<int32_t> parse_int32(std::string_view text, std::string_view what);
arrow::Result<uint64_t> parse_uint64(std::string_view text, std::string_view what);
arrow::Result<double> parse_double(std::string_view text, std::string_view what);

// `text` for an error message: at most `limit` characters (then "... (N characters)"), with
// control and non-ASCII bytes as \xNN, so hostile text cannot flood or garble a log line.
std::string quote_for_error(std::string_view text, size_t limit = 64);

// RFC 3986 percent-encoding: every byte but the unreserved ones (letters, digits, -_.~) and
// the characters of `keep` becomes %XX (upper-case hex).
std::string percent_encode(std::string_view text, std::string_view keep = {});

}  // namespace sluice
