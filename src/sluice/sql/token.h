// Tokens of the DLT SQL dialect.
#pragma once

#include <string>

#include "sluice/sql/source.h"

namespace sluice::sql {

enum class TokenKind {
  kEnd,
  kIdentifier,        // name or `quoted name`
  kQuotedIdentifier,  // `quoted`: never a keyword
  kString,            // 'text' or "text" (value unescaped)
  kInteger,
  kDecimal,  // 1.5, 1e3
  kOperator,  // punctuation and operators: ( ) , . ; * + - / % = <> != < <= > >= || :: : [ ] =>
  kParameter, // ${name} left after substitution (an error later)
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;  // identifier as written, unescaped string, number text, operator
  Location loc;
  size_t end_offset = 0;

  // Case-insensitive keyword test (identifiers only, never quoted ones).
  bool is_keyword(const char* keyword) const;
  bool is_op(const char* op) const { return kind == TokenKind::kOperator && text == op; }
  // How the token reads in an error message: 'FROM', end of input, ...
  std::string describe() const;
};

}  // namespace sluice::sql
