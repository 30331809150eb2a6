// The checked number parsers of common/text.h against the C library's strtoll/strtoull/strtod
// (with errno and end-pointer checks, which the parsers must agree with on every generated
// text), and the errors they give: what was parsed, the text, cut when long.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sluice/common/text.h"

namespace sluice {
namespace {

// The oracle: a whole decimal number and nothing else, in range. The C functions also take
// leading white space and a '+', which the parsers refuse (a config value " 12" is a typo).
bool plain_start(const std::string& s) {
  return !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || (s[0] == '-' && s.size() > 1));
}

std::optional<int64_t> strtoll_oracle(const std::string& s) {
  if (!plain_start(s)) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> strtoull_oracle(const std::string& s) {
  if (!plain_start(s) || s[0] == '-') return std::nullopt;  // strtoull wraps "-1" to 2^64 - 1
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// Texts around the edges: int32/int64/uint64 limits and one past them, long runs of digits,
// and the same with garbage before or after.
std::vector<std::string> generated_texts() {
  std::vector<std::string> bases = {"0",          "7",           "-0",          "010",
                                    "2147483647", "2147483648",  "-2147483648", "-2147483649",
                                    "9223372036854775807",  "9223372036854775808", "-9223372036854775808",
                                    "-9223372036854775809", "18446744073709551615", "18446744073709551616",
                                    "99999999999999999999", "-", ""};
  std::mt19937_64 rng(42);
  for (int i = 0; i < 300; ++i) {
    std::string digits;
    const int n = 1 + static_cast<int>(rng() % 24);
    for (int d = 0; d < n; ++d) digits += static_cast<char>('0' + rng() % 10);
    bases.push_back(rng() % 3 == 0 ? "-" + digits : digits);
  }
  std::vector<std::string> out;
  for (const auto& b : bases) {
    for (const char* before : {"", " ", "+", "0x", "\t"}) {
      for (const char* after : {"", "abc", " ", "x1", ".", "e3", "\n"}) out.push_back(before + b + after);
    }
  }
  return out;
}

TEST(NumberTextTest, Int64AgreesWithCheckedStrtoll) {
  for (const auto& text : generated_texts()) {
    const auto got = parse_int64(text, "n");
    const auto want = strtoll_oracle(text);
    ASSERT_EQ(got.ok(), want.has_value()) << "'" << text << "': " << got.status().ToString();
    if (want) {
      EXPECT_EQ(*got, *want) << "'" << text << "'";
    }
  }
}

TEST(NumberTextTest, Int32AgreesWithCheckedStrtollWithinInt32) {
  for (const auto& text : generated_texts()) {
    const auto got = parse_int32(text, "n");
    auto want = strtoll_oracle(text);
    if (want && (*want < INT32_MIN || *want > INT32_MAX)) want.reset();
    ASSERT_EQ(got.ok(), want.has_value()) << "'" << text << "': " << got.status().ToString();
    if (want) {
      EXPECT_EQ(*got, *want) << "'" << text << "'";
    }
  }
}

TEST(NumberTextTest, Uint64AgreesWithCheckedStrtoullAndRefusesASign) {
  for (const auto& text : generated_texts()) {
    const auto got = parse_uint64(text, "n");
    const auto want = strtoull_oracle(text);
    ASSERT_EQ(got.ok(), want.has_value()) << "'" << text << "': " << got.status().ToString();
    if (want) {
      EXPECT_EQ(*got, *want) << "'" << text << "'";
    }
  }
}

TEST(NumberTextTest, DoubleAgreesWithStrtodOnFiniteDecimalText) {
  // strtod's answer is correctly rounded (glibc), so the two must agree bit for bit.
  for (const std::string text : {"0", "-0.5", "1.5", "3.14159", ".5", "1e10", "1E-5", "123456789012345678901234567890",
                                 "1.7976931348623157e308", "2.2250738585072014e-308", "0.1"}) {
    const auto got = parse_double(text, "x");
    ASSERT_TRUE(got.ok()) << text << ": " << got.status().ToString();
    EXPECT_EQ(*got, std::strtod(text.c_str(), nullptr)) << text;
  }
}

TEST(NumberTextTest, DoubleRefusesWhatStrtodWouldTakeOrCannotHold) {
  // strtod takes all but "", "1.5x" and "x" (with errno or a short end for the last two); each
  // is refused here: space, '+', hex, inf/nan, overflow and trailing characters.
  for (const std::string text : {"", " 1", "+1", "0x1p3", "inf", "-inf", "nan", "infinity", "1e999", "-1e999",
                                 "1.5x", "1.5 ", "x", "1..2"}) {
    EXPECT_FALSE(parse_double(text, "x").ok()) << "'" << text << "'";
  }
}

TEST(NumberTextTest, ErrorsNameWhatWasParsedAndTheText) {
  EXPECT_EQ(parse_int64("12abc", "commit.max_rows").status().message(),
            "commit.max_rows: '12abc' is not a whole number");
  EXPECT_EQ(parse_int64("99999999999999999999", "--target-file-size").status().message(),
            "--target-file-size: '99999999999999999999' is out of range (a whole number from "
            "-9223372036854775808 to 9223372036854775807)");
  EXPECT_EQ(parse_int32("", "decimal precision").status().message(),
            "decimal precision: expected a whole number, found nothing");
  EXPECT_EQ(parse_uint64("-1", "size").status().message(), "size: '-1' is not a whole number >= 0");
  EXPECT_EQ(parse_double("1e999", "duration").status().message(),
            "duration: '1e999' is out of range (a finite number up to 1.79769e+308)");
  EXPECT_EQ(parse_int64("x", "").status().message(), "'x' is not a whole number") << "no prefix without a what";
}

TEST(NumberTextTest, LongOrBinaryTextIsCutAndEscapedInTheError) {
  const std::string digits(10'000, '9');
  const auto message = parse_int64(digits, "duration").status().message();
  EXPECT_EQ(message, "duration: '" + std::string(64, '9') +
                         "... (10000 characters)' is out of range (a whole number from -9223372036854775808 to "
                         "9223372036854775807)");
  EXPECT_EQ(parse_int64(std::string("1\n\x01\xff", 4), "n").status().message(),
            "n: '1\\x0a\\x01\\xff' is not a whole number");
}

}  // namespace
}  // namespace sluice
