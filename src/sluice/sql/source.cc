// Error rendering with source context.
#include "sluice/sql/source.h"

#include "sluice/sql/generated_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::sql {

namespace {

// Contents of string literals (`'...'`, `"..."`, with '' doubling and backslash escapes as the
// lexer reads them, unterminated ones up to the end of the text) of text[begin, end), as
// [from, to) offsets; `text` is scanned from its start so a literal opened on an earlier line
// and comments are known.
std::vector<std::pair<size_t, size_t>> string_contents(const std::string& text, size_t begin,
                                                       size_t end) {
  std::vector<std::pair<size_t, size_t>> runs;
  size_t i = 0;
  while (i < end) {
    const char c = text[i];
    if (c == '-' && i + 1 < text.size() && text[i + 1] == '-') {
      i = std::min(text.find('\n', i), text.size());
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      const auto close = text.find("*/", i + 2);
      i = close == std::string::npos ? text.size() : close + 2;
    } else if (c == '`') {
      const auto close = text.find('`', i + 1);
      i = close == std::string::npos ? text.size() : close + 1;
    } else if (c == '\'' || c == '"') {
      size_t k = i + 1;
      while (k < text.size()) {
        if (text[k] == '\\' && k + 1 < text.size()) {
          k += 2;
        } else if (text[k] == c && k + 1 < text.size() && text[k + 1] == c) {
          k += 2;
        } else if (text[k] == c) {
          break;
        } else {
          ++k;
        }
      }
      const size_t from = std::max(i + 1, begin), to = std::min(k, end);
      if (from < to) runs.emplace_back(from - begin, to - begin);
      i = k + 1;
    } else {
      ++i;
    }
  }
  return runs;
}

// The line text[begin, end) as shown under an error: the contents of every string literal on it
// are replaced by "<redacted>" and `column` (0-based) moved to match. A literal may hold a
// secret however it is written (a `kafka.sasl.password =>` value, on the next line, after `=`,
// a URL with a password): the message itself names what is wrong.
std::string without_literals(const std::string& text, size_t begin, size_t end, size_t& column) {
  constexpr std::string_view kRedacted = "<redacted>";
  const std::string line = text.substr(begin, end - begin);
  std::string out;
  size_t done = 0;
  const size_t original_column = column;
  for (const auto& [from, to] : string_contents(text, begin, end)) {
    out.append(line, done, from - done);
    out += kRedacted;
    done = to;
    if (original_column >= to) {
      column = column + kRedacted.size() - (to - from);
    } else if (original_column >= from) {
      column = out.size() - kRedacted.size();
    }
  }
  out.append(line, done);
  return out;
}

struct GeneratedSources {
  std::mutex mutex;  // guards by_name: pipelines load on the main thread, errors format anywhere
  std::map<std::string, std::vector<GeneratedOrigin>> by_name;
};

GeneratedSources& generated_sources() {
  static GeneratedSources* sources = new GeneratedSources();  // never destroyed: used at exit too
  return *sources;
}

}  // namespace

void register_generated_source(const std::string& name, std::vector<GeneratedOrigin> origins) {
  auto& g = generated_sources();
  std::lock_guard lock(g.mutex);
  g.by_name[name] = std::move(origins);
}

std::optional<GeneratedOrigin> generated_origin(const std::string& name, size_t offset) {
  auto& g = generated_sources();
  std::lock_guard lock(g.mutex);
  auto it = g.by_name.find(name);
  if (it == g.by_name.end() || it->second.empty()) return std::nullopt;
  const GeneratedOrigin* best = &it->second.front();
  for (const auto& o : it->second) {
    if (o.begin <= offset) best = &o;
  }
  return *best;
}

std::string format_error(const SourceFile& file, Location at, const std::string& message) {
  size_t begin = at.offset > file.text.size() ? file.text.size() : at.offset;
  while (begin > 0 && file.text[begin - 1] != '\n') --begin;
  size_t end = file.text.find('\n', begin);
  if (end == std::string::npos) end = file.text.size();
  size_t column = static_cast<size_t>(std::max(0, at.col - 1));
  std::string line = without_literals(file.text, begin, end, column);
  std::string caret(column, ' ');
  // Keep tabs so the caret lines up under tab-indented text.
  for (size_t i = 0; i < caret.size() && i < line.size(); ++i) {
    if (line[i] == '\t') caret[i] = '\t';
  }
  if (auto origin = generated_origin(file.name, at.offset)) {
    // Generated SQL: the place is the Python line that made the statement; the generated line
    // is shown as context, with its own line and column within the statement.
    const size_t from = std::min(origin->begin, begin);
    const int statement_line =
        1 + static_cast<int>(std::count(file.text.begin() + static_cast<std::ptrdiff_t>(from),
                                        file.text.begin() + static_cast<std::ptrdiff_t>(begin), '\n'));
    return fmt::format("{}:{}: error: {}\n  in the SQL generated for {} (its line {}, column {}):\n  {}\n  {}^",
                       file.name, origin->line, message, origin->what, statement_line, at.col, line, caret);
  }
  return fmt::format("{}:{}:{}: error: {}\n  {}\n  {}^", file.name, at.line, at.col, message, line,
                     caret);
}

}  // namespace sluice::sql
