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
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t start = text.find("${", pos);
    if (start == std::string::npos) break;
    size_t end = text.find('}', start);
    if (end == std::string::npos) break;
    auto it = configuration.find(text.substr(start + 2, end - start - 2));
    out += text.substr(pos, start - pos);
    out += it == configuration.end() ? text.substr(start, end - start + 1) : it->second;
    pos = end + 1;
  }
  return out + text.substr(pos);
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
