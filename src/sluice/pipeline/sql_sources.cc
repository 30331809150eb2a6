// Loading a pipeline's SQL files.
#include "sluice/pipeline/sql_sources.h"

#include <fnmatch.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "sluice/common/status.h"

namespace sluice::pipeline {

namespace fs = std::filesystem;

std::string substitute_variables(const std::string& text,
                                 const std::map<std::string, std::string>& configuration) {
  // Scans like the SQL lexer so a reference inside a string literal is known: there the value is
  // escaped for that literal (quote doubled, backslash doubled), so `ab'cd` or `a\nb` arrive as
  // written instead of ending the literal or turning into a newline. Elsewhere (code, comments,
  // `quoted names`) the value is pasted as written.
  enum class Mode { kCode, kString, kLineComment, kBlockComment, kBackquote };
  Mode mode = Mode::kCode;
  char quote = 0;  // the quote of the string literal being copied
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const size_t end = text.find('}', i);
      if (end != std::string::npos) {
        auto it = configuration.find(text.substr(i + 2, end - i - 2));
        if (it == configuration.end()) {
          out.append(text, i, end - i + 1);  // left for the parser to report
        } else if (mode != Mode::kString) {
          out += it->second;
        } else {
          for (char v : it->second) {
            if (v == quote || v == '\\') out += v;
            out += v;
          }
        }
        i = end + 1;
        continue;
      }
    }
    out += c;
    ++i;
    const char next = i < text.size() ? text[i] : 0;
    switch (mode) {
      case Mode::kCode:
        if (c == '\'' || c == '"') {
          mode = Mode::kString;
          quote = c;
        } else if (c == '`') {
          mode = Mode::kBackquote;
        } else if (c == '-' && next == '-') {
          mode = Mode::kLineComment;
        } else if (c == '/' && next == '*') {
          mode = Mode::kBlockComment;
          out += next;
          ++i;
        }
        break;
      case Mode::kString:
        if (c == '\\' && i < text.size()) {
          out += next;  // an escaped character, never the end of the literal
          ++i;
        } else if (c == quote && next == quote) {
          out += next;
          ++i;
        } else if (c == quote) {
          mode = Mode::kCode;
        }
        break;
      case Mode::kLineComment:
        if (c == '\n') mode = Mode::kCode;
        break;
      case Mode::kBlockComment:
        if (c == '*' && next == '/') {
          out += next;
          ++i;
          mode = Mode::kCode;
        }
        break;
      case Mode::kBackquote:
        if (c == '`') mode = Mode::kCode;
        break;
    }
  }
  return out;
}

arrow::Result<std::vector<sql::SourceFile>> load_sql_sources(const PipelineConfig& config) {
  std::vector<std::string> patterns = config.library_globs;
  if (patterns.empty()) patterns.push_back("*.sql");
  std::vector<fs::path> paths;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(config.dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string relative = fs::relative(it->path(), config.dir).string();
    if (relative.rfind("data/", 0) == 0 || relative.find("/_delta_log/") != std::string::npos) continue;
    for (const auto& p : patterns) {
      if (::fnmatch(p.c_str(), relative.c_str(), FNM_PATHNAME) == 0) {
        paths.push_back(it->path());
        break;
      }
    }
  }
  if (ec) return io_error("cannot list {}: {}", config.dir.string(), ec.message());
  std::sort(paths.begin(), paths.end());
  std::vector<sql::SourceFile> files;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return io_error("cannot read {}", p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    files.push_back({fs::relative(p, fs::current_path(), ec).string(),
                     substitute_variables(ss.str(), config.configuration)});
  }
  return files;
}

}  // namespace sluice::pipeline
