// libFuzzer target: any bytes as a SQL file must parse or fail with an error, never crash,
// hang or read out of bounds (built with AddressSanitizer by scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string>

#include "sluice/sql/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::sql::SourceFile file{"fuzz.sql", std::string(reinterpret_cast<const char*>(data), size)};
  auto statements = sluice::sql::parse_statements(file);
  if (statements.ok()) {
    for (const auto& st : *statements) (void)sluice::sql::to_string(st);
  } else {
    (void)statements.status().message();
  }
  auto expr = sluice::sql::parse_expression(file);
  if (expr.ok()) (void)sluice::sql::to_string(**expr);
  return 0;
}
