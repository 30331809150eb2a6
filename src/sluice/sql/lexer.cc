// SQL lexer.
#include "sluice/sql/lexer.h"

#include <fmt/format.h>

#include <cctype>
#include <cstring>

#include "sluice/common/status.h"

namespace sluice::sql {

bool Token::is_keyword(const char* keyword) const {
  if (kind != TokenKind::kIdentifier) return false;
  size_t n = std::strlen(keyword);
  if (text.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (std::toupper(static_cast<unsigned char>(text[i])) != keyword[i]) return false;
  }
  return true;
}

std::string Token::describe() const {
  switch (kind) {
    case TokenKind::kEnd: return "end of input";
    // Never the contents: a string literal may be a secret (see format_error).
    case TokenKind::kString: return "a string literal";
    case TokenKind::kQuotedIdentifier: return "`" + text + "`";
    default: return "'" + text + "'";
  }
}

namespace {

class Lexer {
 public:
  explicit Lexer(const SourceFile& file) : file_(file), s_(file.text) {}

  arrow::Result<std::vector<Token>> run() {
    std::vector<Token> out;
    while (true) {
      ARROW_RETURN_NOT_OK(skip_space_and_comments());
      Token t;
      t.loc = here();
      if (pos_ >= s_.size()) {
        t.kind = TokenKind::kEnd;
        t.end_offset = pos_;
        out.push_back(t);
        return out;
      }
      char c = s_[pos_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || static_cast<unsigned char>(c) >= 0x80) {
        size_t start = pos_;
        while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' ||
                                    static_cast<unsigned char>(s_[pos_]) >= 0x80)) {
          advance();
        }
        t.kind = TokenKind::kIdentifier;
        t.text = s_.substr(start, pos_ - start);
      } else if (c == '`') {
        ARROW_ASSIGN_OR_RAISE(t.text, quoted('`', "quoted identifier"));
        t.kind = TokenKind::kQuotedIdentifier;
      } else if (c == '\'' || c == '"') {
        ARROW_ASSIGN_OR_RAISE(t.text, quoted(c, "string"));
        t.kind = TokenKind::kString;
      } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                 (c == '.' && pos_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_ + 1])))) {
        number(t);
      } else if (c == '$' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{') {
        size_t close = s_.find('}', pos_);
        if (close == std::string::npos) return error(t.loc, "unterminated ${...} parameter");
        t.kind = TokenKind::kParameter;
        t.text = s_.substr(pos_ + 2, close - pos_ - 2);
        while (pos_ <= close) advance();
      } else {
        static const char* kOps[] = {"=>", "<=>", "<>", "!=", "<=", ">=", "||", "::", "(", ")", ",",
                                     ".",  ";",   "*",  "+",  "-",  "/",  "%",  "=",  "<", ">", "[",
                                     "]",  ":",   "&",  "|",  "^",  "~",  "!"};
        const char* match = nullptr;
        for (const char* op : kOps) {
          if (s_.compare(pos_, std::strlen(op), op) == 0) {
            match = op;
            break;
          }
        }
        if (!match) {
          return error(t.loc, fmt::format("unexpected character '{}'", std::string(1, c)));
        }
        t.kind = TokenKind::kOperator;
        t.text = match;
        for (size_t i = 0; i < std::strlen(match); ++i) advance();
      }
      t.end_offset = pos_;
      out.push_back(std::move(t));
    }
  }

 private:
  Location here() const { return Location{line_, col_, pos_}; }

  void advance() {
    if (s_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++pos_;
  }

  arrow::Status error(Location at, const std::string& message) const {
    return arrow::Status::Invalid(format_error(file_, at, message));
  }

  arrow::Status skip_space_and_comments() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (std::isspace(static_cast<unsigned char>(c))) {
        advance();
      } else if (c == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '-') {
        while (pos_ < s_.size() && s_[pos_] != '\n') advance();
      } else if (c == '/' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '*') {
        Location start = here();
        advance();
        advance();
        while (pos_ + 1 < s_.size() && !(s_[pos_] == '*' && s_[pos_ + 1] == '/')) advance();
        if (pos_ + 1 >= s_.size()) return error(start, "unterminated /* comment");
        advance();
        advance();
      } else {
        break;
      }
    }
    return arrow::Status::OK();
  }

  // A quoted token; the quote doubled or backslash-escaped stands for itself.
  arrow::Result<std::string> quoted(char quote, const char* what) {
    Location start = here();
    advance();
    std::string out;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == quote) {
        if (pos_ + 1 < s_.size() && s_[pos_ + 1] == quote) {
          out += quote;
          advance();
          advance();
          continue;
        }
        advance();
        return out;
      }
      if (c == '\\' && quote != '`' && pos_ + 1 < s_.size()) {
        advance();
        char e = s_[pos_];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case '0': out += '\0'; break;
          default: out += e;  // \\ \' \" \% \_ as Spark
        }
        advance();
        continue;
      }
      out += c;
      advance();
    }
    return error(start, fmt::format("unterminated {}", what));
  }

  void number(Token& t) {
    size_t start = pos_;
    bool is_decimal = false;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) advance();
    if (pos_ < s_.size() && s_[pos_] == '.') {
      is_decimal = true;
      advance();
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) advance();
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t save = pos_;
      int save_col = col_;
      advance();
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) advance();
      if (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        is_decimal = true;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) advance();
      } else {
        pos_ = save;
        col_ = save_col;
      }
    }
    t.kind = is_decimal ? TokenKind::kDecimal : TokenKind::kInteger;
    t.text = s_.substr(start, pos_ - start);
    // Spark's typed suffixes: 10L, 1.5D, 2BD are accepted as plain numbers.
    if (pos_ < s_.size() && std::strchr("LlDdFfSsYy", s_[pos_]) &&
        !(pos_ + 1 < s_.size() && std::isalnum(static_cast<unsigned char>(s_[pos_ + 1])))) {
      advance();
    }
  }

  const SourceFile& file_;
  const std::string& s_;
  size_t pos_ = 0;
  int line_ = 1;
  int col_ = 1;
};

}  // namespace

namespace {

// Offset of the first byte that is not part of well-formed UTF-8 (no overlongs, surrogates or
// code points above U+10FFFF), or npos.
size_t invalid_utf8_at(const std::string& text, size_t from = 0) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = from; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string::npos;
}

}  // namespace

// SQL text is UTF-8 (as Spark reads it): names and strings from it end up in Delta's JSON log,
// the event log and `sluice graph --format json`, which need valid UTF-8.
arrow::Result<std::vector<Token>> tokenize(const SourceFile& file) {
  if (const size_t bad = invalid_utf8_at(file.text); bad != std::string::npos) {
    Location at;
    for (size_t i = 0; i < bad; ++i) {
      if (file.text[i] == '\n') {
        ++at.line;
        at.col = 1;
      } else {
        ++at.col;
      }
    }
    at.offset = bad;
    // The message quotes the line: with '?' for every invalid byte, so that the message itself
    // is valid UTF-8 (it reaches the event log's JSON).
    SourceFile shown{file.name, file.text};
    for (size_t i = bad; i != std::string::npos; i = invalid_utf8_at(shown.text, i + 1)) shown.text[i] = '?';
    return arrow::Status::Invalid(format_error(
        shown, at,
        fmt::format("byte 0x{:02X} is not valid UTF-8: save the file as UTF-8",
                    static_cast<unsigned char>(file.text[bad]))));
  }
  return Lexer(file).run();
}

}  // namespace sluice::sql
