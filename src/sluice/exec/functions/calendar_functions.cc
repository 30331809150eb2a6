// Calendar date/time functions (datetime family): month arithmetic (add_months, months_between,
// last_day, next_day), constructors (make_date, make_timestamp), names (dayname, monthname),
// trunc and current_timezone. Each is one kernel: a tight loop over the day or microsecond
// buffers, in UTC (sluice's session time zone), with Spark 4's ANSI errors for invalid fields.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/exec/functions/civil_date.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/kernel_registry.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace datetime_family {
// datetime_functions.cc: the argument as a microsecond TIMESTAMP (DATE at midnight, STRING cast).
arrow::Result<cp::Expression> as_timestamp(const FunctionCall& c, size_t i);
}  // namespace datetime_family

namespace calendar_family {

using civil::civil_from_days;
using civil::days_from_civil;
using civil::days_in_month;
using civil::floor_div;
using civil::kMicrosPerDay;

// Row r of argument i as int64 (the binder casts every integer argument to INT32 or INT64).
struct Ints {
  std::shared_ptr<arrow::Array> array;
  bool null(int64_t r) const { return array->IsNull(r); }
  int64_t operator[](int64_t r) const {
    if (array->type_id() == arrow::Type::INT64) return static_cast<const arrow::Int64Array&>(*array).Value(r);
    if (array->type_id() == arrow::Type::DATE32) return static_cast<const arrow::Date32Array&>(*array).Value(r);
    if (array->type_id() == arrow::Type::TIMESTAMP) return static_cast<const arrow::TimestampArray&>(*array).Value(r);
    return static_cast<const arrow::Int32Array&>(*array).Value(r);
  }
};

arrow::Result<Ints> ints(const cp::ExecSpan& batch, int i) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, i));
  return Ints{a};
}

arrow::Result<int32_t> to_date32(int64_t days, const char* function, int64_t row) {
  if (days < std::numeric_limits<int32_t>::min() || days > std::numeric_limits<int32_t>::max()) {
    return invalid("{}: the date in row {} is out of the DATE range", function, row);
  }
  return static_cast<int32_t>(days);
}

// Rows NULL when any argument is; otherwise `fill(row)` gives the value (or an error).
template <typename Builder, typename Fill>
arrow::Status each_row(const cp::ExecSpan& batch, const std::vector<Ints>& args, Builder& builder, cp::ExecResult* out,
                       Fill&& fill) {
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    bool null = false;
    for (const auto& a : args) null = null || a.null(r);
    if (null) {
      builder.UnsafeAppendNull();
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto value, fill(r));
    builder.UnsafeAppend(value);
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

// add_months(date, n): the day kept, or the target month's last day when it has fewer (Spark 3+:
// LocalDate.plusMonths, so the last day of a month is not kept as the last day).
arrow::Status add_months_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto days, ints(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto months, ints(batch, 1));
  arrow::Date32Builder builder;
  return each_row(batch, {days, months}, builder, out, [&](int64_t r) -> arrow::Result<int32_t> {
    const auto date = civil_from_days(days[r]);
    const int64_t total = date.year * 12 + (date.month - 1) + months[r];
    const int64_t year = floor_div(total, 12);
    const int month = static_cast<int>(total - year * 12) + 1;
    return to_date32(days_from_civil(year, month, std::min(date.day, days_in_month(year, month))), "add_months", r);
  });
}

arrow::Status last_day_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto days, ints(batch, 0));
  arrow::Date32Builder builder;
  return each_row(batch, {days}, builder, out, [&](int64_t r) -> arrow::Result<int32_t> {
    const auto date = civil_from_days(days[r]);
    return to_date32(days_from_civil(date.year, date.month, days_in_month(date.year, date.month)), "last_day", r);
  });
}

// months_between(t1, t2, round): Spark's DateTimeUtils.monthsBetween in UTC. Whole months when
// both are the same day of the month or both the last day; else the day and time difference
// over a 31-day month, rounded to 8 decimals (Math.round) unless round is false.
double months_between(int64_t micros1, int64_t micros2, bool round) {
  const int64_t days1 = floor_div(micros1, kMicrosPerDay), days2 = floor_div(micros2, kMicrosPerDay);
  const auto d1 = civil_from_days(days1), d2 = civil_from_days(days2);
  const double month_diff = static_cast<double>((d1.year * 12 + d1.month) - (d2.year * 12 + d2.month));
  if (d1.day == d2.day || (d1.day == days_in_month(d1.year, d1.month) && d2.day == days_in_month(d2.year, d2.month))) {
    return month_diff;
  }
  const int64_t seconds1 = (micros1 - days1 * kMicrosPerDay) / 1'000'000;
  const int64_t seconds2 = (micros2 - days2 * kMicrosPerDay) / 1'000'000;
  const int64_t seconds_diff = static_cast<int64_t>(d1.day - d2.day) * 86'400 + seconds1 - seconds2;
  const double diff = month_diff + static_cast<double>(seconds_diff) / 2'678'400.0;
  if (!round) return diff;
  return std::floor(diff * 1e8 + 0.5) / 1e8;
}

struct RoundState : cp::KernelState {
  bool round = true;
};

arrow::Status months_between_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const bool round = static_cast<const RoundState*>(ctx->kernel()->data.get())->round;
  ARROW_ASSIGN_OR_RAISE(auto t1, ints(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto t2, ints(batch, 1));
  arrow::DoubleBuilder builder;
  return each_row(batch, {t1, t2}, builder, out,
                  [&](int64_t r) -> arrow::Result<double> { return months_between(t1[r], t2[r], round); });
}

struct WeekdayState : cp::KernelState {
  int weekday = 0;  // 0 = Sunday
};

// next_day(date, day of week): the first later date on that day.
arrow::Status next_day_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const int target = static_cast<const WeekdayState*>(ctx->kernel()->data.get())->weekday;
  ARROW_ASSIGN_OR_RAISE(auto days, ints(batch, 0));
  arrow::Date32Builder builder;
  return each_row(batch, {days}, builder, out, [&](int64_t r) -> arrow::Result<int32_t> {
    const int weekday = static_cast<int>(((days[r] + 4) % 7 + 7) % 7);
    const int ahead = (target - weekday + 7) % 7;
    return to_date32(days[r] + (ahead == 0 ? 7 : ahead), "next_day", r);
  });
}

arrow::Result<int64_t> civil_days(int64_t year, int64_t month, int64_t day, const char* function, int64_t row) {
  if (month < 1 || month > 12) return invalid("{}: month {} in row {} is not 1 to 12", function, month, row);
  if (year < -290000 || year > 294000) return invalid("{}: year {} in row {} is out of range", function, year, row);
  const int m = static_cast<int>(month);
  if (day < 1 || day > days_in_month(year, m)) {
    return invalid("{}: day {} in row {} is not a day of {}-{:02d}", function, day, row, year, m);
  }
  return days_from_civil(year, m, static_cast<int>(day));
}

arrow::Status make_date_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto y, ints(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto m, ints(batch, 1));
  ARROW_ASSIGN_OR_RAISE(auto d, ints(batch, 2));
  arrow::Date32Builder builder;
  return each_row(batch, {y, m, d}, builder, out, [&](int64_t r) -> arrow::Result<int32_t> {
    ARROW_ASSIGN_OR_RAISE(auto days, civil_days(y[r], m[r], d[r], "make_date", r));
    return to_date32(days, "make_date", r);
  });
}

struct MakeTimestampState : cp::KernelState {
  bool null_on_error = false;  // try_make_timestamp*
};

// The microseconds of one make_timestamp row, or an error naming the invalid field.
arrow::Result<int64_t> timestamp_micros(const std::vector<Ints>& args, const arrow::Decimal128Array& seconds, int64_t r) {
  ARROW_ASSIGN_OR_RAISE(auto days, civil_days(args[0][r], args[1][r], args[2][r], "make_timestamp", r));
  const int64_t hour = args[3][r], minute = args[4][r];
  const int64_t micros = static_cast<int64_t>(arrow::Decimal128(seconds.GetValue(r)).low_bits());
  if (hour < 0 || hour > 23) return invalid("make_timestamp: hour {} in row {} is not 0 to 23", hour, r);
  if (minute < 0 || minute > 59) return invalid("make_timestamp: minute {} in row {} is not 0 to 59", minute, r);
  if (micros < 0 || micros > 60'000'000 || (micros > 59'999'999 && micros != 60'000'000)) {
    return invalid("make_timestamp: the seconds in row {} are not 0 to 59.999999 (or exactly 60)", r);
  }
  return days * kMicrosPerDay + hour * 3'600'000'000 + minute * 60'000'000 + micros;
}

// make_timestamp(year, month, day, hour, min, sec): sec is DECIMAL(16,6), its unscaled value the
// microseconds; 60 with no fraction is the next minute (Spark, for PostgreSQL compatibility).
// try_make_timestamp gives NULL where make_timestamp fails.
arrow::Status make_timestamp_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const bool null_on_error = static_cast<const MakeTimestampState*>(ctx->kernel()->data.get())->null_on_error;
  std::vector<Ints> args;
  for (int i = 0; i < 5; ++i) {
    ARROW_ASSIGN_OR_RAISE(auto a, ints(batch, i));
    args.push_back(a);
  }
  ARROW_ASSIGN_OR_RAISE(auto s, argument_array(batch, 5));
  const auto& seconds = static_cast<const arrow::Decimal128Array&>(*s);
  arrow::TimestampBuilder builder(timestamp_type(), arrow::default_memory_pool());
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    bool null = seconds.IsNull(r);
    for (const auto& a : args) null = null || a.null(r);
    if (null) {
      builder.UnsafeAppendNull();
      continue;
    }
    auto micros = timestamp_micros(args, seconds, r);
    if (!micros.ok() && null_on_error) {
      builder.UnsafeAppendNull();
      continue;
    }
    ARROW_RETURN_NOT_OK(micros.status());
    builder.UnsafeAppend(*micros);
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

// Registers `exec` once under `name` for `arity` inputs of any type (the binder casts them).
arrow::Result<std::string> kernel_function(const std::string& name, int arity, std::shared_ptr<arrow::DataType> out,
                                           cp::ArrayKernelExec exec, std::shared_ptr<cp::KernelState> state = nullptr) {
  return register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity(arity), cp::FunctionDoc::Empty());
    ARROW_RETURN_NOT_OK(add_kernel(*f, std::vector<cp::InputType>(static_cast<size_t>(arity), cp::InputType::Any()),
                                   cp::OutputType(std::move(out)), exec, std::move(state)));
    return f;
  });
}

// The argument as a DATE: a TIMESTAMP's UTC date, a STRING cast as Spark casts it.
arrow::Result<cp::Expression> as_date(const FunctionCall& c, size_t i) {
  const auto id = c.type(i).id();
  if (id == arrow::Type::DATE32) return c.expression(i);
  if (id == arrow::Type::TIMESTAMP || is_string_type(c.type(i)) || id == arrow::Type::NA) {
    auto options = std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::date32()));
    options->allow_time_truncate = true;
    auto x = id == arrow::Type::TIMESTAMP ? c.expression(i) : cast_to(c.expression(i), arrow::date32());
    return cp::call("cast", {x}, options);
  }
  return c.error_at(i, fmt::format("{} needs a DATE, TIMESTAMP or STRING, not {}", c.name(), sql::sql_type_name(c.type(i))));
}

arrow::Result<cp::Expression> as_integer(const FunctionCall& c, size_t i, std::shared_ptr<arrow::DataType> type) {
  if (!arrow::is_integer(c.type(i).id()) && c.type(i).id() != arrow::Type::NA) {
    return c.error_at(i, fmt::format("{} needs an integer here, not {}", c.name(), sql::sql_type_name(c.type(i))));
  }
  return cast_to(c.expression(i), std::move(type));
}

arrow::Result<BoundExpression> bind_add_months(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto date, as_date(c, 0));
  ARROW_ASSIGN_OR_RAISE(auto months, as_integer(c, 1, arrow::int32()));
  ARROW_ASSIGN_OR_RAISE(auto f, kernel_function("sluice_add_months", 2, arrow::date32(), add_months_exec));
  return c.call(f, {date, months});
}

arrow::Result<BoundExpression> bind_last_day(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto date, as_date(c, 0));
  ARROW_ASSIGN_OR_RAISE(auto f, kernel_function("sluice_last_day", 1, arrow::date32(), last_day_exec));
  return c.call(f, {date});
}

arrow::Result<BoundExpression> bind_months_between(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto t1, datetime_family::as_timestamp(c, 0));
  ARROW_ASSIGN_OR_RAISE(auto t2, datetime_family::as_timestamp(c, 1));
  bool round = true;
  if (c.size() > 2) {
    if (!c.is_literal(2) || c.type(2).id() != arrow::Type::BOOL) return c.error_at(2, "months_between's roundOff must be TRUE or FALSE");
    const auto& flag = static_cast<const arrow::BooleanScalar&>(*c.expression(2).literal()->scalar());
    if (!flag.is_valid) return c.error_at(2, "months_between's roundOff must be TRUE or FALSE, not NULL");
    round = flag.value;
  }
  auto state = std::make_shared<RoundState>();
  state->round = round;
  ARROW_ASSIGN_OR_RAISE(auto f, kernel_function(round ? "sluice_months_between" : "sluice_months_between_unrounded", 2,
                                                arrow::float64(), months_between_exec, state));
  return c.call(f, {t1, t2});
}

arrow::Result<BoundExpression> bind_next_day(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto date, as_date(c, 0));
  ARROW_ASSIGN_OR_RAISE(auto text, c.literal_string(1));
  static const std::map<std::string, int> kDays = {
      {"SU", 0}, {"SUN", 0}, {"SUNDAY", 0}, {"MO", 1}, {"MON", 1}, {"MONDAY", 1}, {"TU", 2}, {"TUE", 2},
      {"TUESDAY", 2}, {"WE", 3}, {"WED", 3}, {"WEDNESDAY", 3}, {"TH", 4}, {"THU", 4}, {"THURSDAY", 4},
      {"FR", 5}, {"FRI", 5}, {"FRIDAY", 5}, {"SA", 6}, {"SAT", 6}, {"SATURDAY", 6}};
  std::string upper = text;
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  auto it = kDays.find(upper);
  // Spark 4 with ANSI on fails on an unknown day (ILLEGAL_DAY_OF_WEEK); the literal is not repeated.
  if (it == kDays.end()) return c.error_at(1, "not a day of the week (SU, SUN, SUNDAY, MO, MON, MONDAY, ...)");
  auto state = std::make_shared<WeekdayState>();
  state->weekday = it->second;
  ARROW_ASSIGN_OR_RAISE(auto f, kernel_function("sluice_next_day_" + std::to_string(it->second), 1, arrow::date32(),
                                                next_day_exec, state));
  return c.call(f, {date});
}

arrow::Result<BoundExpression> bind_make_date(const FunctionCall& c) {
  std::vector<cp::Expression> args;
  for (size_t i = 0; i < 3; ++i) {
    ARROW_ASSIGN_OR_RAISE(auto x, as_integer(c, i, arrow::int32()));
    args.push_back(x);
  }
  ARROW_ASSIGN_OR_RAISE(auto f, kernel_function("sluice_make_date", 3, arrow::date32(), make_date_exec));
  return c.call(f, std::move(args));
}

arrow::Result<BoundExpression> bind_make_timestamp(const FunctionCall& c) {
  std::vector<cp::Expression> args;
  for (size_t i = 0; i < 5; ++i) {
    ARROW_ASSIGN_OR_RAISE(auto x, as_integer(c, i, arrow::int32()));
    args.push_back(x);
  }
  const auto id = c.type(5).id();
  if (!arrow::is_integer(id) && !arrow::is_decimal(id) && !arrow::is_floating(id) && id != arrow::Type::NA) {
    return c.error_at(5, fmt::format("make_timestamp's seconds must be a number, not {}", sql::sql_type_name(c.type(5))));
  }
  args.push_back(cast_to(c.expression(5), arrow::decimal128(16, 6)));
  const bool try_ = c.name().rfind("try_", 0) == 0;
  auto state = std::make_shared<MakeTimestampState>();
  state->null_on_error = try_;
  ARROW_ASSIGN_OR_RAISE(auto f, kernel_function(try_ ? "sluice_try_make_timestamp" : "sluice_make_timestamp", 6,
                                                timestamp_type(), make_timestamp_exec, state));
  ARROW_ASSIGN_OR_RAISE(auto bound, c.call(f, std::move(args)));
  // The _ntz forms: the same wall clock as TIMESTAMP_NTZ (the session time zone is UTC).
  if (c.name().size() > 4 && c.name().substr(c.name().size() - 4) == "_ntz") {
    return c.call("cast", {bound.expr}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::timestamp(arrow::TimeUnit::MICRO))));
  }
  return bound;
}

// dayname / monthname: English three-letter names, as Spark 4 ('Mon', 'Jan').
arrow::Result<BoundExpression> bind_name(const FunctionCall& c, const char* format) {
  ARROW_ASSIGN_OR_RAISE(auto date, as_date(c, 0));
  auto ts = cast_to(date, timestamp_type());
  return c.call("strftime", {ts}, std::make_shared<cp::StrftimeOptions>(format, "C"));
}

// trunc(date, unit): the date's year, quarter, month or ISO week start.
arrow::Result<BoundExpression> bind_trunc(const FunctionCall& c) {
  if (!c.is_literal(1)) return c.error_at(1, "trunc's unit must be a literal");
  ARROW_ASSIGN_OR_RAISE(auto unit_text, c.literal_string(1));
  static const std::map<std::string, cp::CalendarUnit> kUnits = {
      {"year", cp::CalendarUnit::YEAR}, {"yyyy", cp::CalendarUnit::YEAR}, {"yy", cp::CalendarUnit::YEAR},
      {"quarter", cp::CalendarUnit::QUARTER}, {"month", cp::CalendarUnit::MONTH}, {"mm", cp::CalendarUnit::MONTH},
      {"mon", cp::CalendarUnit::MONTH}, {"week", cp::CalendarUnit::WEEK}};
  auto it = kUnits.find(to_lower(unit_text));
  // Spark gives NULL for an unknown unit; sluice refuses the literal instead (docs/decisions.md (fb)).
  if (it == kUnits.end()) return c.error_at(1, "not a trunc unit (YEAR, YYYY, YY, QUARTER, MONTH, MM, MON, WEEK)");
  ARROW_ASSIGN_OR_RAISE(auto date, as_date(c, 0));
  auto options = std::make_shared<cp::RoundTemporalOptions>(1, it->second, /*week_starts_monday=*/true);
  return c.call("floor_temporal", {date}, options);
}

}  // namespace calendar_family

void register_calendar_functions(FunctionRegistry& r) {
  using namespace calendar_family;  // NOLINT: this file's own helpers
  r.add({"add_months", {}, 2, 2, "datetime", "DATE", bind_add_months, ""});
  r.add({"last_day", {}, 1, 1, "datetime", "DATE", bind_last_day, ""});
  r.add({"months_between", {}, 2, 3, "datetime", "DOUBLE", bind_months_between, "roundOff must be a literal"});
  r.add({"next_day", {}, 2, 2, "datetime", "DATE", bind_next_day, "the day of the week must be a literal"});
  r.add({"make_date", {}, 3, 3, "datetime", "DATE", bind_make_date, ""});
  r.add({"make_timestamp", {"make_timestamp_ltz"}, 6, 6, "datetime", "TIMESTAMP", bind_make_timestamp, "no time zone argument"});
  r.add({"make_timestamp_ntz", {}, 6, 6, "datetime", "TIMESTAMP_NTZ", bind_make_timestamp, ""});
  r.add({"try_make_timestamp", {}, 6, 6, "datetime", "TIMESTAMP", bind_make_timestamp, "no time zone argument"});
  r.add({"try_make_timestamp_ntz", {}, 6, 6, "datetime", "TIMESTAMP_NTZ", bind_make_timestamp, ""});
  r.add({"to_timestamp_ntz", {}, 1, 1, "datetime", "TIMESTAMP_NTZ",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto ts, datetime_family::as_timestamp(c, 0));
           return c.call("cast", {ts}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::timestamp(arrow::TimeUnit::MICRO))));
         }, "no format argument"});
  r.add({"dayname", {}, 1, 1, "datetime", "STRING", [](const FunctionCall& c) { return bind_name(c, "%a"); }, ""});
  r.add({"monthname", {}, 1, 1, "datetime", "STRING", [](const FunctionCall& c) { return bind_name(c, "%b"); }, ""});
  r.add({"trunc", {}, 2, 2, "datetime", "DATE", bind_trunc, "an unknown unit is an error where Spark gives NULL"});
  r.add({"current_timezone", {}, 0, 0, "datetime", "STRING",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           BoundExpression bound{literal_of(arrow::MakeScalar(std::string("UTC"))), arrow::utf8(), "current_timezone()"};
           (void)c;
           return bound;
         }, "always UTC, sluice's session time zone"});
}

}  // namespace sluice::exec
