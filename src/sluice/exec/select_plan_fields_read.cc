// Which source fields a plan reads, nested struct fields included
// (SelectPlan::source_fields_read, select_plan.h): the row stages walked from the last to the
// first, each output column's use carried to the input paths its expression reads.
#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <optional>
#include <vector>

#include "sluice/exec/select_plan.h"

namespace sluice::exec {

namespace {

namespace cp = arrow::compute;
using format::FieldSelection;

// The input path `e` is (a column, or struct fields of one: s.a.b), or nothing when `e`
// computes something else.
std::optional<std::vector<int>> path_of(const cp::Expression& e) {
  if (const auto* p = e.parameter()) {
    if (p->indices.empty()) return std::nullopt;
    return std::vector<int>(p->indices.begin(), p->indices.end());
  }
  const auto* call = e.call();
  if (!call || call->function_name != "struct_field" || call->arguments.size() != 1) return std::nullopt;
  auto base = path_of(call->arguments[0]);
  const auto* options = static_cast<const cp::StructFieldOptions*>(call->options.get());
  const auto* path = options ? options->field_ref.field_path() : nullptr;
  if (!base || !path || path->indices().empty()) return std::nullopt;
  base->insert(base->end(), path->indices().begin(), path->indices().end());
  return base;
}

// The selection at `path` of `input` (created as needed), or null when the path does not
// lead through struct fields of `input`.
FieldSelection* at(FieldSelection& input, const arrow::Schema& schema, const std::vector<int>& path) {
  FieldSelection* node = &input;
  const arrow::FieldVector* fields = &schema.fields();
  for (size_t k = 0; k < path.size(); ++k) {
    if (!fields || path[k] < 0 || path[k] >= static_cast<int>(fields->size())) return nullptr;
    node = &node->child(path[k], *fields);
    const auto& type = (*fields)[path[k]]->type();
    fields = type->id() == arrow::Type::STRUCT ? &type->fields() : nullptr;
    if (k + 1 < path.size() && !fields) return nullptr;
  }
  return node;
}

// Marks in `input` what `e` reads, each path read whole; false when it cannot tell.
bool mark_reads(const cp::Expression& e, const arrow::Schema& schema, FieldSelection& input) {
  if (e.literal()) return true;
  if (auto path = path_of(e)) {
    auto* node = at(input, schema, *path);
    if (!node) return false;
    node->merge(FieldSelection::whole());
    return true;
  }
  if (e.parameter()) return false;  // unbound: no path
  const auto* call = e.call();
  if (!call) return false;
  for (const auto& a : call->arguments) {
    if (!mark_reads(a, schema, input)) return false;
  }
  return true;
}

}  // namespace

format::FieldSelection SelectPlan::source_fields_read() const {
  // A join or union reads sources through plans of their own; read all of this one.
  if (join_ || !union_.empty() || !source_.schema || stages_.empty()) return FieldSelection::whole();
  const size_t row_stages = stages_.size() - (aggregate_ ? 1 : 0);
  // Whatever follows the row stages (sink, aggregate, windows, expectations) reads all of them.
  FieldSelection used = FieldSelection::whole();
  for (size_t s = row_stages; s-- > 0;) {
    const auto& stage = stages_[s];
    const auto& input = s == 0 ? source_.schema : stages_[s - 1].output;
    FieldSelection read;
    read.use = FieldSelection::Use::kSome;
    read.fields.assign(input->num_fields(), FieldSelection{});
    if (stage.where && !mark_reads(stage.where->expr, *input, read)) return FieldSelection::whole();
    const FieldSelection whole = FieldSelection::whole();
    for (size_t c = 0; c < stage.projections.size(); ++c) {
      // A generator's argument is read whole: its elements' count makes the rows.
      const size_t g = stage.generator ? stage.generator->argument : SIZE_MAX;
      const size_t o = c <= g ? c : c + stage.generator->width - 1;  // its output column
      const FieldSelection& out = c == g ? whole : used.use == FieldSelection::Use::kSome ? used.fields[o] : used;
      if (!out.read()) continue;
      const auto& expr = stage.projections[c].expr;
      auto path = path_of(expr);
      FieldSelection* node = path ? at(read, *input, *path) : nullptr;
      if (node) {
        node->merge(out);  // s.a AS x: what is read of x is read of s.a
      } else if (!mark_reads(expr, *input, read)) {
        return FieldSelection::whole();
      }
    }
    used = std::move(read);
  }
  return used;
}

}  // namespace sluice::exec
