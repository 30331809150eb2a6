// Math functions: rounding, logarithms, powers, trigonometry, greatest/least. Results follow
// Spark's types: floor/ceil give BIGINT, the transcendental functions DOUBLE.
#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <optional>

#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/functions/row_kernels.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace math_family {

cp::Expression as_double(const FunctionCall& c, size_t i) { return cast_to(c.expression(i), arrow::float64()); }

cp::Expression null_double() { return literal_of(arrow::MakeNullScalar(arrow::float64())); }

// f(double x); with `floor_of_domain`, x <= it gives NULL (Spark's logarithms: ln(0) is NULL, not -Infinity).
void add_double_function(FunctionRegistry& r, std::string name, std::vector<std::string> aliases, std::string kernel,
                         std::optional<double> floor_of_domain = std::nullopt) {
  r.add({std::move(name), std::move(aliases), 1, 1, "math", "DOUBLE",
         [kernel, floor_of_domain](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           auto x = as_double(c, 0);
           if (!floor_of_domain) return c.call(kernel, {x});
           auto outside = cp::call("less_equal", {x, literal_of(arrow::MakeScalar(*floor_of_domain))});
           return c.call("if_else", {outside, null_double(), cp::call(kernel, {x})});
         }, ""});
}

arrow::Result<BoundExpression> bind_floor_ceil(const FunctionCall& c) {
  const std::string kernel = c.name() == "floor" ? "floor" : "ceil";
  if (arrow::is_integer(c.type(0).id())) return c.call("cast", {c.expression(0)}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int64())));
  ARROW_ASSIGN_OR_RAISE(auto r, c.call(kernel, {c.expression(0)}));
  if (arrow::is_floating(c.type(0).id())) {
    return c.call("cast", {r.expr}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int64())));
  }
  return r;
}

arrow::Result<BoundExpression> bind_round(const FunctionCall& c) {
  int64_t digits = 0;
  if (c.size() == 2) {
    ARROW_ASSIGN_OR_RAISE(digits, c.literal_int(1));
  }
  // round: half away from zero; bround: half to even (banker's rounding)
  const auto mode = c.name() == "bround" ? cp::RoundMode::HALF_TO_EVEN : cp::RoundMode::HALF_TOWARDS_INFINITY;
  auto options = std::make_shared<cp::RoundOptions>(digits, mode);
  if (arrow::is_integer(c.type(0).id())) {  // Spark keeps the integer type
    if (digits >= 0) return c.arg(0);
    auto rounded = cp::call("round", {cast_to(c.expression(0), arrow::float64())}, options);
    return c.call("cast", {rounded}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(c.arg(0).type)));
  }
  return c.call("round", {c.expression(0)}, options);
}

arrow::Result<BoundExpression> bind_log(const FunctionCall& c) {
  if (c.size() == 1) {  // log(x) is ln(x)
    auto x = as_double(c, 0);
    auto outside = cp::call("less_equal", {x, literal_of(arrow::MakeScalar(0.0))});
    return c.call("if_else", {outside, null_double(), cp::call("ln", {x})});
  }
  // log(base, x) = ln(x) / ln(base); NULL when base or x <= 0
  auto base = as_double(c, 0);
  auto x = as_double(c, 1);
  auto outside = cp::call("or_kleene", {cp::call("less_equal", {x, literal_of(arrow::MakeScalar(0.0))}),
                                        cp::call("less_equal", {base, literal_of(arrow::MakeScalar(0.0))})});
  auto quotient = cp::call("divide", {cp::call("ln", {x}), cp::call("ln", {base})});
  return c.call("if_else", {outside, null_double(), quotient});
}

arrow::Result<BoundExpression> bind_scaled(const FunctionCall& c, double factor) {
  return c.call("multiply", {as_double(c, 0), literal_of(arrow::MakeScalar(factor))});
}


cp::Expression int_literal(int64_t v) { return literal_of(arrow::MakeScalar(v)); }

int int_bits(const arrow::DataType& t) { return arrow::bit_width(t.id()); }

arrow::Status need_integers(const FunctionCall& c, size_t from, size_t to) {
  for (size_t i = from; i < to && i < c.size(); ++i) {
    if (!arrow::is_integer(c.type(i).id()) && c.type(i).id() != arrow::Type::NA) {
      return c.error_at(i, fmt::format("{} needs integer arguments, not {}", c.name(), sql::sql_type_name(c.type(i))));
    }
  }
  return arrow::Status::OK();
}

arrow::Status need_numbers(const FunctionCall& c) {
  for (size_t i = 0; i < c.size(); ++i) {
    if (!is_numeric_type(c.type(i)) && c.type(i).id() != arrow::Type::NA) {
      return c.error_at(i, fmt::format("{} needs numbers, not {}", c.name(), sql::sql_type_name(c.type(i))));
    }
    if (c.type(i).id() == arrow::Type::DECIMAL128) {
      return c.error_at(i, fmt::format("{} of DECIMAL is not supported yet; cast it to DOUBLE or BIGINT", c.name()));
    }
  }
  return arrow::Status::OK();
}

bool any_floating(const FunctionCall& c) {
  for (size_t i = 0; i < c.size(); ++i) {
    if (arrow::is_floating(c.type(i).id())) return true;
  }
  return false;
}

// The integer type two integer arguments share (the wider one), as Spark's arithmetic types it.
std::shared_ptr<arrow::DataType> common_integer(const FunctionCall& c) {
  const int bits = std::max(int_bits(c.type(0)), int_bits(c.type(1)));
  return bits <= 8 ? arrow::int8() : bits <= 16 ? arrow::int16() : bits <= 32 ? arrow::int32() : arrow::int64();
}

// Java's % (the sign of the dividend): integers through Arrow's truncating division, floats as
// a - trunc(a / b) * b. `divisor` is non-zero or NULL where the caller allows no error.
cp::Expression remainder(const cp::Expression& a, const cp::Expression& b, bool integers, bool checked) {
  if (integers) {
    auto q = cp::call(checked ? "divide_checked" : "divide", {a, b});
    return cp::call("subtract", {a, cp::call("multiply", {q, b})});
  }
  auto q = cp::call("trunc", {cp::call(checked ? "divide_checked" : "divide", {a, b})});
  return cp::call("subtract", {a, cp::call("multiply", {q, b})});
}

// mod / pmod / try_mod: Spark's Remainder and Pmod, ANSI: a zero divisor is an error (NULL for try_mod).
arrow::Result<BoundExpression> bind_mod(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_numbers(c));
  const bool floating = any_floating(c);
  auto type = floating ? arrow::float64() : common_integer(c);
  auto a = cast_to(c.expression(0), type);
  auto b = cast_to(c.expression(1), type);
  if (c.name() == "try_mod") {
    auto zero = cp::call("equal", {b, cast_to(int_literal(0), type)});
    b = cp::call("if_else", {zero, literal_of(arrow::MakeNullScalar(type)), b});
  }
  auto r = remainder(a, b, !floating, c.name() != "try_mod");
  if (c.name() == "pmod") {
    auto negative = cp::call("less", {r, cast_to(int_literal(0), type)});
    r = cp::call("if_else", {negative, remainder(cp::call("add", {r, b}), b, !floating, true), r});
  }
  return c.call("cast", {r}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(type)));
}

// a div b: truncating integer division as BIGINT; ANSI: a zero divisor is an error.
arrow::Result<BoundExpression> bind_div(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_integers(c, 0, 2));
  return c.call("divide_checked", {cast_to(c.expression(0), arrow::int64()), cast_to(c.expression(1), arrow::int64())});
}

// `kernel`(x, n) for a count n in [0, width): in two steps of at most width / 2 each, because
// Arrow's signed shifts return x unchanged for a count of width - 1 (they compare it with
// numeric_limits<T>::digits, 63 for BIGINT), where Java shifts by 63.
cp::Expression shift_in_two(const std::string& kernel, const cp::Expression& x, const cp::Expression& n,
                            const std::shared_ptr<arrow::DataType>& type) {
  auto half = cast_to(int_literal(int_bits(*type) / 2), type);
  auto first = cp::call("min_element_wise", {n, half});
  auto rest = cp::call("subtract", {n, first});
  return cp::call(kernel, {cp::call(kernel, {x, first}), rest});
}

// Java's shifts: the shift count is taken modulo the width (31 or 63); TINYINT/SMALLINT shift as INT.
arrow::Result<BoundExpression> bind_shift(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_integers(c, 0, 2));
  auto type = int_bits(c.type(0)) == 64 ? arrow::int64() : arrow::int32();
  const int64_t mask = int_bits(*type) - 1;
  auto x = cast_to(c.expression(0), type);
  auto n = cast_to(cp::call("bit_wise_and", {cast_to(c.expression(1), arrow::int64()), int_literal(mask)}), type);
  auto as_type = std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(type));
  if (c.name() == "shiftleft") return c.call("cast", {shift_in_two("shift_left", x, n, type)}, as_type);
  if (c.name() == "shiftright") return c.call("cast", {shift_in_two("shift_right", x, n, type)}, as_type);
  // shiftrightunsigned: shift the bits as unsigned, then read them back as signed.
  auto utype = int_bits(*type) == 64 ? arrow::uint64() : arrow::uint32();
  auto wrap = [](std::shared_ptr<arrow::DataType> to) {
    auto o = std::make_shared<cp::CastOptions>(cp::CastOptions::Unsafe(std::move(to)));
    return o;
  };
  auto bits = cp::call("cast", {x}, wrap(utype));
  auto shifted = cp::call("shift_right", {bits, cp::call("cast", {n}, wrap(utype))});
  return c.call("cast", {shifted}, wrap(type));
}

// Spark's BitwiseGet: bit `pos` (0 = least significant) of an integer, as TINYINT; pos must be
// within the type's width.
arrow::Result<BoundExpression> bind_bit_get(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_integers(c, 0, 1));
  ARROW_ASSIGN_OR_RAISE(int64_t pos, c.literal_int(1));
  const int bits = c.type(0).id() == arrow::Type::NA ? 32 : int_bits(c.type(0));
  if (pos < 0 || pos >= bits) {
    return c.error_at(1, fmt::format("{}: bit position {} is outside [0, {}) of {}", c.name(), pos, bits,
                                     sql::sql_type_name(c.type(0))));
  }
  auto x = cast_to(c.expression(0), arrow::int64());
  auto bit = cp::call("bit_wise_and", {shift_in_two("shift_right", x, int_literal(pos), arrow::int64()), int_literal(1)});
  return c.call("cast", {bit}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int8())));
}

// n! for 0 <= n <= 20 (the BIGINT range), NULL otherwise: a table lookup through `choose`.
arrow::Result<BoundExpression> bind_factorial(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_integers(c, 0, 1));
  auto n = cast_to(c.expression(0), arrow::int64());
  auto inside = cp::call("and", {cp::call("greater_equal", {n, int_literal(0)}), cp::call("less_equal", {n, int_literal(20)})});
  std::vector<cp::Expression> args{cp::call("if_else", {inside, n, int_literal(0)})};
  int64_t f = 1;
  for (int64_t i = 0; i <= 20; ++i) {
    if (i > 0) f *= i;
    args.push_back(int_literal(f));
  }
  auto table = cp::call("choose", args);
  return c.call("if_else", {inside, table, literal_of(arrow::MakeNullScalar(arrow::int64()))});
}

arrow::Result<RowResult> cbrt_row(const LiteralArgs&, double x, double& out) {
  out = std::cbrt(x);
  return RowResult::kValue;
}

arrow::Result<RowResult> hypot_row(const LiteralArgs&, double x, double y, double& out) {
  out = std::hypot(x, y);
  return RowResult::kValue;
}

// Spark's BitwiseCount: the bits of the value widened to BIGINT (an INT -2 has 63).
arrow::Result<RowResult> bit_count_row(const LiteralArgs&, int64_t x, int32_t& out) {
  out = std::popcount(static_cast<uint64_t>(x));
  return RowResult::kValue;
}

arrow::Result<RowResult> bin_row(const LiteralArgs&, int64_t x, std::string& out) {
  auto u = static_cast<uint64_t>(x);
  if (u == 0) out = "0";
  while (u != 0) {
    out.insert(out.begin(), static_cast<char>('0' + (u & 1)));
    u >>= 1;
  }
  return RowResult::kValue;
}

// Spark's NumberConverter (conv), of the text without leading and trailing spaces: the digits up to the first that is not one of `from`'s, as an
// unsigned 64-bit number ("-" negates it), written in base |to| (signed when to < 0). ANSI: a
// number past 64 bits is an error.
arrow::Result<RowResult> conv_row(const LiteralArgs& args, std::string_view text, std::string& out) {
  const int64_t from = args.ints[0], to = args.ints[1];
  // Spark trims spaces first (UTF8String.trim).
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (from < 2 || from > 36 || std::abs(to) < 2 || std::abs(to) > 36 || text.empty()) return RowResult::kNull;
  bool negative = text[0] == '-';
  uint64_t v = 0;
  const uint64_t base = static_cast<uint64_t>(from);
  for (size_t i = negative ? 1 : 0; i < text.size(); ++i) {
    const char ch = text[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'Z' ? ch - 'A' + 10 : 99;
    if (d >= from) break;
    if (v > (~uint64_t{0} - static_cast<uint64_t>(d)) / base) {
      return arrow::Status::Invalid(fmt::format("conv: '{}' overflows 64 bits in base {} (ARITHMETIC_OVERFLOW)", text, from));
    }
    v = v * base + static_cast<uint64_t>(d);
  }
  if (negative && to > 0) v = static_cast<int64_t>(v) < 0 ? ~uint64_t{0} : uint64_t{0} - v;
  if (to < 0 && static_cast<int64_t>(v) < 0) {
    v = uint64_t{0} - v;
    negative = true;
  }
  const uint64_t radix = static_cast<uint64_t>(std::abs(to));
  do {
    const auto d = static_cast<int>(v % radix);
    out.insert(out.begin(), static_cast<char>(d < 10 ? '0' + d : 'A' + d - 10));
    v /= radix;
  } while (v != 0);
  if (negative && to < 0) out.insert(out.begin(), '-');
  return RowResult::kValue;
}

template <typename Op>
arrow::Result<RowResult> try_arith_row(const LiteralArgs& args, int64_t a, int64_t b, int64_t& out) {
  int64_t r = 0;
  if (Op{}(a, b, &r)) return RowResult::kNull;
  const int64_t bits = args.ints[0];
  if (bits < 64) {
    const int64_t limit = int64_t{1} << (bits - 1);
    if (r < -limit || r >= limit) return RowResult::kNull;
  }
  out = r;
  return RowResult::kValue;
}

struct AddOverflow {
  bool operator()(int64_t a, int64_t b, int64_t* r) const { return __builtin_add_overflow(a, b, r); }
};
struct SubtractOverflow {
  bool operator()(int64_t a, int64_t b, int64_t* r) const { return __builtin_sub_overflow(a, b, r); }
};
struct MultiplyOverflow {
  bool operator()(int64_t a, int64_t b, int64_t* r) const { return __builtin_mul_overflow(a, b, r); }
};

// try_add / try_subtract / try_multiply: NULL where the result leaves the arguments' integer type.
arrow::Result<BoundExpression> bind_try_arith(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_numbers(c));
  const std::string& name = c.name();
  if (any_floating(c)) {  // no overflow: IEEE infinities, as Spark
    const std::string kernel = name == "try_add" ? "add" : name == "try_subtract" ? "subtract" : "multiply";
    return c.call(kernel, {as_double(c, 0), as_double(c, 1)});
  }
  auto type = common_integer(c);
  LiteralArgs args;
  args.ints = {int_bits(*type)};
  arrow::compute::ArrayKernelExec exec = name == "try_add" ? binary_row_exec<arrow::Int64Type, int64_t, try_arith_row<AddOverflow>>
                                         : name == "try_subtract" ? binary_row_exec<arrow::Int64Type, int64_t, try_arith_row<SubtractOverflow>>
                                                                  : binary_row_exec<arrow::Int64Type, int64_t, try_arith_row<MultiplyOverflow>>;
  ARROW_ASSIGN_OR_RAISE(auto function, row_function(name, args, {arrow::int64(), arrow::int64()}, arrow::int64(), exec));
  auto r = cp::call(function, {cast_to(c.expression(0), arrow::int64()), cast_to(c.expression(1), arrow::int64())});
  return c.call("cast", {r}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(type)));
}

// try_divide: DOUBLE, NULL for a zero divisor.
arrow::Result<BoundExpression> bind_try_divide(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_numbers(c));
  auto b = as_double(c, 1);
  auto zero = cp::call("equal", {b, literal_of(arrow::MakeScalar(0.0))});
  return c.call("if_else", {zero, null_double(), cp::call("divide", {as_double(c, 0), b})});
}

arrow::Result<BoundExpression> bind_int_to_text(const FunctionCall& c, const std::string& base,
                                                arrow::compute::ArrayKernelExec exec, LiteralArgs args = {}) {
  ARROW_RETURN_NOT_OK(need_integers(c, 0, 1));
  ARROW_ASSIGN_OR_RAISE(auto function, row_function(base, args, {arrow::int64()}, arrow::utf8(), exec));
  return c.call(function, {cast_to(c.expression(0), arrow::int64())});
}

}  // namespace math_family

void register_math_functions(FunctionRegistry& r) {
  using namespace math_family;  // NOLINT: this file's own helpers
  r.add({"abs", {}, 1, 1, "math", "the input's type",
         [](const FunctionCall& c) { return c.call("abs_checked", c.expressions()); }, ""});
  r.add({"negative", {}, 1, 1, "math", "the input's type",
         [](const FunctionCall& c) { return c.call("negate_checked", c.expressions()); }, ""});
  r.add({"positive", {}, 1, 1, "math", "the input's type",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> { return c.arg(0); }, ""});
  add_double_function(r, "sqrt", {}, "sqrt");
  add_double_function(r, "ln", {}, "ln", 0.0);
  add_double_function(r, "log10", {}, "log10", 0.0);
  add_double_function(r, "log2", {}, "log2", 0.0);
  add_double_function(r, "log1p", {}, "log1p", -1.0);
  add_double_function(r, "exp", {}, "exp");
  add_double_function(r, "sign", {"signum"}, "sign");
  add_double_function(r, "sin", {}, "sin");
  add_double_function(r, "cos", {}, "cos");
  add_double_function(r, "tan", {}, "tan");
  add_double_function(r, "asin", {}, "asin");
  add_double_function(r, "acos", {}, "acos");
  add_double_function(r, "atan", {}, "atan");
  add_double_function(r, "sinh", {}, "sinh");
  add_double_function(r, "cosh", {}, "cosh");
  add_double_function(r, "tanh", {}, "tanh");
  add_double_function(r, "asinh", {}, "asinh");
  r.add({"atan2", {}, 2, 2, "math", "DOUBLE",
         [](const FunctionCall& c) { return c.call("atan2", {as_double(c, 0), as_double(c, 1)}); }, ""});
  r.add({"log", {}, 1, 2, "math", "DOUBLE", bind_log, ""});
  r.add({"degrees", {}, 1, 1, "math", "DOUBLE", [](const FunctionCall& c) { return bind_scaled(c, 180.0 / std::numbers::pi); }, ""});
  r.add({"radians", {}, 1, 1, "math", "DOUBLE", [](const FunctionCall& c) { return bind_scaled(c, std::numbers::pi / 180.0); }, ""});
  r.add({"pi", {}, 0, 0, "math", "DOUBLE",
         [](const FunctionCall&) -> arrow::Result<BoundExpression> {
           return BoundExpression{literal_of(arrow::MakeScalar(std::numbers::pi)), arrow::float64(), "PI()"};
         }, ""});
  r.add({"e", {}, 0, 0, "math", "DOUBLE",
         [](const FunctionCall&) -> arrow::Result<BoundExpression> {
           return BoundExpression{literal_of(arrow::MakeScalar(std::numbers::e)), arrow::float64(), "E()"};
         }, ""});
  r.add({"floor", {}, 1, 1, "math", "BIGINT (DECIMAL for decimals)", bind_floor_ceil, ""});
  r.add({"ceil", {"ceiling"}, 1, 1, "math", "BIGINT (DECIMAL for decimals)", bind_floor_ceil, ""});
  r.add({"round", {}, 1, 2, "math", "the input's type", bind_round, "the scale must be a literal"});
  r.add({"bround", {}, 1, 2, "math", "the input's type", bind_round, "the scale must be a literal"});
  r.add({"pow", {"power"}, 2, 2, "math", "DOUBLE",
         [](const FunctionCall& c) { return c.call("power", {as_double(c, 0), as_double(c, 1)}); }, ""});
  for (const char* name : {"greatest", "least"}) {
    r.add({name, {}, 2, kVariadic, "math", "the arguments' common type",
           [](const FunctionCall& c) {
             auto options = std::make_shared<cp::ElementWiseAggregateOptions>(/*skip_nulls=*/true);
             return c.call(c.name() == "greatest" ? "max_element_wise" : "min_element_wise", c.expressions(), options);
           }, ""});
  }

  // (fa) more of Spark's math, bitwise and try_ arithmetic
  add_double_function(r, "acosh", {}, "acosh");
  add_double_function(r, "atanh", {}, "atanh");
  add_double_function(r, "expm1", {}, "expm1");
  r.add({"cbrt", {}, 1, 1, "math", "DOUBLE",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("cbrt", {}, {arrow::float64()}, arrow::float64(),
                                                             unary_row_exec<arrow::DoubleType, double, cbrt_row>));
           return c.call(function, {as_double(c, 0)});
         }, ""});
  r.add({"hypot", {}, 2, 2, "math", "DOUBLE",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("hypot", {}, {arrow::float64(), arrow::float64()}, arrow::float64(),
                                                             binary_row_exec<arrow::DoubleType, double, hypot_row>));
           return c.call(function, {as_double(c, 0), as_double(c, 1)});
         }, ""});
  for (const auto& reciprocal : {std::pair{"cot", "tan"}, std::pair{"csc", "sin"}, std::pair{"sec", "cos"}}) {
    const char* kernel = reciprocal.second;  // not a structured binding: clang 14 cannot capture one
    r.add({reciprocal.first, {}, 1, 1, "math", "DOUBLE",
           [kernel](const FunctionCall& c) {
             return c.call("divide", {literal_of(arrow::MakeScalar(1.0)), cp::call(kernel, {as_double(c, 0)})});
           }, ""});
  }
  r.add({"rint", {}, 1, 1, "math", "DOUBLE",
         [](const FunctionCall& c) {
           return c.call("round", {as_double(c, 0)}, std::make_shared<cp::RoundOptions>(0, cp::RoundMode::HALF_TO_EVEN));
         }, ""});
  r.add({"isnan", {}, 1, 1, "math", "BOOLEAN",
         [](const FunctionCall& c) {  // isnan(NULL) is false
           return c.call("coalesce", {cp::call("is_nan", {as_double(c, 0)}), literal_of(arrow::MakeScalar(false))});
         }, ""});
  r.add({"factorial", {}, 1, 1, "math", "BIGINT", bind_factorial, ""});
  r.add({"mod", {}, 2, 2, "math", "the arguments' common type", bind_mod, "DECIMAL is refused"});
  r.add({"pmod", {}, 2, 2, "math", "the arguments' common type", bind_mod, "DECIMAL is refused"});
  r.add({"try_mod", {}, 2, 2, "math", "the arguments' common type", bind_mod, "DECIMAL is refused"});
  r.add({"div", {}, 2, 2, "math", "BIGINT", bind_div, "integers only (Spark also divides DECIMALs)"});
  r.add({"try_add", {}, 2, 2, "math", "the arguments' common type", bind_try_arith,
         "numbers only (no dates or intervals); DECIMAL is refused"});
  r.add({"try_subtract", {}, 2, 2, "math", "the arguments' common type", bind_try_arith,
         "numbers only (no dates or intervals); DECIMAL is refused"});
  r.add({"try_multiply", {}, 2, 2, "math", "the arguments' common type", bind_try_arith,
         "numbers only (no intervals); DECIMAL is refused"});
  r.add({"try_divide", {}, 2, 2, "math", "DOUBLE", bind_try_divide, "numbers only (no intervals); DECIMAL is refused"});
  for (const char* name : {"shiftleft", "shiftright", "shiftrightunsigned"}) {
    r.add({name, {}, 2, 2, "math", "INT or BIGINT (the first argument's)", bind_shift, ""});
  }
  r.add({"bit_get", {"getbit"}, 2, 2, "math", "TINYINT", bind_bit_get, "the position must be a literal"});
  r.add({"bit_count", {}, 1, 1, "math", "INT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (c.type(0).id() == arrow::Type::BOOL) return c.call("cast", {c.expression(0)}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int32())));
           ARROW_RETURN_NOT_OK(need_integers(c, 0, 1));
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("bit_count", {}, {arrow::int64()}, arrow::int32(),
                                                             unary_row_exec<arrow::Int32Type, int64_t, bit_count_row>));
           return c.call(function, {cast_to(c.expression(0), arrow::int64())});
         }, ""});
  r.add({"bin", {}, 1, 1, "math", "STRING",
         [](const FunctionCall& c) { return bind_int_to_text(c, "bin", unary_row_exec<arrow::StringType, int64_t, bin_row>); },
         "integers only (Spark also casts STRING and DOUBLE to BIGINT)"});
  r.add({"conv", {}, 3, 3, "math", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           LiteralArgs args;
           ARROW_ASSIGN_OR_RAISE(int64_t from, c.literal_int(1));
           ARROW_ASSIGN_OR_RAISE(int64_t to, c.literal_int(2));
           args.ints = {from, to};
           auto text = is_string_type(c.type(0)) ? c.expression(0) : cast_to(c.expression(0), arrow::utf8());
           ARROW_ASSIGN_OR_RAISE(auto function, row_function("conv", args, {arrow::utf8()}, arrow::utf8(),
                                                             unary_row_exec<arrow::StringType, std::string_view, conv_row>));
           return c.call(function, {text});
         }, "the bases must be literals"});
}

}  // namespace sluice::exec
