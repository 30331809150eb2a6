// std::regex_match / std::regex_search over text of bounded length. libstdc++'s std::regex
// recurses once per character a match spans (GCC bug 86164): a 100 000-digit duration in
// pipeline.yaml or a decimal(<100 000 digits>,2) type in a Delta log overflowed the stack with
// SIGSEGV, which no handler can catch. scripts/check-boundaries.sh keeps the unbounded calls out
// of src/ (std::regex_replace, whose matches here are short, stays allowed).
#pragma once

#include <cstddef>
#include <regex>
#include <string>

namespace sluice {

// Longer than any name, duration, tag or type sluice matches with a regex; a text past it does
// not match (callers' errors say "not a valid ...", and quote the text cut: quote_for_error).
inline constexpr size_t kMaxRegexText = 4096;

inline bool regex_match_bounded(const std::string& text, std::smatch& m, const std::regex& re) {
  return text.size() <= kMaxRegexText && std::regex_match(text, m, re);
}

inline bool regex_match_bounded(const std::string& text, const std::regex& re) {
  return text.size() <= kMaxRegexText && std::regex_match(text, re);
}

inline bool regex_search_bounded(const std::string& text, std::smatch& m, const std::regex& re) {
  return text.size() <= kMaxRegexText && std::regex_search(text, m, re);
}

}  // namespace sluice
