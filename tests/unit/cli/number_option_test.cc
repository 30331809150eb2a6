// Integer command-line options go through whole_number() (cli/number_option.h): CLI11 alone
// reads them with strtoll in base 0 and takes 99999999999999999999 as INT64_MAX, "010" as 8 and
// "0x10" as 16; with the validator each is what the checked parser says, or an error naming the
// option.
#include "sluice/cli/number_option.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::cli {
namespace {

struct Parsed {
  bool ok = false;
  int64_t value = -1;
  std::string error;
};

Parsed parse(const std::string& text, bool checked) {
  CLI::App app("t");
  int64_t value = -1;
  auto* option = app.add_option("--target-file-size", value, "bytes");
  if (checked) option->transform(whole_number(1));
  std::vector<std::string> args = {text, "--target-file-size"};  // CLI11 takes them in reverse
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return {false, value, e.what()};
  }
  return {true, value, ""};
}

TEST(NumberOptionTest, Cli11AloneTakesGarbageTheValidatorRefusesOrReadsRight) {
  // What the validator corrects: CLI11's own reading of each text (kept as a witness: if CLI11
  // ever refuses these itself, the validator is redundant, not wrong).
  EXPECT_EQ(parse("99999999999999999999", false).value, INT64_MAX);
  EXPECT_EQ(parse("010", false).value, 8);
  EXPECT_EQ(parse("0x10", false).value, 16);

  const auto overflow = parse("99999999999999999999", true);
  EXPECT_FALSE(overflow.ok);
  EXPECT_EQ(overflow.error,
            "--target-file-size: '99999999999999999999' is out of range (a whole number from "
            "-9223372036854775808 to 9223372036854775807)");
  EXPECT_EQ(parse("010", true).value, 10);
  EXPECT_EQ(parse("0x10", true).error, "--target-file-size: '0x10' is not a whole number");
  EXPECT_EQ(parse("12abc", true).error, "--target-file-size: '12abc' is not a whole number");
  EXPECT_EQ(parse("0", true).error,
            "--target-file-size: '0' is out of range (a whole number from 1 to 9223372036854775807)");
  const auto fine = parse("134217728", true);
  EXPECT_TRUE(fine.ok) << fine.error;
  EXPECT_EQ(fine.value, 134217728);
}

}  // namespace
}  // namespace sluice::cli
