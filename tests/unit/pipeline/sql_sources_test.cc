// ${name} substitution into SQL: a value inside a string literal reads back exactly as written.
#include "sluice/pipeline/sql_sources.h"

#include <gtest/gtest.h>

#include "sluice/sql/lexer.h"

namespace sluice::pipeline {
namespace {

// The string literals the lexer reads from `sql` after substitution.
std::vector<std::string> literals(const std::string& sql, const std::map<std::string, std::string>& conf) {
  auto tokens = sql::tokenize(sql::SourceFile{"p.sql", substitute_variables(sql, conf)});
  EXPECT_TRUE(tokens.ok()) << tokens.status().ToString();
  std::vector<std::string> out;
  if (!tokens.ok()) return out;
  for (const auto& t : *tokens) {
    if (t.kind == sql::TokenKind::kString) out.push_back(t.text);
  }
  return out;
}

TEST(SubstituteVariables, ValueInsideALiteralReadsBackExactly) {
  for (const std::string value : {"ab'cd", "a\\nb", "x\\\\'y", "q\"q", "''", "plain"}) {
    const std::map<std::string, std::string> conf = {{"pw", value}};
    EXPECT_EQ(literals("SELECT '${pw}', \"${pw}\", 'pre-${pw}-post' FROM t", conf),
              (std::vector<std::string>{value, value, "pre-" + value + "-post"}))
        << value;
  }
}

TEST(SubstituteVariables, OutsideLiteralsAsWritten) {
  const std::map<std::string, std::string> conf = {{"t", "ev'en\\ts"}};
  EXPECT_EQ(substitute_variables("SELECT * FROM ${t} -- it's ${t}\n/* ${t} */ `${t}` ${u} '${t}'", conf),
            "SELECT * FROM ev'en\\ts -- it's ev'en\\ts\n/* ev'en\\ts */ `ev'en\\ts` ${u} 'ev''en\\\\ts'");
}

TEST(SubstituteVariables, QuotesInsideLiteralsDoNotEndThem) {
  const std::map<std::string, std::string> conf = {{"t", "events"}};
  EXPECT_EQ(substitute_variables("SELECT 'it''s ${t}', 'a\\'${t}'", conf), "SELECT 'it''s events', 'a\\'events'");
}

}  // namespace
}  // namespace sluice::pipeline
