// SQL error rendering: the offending line is shown, without values of secret-looking arguments.
#include "sluice/sql/source.h"

#include <gtest/gtest.h>

namespace sluice::sql {
namespace {

TEST(FormatError, ShowsTheLineWithACaret) {
  SourceFile file{"p.sql", "SELECT 1\nFROM x WHERE y\n"};
  EXPECT_EQ(format_error(file, {2, 8, 16}, "bad"), "p.sql:2:8: error: bad\n  FROM x WHERE y\n         ^");
}

TEST(FormatError, HidesValuesOfSecretLookingArgumentsAndKeepsTheCaretInPlace) {
  SourceFile file{"p.sql", "read_kafka(`kafka.sasl.password` => 's3cr3t', kafka.client.id => 'c', x => 1)\n"};
  // The caret points at `x`, after the hidden value.
  const auto x = file.text.find("x =>");
  EXPECT_EQ(format_error(file, {1, static_cast<int>(x) + 1, x}, "bad"),
            "p.sql:1:" + std::to_string(x + 1) +
                ": error: bad\n  read_kafka(`kafka.sasl.password` => '<redacted>', kafka.client.id => 'c', x => 1)\n"
                "  " + std::string(x + 4, ' ') + "^");
}

}  // namespace
}  // namespace sluice::sql
