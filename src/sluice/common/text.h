// Small text helpers shared by the SQL front end and config parsing.
#pragma once

#include <string>
#include <vector>

namespace sluice {

std::string to_lower(std::string s);
std::string to_upper(std::string s);

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `name` within a small distance, or "" when none is close.
std::string closest_match(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace sluice
