// Fixture for scripts/check-boundaries.sh (never compiled): unchecked text-to-number parsing and
// an unbounded std::regex_match.
int64_t version_of(const std::string& name) { return std::stoll(name); }
long size_of(const char* header) { return std::strtol(header, nullptr, 10); }
int port_of(const char* text) { return atoi(text); }
int allowed(const char* text) { return my_atoi(text) + sluice::parse_int32(text, "port").ValueOr(0); }
bool is_duration(const std::string& text) { return std::regex_match(text, std::regex("[0-9]+s")); }
bool bounded(const std::string& text) { return sluice::regex_match_bounded(text, std::regex("[0-9]+s")); }
