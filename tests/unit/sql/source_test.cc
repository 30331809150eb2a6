// SQL error rendering: the offending line is shown, without the contents of string literals.
#include "sluice/sql/source.h"
#include "sluice/sql/parser.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace sluice::sql {
namespace {

TEST(FormatError, ShowsTheLineWithACaret) {
  SourceFile file{"p.sql", "SELECT 1\nFROM x WHERE y\n"};
  EXPECT_EQ(format_error(file, {2, 8, 16}, "bad"), "p.sql:2:8: error: bad\n  FROM x WHERE y\n         ^");
}

TEST(FormatError, HidesStringLiteralsAndKeepsTheCaretInPlace) {
  SourceFile file{"p.sql", "read_kafka(`kafka.sasl.password` => 's3cr3t', kafka.client.id => 'c', x => 1)\n"};
  // The caret points at `x`, after the hidden values.
  const auto x = file.text.find("x =>");
  const std::string shown = "read_kafka(`kafka.sasl.password` => '<redacted>', kafka.client.id => '<redacted>', x => 1)";
  EXPECT_EQ(format_error(file, {1, static_cast<int>(x) + 1, x}, "bad"),
            "p.sql:1:" + std::to_string(x + 1) + ": error: bad\n  " + shown + "\n  " +
                std::string(shown.find("x =>"), ' ') + "^");
}

// However a secret is written, the shown line never holds it (each of these leaked when only
// `name => '...'` on one line was recognised).
TEST(FormatError, NoWayOfWritingALiteralShowsIt) {
  const std::string secret = "s3cr3t-Zq81";
  for (const std::string text :
       {"read_kafka(kafka.sasl.password => \"s3cr3t-Zq81\")\n",
        "read_kafka(kafka.sasl.password => 's3cr3t-Zq81\n",
        "read_kafka(kafka.sasl.password => 'it\\'s s3cr3t-Zq81')\n",
        "read_kafka(kafka.sasl.password = 's3cr3t-Zq81')\n",
        "read_kafka(kafka.sasl.password 's3cr3t-Zq81')\n",
        "read_kafka(kafka.sasl.password =>\n  's3cr3t-Zq81')\n",
        "read_kafka(schema_registry_url => 'http://u:s3cr3t-Zq81@reg')\n",
        "read_kafka(kafka.sasl.password => 'first line\ns3cr3t-Zq81')\n"}) {
    SourceFile file{"p.sql", text};
    for (size_t at = 0; at < text.size(); at = text.find('\n', at) + 1) {
      const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
      const auto message = format_error(file, {line, 1, at}, "bad");
      EXPECT_EQ(message.find("s3cr3t"), std::string::npos) << message;
      if (text.find('\n', at) == std::string::npos) break;
    }
  }
}

TEST(FormatError, ParserNeverQuotesAStringLiteral) {
  SourceFile file{"p.sql", "CREATE MATERIALIZED VIEW m AS SELECT * FROM read_kafka(kafka.sasl.password 's3cr3t-Zq81')\n"};
  auto parsed = parse_statements(file);
  ASSERT_FALSE(parsed.ok());
  const auto& message = parsed.status().message();
  EXPECT_EQ(message.find("s3cr3t"), std::string::npos) << message;
  EXPECT_NE(message.find("but found a string literal"), std::string::npos) << message;
}

}  // namespace
}  // namespace sluice::sql
