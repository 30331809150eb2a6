// File skipping by partition values and per-file stats.
#include "sluice/delta/file_skipping.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/reader.h>
#include <parquet/metadata.h>
#include <parquet/schema.h>
#include <parquet/statistics.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "sluice/common/status.h"
#include "sluice/delta/partitioning.h"

namespace sluice::delta {

namespace cp = arrow::compute;

namespace {

// Three-valued comparison of two scalars of one type: <0, 0, >0, or nullopt if either is null
// or NaN, or they do not compare.
std::optional<int> compare_scalars(const arrow::Scalar& a, const arrow::Scalar& b) {
  if (!a.is_valid || !b.is_valid) return std::nullopt;
  for (const auto* s : {&a, &b}) {
    if (s->type->id() == arrow::Type::DOUBLE && std::isnan(static_cast<const arrow::DoubleScalar&>(*s).value)) {
      return std::nullopt;
    }
    if (s->type->id() == arrow::Type::FLOAT && std::isnan(static_cast<const arrow::FloatScalar&>(*s).value)) {
      return std::nullopt;
    }
  }
  arrow::Datum da(a.GetSharedPtr()), db(b.GetSharedPtr());
  auto lt = cp::CallFunction("less", {da, db});
  auto eq = cp::CallFunction("equal", {da, db});
  if (!lt.ok() || !eq.ok()) return std::nullopt;
  const auto& l = lt->scalar_as<arrow::BooleanScalar>();
  const auto& e = eq->scalar_as<arrow::BooleanScalar>();
  if (!l.is_valid || !e.is_valid) return std::nullopt;
  return l.value ? -1 : (e.value ? 0 : 1);
}

// `v` as `type` (a safe cast), or null when it does not convert.
std::shared_ptr<arrow::Scalar> converted(const std::shared_ptr<arrow::Scalar>& v,
                                         const std::shared_ptr<arrow::DataType>& type) {
  if (!v || !type || v->type->Equals(*type)) return v;
  auto cast = cp::Cast(arrow::Datum(v), type, cp::CastOptions::Safe(type));
  if (!cast.ok() || !cast->is_scalar()) return nullptr;
  return cast->scalar();
}

// Casts whose result keeps the order of their input (x <= y implies f(x) <= f(y)), so a file's
// bounds, cast, bound the cast values: numbers among numbers, dates and timestamps among
// themselves (timestamp to date floors).
bool order_keeping_cast(const arrow::DataType& from, const arrow::DataType& to) {
  auto number = [](const arrow::DataType& t) {
    return arrow::is_integer(t.id()) || arrow::is_floating(t.id()) || arrow::is_decimal(t.id());
  };
  auto time = [](const arrow::DataType& t) {
    return t.id() == arrow::Type::DATE32 || t.id() == arrow::Type::TIMESTAMP;
  };
  return (number(from) && number(to)) || (time(from) && time(to)) || from.Equals(to);
}

// The top-level column `e` reads, maybe under one order-keeping cast: (column, type compared as;
// null when not cast). Column "" when `e` is not that.
std::pair<std::string, std::shared_ptr<arrow::DataType>> column_of(const cp::Expression& e,
                                                                   const arrow::Schema& schema) {
  if (const auto* ref = e.field_ref()) {
    auto path = ref->FindOne(schema);
    if (!path.ok() || path->indices().size() != 1) return {"", nullptr};
    return {schema.field(path->indices()[0])->name(), nullptr};
  }
  const auto* call = e.call();
  if (!call || call->function_name != "cast" || call->arguments.size() != 1) return {"", nullptr};
  const auto* options = dynamic_cast<const cp::CastOptions*>(call->options.get());
  // Wrapping integers (allow_int_overflow) do not keep order; one cast only (two casts are not
  // the one cast the bounds would go through).
  if (!options || !options->to_type.type || options->allow_int_overflow) return {"", nullptr};
  const auto* ref = call->arguments[0].field_ref();
  if (!ref) return {"", nullptr};
  auto [column, none] = column_of(call->arguments[0], schema);
  if (column.empty()) return {"", nullptr};
  if (!order_keeping_cast(*schema.GetFieldByName(column)->type(), *options->to_type.type)) return {"", nullptr};
  return {column, options->to_type.GetSharedPtr()};
}

std::shared_ptr<arrow::Scalar> literal_of(const cp::Expression& e) {
  const auto* datum = e.literal();
  return datum && datum->is_scalar() ? datum->scalar() : nullptr;
}

std::optional<CompareOp> comparison(const std::string& name) {
  if (name == "equal") return CompareOp::kEq;
  if (name == "not_equal") return CompareOp::kNe;
  if (name == "less") return CompareOp::kLt;
  if (name == "less_equal") return CompareOp::kLe;
  if (name == "greater") return CompareOp::kGt;
  if (name == "greater_equal") return CompareOp::kGe;
  return std::nullopt;
}

// v <op> column as column <op'> v.
CompareOp flipped(CompareOp op) {
  switch (op) {
    case CompareOp::kLt: return CompareOp::kGt;
    case CompareOp::kLe: return CompareOp::kGe;
    case CompareOp::kGt: return CompareOp::kLt;
    case CompareOp::kGe: return CompareOp::kLe;
    default: return op;
  }
}

// The rows where a comparison is false (not NULL) are those where its complement is true,
// except NaN rows of an ordering comparison on floats (build_tree does not negate those).
CompareOp complement(CompareOp op) {
  switch (op) {
    case CompareOp::kEq: return CompareOp::kNe;
    case CompareOp::kNe: return CompareOp::kEq;
    case CompareOp::kLt: return CompareOp::kGe;
    case CompareOp::kLe: return CompareOp::kGt;
    case CompareOp::kGt: return CompareOp::kLe;
    case CompareOp::kGe: return CompareOp::kLt;
    case CompareOp::kIsNull: return CompareOp::kIsNotNull;
    case CompareOp::kIsNotNull: return CompareOp::kIsNull;
  }
  return op;
}

FilePredicate of_kind(FilePredicate::Kind kind) {
  FilePredicate p;
  p.kind = kind;
  return p;
}

// `negate`: the tree of NOT e (rows where e is false).
FilePredicate build_tree(const cp::Expression& e, const arrow::Schema& schema, bool negate) {
  using Kind = FilePredicate::Kind;
  if (auto value = literal_of(e)) {
    if (value->type->id() == arrow::Type::NA) return of_kind(Kind::kNever);
    if (value->type->id() != arrow::Type::BOOL) return of_kind(Kind::kUnknown);
    const auto& b = static_cast<const arrow::BooleanScalar&>(*value);
    if (!b.is_valid || b.value == negate) return of_kind(Kind::kNever);
    return of_kind(Kind::kUnknown);
  }
  const auto* call = e.call();
  if (!call) return of_kind(Kind::kUnknown);
  const auto& name = call->function_name;
  if (name == "invert" && call->arguments.size() == 1) return build_tree(call->arguments[0], schema, !negate);
  const bool is_and = name == "and_kleene" || name == "and";
  const bool is_or = name == "or_kleene" || name == "or";
  if (is_and || is_or) {
    // NOT (a AND b) = NOT a OR NOT b, in three-valued logic too.
    FilePredicate p = of_kind(is_and != negate ? Kind::kAnd : Kind::kOr);
    for (const auto& arg : call->arguments) p.children.push_back(build_tree(arg, schema, negate));
    return p;
  }
  if ((name == "is_null" || name == "is_valid") && call->arguments.size() == 1) {
    const auto* options = dynamic_cast<const cp::NullOptions*>(call->options.get());
    if (options && options->nan_is_null) return of_kind(Kind::kUnknown);
    auto [column, cast] = column_of(call->arguments[0], schema);
    if (column.empty()) return of_kind(Kind::kUnknown);
    FilePredicate p = of_kind(Kind::kLeaf);
    p.leaf = {column, (name == "is_null") != negate ? CompareOp::kIsNull : CompareOp::kIsNotNull, nullptr};
    return p;
  }
  auto op = comparison(name);
  if (!op || call->arguments.size() != 2) return of_kind(Kind::kUnknown);
  for (int side = 0; side < 2; ++side) {
    auto [column, cast] = column_of(call->arguments[side], schema);
    auto value = literal_of(call->arguments[1 - side]);
    if (column.empty() || !value) continue;
    if (!value->is_valid) return of_kind(Kind::kNever);  // x = NULL is never true, nor its NOT
    const auto& compared = cast ? cast : schema.GetFieldByName(column)->type();
    if (!value->type->Equals(*compared)) return of_kind(Kind::kUnknown);  // Bind makes them equal
    CompareOp o = side == 0 ? *op : flipped(*op);
    // NaN orders against nothing: NaN < v is false, so NOT (x < v) keeps NaN rows, which no
    // bound holds (stats never include NaN). The complement x >= v would drop them: unknown.
    const bool ordering = o == CompareOp::kLt || o == CompareOp::kLe || o == CompareOp::kGt || o == CompareOp::kGe;
    const bool floating = arrow::is_floating(schema.GetFieldByName(column)->type()->id()) ||
                          arrow::is_floating(compared->id());
    if (negate && ordering && floating) return of_kind(Kind::kUnknown);
    FilePredicate p = of_kind(Kind::kLeaf);
    p.leaf = {column, negate ? complement(o) : o, value};
    p.cast = cast;
    return p;
  }
  return of_kind(Kind::kUnknown);
}

// What a file's stats say about one column, as bounds of the compared values.
struct Bounds {
  std::shared_ptr<arrow::Scalar> min, max;  // null: unknown
  std::optional<int64_t> nulls;             // known exactly
  std::optional<int64_t> records;
};

bool bounds_may_match(const Bounds& b, const ColumnPredicate& p, bool floating) {
  const bool all_null = b.nulls && b.records && *b.nulls == *b.records;
  switch (p.op) {
    case CompareOp::kIsNull: return !b.nulls || *b.nulls > 0;
    case CompareOp::kIsNotNull: return !all_null;
    default: break;
  }
  if (all_null) return false;  // a comparison with NULL is never true
  // kUnknown: no usable bound, which excludes nothing.
  constexpr int kUnknown = 2;
  const int lo = b.min ? compare_scalars(*b.min, *p.value).value_or(kUnknown) : kUnknown;
  const int hi = b.max ? compare_scalars(*b.max, *p.value).value_or(kUnknown) : kUnknown;
  const bool lo_known = lo != kUnknown, hi_known = hi != kUnknown;
  switch (p.op) {
    case CompareOp::kEq: return !(lo_known && lo > 0) && !(hi_known && hi < 0);
    // Every value equals v only when min = max = v; NaN is in no float bound, and NaN <> v.
    case CompareOp::kNe: return floating || !(lo == 0 && hi == 0);
    case CompareOp::kLt: return !(lo_known && lo >= 0);
    case CompareOp::kLe: return !(lo_known && lo > 0);
    case CompareOp::kGt: return !(hi_known && hi <= 0);
    case CompareOp::kGe: return !(hi_known && hi < 0);
    default: return true;
  }
}

// A bound from the stats JSON as a scalar of `type`, or null.
std::shared_ptr<arrow::Scalar> stats_bound(const nlohmann::json& stats, const char* kind, const std::string& column,
                                           const std::shared_ptr<arrow::DataType>& type) {
  // Decimal bounds are not trusted: delta-rs writes them through a double (rounded either way),
  // and JSON parsers read them as doubles; row groups are still judged by Parquet's exact stats.
  if (arrow::is_decimal(type->id())) return nullptr;
  auto group = stats.find(kind);
  if (group == stats.end() || !group->is_object()) return nullptr;
  auto v = group->find(column);
  if (v == group->end() || v->is_null() || v->is_object() || v->is_array()) return nullptr;
  std::string text = v->is_string() ? v->get<std::string>() : v->dump();
  arrow::Result<std::shared_ptr<arrow::Scalar>> parsed =
      type->id() == arrow::Type::TIMESTAMP ? parse_partition_value(text, type) : arrow::Scalar::Parse(type, text);
  if (!parsed.ok() || !(*parsed)->is_valid) return nullptr;
  return *parsed;
}

// Spark writes timestamp bounds in milliseconds, cut (not rounded outward); the values have
// microseconds. delta-spark 3.2/3.3 also wrote a bound's zone offset cut to whole minutes
// (delta-io/delta#5249, #5512), moving it by up to 59 s. Widened by 59 s + 1 ms each way.
std::shared_ptr<arrow::Scalar> widened(const std::shared_ptr<arrow::Scalar>& bound, int direction) {
  if (!bound || bound->type->id() != arrow::Type::TIMESTAMP) return bound;
  const auto& ts = static_cast<const arrow::TimestampScalar&>(*bound);
  const auto unit = static_cast<const arrow::TimestampType&>(*bound->type).unit();
  const int64_t ms = unit == arrow::TimeUnit::NANO ? 1'000'000 : unit == arrow::TimeUnit::MICRO ? 1'000
                     : unit == arrow::TimeUnit::MILLI ? 1 : 0;
  if (ms == 0) return nullptr;  // seconds: no bound (no writer cuts to seconds; unknown is safe)
  constexpr int64_t kWidenMillis = 59'000 + 1;
  int64_t v = 0;
  if (__builtin_add_overflow(ts.value, direction * kWidenMillis * ms, &v)) return nullptr;
  return std::make_shared<arrow::TimestampScalar>(v, bound->type);
}

// Bounds of one column in one row group, from its chunk statistics; nullopt: unknown. A column
// the file lacks (older schema) is all null there, but unknown keeps it simply.
std::optional<Bounds> row_group_bounds(const parquet::RowGroupMetaData& rg, const std::string& column,
                                       const std::shared_ptr<arrow::DataType>& type) {
  const auto* schema = rg.schema();
  const int index = schema->ColumnIndex(column);
  if (index < 0 || schema->Column(index)->path()->ToDotVector().size() != 1) return std::nullopt;
  auto chunk = rg.ColumnChunk(index);
  if (!chunk || !chunk->is_stats_set()) return std::nullopt;
  auto stats = chunk->statistics();
  if (!stats) return std::nullopt;
  Bounds b;
  b.records = rg.num_rows();
  if (stats->HasNullCount()) b.nulls = stats->null_count();
  if (stats->HasMinMax()) {
    std::shared_ptr<arrow::Scalar> min, max;
    if (parquet::arrow::StatisticsAsScalars(*stats, &min, &max).ok()) {
      b.min = converted(min, type);
      b.max = converted(max, type);
    }
  }
  return b;
}

// Judges one file (by its add action's partition values and stats) or one of its row groups
// (`row_group` set: by the row group's statistics instead of the stats JSON).
class FileJudge {
 public:
  FileJudge(const arrow::Schema& schema, const std::vector<std::string>& partitions, const Add& file,
            const parquet::RowGroupMetaData* row_group = nullptr)
      : schema_(schema), partitions_(partitions), file_(file), row_group_(row_group) {}

  arrow::Result<bool> may_match(const FilePredicate& p) {
    switch (p.kind) {
      case FilePredicate::Kind::kUnknown: return true;
      case FilePredicate::Kind::kNever: return false;
      case FilePredicate::Kind::kAnd:
        for (const auto& c : p.children) {
          ARROW_ASSIGN_OR_RAISE(bool m, may_match(c));
          if (!m) return false;
        }
        return true;
      case FilePredicate::Kind::kOr:
        for (const auto& c : p.children) {
          ARROW_ASSIGN_OR_RAISE(bool m, may_match(c));
          if (m) return true;
        }
        return false;
      case FilePredicate::Kind::kLeaf: return leaf_may_match(p);
    }
    return true;
  }

 private:
  arrow::Result<bool> leaf_may_match(const FilePredicate& p) {
    const auto& column = p.leaf.column;
    auto field = schema_.GetFieldByName(column);
    if (!field) return invalid("no column '{}' in the table", column);
    const bool floating = arrow::is_floating(field->type()->id()) ||
                          (p.cast && arrow::is_floating(p.cast->id()));
    Bounds b;
    if (std::find(partitions_.begin(), partitions_.end(), column) != partitions_.end()) {
      auto it = file_.partition_values.find(column);
      std::optional<std::string> text = it == file_.partition_values.end() ? std::nullopt : it->second;
      ARROW_ASSIGN_OR_RAISE(auto value, parse_partition_value(text, field->type()));
      b.records = 1;
      b.nulls = value->is_valid ? 0 : 1;
      if (value->is_valid) {
        b.min = b.max = converted(value, p.cast);
        if (!b.min) return true;  // does not convert: the row filter decides
      }
      return bounds_may_match(b, p.leaf, floating);
    }
    if (row_group_) {
      auto bounds = row_group_bounds(*row_group_, column, field->type());
      if (!bounds) return true;
      bounds->min = converted(bounds->min, p.cast);
      bounds->max = converted(bounds->max, p.cast);
      return bounds_may_match(*bounds, p.leaf, floating);
    }
    if (!file_.stats) return true;
    if (!parsed_) {
      stats_ = nlohmann::json::parse(*file_.stats, nullptr, false);
      parsed_ = true;
    }
    if (!stats_.is_object()) return true;  // stats we cannot read exclude nothing
    // With a deletion vector (tightBounds false) min/max still bound the live rows, but
    // numRecords and nullCount count rows that are gone: they are not used.
    auto tight = stats_.find("tightBounds");
    const bool loose = file_.deletion_vector || (tight != stats_.end() && tight->is_boolean() && !tight->get<bool>());
    if (!loose) {
      auto records = stats_.find("numRecords");
      if (records != stats_.end() && records->is_number_integer()) b.records = records->get<int64_t>();
      auto nulls = stats_.find("nullCount");
      if (nulls != stats_.end() && nulls->is_object()) {
        auto n = nulls->find(column);
        if (n != nulls->end() && n->is_number_integer()) b.nulls = n->get<int64_t>();
      }
    }
    b.min = converted(widened(stats_bound(stats_, "minValues", column, field->type()), -1), p.cast);
    b.max = converted(widened(stats_bound(stats_, "maxValues", column, field->type()), +1), p.cast);
    return bounds_may_match(b, p.leaf, floating);
  }

  const arrow::Schema& schema_;
  const std::vector<std::string>& partitions_;
  const Add& file_;
  const parquet::RowGroupMetaData* row_group_;
  nlohmann::json stats_;
  bool parsed_ = false;
};

const char* op_text(CompareOp op) {
  static const char* kText[] = {"=", "<", "<=", ">", ">=", "IS NULL", "IS NOT NULL", "<>"};
  return kText[static_cast<int>(op)];
}

}  // namespace

FilePredicate FilePredicate::all_of(const std::vector<ColumnPredicate>& predicates) {
  FilePredicate p = of_kind(Kind::kAnd);
  for (const auto& c : predicates) {
    FilePredicate leaf = of_kind(Kind::kLeaf);
    leaf.leaf = c;
    p.children.push_back(std::move(leaf));
  }
  return p;
}

bool FilePredicate::can_skip() const {
  switch (kind) {
    case Kind::kUnknown: return false;
    case Kind::kNever:
    case Kind::kLeaf: return true;
    case Kind::kAnd:
      return std::any_of(children.begin(), children.end(), [](const FilePredicate& c) { return c.can_skip(); });
    case Kind::kOr:
      return !children.empty() &&
             std::all_of(children.begin(), children.end(), [](const FilePredicate& c) { return c.can_skip(); });
  }
  return false;
}

std::string FilePredicate::ToString() const {
  switch (kind) {
    case Kind::kUnknown: return "unknown";
    case Kind::kNever: return "never";
    case Kind::kLeaf: {
      std::string column = cast ? fmt::format("CAST({} AS {})", leaf.column, cast->ToString()) : leaf.column;
      if (!leaf.value) return fmt::format("{} {}", column, op_text(leaf.op));
      return fmt::format("{} {} {}", column, op_text(leaf.op), leaf.value->ToString());
    }
    case Kind::kAnd:
    case Kind::kOr: {
      std::vector<std::string> parts;
      for (const auto& c : children) parts.push_back(c.ToString());
      return fmt::format("({})", fmt::join(parts, kind == Kind::kAnd ? " AND " : " OR "));
    }
  }
  return "";
}

FilePredicate skipping_predicate(const cp::Expression& filter, const arrow::Schema& schema) {
  // Folded first: a cast of a literal (CAST('2024-01-01' AS DATE)) becomes the literal.
  auto folded = cp::FoldConstants(filter);
  return build_tree(folded.ok() ? *folded : filter, schema, false);
}

arrow::Result<std::vector<Add>> select_files_among(const Snapshot& snapshot, const FilePredicate& predicate,
                                                   const std::vector<Add>& files) {
  if (!predicate.can_skip()) return files;
  std::vector<Add> out;
  for (const auto& file : files) {
    FileJudge judge(*snapshot.schema(), snapshot.metadata().partition_columns, file);
    auto keep = judge.may_match(predicate);
    if (!keep.ok()) {
      return invalid("table {}: {}", snapshot.metadata().name.value_or(""), keep.status().message());
    }
    if (*keep) out.push_back(file);
  }
  return out;
}

std::vector<int> select_row_groups(const arrow::Schema& schema, const std::vector<std::string>& partition_columns,
                                   const Add& file, const parquet::FileMetaData& metadata,
                                   const FilePredicate& predicate) {
  std::vector<int> out;
  for (int i = 0; i < metadata.num_row_groups(); ++i) {
    if (predicate.can_skip()) {
      // Parquet's metadata accessors throw on a malformed footer (a min/max stat that does not
      // decode): the row group is kept and the read reports the file's error, if any.
      try {
        auto rg = metadata.RowGroup(i);
        FileJudge judge(schema, partition_columns, file, rg.get());
        auto keep = judge.may_match(predicate);
        if (keep.ok() && !*keep) continue;  // an error keeps the row group: the rows decide
      } catch (const std::exception&) {
      }
    }
    out.push_back(i);
  }
  return out;
}

}  // namespace sluice::delta
