// SQL type names <-> Arrow types.
#include "sluice/sql/types.h"

#include <arrow/type.h>
#include <arrow/util/key_value_metadata.h>
#include <fmt/format.h>

#include "sluice/common/nesting.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/sql/lexer.h"

namespace sluice::sql {

namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

class TypeParser {
 public:
  TypeParser(std::string text) : file_{"type", std::move(text)} {}

  arrow::Status init() {
    ARROW_ASSIGN_OR_RAISE(tokens_, tokenize(file_));
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::DataType>> whole_type() {
    ARROW_ASSIGN_OR_RAISE(auto t, type());
    if (peek().kind != TokenKind::kEnd) return fail("unexpected " + peek().describe());
    return t;
  }

  arrow::Result<arrow::FieldVector> field_list(bool colon_optional, const char* end_op) {
    arrow::FieldVector fields;
    if (end_op && peek().is_op(end_op)) return fields;
    do {
      const Token& n = next();
      if (n.kind != TokenKind::kIdentifier && n.kind != TokenKind::kQuotedIdentifier) {
        return fail("expected a field name, found " + n.describe());
      }
      if (peek().is_op(":")) {
        next();
      } else if (!colon_optional) {
        return fail("expected ':' after field name " + n.text);
      }
      ARROW_ASSIGN_OR_RAISE(auto t, type());
      bool nullable = true;
      if (peek().is_keyword("NOT")) {
        next();
        if (!next().is_keyword("NULL")) return fail("expected NULL after NOT");
        nullable = false;
      }
      auto field = arrow::field(n.text, t, nullable);
      if (peek().is_keyword("COMMENT")) {  // a struct field's comment, kept where Spark keeps it
        next();
        const Token& comment = next();
        if (comment.kind != TokenKind::kString) return fail("expected a string after COMMENT, found " + comment.describe());
        field = field->WithMetadata(arrow::key_value_metadata({"comment"}, {comment.text}));
      }
      fields.push_back(std::move(field));
    } while (accept(","));
    return fields;
  }

  const Token& peek() const { return tokens_[std::min(pos_, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  bool accept(const char* op) {
    if (!peek().is_op(op)) return false;
    next();
    return true;
  }
  arrow::Status fail(const std::string& what) const {
    constexpr size_t kShown = 120;  // a huge type string is not echoed whole
    const std::string shown = file_.text.size() <= kShown ? file_.text : file_.text.substr(0, kShown) + "...";
    return invalid("invalid type '{}': {}", shown, what);
  }

 private:
  arrow::Result<int> number() {
    const Token& t = next();
    if (t.kind != TokenKind::kInteger) return fail("expected a number, found " + t.describe());
    auto n = parse_int64(t.text, "type parameter");
    if (!n.ok() || *n > 1000) return fail("number " + t.text + " is out of range");
    return static_cast<int>(*n);
  }

  arrow::Result<std::shared_ptr<arrow::DataType>> type() {
    // A column type nests at most kMaxNestingDepth - 1 levels (its row is the first level); the
    // check also bounds this parser's recursion. Qualified: sql::kMaxNestingDepth (the parser's
    // 256, sql/parser.h) hides it wherever both are visible, as in a unity batch.
    if (depth_ >= ::sluice::kMaxNestingDepth - 1 && is_nested_name(peek())) {
      return fail(fmt::format("the {} at character {} nests deeper than {} levels of ARRAY/MAP/STRUCT, sluice's "
                              "limit for a column (deeper columns are not readable by every Delta reader): "
                              "flatten the type, or keep the deep part as a JSON STRING",
                              peek().text, peek().loc.offset + 1, ::sluice::kMaxNestingDepth - 1));
    }
    ++depth_;
    auto t = nested_or_primitive_type();
    --depth_;
    return t;
  }

  static bool is_nested_name(const Token& t) {
    if (t.kind != TokenKind::kIdentifier) return false;
    const std::string n = upper(t.text);
    return n == "ARRAY" || n == "MAP" || n == "STRUCT";
  }

  arrow::Result<std::shared_ptr<arrow::DataType>> nested_or_primitive_type() {
    const Token& t = next();
    if (t.kind != TokenKind::kIdentifier) return fail("expected a type name, found " + t.describe());
    const std::string n = upper(t.text);
    if (n == "BOOLEAN" || n == "BOOL") return arrow::boolean();
    if (n == "TINYINT" || n == "BYTE") return arrow::int8();
    if (n == "SMALLINT" || n == "SHORT") return arrow::int16();
    if (n == "INT" || n == "INTEGER") return arrow::int32();
    if (n == "BIGINT" || n == "LONG") return arrow::int64();
    if (n == "FLOAT" || n == "REAL") return arrow::float32();
    if (n == "DOUBLE") return arrow::float64();
    if (n == "DATE") return arrow::date32();
    if (n == "BINARY") return arrow::binary();
    if (n == "TIMESTAMP" || n == "TIMESTAMP_LTZ") return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
    if (n == "TIMESTAMP_NTZ") return arrow::timestamp(arrow::TimeUnit::MICRO);
    if (n == "STRING" || n == "VARCHAR" || n == "CHAR" || n == "TEXT") {
      if (accept("(")) {
        ARROW_RETURN_NOT_OK(number().status());
        if (!accept(")")) return fail("expected ')'");
      }
      return arrow::utf8();
    }
    if (n == "DECIMAL" || n == "DEC" || n == "NUMERIC") {
      int precision = 10, scale = 0;
      if (accept("(")) {
        ARROW_ASSIGN_OR_RAISE(precision, number());
        if (accept(",")) {
          ARROW_ASSIGN_OR_RAISE(scale, number());
        }
        if (!accept(")")) return fail("expected ')'");
      }
      if (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
        return fail(fmt::format("DECIMAL({},{}) is out of range (precision 1..38, 0 <= scale <= precision)",
                                precision, scale));
      }
      return arrow::decimal128(precision, scale);
    }
    if (n == "ARRAY") {
      if (!accept("<")) return fail("expected '<' after ARRAY");
      ARROW_ASSIGN_OR_RAISE(auto element, type());
      if (!accept(">")) return fail("expected '>' to close ARRAY<");
      return arrow::list(arrow::field("element", element));
    }
    if (n == "MAP") {
      if (!accept("<")) return fail("expected '<' after MAP");
      ARROW_ASSIGN_OR_RAISE(auto key, type());
      if (!accept(",")) return fail("expected ',' in MAP<key, value>");
      ARROW_ASSIGN_OR_RAISE(auto value, type());
      if (!accept(">")) return fail("expected '>' to close MAP<");
      return arrow::map(key, value);
    }
    if (n == "STRUCT") {
      if (!accept("<")) return fail("expected '<' after STRUCT");
      ARROW_ASSIGN_OR_RAISE(auto fields, field_list(/*colon_optional=*/true, ">"));
      if (!accept(">")) return fail("expected '>' to close STRUCT<");
      return arrow::struct_(fields);
    }
    return fail("unknown type " + t.text);
  }

  SourceFile file_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;  // ARRAY/MAP/STRUCT levels around the type being parsed
};

}  // namespace

arrow::Result<std::shared_ptr<arrow::DataType>> parse_type(const std::string& text) {
  TypeParser p(text);
  ARROW_RETURN_NOT_OK(p.init());
  return p.whole_type();
}

arrow::Result<std::shared_ptr<arrow::Schema>> parse_ddl_schema(const std::string& text) {
  TypeParser p(text);
  ARROW_RETURN_NOT_OK(p.init());
  ARROW_ASSIGN_OR_RAISE(auto fields, p.field_list(/*colon_optional=*/true, nullptr));
  if (p.peek().kind != TokenKind::kEnd) return p.fail("unexpected " + p.peek().describe());
  return arrow::schema(fields);
}

std::string sql_type_name(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::NA: return "VOID";
    case arrow::Type::BOOL: return "BOOLEAN";
    case arrow::Type::INT8: return "TINYINT";
    case arrow::Type::INT16: return "SMALLINT";
    case arrow::Type::INT32: return "INT";
    case arrow::Type::INT64: return "BIGINT";
    case arrow::Type::FLOAT: return "FLOAT";
    case arrow::Type::DOUBLE: return "DOUBLE";
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING: return "STRING";
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY: return "BINARY";
    case arrow::Type::DATE32: return "DATE";
    case arrow::Type::TIMESTAMP:
      return static_cast<const arrow::TimestampType&>(type).timezone().empty() ? "TIMESTAMP_NTZ"
                                                                                : "TIMESTAMP";
    case arrow::Type::DECIMAL128: {
      const auto& d = static_cast<const arrow::Decimal128Type&>(type);
      return fmt::format("DECIMAL({},{})", d.precision(), d.scale());
    }
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST: return "ARRAY<" + sql_type_name(*type.field(0)->type()) + ">";
    case arrow::Type::MAP: {
      const auto& m = static_cast<const arrow::MapType&>(type);
      return "MAP<" + sql_type_name(*m.key_type()) + ", " + sql_type_name(*m.item_type()) + ">";
    }
    case arrow::Type::STRUCT: {
      std::string out = "STRUCT<";
      for (int i = 0; i < type.num_fields(); ++i) {
        out += (i ? ", " : "") + type.field(i)->name() + ": " + sql_type_name(*type.field(i)->type());
      }
      return out + ">";
    }
    case arrow::Type::DURATION: return "INTERVAL";
    default: return type.ToString();
  }
}

}  // namespace sluice::sql
