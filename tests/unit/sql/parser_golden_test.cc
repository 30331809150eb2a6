// Golden tests for the SQL parser: every tests/unit/sql/golden/*.sql is parsed and its syntax
// tree (or its error message) compared with the .golden file beside it.
// SLUICE_UPDATE_GOLDEN=1 rewrites the .golden files (review the diff before committing).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sluice/sql/parser.h"

namespace sluice::sql {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string render(const SourceFile& file) {
  auto statements = parse_statements(file);
  if (!statements.ok()) return statements.status().message() + "\n";
  std::string out;
  for (const auto& st : *statements) out += to_string(st) + "\n";
  return out;
}

std::vector<fs::path> golden_inputs() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(SLUICE_TEST_DATA_DIR) / "sql" / "golden")) {
    if (e.path().extension() == ".sql") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class ParserGoldenTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(ParserGoldenTest, MatchesGolden) {
  const fs::path input = GetParam();
  SourceFile file{"golden/" + input.filename().string(), read_file(input)};
  const std::string actual = render(file);
  fs::path golden = input;
  golden.replace_extension(".golden");
  if (std::getenv("SLUICE_UPDATE_GOLDEN")) {
    std::ofstream(golden, std::ios::binary) << actual;
    return;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden << " missing: run with SLUICE_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, read_file(golden)) << "for " << input;
}

INSTANTIATE_TEST_SUITE_P(Sql, ParserGoldenTest, ::testing::ValuesIn(golden_inputs()),
                         [](const auto& info) {
                           std::string name = info.param.stem().string();
                           for (auto& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace sluice::sql
