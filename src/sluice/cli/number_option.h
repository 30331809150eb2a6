// Integer command-line options read by sluice's checked parser (common/text.h), not by CLI11's.
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <string>

#include "sluice/common/text.h"

namespace sluice::cli {

// CLI11 2.1 converts an integer option with strtoll in base 0 and no range check: "010" is 8,
// "0x10" is 16, and --target-file-size 99999999999999999999 became INT64_MAX silently (its
// PositiveNumber check compares a double, which passes). Added with Option::transform (which,
// unlike check, runs first and may rewrite the text), it lets only what parse_int64 accepts,
// within [min, max], through, rewritten as plain decimal digits so CLI11's base-0 conversion
// reads "010" as ten; CLI11 names the option in front of a refusal ("--limit: '12abc' is not a
// whole number").
inline CLI::Validator whole_number(int64_t min = std::numeric_limits<int64_t>::min(),
                                   int64_t max = std::numeric_limits<int64_t>::max()) {
  return CLI::Validator(
      [min, max](std::string& input) -> std::string {
        const auto n = parse_int64(input, "");
        if (!n.ok()) return n.status().message();
        if (*n < min || *n > max) {
          return fmt::format("'{}' is out of range (a whole number from {} to {})", input, min, max);
        }
        input = std::to_string(*n);
        return std::string();
      },
      min > 0 ? "POSITIVE INT" : min == 0 ? "NON-NEGATIVE INT" : "INT");
}

}  // namespace sluice::cli
