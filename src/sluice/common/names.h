// Names that become file names: datasets (tables/<name>, and the <name>_quarantine,
// <name>_dead_letter and <name>_late side tables) and flows (_sluice_state/<flow>,
// inferred_schemas/<flow>.ddl). One check for all of them.
#pragma once

#include <string>

namespace sluice {

// Longest name accepted: a file name holds 255 bytes, and side tables append up to 12.
inline constexpr size_t kMaxPathNameBytes = 200;

// Why `name` cannot be one path component under the storage folder (empty, '.', '..', a '/'
// or '\', a control character, too long), or "" when it can.
std::string path_name_problem(const std::string& name);

}  // namespace sluice
