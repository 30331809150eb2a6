// Error rendering with source context.
#include "sluice/sql/source.h"

#include <fmt/format.h>

#include <regex>

#include "sluice/common/secrets.h"

namespace sluice::sql {

namespace {

// The line as shown under an error: the value of a named argument whose name looks secret
// (`kafka.sasl.password => '...'`, also with the name in backquotes) is replaced, and `column`
// (0-based) moved to match.
std::string without_secrets(const std::string& line, size_t& column) {
  static const std::regex kNamedLiteral(R"(`?([A-Za-z_][A-Za-z0-9_.]*)`?\s*=>\s*'((?:[^']|'')*)')");
  std::string out;
  size_t done = 0;
  const size_t original_column = column;
  for (auto it = std::sregex_iterator(line.begin(), line.end(), kNamedLiteral);
       it != std::sregex_iterator(); ++it) {
    if (!looks_secret((*it)[1].str())) continue;
    const auto value_at = static_cast<size_t>(it->position(2));
    const auto value_size = static_cast<size_t>(it->length(2));
    out.append(line, done, value_at - done);
    constexpr std::string_view kRedacted = "<redacted>";
    out += kRedacted;
    done = value_at + value_size;
    if (original_column >= done) column = column + kRedacted.size() - value_size;
  }
  out.append(line, done);
  return out;
}

}  // namespace

std::string format_error(const SourceFile& file, Location at, const std::string& message) {
  size_t begin = at.offset > file.text.size() ? file.text.size() : at.offset;
  while (begin > 0 && file.text[begin - 1] != '\n') --begin;
  size_t end = file.text.find('\n', begin);
  if (end == std::string::npos) end = file.text.size();
  size_t column = static_cast<size_t>(std::max(0, at.col - 1));
  std::string line = without_secrets(file.text.substr(begin, end - begin), column);
  std::string caret(column, ' ');
  // Keep tabs so the caret lines up under tab-indented text.
  for (size_t i = 0; i < caret.size() && i < line.size(); ++i) {
    if (line[i] == '\t') caret[i] = '\t';
  }
  return fmt::format("{}:{}:{}: error: {}\n  {}\n  {}^", file.name, at.line, at.col, message, line,
                     caret);
}

}  // namespace sluice::sql
