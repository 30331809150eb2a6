// Fixture for scripts/check-boundaries.sh (never compiled): the one file that may call std::regex_match.
inline bool regex_match_bounded(const std::string& t, const std::regex& re) { return t.size() < 9 && std::regex_match(t, re); }
