// A temporary (private) table: stored under the pipeline's storage and read by its datasets like
// any other, but not published: `sluice catalog` and `sluice status` leave it out unless asked
// (--all). CREATE TEMPORARY STREAMING TABLE / MATERIALIZED VIEW / LIVE TABLE (and PRIVATE, DLT's
// newer word) set this table property, which marks it in the Delta metadata too.
#pragma once

#include <map>
#include <string>

namespace sluice::sql {

inline constexpr const char* kTemporaryProperty = "sluice.temporary";

// Whether the properties mark a temporary table (the value is checked by the planner: 'true' or
// 'false', any case).
inline bool is_temporary_table(const std::map<std::string, std::string>& properties) {
  auto it = properties.find(kTemporaryProperty);
  if (it == properties.end() || it->second.size() != 4) return false;
  const auto& v = it->second;
  return (v[0] == 't' || v[0] == 'T') && (v[1] == 'r' || v[1] == 'R') && (v[2] == 'u' || v[2] == 'U') &&
         (v[3] == 'e' || v[3] == 'E');
}

}  // namespace sluice::sql
