// Small text helpers shared by the SQL front end and config parsing.
#pragma once

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

// The whole of `text` as a number, or nullopt when it is not one or out of range (never
// throws, unlike std::stoll / std::stod: SQL literals and options are user input).
std::optional<int64_t> parse_int64(std::string_view text);
std::optional<double> parse_double(std::string_view text);

// RFC 3986 percent-encoding: every byte but the unreserved ones (letters, digits, -_.~) and
// the characters of `keep` becomes %XX (upper-case hex).
std::string percent_encode(std::string_view text, std::string_view keep = {});

}  // namespace sluice
