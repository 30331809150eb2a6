// SQL source text and positions in it; errors render as "file:line:col: error: ..." with the
// offending line and a caret under the column.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace sluice::sql {

struct Location {
  int line = 1;  // 1-based
  int col = 1;   // 1-based, in bytes
  size_t offset = 0;
};

struct SourceFile {
  std::string name;  // path as the user gave it
  std::string text;
};

// "name:line:col: error: message\n  <line text>\n  <caret>" (no trailing newline).
std::string format_error(const SourceFile& file, Location at, const std::string& message);

}  // namespace sluice::sql
