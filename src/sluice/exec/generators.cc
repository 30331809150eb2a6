// Generators: binding, LATERAL VIEW planning and expansion (generators.h).
#include "sluice/exec/generators.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <map>
#include <optional>

#include "sluice/common/text.h"
#include "sluice/exec/select_plan.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

using sql::Expr;
using sql::ExprKind;

namespace {

// The names a SELECT's expressions may read (every part of a column reference, lower-cased), so
// that a LATERAL VIEW stage carries only those FROM columns: copying an exploded array once per
// element made one 5,000-element record a 2.5 GB batch. false: a * or a subquery (reads all).
bool collect_column_names(const Expr& e, std::set<std::string>& names) {
  if (e.kind == ExprKind::kStar || e.query) return false;
  if (e.kind == ExprKind::kColumn) {
    for (const auto& p : e.parts) names.insert(to_lower(p));
  }
  bool all = true;
  for (const auto& a : e.args) {
    if (a && !collect_column_names(*a, names)) all = false;
  }
  return all;
}

// The column references (kColumn) in e, outside subqueries.
void collect_columns(const Expr& e, std::vector<const Expr*>& out) {
  if (e.kind == ExprKind::kColumn) out.push_back(&e);
  for (const auto& a : e.args) {
    if (a) collect_columns(*a, out);
  }
}

std::optional<std::set<std::string>> columns_read_after_from(const sql::Select& s) {
  std::set<std::string> names;
  auto add = [&](const sql::ExprPtr& e) { return !e || collect_column_names(*e, names); };
  bool ok = add(s.where) && add(s.having);
  for (const auto& item : s.items) ok = ok && add(item.expr);
  for (const auto& e : s.group_by) ok = ok && add(e);
  for (const auto& e : s.distinct_on) ok = ok && add(e);
  if (!ok) return std::nullopt;
  return names;
}

// A reference to column `name` (generated: no qualifier).
sql::ExprPtr column_ref(const std::string& name, sql::Location loc) {
  auto c = std::make_unique<Expr>();
  c->kind = ExprKind::kColumn;
  c->loc = loc;
  c->parts = {name};
  return c;
}

// explode, posexplode, inline and their _outer forms: what each generates.
struct GeneratorKind {
  GeneratorSpec::Kind kind;
  bool outer;
};

std::optional<GeneratorKind> generator_kind(const Expr& e) {
  if (e.kind != ExprKind::kFunction) return std::nullopt;
  using K = GeneratorSpec::Kind;
  static const std::map<std::string, GeneratorKind> kKinds = {
      {"explode", {K::kExplode, false}},       {"explode_outer", {K::kExplode, true}},
      {"posexplode", {K::kPosExplode, false}}, {"posexplode_outer", {K::kPosExplode, true}},
      {"inline", {K::kInline, false}},         {"inline_outer", {K::kInline, true}}};
  auto it = kKinds.find(to_lower(e.name));
  if (it == kKinds.end()) return std::nullopt;
  return it->second;
}


// Bytes one copied column may take in a generator's output batch (Arrow's 32-bit offsets
// overflow at 2 GiB).
constexpr int64_t kMaxGeneratedColumnBytes = int64_t{1} << 30;

// The rows a generator makes from row i of `list` (0 for a NULL or empty one; 1 when outer).
int64_t list_array_length(const arrow::ListArray& list, int64_t i, bool outer) {
  const int64_t n = list.IsNull(i) ? 0 : list.value_length(i);
  return n == 0 && outer ? 1 : n;
}

}  // namespace

bool is_generator_call(const Expr& e) { return generator_kind(e).has_value(); }

arrow::Result<BoundGenerator> bind_generator(const Expr& call, bool outer, const std::vector<std::string>& names,
                                             const ExpressionBinder& binder, const sql::SourceFile& file) {
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  const GeneratorKind kind = *generator_kind(call);
  const std::string name = to_lower(call.name);
  if (call.args.size() != 1 || call.args[0]->kind == ExprKind::kNamedArg || call.args[0]->kind == ExprKind::kStar ||
      call.distinct) {
    return fail(call.loc, fmt::format("{} takes one argument (an ARRAY{})", name,
                                      kind.kind == GeneratorSpec::Kind::kInline ? " of STRUCTs" : " or a MAP"));
  }
  BoundGenerator g;
  ARROW_ASSIGN_OR_RAISE(g.argument, binder.bind(*call.args[0]));
  g.spec.kind = kind.kind;
  g.spec.outer = outer || kind.outer;
  const arrow::DataType& t = *g.argument.type;
  arrow::FieldVector columns;
  if (kind.kind == GeneratorSpec::Kind::kPosExplode) columns.push_back(arrow::field("pos", arrow::int32()));
  if (t.id() == arrow::Type::MAP && kind.kind != GeneratorSpec::Kind::kInline) {
    const auto& map = static_cast<const arrow::MapType&>(t);
    g.spec.map = true;
    columns.push_back(arrow::field("key", map.key_type()));
    columns.push_back(arrow::field("value", map.item_type()));
  } else if (t.id() == arrow::Type::LIST && kind.kind != GeneratorSpec::Kind::kInline) {
    columns.push_back(arrow::field("col", static_cast<const arrow::ListType&>(t).value_type()));
  } else if (t.id() == arrow::Type::LIST &&
             static_cast<const arrow::ListType&>(t).value_type()->id() == arrow::Type::STRUCT) {
    for (const auto& f : static_cast<const arrow::ListType&>(t).value_type()->fields()) {
      columns.push_back(arrow::field(f->name(), f->type()));
    }
  } else {
    return fail(call.args[0]->loc, fmt::format("{} needs an ARRAY{}, not {}", name,
                                               kind.kind == GeneratorSpec::Kind::kInline ? " of STRUCTs" : " or a MAP",
                                               sql::sql_type_name(t)));
  }
  if (!names.empty() && names.size() != columns.size()) {
    std::string defaults;
    for (const auto& c : columns) defaults += (defaults.empty() ? "" : ", ") + c->name();
    return fail(call.loc, fmt::format("{} gives {} column{} ({}) but AS names {}: name each of them, as Spark requires",
                                      name, columns.size(), columns.size() == 1 ? "" : "s", defaults, names.size()));
  }
  for (size_t c = 0; c < columns.size(); ++c) {
    g.fields.push_back(names.empty() ? columns[c] : columns[c]->WithName(names[c]));
  }
  g.spec.width = g.fields.size();
  return g;
}

// Kept out of make_select's frame (select_plan.cc): see generators.h.
[[gnu::noinline]] arrow::Status plan_lateral_views(const sql::Select& s, const sql::SourceFile& file,
                                                   std::shared_ptr<arrow::Schema>& schema,
                                                   std::set<std::string>& qualifiers, std::vector<Stage>& stages) {
  auto read_after_from = columns_read_after_from(s);
  if (read_after_from && s.from && s.from->watermark &&
      !collect_column_names(*s.from->watermark->column, *read_after_from)) {
    read_after_from.reset();
  }
  auto fail = [&](sql::Location at, const std::string& message) {
    return arrow::Status::Invalid(sql::format_error(file, at, message));
  };
  for (size_t view_index = 0; view_index < s.lateral_views.size(); ++view_index) {
    const auto& view = s.lateral_views[view_index];
    // The columns read after this view: the SELECT's and the later views' arguments (not its own).
    auto read_after_view = read_after_from;
    for (size_t later = view_index + 1; read_after_view && later < s.lateral_views.size(); ++later) {
      if (!collect_column_names(*s.lateral_views[later].generator, *read_after_view)) read_after_view.reset();
    }
    // FROM t LATERAL VIEW g(x) v AS c: a stage of t's columns then g's, run before WHERE (which
    // may read c).
    if (!is_generator_call(*view.generator)) {
      return fail(view.generator->loc,
                  fmt::format("LATERAL VIEW takes a generator (explode, explode_outer, posexplode, posexplode_outer, "
                              "inline, inline_outer), not {}",
                              view.generator->name));
    }
    ExpressionBinder view_binder(file, schema, qualifiers);
    ARROW_ASSIGN_OR_RAISE(auto g, bind_generator(*view.generator, view.outer, view.columns, view_binder, file));
    Stage stage;
    arrow::FieldVector fields;
    for (const auto& f : g.fields) {
      for (const auto& existing : schema->fields()) {
        if (to_lower(existing->name()) == to_lower(f->name())) {
          return fail(view.loc, fmt::format("LATERAL VIEW column '{}' has the name of a column it is joined to "
                                            "('{}'; names are compared ignoring case), which sluice does not tell "
                                            "apart: name it otherwise (... AS other_name)",
                                            f->name(), existing->name()));
        }
      }
    }
    // Only the FROM columns a later clause reads go through the expansion (each is copied once
    // per generated row).
    for (const auto& f : schema->fields()) {
      if (read_after_view && !read_after_view->count(to_lower(f->name()))) continue;
      ARROW_ASSIGN_OR_RAISE(auto b, view_binder.bind(*column_ref(f->name(), view.loc)));
      stage.projections.push_back(std::move(b));
      fields.push_back(f);
    }
    g.spec.argument = stage.projections.size();
    stage.projections.push_back(std::move(g.argument));
    for (const auto& f : g.fields) fields.push_back(f);
    stage.generator = g.spec;
    // v.x names a column of the view v only (the binder treats qualifiers loosely: v.id would
    // read t.id).
    if (!view.table_alias.empty()) {
      std::vector<const Expr*> refs;
      for (const auto& item : s.items) collect_columns(*item.expr, refs);
      for (const auto* e : {s.where.get(), s.having.get()}) {
        if (e) collect_columns(*e, refs);
      }
      for (const auto& e : s.group_by) collect_columns(*e, refs);
      for (const auto& v : s.lateral_views) collect_columns(*v.generator, refs);
      for (const auto* ref : refs) {
        if (ref->parts.size() < 2 || to_lower(ref->parts[0]) != to_lower(view.table_alias)) continue;
        bool found = false;
        for (const auto& f : g.fields) found = found || to_lower(f->name()) == to_lower(ref->parts[1]);
        if (!found) {
          std::string names;
          for (const auto& f : g.fields) names += (names.empty() ? "" : ", ") + f->name();
          return fail(ref->loc, fmt::format("LATERAL VIEW {} has no column '{}' (its columns: {})", view.table_alias,
                                            ref->parts[1], names));
        }
      }
    }
    stage.output = arrow::schema(fields);
    schema = stage.output;
    stages.push_back(std::move(stage));
    if (!view.table_alias.empty()) qualifiers.insert(view.table_alias);
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> expand_generator(const GeneratorSpec& generator,
                                                                    const std::shared_ptr<arrow::Schema>& output,
                                                                    const arrow::ArrayVector& columns, int64_t rows,
                                                                    std::shared_ptr<arrow::Array>* row_ids) {
  const auto& argument = columns[generator.argument];
  if (argument->type_id() != arrow::Type::LIST && argument->type_id() != arrow::Type::MAP) {
    return arrow::Status::TypeError("a generator needs an ARRAY or MAP, not ", argument->type()->ToString());
  }
  // MapArray is a ListArray of struct<key, value>: both read through the list's offsets.
  const auto& list = static_cast<const arrow::ListArray&>(*argument);
  int64_t total = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t n = list.IsNull(i) ? 0 : list.value_length(i);
    total += n == 0 && generator.outer ? 1 : n;
  }
  arrow::Int64Builder parents, elements;
  arrow::Int32Builder positions;
  ARROW_RETURN_NOT_OK(parents.Reserve(total));
  ARROW_RETURN_NOT_OK(elements.Reserve(total));
  ARROW_RETURN_NOT_OK(positions.Reserve(total));
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t n = list.IsNull(i) ? 0 : list.value_length(i);
    if (n == 0 && generator.outer) {
      parents.UnsafeAppend(i);
      elements.UnsafeAppendNull();
      positions.UnsafeAppendNull();
      continue;
    }
    const int64_t first = list.value_offset(i);
    for (int32_t j = 0; j < n; ++j) {
      parents.UnsafeAppend(i);
      elements.UnsafeAppend(first + j);
      positions.UnsafeAppend(j);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto parent_rows, parents.Finish());
  ARROW_ASSIGN_OR_RAISE(auto element_rows, elements.Finish());
  arrow::ArrayVector generated;
  if (generator.kind == GeneratorSpec::Kind::kPosExplode) {
    ARROW_ASSIGN_OR_RAISE(auto pos, positions.Finish());
    generated.push_back(std::move(pos));
  }
  auto take_elements = [&](const std::shared_ptr<arrow::Array>& values) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(values, element_rows));  // a NULL index: a NULL
    generated.push_back(taken.make_array());
    return arrow::Status::OK();
  };
  if (generator.map || generator.kind == GeneratorSpec::Kind::kInline) {
    // A map's key and value, or an inlined struct's fields (a NULL struct: NULLs, as in Spark).
    const auto& entries = static_cast<const arrow::StructArray&>(*list.values());
    for (int f = 0; f < entries.num_fields(); ++f) {
      ARROW_ASSIGN_OR_RAISE(auto field, entries.GetFlattenedField(f));
      ARROW_RETURN_NOT_OK(take_elements(field));
    }
  } else {
    ARROW_RETURN_NOT_OK(take_elements(list.values()));
  }
  if (generated.size() != generator.width) {
    return arrow::Status::Invalid("a generator gave ", generated.size(), " columns where its plan has ", generator.width);
  }
  // Every copied column's value is repeated once per generated row: a bound on the bytes that
  // makes, so that a huge record is refused with its reason, not a Take overflow after gigabytes.
  for (size_t c = 0; c < columns.size(); ++c) {
    if (c == generator.argument) continue;
    const auto& col = *columns[c];
    const bool binary = col.type_id() == arrow::Type::STRING || col.type_id() == arrow::Type::BINARY;
    const bool nested = col.type_id() == arrow::Type::LIST || col.type_id() == arrow::Type::MAP;
    if (!binary && !nested) continue;
    // A list's bytes: its share of its values' buffers (an estimate).
    double per_element = 0;
    if (nested) {
      const auto& values = *static_cast<const arrow::ListArray&>(col).values();
      per_element = values.length() > 0
                        ? static_cast<double>(arrow::util::TotalBufferSize(*values.data())) / values.length()
                        : 0;
    }
    double bytes = 0;
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t n = list_array_length(list, i, generator.outer);
      if (n == 0 || col.IsNull(i)) continue;
      const double size = binary ? static_cast<const arrow::BinaryArray&>(col).value_length(i)
                                 : per_element * static_cast<const arrow::ListArray&>(col).value_length(i);
      bytes += size * static_cast<double>(n);
    }
    if (bytes > static_cast<double>(kMaxGeneratedColumnBytes)) {
      const size_t position = c < generator.argument ? c : c + generator.width - 1;
      return arrow::Status::CapacityError(
          "a generator would copy column '", output->field(static_cast<int>(position))->name(), "' once per generated row (",
          static_cast<int64_t>(bytes / (1 << 20)), " MiB in this batch), more than sluice's bound of ",
          kMaxGeneratedColumnBytes >> 20, " MiB: select fewer or smaller columns beside the generator");
    }
  }
  arrow::ArrayVector out;
  for (size_t c = 0; c < columns.size(); ++c) {
    if (c == generator.argument) {
      out.insert(out.end(), generated.begin(), generated.end());
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(columns[c], parent_rows));
    out.push_back(taken.make_array());
  }
  if (row_ids && *row_ids) {
    ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(*row_ids, parent_rows));
    *row_ids = taken.make_array();
  }
  return arrow::RecordBatch::Make(output, total, std::move(out));
}


}  // namespace sluice::exec
