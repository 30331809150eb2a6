// Error rendering with source context.
#include "sluice/sql/source.h"

#include <fmt/format.h>

namespace sluice::sql {

std::string format_error(const SourceFile& file, Location at, const std::string& message) {
  size_t begin = at.offset > file.text.size() ? file.text.size() : at.offset;
  while (begin > 0 && file.text[begin - 1] != '\n') --begin;
  size_t end = file.text.find('\n', begin);
  if (end == std::string::npos) end = file.text.size();
  std::string line = file.text.substr(begin, end - begin);
  std::string caret(static_cast<size_t>(std::max(0, at.col - 1)), ' ');
  // Keep tabs so the caret lines up under tab-indented text.
  for (size_t i = 0; i < caret.size() && i < line.size(); ++i) {
    if (line[i] == '\t') caret[i] = '\t';
  }
  return fmt::format("{}:{}:{}: error: {}\n  {}\n  {}^", file.name, at.line, at.col, message, line,
                     caret);
}

}  // namespace sluice::sql
