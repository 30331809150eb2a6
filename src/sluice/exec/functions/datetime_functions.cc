// Date and time functions: fields (year ... second, EXTRACT/date_part), truncation, arithmetic,
// conversions, Spark datetime patterns (date_format), time zones and the batch clock. sluice's
// session time zone is UTC: TIMESTAMP values are UTC instants, shown in UTC.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <chrono>
#include <map>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/exec/functions/batch_clock.h"
#include "sluice/exec/functions/civil_date.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/json_functions.h"
#include "sluice/exec/kernel_registry.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace {
thread_local std::optional<int64_t> tl_batch_time;
}  // namespace

int64_t batch_time_micros() {
  if (tl_batch_time) return *tl_batch_time;
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ScopedBatchTime::ScopedBatchTime() {
  if (tl_batch_time) return;
  tl_batch_time = batch_time_micros();
  owner_ = true;
}

ScopedBatchTime::~ScopedBatchTime() {
  if (owner_) tl_batch_time.reset();
}

namespace datetime_family {

using civil::CivilDate;
using civil::civil_from_days;
using civil::days_from_civil;
using civil::floor_div;
using civil::kMicrosPerDay;

// ---- current_timestamp / current_date -------------------------------------------------------

arrow::Status current_time_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const bool date = ctx->kernel()->signature->out_type().type()->id() == arrow::Type::DATE32;
  const int64_t now = batch_time_micros();
  std::shared_ptr<arrow::Array> result;
  if (date) {
    arrow::Date32Builder b;
    ARROW_RETURN_NOT_OK(b.AppendValues(std::vector<int32_t>(batch.length, static_cast<int32_t>(floor_div(now, kMicrosPerDay)))));
    ARROW_ASSIGN_OR_RAISE(result, b.Finish());
  } else {
    arrow::TimestampBuilder b(timestamp_type(), arrow::default_memory_pool());
    ARROW_RETURN_NOT_OK(b.AppendValues(std::vector<int64_t>(batch.length, now)));
    ARROW_ASSIGN_OR_RAISE(result, b.Finish());
  }
  out->value = result->data();
  return arrow::Status::OK();
}

arrow::Result<BoundExpression> bind_current(const FunctionCall& c) {
  const bool date = c.name() == "current_date" || c.name() == "curdate";
  const std::string name = date ? "sluice_current_date" : "sluice_current_timestamp";
  ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Unary(), cp::FunctionDoc::Empty());
    ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType::Any()},
                                   cp::OutputType(date ? arrow::date32() : timestamp_type()), current_time_exec));
    return f;
  }));
  // The argument only gives the call a length: a scalar, so the result is one value for the batch.
  ARROW_ASSIGN_OR_RAISE(auto bound, c.call(function, {literal_of(arrow::MakeScalar(int32_t{0}))}));
  bound.name = date ? "current_date()" : "current_timestamp()";
  return bound;
}

// ---- date_format: Spark datetime patterns ----------------------------------------------------

struct PatternToken {
  char letter = 0;  // 0: literal text
  int count = 0;
  std::string text;
};

struct DateFormatState : cp::KernelState {
  std::vector<PatternToken> tokens;
};

// The letters date_format writes, with the most letters each takes (Spark refuses more).
const std::map<char, int>& supported_letters() {
  static const std::map<char, int> kLetters = {{'y', 9}, {'u', 9}, {'M', 4}, {'L', 4}, {'d', 2}, {'D', 3},
                                               {'H', 2}, {'h', 2}, {'k', 2}, {'K', 2}, {'m', 2}, {'s', 2},
                                               {'S', 9}, {'a', 1}, {'E', 4}, {'Q', 2}, {'q', 2}, {'X', 3},
                                               {'x', 3}, {'Z', 3}};
  return kLetters;
}

arrow::Result<std::vector<PatternToken>> parse_datetime_pattern(const std::string& pattern) {
  std::vector<PatternToken> tokens;
  auto literal = [&](const std::string& text) {
    if (!tokens.empty() && tokens.back().letter == 0) {
      tokens.back().text += text;
    } else {
      tokens.push_back({0, 0, text});
    }
  };
  for (size_t i = 0; i < pattern.size();) {
    const char ch = pattern[i];
    if (ch == '\'') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '\'') {
        literal("'");
        i += 2;
        continue;
      }
      size_t end = i + 1;
      std::string text;
      for (; end < pattern.size(); ++end) {
        if (pattern[end] == '\'') {
          if (end + 1 < pattern.size() && pattern[end + 1] == '\'') {
            text += '\'';
            ++end;
            continue;
          }
          break;
        }
        text += pattern[end];
      }
      if (end >= pattern.size()) return arrow::Status::Invalid("the datetime pattern has an unclosed quote");
      literal(text);
      i = end + 1;
      continue;
    }
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
      size_t end = i;
      while (end < pattern.size() && pattern[end] == ch) ++end;
      const int count = static_cast<int>(end - i);
      auto it = supported_letters().find(ch);
      if (it == supported_letters().end()) {
        return invalid("pattern letter '{}' is not supported by sluice's date_format (supported: y M L d D "
                       "Q E a H h k K m s S X x Z and quoted text)",
                       std::string(1, ch));
      }
      if (count > it->second) return invalid("too many pattern letters '{}' (at most {})", std::string(1, ch), it->second);
      tokens.push_back({ch, count, ""});
      i = end;
      continue;
    }
    if (ch == '[' || ch == ']' || ch == '{' || ch == '}' || ch == '#') {
      return invalid("'{}' in a datetime pattern is not supported (optional sections and reserved characters)",
                     std::string(1, ch));
    }
    literal(std::string(1, ch));
    ++i;
  }
  return tokens;
}

void append_padded(std::string& out, int64_t value, int width) {
  if (value < 0) {
    out += '-';
    value = -value;
  }
  auto digits = std::to_string(value);
  if (static_cast<int>(digits.size()) < width) out.append(static_cast<size_t>(width) - digits.size(), '0');
  out += digits;
}

void format_instant(const std::vector<PatternToken>& tokens, int64_t micros, std::string& out) {
  static constexpr const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                            "July",    "August",   "September", "October", "November", "December"};
  static constexpr const char* kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
  const int64_t days = floor_div(micros, kMicrosPerDay);
  const int64_t of_day = micros - days * kMicrosPerDay;
  const CivilDate date = civil_from_days(days);
  const int hour = static_cast<int>(of_day / 3'600'000'000);
  const int minute = static_cast<int>(of_day / 60'000'000 % 60);
  const int second = static_cast<int>(of_day / 1'000'000 % 60);
  const int64_t fraction = of_day % 1'000'000;
  const int weekday = static_cast<int>(((days + 4) % 7 + 7) % 7);  // 0 = Sunday
  for (const auto& t : tokens) {
    switch (t.letter) {
      case 0: out += t.text; break;
      case 'y':
      case 'u':
        if (t.count == 2) {
          append_padded(out, ((date.year % 100) + 100) % 100, 2);
        } else {
          append_padded(out, date.year, t.count);
        }
        break;
      case 'M':
      case 'L':
        if (t.count >= 4) out += kMonths[date.month - 1];
        else if (t.count == 3) out += std::string(kMonths[date.month - 1]).substr(0, 3);
        else append_padded(out, date.month, t.count);
        break;
      case 'd': append_padded(out, date.day, t.count); break;
      case 'D': append_padded(out, days - days_from_civil(date.year, 1, 1) + 1, t.count); break;
      case 'Q':
      case 'q': append_padded(out, (date.month - 1) / 3 + 1, t.count); break;
      case 'E': out += t.count >= 4 ? std::string(kDays[weekday]) : std::string(kDays[weekday]).substr(0, 3); break;
      case 'a': out += hour < 12 ? "AM" : "PM"; break;
      case 'H': append_padded(out, hour, t.count); break;
      case 'k': append_padded(out, hour == 0 ? 24 : hour, t.count); break;
      case 'K': append_padded(out, hour % 12, t.count); break;
      case 'h': append_padded(out, hour % 12 == 0 ? 12 : hour % 12, t.count); break;
      case 'm': append_padded(out, minute, t.count); break;
      case 's': append_padded(out, second, t.count); break;
      case 'S': {
        std::string digits = fmt::format("{:06d}", fraction);
        if (t.count <= 6) out += digits.substr(0, static_cast<size_t>(t.count));
        else out += digits + std::string(static_cast<size_t>(t.count - 6), '0');
        break;
      }
      case 'X': out += 'Z'; break;  // the session time zone is UTC
      case 'x': out += t.count == 1 ? "+00" : t.count == 2 ? "+0000" : "+00:00"; break;
      case 'Z': out += "+0000"; break;
      default: break;  // parse_datetime_pattern admits no other letter
    }
  }
}

arrow::Status date_format_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const auto& tokens = static_cast<const DateFormatState*>(ctx->kernel()->data.get())->tokens;
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& in = static_cast<const arrow::TimestampArray&>(*a);
  return map_non_null_rows<arrow::StringBuilder>(in, out, [&](int64_t r, std::string& text) {
    format_instant(tokens, in.Value(r), text);
    return arrow::Status::OK();
  });
}

// The argument as microsecond TIMESTAMP (DATE at midnight, STRING parsed as Spark casts it).
arrow::Result<cp::Expression> as_timestamp(const FunctionCall& c, size_t i) {
  const auto id = c.type(i).id();
  if (id == arrow::Type::TIMESTAMP) {
    const auto& ts = static_cast<const arrow::TimestampType&>(c.type(i));
    if (ts.unit() == arrow::TimeUnit::MICRO) return c.expression(i);
    return cast_to(c.expression(i), arrow::timestamp(arrow::TimeUnit::MICRO, ts.timezone()));
  }
  if (id == arrow::Type::DATE32 || is_string_type(c.type(i)) || id == arrow::Type::NA) {
    return cast_to(c.expression(i), timestamp_type());
  }
  return c.error_at(i, fmt::format("{} needs a TIMESTAMP, DATE or STRING, not {}", c.name(), sql::sql_type_name(c.type(i))));
}

arrow::Result<BoundExpression> bind_date_format(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto pattern, c.literal_string(1));
  auto tokens = parse_datetime_pattern(pattern);
  if (!tokens.ok()) return c.error_at(1, tokens.status().message());
  ARROW_ASSIGN_OR_RAISE(auto ts, as_timestamp(c, 0));
  const std::string name = "sluice_date_format_" + std::to_string(std::hash<std::string>{}(pattern));
  ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Unary(), cp::FunctionDoc::Empty());
    auto state = std::make_shared<DateFormatState>();
    state->tokens = *tokens;
    ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(arrow::Type::TIMESTAMP)}, cp::OutputType(arrow::utf8()),
                                   date_format_exec, state));
    return f;
  }));
  return c.call(function, {ts});
}

// ---- fields and EXTRACT ------------------------------------------------------------------------

arrow::Result<BoundExpression> as_int(const FunctionCall& c, const cp::Expression& x) {
  return c.call("cast", {x}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int32())));
}

// SECOND in EXTRACT: seconds with their fraction as DECIMAL(8,6).
arrow::Status seconds_decimal_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& in = static_cast<const arrow::TimestampArray&>(*a);
  arrow::Decimal128Builder builder(arrow::decimal128(8, 6));
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    if (in.IsNull(r)) {
      builder.UnsafeAppendNull();
      continue;
    }
    const int64_t v = in.Value(r);
    builder.UnsafeAppend(arrow::Decimal128(v - floor_div(v, 60'000'000) * 60'000'000));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  out->value = result->data();
  return arrow::Status::OK();
}

enum class Field { kYear, kYearOfWeek, kQuarter, kMonth, kWeek, kDay, kDayOfWeek, kDayOfWeekIso, kDayOfYear, kHour, kMinute, kSecond };

arrow::Result<BoundExpression> field_of(const FunctionCall& c, Field field, size_t arg) {
  const bool date = c.type(arg).id() == arrow::Type::DATE32;
  if (date && (field == Field::kHour || field == Field::kMinute || field == Field::kSecond)) {
    return c.error_at(arg, fmt::format("{} has no time of day: it is a DATE", c.name()));
  }
  cp::Expression x = c.expression(arg);
  if (!date) {
    ARROW_ASSIGN_OR_RAISE(x, as_timestamp(c, arg));
  }
  switch (field) {
    case Field::kYear: return as_int(c, cp::call("year", {x}));
    case Field::kYearOfWeek: return as_int(c, cp::call("iso_year", {x}));
    case Field::kQuarter: return as_int(c, cp::call("quarter", {x}));
    case Field::kMonth: return as_int(c, cp::call("month", {x}));
    case Field::kWeek: return as_int(c, cp::call("iso_week", {x}));
    case Field::kDay: return as_int(c, cp::call("day", {x}));
    case Field::kDayOfWeek:  // 1 = Sunday ... 7 = Saturday
      return as_int(c, cp::call("day_of_week", {x}, std::make_shared<cp::DayOfWeekOptions>(/*count_from_zero=*/false, /*week_start=*/7)));
    case Field::kDayOfWeekIso:  // 1 = Monday ... 7 = Sunday
      return as_int(c, cp::call("day_of_week", {x}, std::make_shared<cp::DayOfWeekOptions>(/*count_from_zero=*/false, /*week_start=*/1)));
    case Field::kDayOfYear: return as_int(c, cp::call("day_of_year", {x}));
    case Field::kHour: return as_int(c, cp::call("hour", {x}));
    case Field::kMinute: return as_int(c, cp::call("minute", {x}));
    case Field::kSecond: {
      if (c.name() == "second") return as_int(c, cp::call("second", {x}));
      ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once("sluice_seconds_decimal", []() -> arrow::Result<std::shared_ptr<cp::Function>> {
        auto f = std::make_shared<cp::ScalarFunction>("sluice_seconds_decimal", cp::Arity::Unary(), cp::FunctionDoc::Empty());
        ARROW_RETURN_NOT_OK(add_kernel(*f, {cp::InputType(arrow::Type::TIMESTAMP)}, cp::OutputType(arrow::decimal128(8, 6)),
                                       seconds_decimal_exec));
        return f;
      }));
      return c.call(function, {x});
    }
  }
  return c.error("unknown field");
}

// EXTRACT(field FROM source) (the parser makes it extract('field', source)) and date_part.
arrow::Result<BoundExpression> bind_extract(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto text, c.literal_string(0));
  static const std::map<std::string, Field> kFields = {
      {"year", Field::kYear}, {"y", Field::kYear}, {"years", Field::kYear}, {"yr", Field::kYear}, {"yrs", Field::kYear},
      {"yearofweek", Field::kYearOfWeek}, {"quarter", Field::kQuarter}, {"qtr", Field::kQuarter},
      {"month", Field::kMonth}, {"mon", Field::kMonth}, {"mons", Field::kMonth}, {"months", Field::kMonth},
      {"week", Field::kWeek}, {"w", Field::kWeek}, {"weeks", Field::kWeek},
      {"day", Field::kDay}, {"d", Field::kDay}, {"days", Field::kDay},
      {"dayofweek", Field::kDayOfWeek}, {"dow", Field::kDayOfWeek},
      {"dayofweek_iso", Field::kDayOfWeekIso}, {"dow_iso", Field::kDayOfWeekIso}, {"doy", Field::kDayOfYear},
      {"hour", Field::kHour}, {"h", Field::kHour}, {"hours", Field::kHour}, {"hr", Field::kHour}, {"hrs", Field::kHour},
      {"minute", Field::kMinute}, {"m", Field::kMinute}, {"min", Field::kMinute}, {"mins", Field::kMinute},
      {"minutes", Field::kMinute}, {"second", Field::kSecond}, {"s", Field::kSecond}, {"sec", Field::kSecond},
      {"seconds", Field::kSecond}, {"secs", Field::kSecond}};
  auto it = kFields.find(to_lower(text));
  if (it == kFields.end()) {
    // The literal is not repeated (error messages never quote a string token: docs/decisions.md).
    return c.error_at(0, fmt::format("not a field {} knows (YEAR, QUARTER, MONTH, WEEK, DAY, DAYOFWEEK, "
                                     "DAYOFWEEK_ISO, DOY, HOUR, MINUTE, SECOND, YEAROFWEEK)",
                                     c.name() == "extract" ? "EXTRACT" : "date_part"));
  }
  return field_of(c, it->second, 1);
}

void add_field(FunctionRegistry& r, std::string name, std::vector<std::string> aliases, Field field) {
  r.add({std::move(name), std::move(aliases), 1, 1, "datetime", "INT",
         [field](const FunctionCall& c) { return field_of(c, field, 0); }, ""});
}

// ---- time zones ------------------------------------------------------------------------------

arrow::Result<std::string> time_zone(const FunctionCall& c, size_t i) {
  ARROW_ASSIGN_OR_RAISE(auto zone, c.literal_string(i));
  // Arrow knows IANA names and fixed offsets (+08:00); check it here, not when a batch runs.
  auto probe = cp::CallFunction("local_timestamp", {arrow::Datum(std::make_shared<arrow::TimestampScalar>(
                                                        0, arrow::timestamp(arrow::TimeUnit::MICRO, zone)))});
  if (!probe.ok()) {
    // The zone's text is not repeated: the error prints the source line with literals redacted.
    return c.error_at(i, "not a time zone sluice knows (use a region such as 'Europe/Paris' or an offset such as "
                         "'+08:00')");
  }
  return zone;
}

// from_utc_timestamp(ts, zone): the wall clock in `zone` at instant ts, as a UTC timestamp.
arrow::Result<BoundExpression> bind_from_utc(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto zone, time_zone(c, 1));
  ARROW_ASSIGN_OR_RAISE(auto ts, as_timestamp(c, 0));
  auto zoned = cast_to(ts, arrow::timestamp(arrow::TimeUnit::MICRO, zone));
  return c.call("cast", {cp::call("local_timestamp", {zoned})},
                std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(timestamp_type())));
}

// to_utc_timestamp(ts, zone): ts's wall clock read in `zone`, as a UTC instant. As Java's
// ZonedDateTime (Spark): a wall clock in a DST gap uses the offset before the gap (02:30 in a
// one-hour gap is 03:30 after it), an ambiguous one the earlier offset. Arrow's
// assume_timezone(EARLIEST) gives the last instant before a gap; its offset is the one before
// the gap, so wall clock - that offset is Java's answer everywhere.
arrow::Result<BoundExpression> bind_to_utc(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto zone, time_zone(c, 1));
  ARROW_ASSIGN_OR_RAISE(auto ts, as_timestamp(c, 0));
  auto naive = cast_to(ts, arrow::timestamp(arrow::TimeUnit::MICRO));
  auto options = std::make_shared<cp::AssumeTimezoneOptions>(zone, cp::AssumeTimezoneOptions::AMBIGUOUS_EARLIEST,
                                                              cp::AssumeTimezoneOptions::NONEXISTENT_EARLIEST);
  auto instant = cp::call("assume_timezone", {naive}, options);
  auto wall = cp::call("local_timestamp", {instant});
  auto offset = cp::call("subtract", {cast_to(wall, arrow::int64()), cast_to(instant, arrow::int64())});
  auto utc = cp::call("subtract_checked", {cast_to(naive, arrow::int64()), offset});
  return c.call("cast", {utc}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(timestamp_type())));
}

// ---- the functions sluice had before the registry --------------------------------------------

arrow::Result<BoundExpression> bind_date_trunc(const FunctionCall& c) {
  ARROW_ASSIGN_OR_RAISE(auto unit_text, c.literal_string(0));
  static const std::map<std::string, cp::CalendarUnit> kUnits = {
      {"year", cp::CalendarUnit::YEAR}, {"yyyy", cp::CalendarUnit::YEAR}, {"yy", cp::CalendarUnit::YEAR},
      {"quarter", cp::CalendarUnit::QUARTER}, {"month", cp::CalendarUnit::MONTH}, {"mm", cp::CalendarUnit::MONTH},
      {"mon", cp::CalendarUnit::MONTH}, {"week", cp::CalendarUnit::WEEK}, {"day", cp::CalendarUnit::DAY},
      {"dd", cp::CalendarUnit::DAY}, {"hour", cp::CalendarUnit::HOUR}, {"minute", cp::CalendarUnit::MINUTE},
      {"second", cp::CalendarUnit::SECOND}, {"millisecond", cp::CalendarUnit::MILLISECOND},
      {"microsecond", cp::CalendarUnit::MICROSECOND}};
  auto it = kUnits.find(to_lower(unit_text));
  if (it == kUnits.end()) return c.error_at(0, "not a date_trunc unit (YEAR, QUARTER, MONTH, WEEK, DAY, HOUR, MINUTE, SECOND, MILLISECOND, MICROSECOND)");
  auto ts = c.type(1).id() == arrow::Type::DATE32 ? cast_to(c.expression(1), arrow::timestamp(arrow::TimeUnit::MICRO))
                                                  : c.expression(1);
  auto options = std::make_shared<cp::RoundTemporalOptions>(1, it->second, /*week_starts_monday=*/true);
  return c.call("floor_temporal", {ts}, options);
}

arrow::Result<BoundExpression> bind_window(const FunctionCall& c) {
  // window(ts, '5 minutes'[, '1 minute']) and session_window(ts, '10 minutes') give
  // struct<start, end>. Tumbling windows are computed here; sliding and session windows
  // need the event-time runtime, so they type-check now and refuse to run.
  const std::string& name = c.name();
  if (c.type(0).id() != arrow::Type::TIMESTAMP) {
    return c.error_at(0, fmt::format("{} needs a TIMESTAMP, not {}", name, sql::sql_type_name(c.type(0))));
  }
  std::vector<int64_t> durations;
  for (size_t i = 1; i < c.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto text, c.literal_string(i));
    auto micros = interval_micros(text);
    if (!micros.ok() || *micros <= 0) {
      return c.error_at(i, fmt::format("'{}' is not a positive duration such as '5 minutes'", text));
    }
    durations.push_back(*micros);
  }
  auto ts_type = c.arg(0).type;
  auto type = arrow::struct_({arrow::field("start", ts_type), arrow::field("end", ts_type)});
  const bool tumbling = name == "window" && (durations.size() == 1 || (durations.size() >= 2 && durations[1] == durations[0]));
  if (!tumbling) {
    ARROW_ASSIGN_OR_RAISE(auto function, not_yet_function(type, name + " with a slide or a gap runs with event-time "
                                                                 "processing, which is not executed yet"));
    return c.call(function, {c.expression(0)});
  }
  const int64_t size = durations[0];
  const int64_t offset = durations.size() == 3 ? durations[2] : 0;
  auto micros = cast_to(cast_to(c.expression(0), arrow::timestamp(arrow::TimeUnit::MICRO)), arrow::int64());
  // start = floor((t - offset) / size) * size + offset  (exact below 2^53 microseconds)
  auto shifted = cp::call("subtract", {micros, literal_of(arrow::MakeScalar(offset))});
  auto buckets = cp::call("floor", {cp::call("divide", {cast_to(shifted, arrow::float64()),
                                                        literal_of(arrow::MakeScalar(static_cast<double>(size)))})});
  auto start = cp::call("add", {cp::call("multiply", {cast_to(buckets, arrow::int64()), literal_of(arrow::MakeScalar(size))}),
                               literal_of(arrow::MakeScalar(offset))});
  auto end = cp::call("add", {start, literal_of(arrow::MakeScalar(size))});
  auto as_ts = [&](cp::Expression x) { return cast_to(cast_to(x, arrow::timestamp(arrow::TimeUnit::MICRO)), ts_type); };
  return c.call("make_struct", {as_ts(start), as_ts(end)},
                std::make_shared<cp::MakeStructOptions>(std::vector<std::string>{"start", "end"}));
}

arrow::Result<BoundExpression> bind_epoch_to_timestamp(const FunctionCall& c, int64_t micros_per_unit) {
  if (!arrow::is_integer(c.type(0).id()) && !(micros_per_unit == 1'000'000 && arrow::is_floating(c.type(0).id()))) {
    return c.error_at(0, fmt::format("{} needs {}, not {}", c.name(), micros_per_unit == 1'000'000 ? "a number" : "an integer",
                                     sql::sql_type_name(c.type(0))));
  }
  cp::Expression micros;
  if (arrow::is_floating(c.type(0).id())) {
    // Spark: NaN and +-Inf are NULL; a finite value past the timestamp range is an error. The
    // microseconds are truncated toward zero first, so the Safe cast checks the range only.
    auto x = cast_to(c.expression(0), arrow::float64());
    auto finite = cp::call("if_else", {cp::call("is_finite", {x}), x, literal_of(arrow::MakeNullScalar(arrow::float64()))});
    micros = cp::call("cast", {cp::call("trunc", {cp::call("multiply", {finite, literal_of(arrow::MakeScalar(1e6))})})},
                      std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int64())));
  } else {
    micros = cp::call("multiply_checked", {cast_to(c.expression(0), arrow::int64()), literal_of(arrow::MakeScalar(micros_per_unit))});
  }
  return c.call("cast", {micros}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(timestamp_type())));
}

arrow::Result<BoundExpression> bind_timestamp_to_epoch(const FunctionCall& c, int64_t micros_per_unit) {
  ARROW_ASSIGN_OR_RAISE(auto ts, as_timestamp(c, 0));
  auto micros = cast_to(ts, arrow::int64());
  if (micros_per_unit == 1) return c.call("cast", {micros}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int64())));
  // floor division, also before 1970: (m - ((m % u) + u) % u) / u has no integer floor-divide kernel, so
  // subtract the non-negative remainder first
  auto unit = literal_of(arrow::MakeScalar(micros_per_unit));
  auto truncated = cp::call("divide", {micros, unit});  // toward zero
  auto back = cp::call("multiply", {truncated, unit});
  auto below = cp::call("less", {micros, back});  // negative with a remainder: one less
  auto floored = cp::call("subtract", {truncated, cast_to(below, arrow::int64())});
  return c.call("cast", {floored}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int64())));
}

}  // namespace datetime_family

// calendar_functions.cc: add_months, months_between, make_date, ... (compiled on its own).
void register_calendar_functions(FunctionRegistry& r);

void register_datetime_functions(FunctionRegistry& r) {
  using namespace datetime_family;  // NOLINT: this file's own helpers
  add_field(r, "year", {}, Field::kYear);
  add_field(r, "quarter", {}, Field::kQuarter);
  add_field(r, "month", {}, Field::kMonth);
  add_field(r, "day", {"dayofmonth"}, Field::kDay);
  add_field(r, "dayofweek", {}, Field::kDayOfWeek);
  add_field(r, "dayofyear", {}, Field::kDayOfYear);
  add_field(r, "weekofyear", {}, Field::kWeek);
  add_field(r, "hour", {}, Field::kHour);
  add_field(r, "minute", {}, Field::kMinute);
  add_field(r, "second", {}, Field::kSecond);
  r.add({"weekday", {}, 1, 1, "datetime", "INT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {  // 0 = Monday ... 6 = Sunday
           auto x = c.expression(0);
           if (c.type(0).id() != arrow::Type::DATE32) {
             ARROW_ASSIGN_OR_RAISE(x, as_timestamp(c, 0));
           }
           return as_int(c, cp::call("day_of_week", {x}));
         }, ""});
  r.add({"extract", {"date_part", "datepart"}, 2, 2, "datetime", "INT; SECOND: DECIMAL(8,6)", bind_extract,
         "the field must be a literal; interval sources are refused"});
  r.add({"current_timestamp", {"now"}, 0, 0, "datetime", "TIMESTAMP", bind_current,
         "fixed per batch (a micro-batch in Spark), in UTC"});
  r.add({"current_date", {"curdate"}, 0, 0, "datetime", "DATE", bind_current, "fixed per batch; the date in UTC"});
  r.add({"date_format", {}, 2, 2, "datetime", "STRING", bind_date_format,
         "the pattern must be a literal; letters G V z O F e c w W and optional sections are refused"});
  r.add({"from_utc_timestamp", {}, 2, 2, "datetime", "TIMESTAMP", bind_from_utc, "the zone must be a literal"});
  r.add({"to_utc_timestamp", {}, 2, 2, "datetime", "TIMESTAMP", bind_to_utc, "the zone must be a literal"});
  r.add({"date_trunc", {}, 2, 2, "datetime", "TIMESTAMP", bind_date_trunc, "the unit must be a literal"});
  r.add({"to_date", {}, 1, 1, "datetime", "DATE",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           auto to_date = std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::date32()));
           to_date->allow_time_truncate = true;  // a TIMESTAMP's date, as CAST(ts AS DATE)
           if (is_string_type(c.type(0))) {
             auto ts = cp::call("strptime", {c.expression(0)},
                                std::make_shared<cp::StrptimeOptions>("%Y-%m-%d", arrow::TimeUnit::SECOND, /*error_is_null=*/true));
             return c.call("cast", {ts}, to_date);
           }
           return c.call("cast", c.expressions(), to_date);
         }, "no format argument; text that is not yyyy-MM-dd gives NULL"});
  r.add({"to_timestamp", {"to_timestamp_ltz"}, 1, 1, "datetime", "TIMESTAMP",
         [](const FunctionCall& c) {
           return c.call("cast", c.expressions(), std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(timestamp_type())));
         }, "no format argument"});
  r.add({"datediff", {"date_diff"}, 2, 2, "datetime", "INT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto d, c.call("days_between", {c.expression(1), c.expression(0)}));
           return as_int(c, d.expr);
         }, ""});
  for (const char* name : {"date_add", "date_sub"}) {
    r.add({name, std::string(name) == "date_add" ? std::vector<std::string>{"dateadd"} : std::vector<std::string>{}, 2, 2,
           "datetime", "DATE",
           [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
             auto days = cast_to(cast_to(c.expression(0), arrow::date32()), arrow::int32());
             auto n = cast_to(c.expression(1), arrow::int32());
             ARROW_ASSIGN_OR_RAISE(auto sum, c.call(c.name() == "date_sub" ? "subtract_checked" : "add_checked", {days, n}));
             return c.call("cast", {sum.expr}, std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::date32())));
           }, ""});
  }
  r.add({"unix_timestamp", {"to_unix_timestamp"}, 1, 1, "datetime", "BIGINT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           auto micros = cast_to(cast_to(c.expression(0), timestamp_type()), arrow::int64());
           // Whole seconds truncated toward zero, as Spark (micros / 1e6 on a long): -1 us is 0,
           // where unix_seconds floors to -1 (the Spark differential test found it).
           return c.call("divide", {micros, literal_of(arrow::MakeScalar(int64_t{1'000'000}))});
         }, "one argument only (no current time, no format)"});
  r.add({"from_unixtime", {}, 1, 1, "datetime", "STRING",
         [](const FunctionCall& c) {
           auto ts = cast_to(cast_to(c.expression(0), arrow::int64()), arrow::timestamp(arrow::TimeUnit::SECOND, "UTC"));
           return c.call("strftime", {ts}, std::make_shared<cp::StrftimeOptions>("%Y-%m-%d %H:%M:%S"));
         }, "no format argument"});
  r.add({"timestamp_seconds", {}, 1, 1, "datetime", "TIMESTAMP",
         [](const FunctionCall& c) { return bind_epoch_to_timestamp(c, 1'000'000); }, ""});
  r.add({"timestamp_millis", {}, 1, 1, "datetime", "TIMESTAMP",
         [](const FunctionCall& c) { return bind_epoch_to_timestamp(c, 1'000); }, ""});
  r.add({"timestamp_micros", {}, 1, 1, "datetime", "TIMESTAMP",
         [](const FunctionCall& c) { return bind_epoch_to_timestamp(c, 1); }, ""});
  r.add({"unix_seconds", {}, 1, 1, "datetime", "BIGINT",
         [](const FunctionCall& c) { return bind_timestamp_to_epoch(c, 1'000'000); }, ""});
  r.add({"unix_millis", {}, 1, 1, "datetime", "BIGINT",
         [](const FunctionCall& c) { return bind_timestamp_to_epoch(c, 1'000); }, ""});
  r.add({"unix_micros", {}, 1, 1, "datetime", "BIGINT",
         [](const FunctionCall& c) { return bind_timestamp_to_epoch(c, 1); }, ""});
  r.add({"unix_date", {}, 1, 1, "datetime", "INT",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           if (c.type(0).id() != arrow::Type::DATE32) return c.error_at(0, fmt::format("unix_date needs a DATE, not {}", sql::sql_type_name(c.type(0))));
           return c.call("cast", c.expressions(), std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::int32())));
         }, ""});
  r.add({"date_from_unix_date", {}, 1, 1, "datetime", "DATE",
         [](const FunctionCall& c) {
           return c.call("cast", {cast_to(c.expression(0), arrow::int32())},
                         std::make_shared<cp::CastOptions>(cp::CastOptions::Safe(arrow::date32())));
         }, ""});
  r.add({"window", {}, 2, 4, "datetime", "STRUCT<start, end>", bind_window, "sliding windows type-check but run only in event-time operators"});
  r.add({"session_window", {}, 2, 2, "datetime", "STRUCT<start, end>", bind_window, "runs only in event-time operators"});
  register_calendar_functions(r);
}

}  // namespace sluice::exec
