// Which source columns each output column of a plan reads (SelectPlan::lineage, select_plan.h).
#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "sluice/common/status.h"
#include "sluice/exec/select_plan.h"
#include "sluice/exec/select_plan_join_spec.h"

namespace sluice::exec {

namespace {

// Names of the input fields an expression reads, by position in `input`.
std::set<int> fields_read(const cp::Expression& expr, const arrow::Schema& input) {
  std::set<int> out;
  for (const auto& ref : cp::FieldsInExpression(expr)) {
    if (const auto* path = ref.field_path()) {
      if (!path->indices().empty()) out.insert(path->indices()[0]);
    } else if (const auto* name = ref.name()) {
      int i = input.GetFieldIndex(*name);
      if (i >= 0) out.insert(i);
    } else if (const auto* nested = ref.nested_refs(); nested && !nested->empty() && (*nested)[0].name()) {
      int i = input.GetFieldIndex(*(*nested)[0].name());  // s.field reads column s
      if (i >= 0) out.insert(i);
    }
  }
  return out;
}

using Derivations = std::map<std::string, SelectPlan::Derivation>;

// A digest keeps nothing of its input a reader could use (md5, sha2, xxhash64).
bool is_digest_call(const cp::Expression::Call& call) {
  const std::string& name = call.function ? call.function->name() : call.function_name;
  return name.rfind("sluice_md5", 0) == 0 || name.rfind("sluice_sha2", 0) == 0 || name == "sluice_xxhash64";
}

// For each input field `expr` reads: whether some read is outside every digest call.
void field_reads(const cp::Expression& expr, const arrow::Schema& input, bool inside_digest,
                 std::map<int, bool>& plain) {
  if (const auto* call = expr.call()) {
    const bool digest = inside_digest || is_digest_call(*call);
    for (const auto& arg : call->arguments) field_reads(arg, input, digest, plain);
    return;
  }
  for (int i : fields_read(expr, input)) plain[i] = plain[i] || !inside_digest;
}

void keep_most(Derivations& into, const std::string& source, SelectPlan::Derivation d) {
  auto [it, fresh] = into.emplace(source, d);
  if (!fresh && d > it->second) it->second = d;
}

// The derivations of an expression's output over `current` (one entry per input column).
Derivations derive(const cp::Expression& expr, const arrow::Schema& input, const std::vector<Derivations>& current,
                   SelectPlan::Derivation at_most) {
  Derivations out;
  const bool bare = expr.field_ref() != nullptr;
  std::map<int, bool> plain;
  field_reads(expr, input, false, plain);
  for (const auto& [i, outside_digest] : plain) {
    if (i >= static_cast<int>(current.size())) continue;
    auto cap = !outside_digest ? SelectPlan::Derivation::kRemoved
               : bare          ? at_most
                               : std::min(at_most, SelectPlan::Derivation::kDerived);
    for (const auto& [source, d] : current[i]) keep_most(out, source, std::min(d, cap));
  }
  return out;
}

}  // namespace

std::vector<std::map<std::string, SelectPlan::Derivation>> SelectPlan::column_derivations() const {
  const auto& output = output_schema();
  std::vector<Derivations> out(output->num_fields());
  if (!union_.empty()) {
    for (const auto& branch : union_) {
      auto b = branch.column_derivations();
      for (size_t i = 0; i < out.size() && i < b.size(); ++i) {
        for (const auto& [source, d] : b[i]) keep_most(out[i], source, d);
      }
    }
    return out;
  }
  std::vector<Derivations> current;
  size_t first_stage = 0;
  if (join_) {
    current = join_->left->column_derivations();
    auto right = join_->right->column_derivations();
    current.insert(current.end(), right.begin(), right.end());
    first_stage = 1;
    if (!stages_.empty()) current.resize(stages_[0].output->num_fields());
  } else {
    const std::string prefix = source_.kind == PlanSource::Kind::kKafka ? "kafka:" + source_.name : source_.name;
    for (const auto& f : source_.schema->fields()) current.push_back({{prefix + "." + f->name(), Derivation::kDirect}});
  }
  const size_t row_stages = stages_.size() - (aggregate_ ? 1 : 0);
  std::shared_ptr<arrow::Schema> input = join_ ? stages_[0].output : source_.schema;
  for (size_t s = first_stage; s < row_stages; ++s) {
    std::vector<Derivations> next;
    for (const auto& p : stages_[s].projections) next.push_back(derive(p.expr, *input, current, Derivation::kDirect));
    next = stages_[s].per_output_column(std::move(next));
    for (size_t c = 0; c < next.size(); ++c) {
      if (!stages_[s].generated(c)) continue;
      for (auto& [name, how] : next[c]) how = std::min(how, Derivation::kDerived);  // an element, not the array
    }
    current = std::move(next);
    input = stages_[s].output;
  }
  if (!aggregate_) return current.size() == out.size() ? current : out;
  std::vector<Derivations> grouped;
  for (const auto& k : aggregate_->key_inputs) grouped.push_back(derive(k.expr, *input, current, Derivation::kDirect));
  for (size_t a = 0; a < aggregate_->aggregate_inputs.size(); ++a) {
    const auto& fn = aggregate_->functions[a];
    if (fn == "hash_count_all") {
      grouped.emplace_back();
      continue;
    }
    // A count keeps only how many; any other aggregate computes a value from the values.
    const bool counts = fn == "hash_count" || fn == "hash_count_distinct";
    grouped.push_back(derive(aggregate_->aggregate_inputs[a].expr, *input, current,
                             counts ? Derivation::kRemoved : Derivation::kDerived));
  }
  for (size_t o = 0; o < aggregate_->outputs.size() && o < out.size(); ++o) {
    out[o] = derive(aggregate_->outputs[o].expr, *aggregate_->grouped_schema, grouped, Derivation::kDirect);
  }
  return out;
}

std::vector<std::set<std::string>> SelectPlan::lineage() const {
  const auto& output = output_schema();
  std::vector<std::set<std::string>> out(output->num_fields());
  if (!union_.empty()) {
    for (const auto& branch : union_) {
      auto b = branch.lineage();
      for (size_t i = 0; i < out.size() && i < b.size(); ++i) out[i].insert(b[i].begin(), b[i].end());
    }
    return out;
  }
  // The source's columns, as names.
  std::vector<std::set<std::string>> current;
  size_t first_stage = 0;
  if (join_) {
    auto left = join_->left->lineage();
    auto right = join_->right->lineage();
    current = left;
    current.insert(current.end(), right.begin(), right.end());
    first_stage = 1;  // the join's identity stage over left + right
    if (!stages_.empty()) {
      current.resize(stages_[0].output->num_fields());
    }
  } else {
    const std::string prefix = source_.kind == PlanSource::Kind::kKafka ? "kafka:" + source_.name : source_.name;
    for (const auto& f : source_.schema->fields()) current.push_back({prefix + "." + f->name()});
  }
  // Follow each stage: an output column comes from the input columns its expression reads.
  const size_t row_stages = stages_.size() - (aggregate_ ? 1 : 0);
  std::shared_ptr<arrow::Schema> input = join_ ? stages_[0].output : source_.schema;
  for (size_t s = first_stage; s < row_stages; ++s) {
    std::vector<std::set<std::string>> next;
    for (const auto& p : stages_[s].projections) {
      std::set<std::string> sources;
      for (int i : fields_read(p.expr, *input)) {
        if (i < static_cast<int>(current.size())) sources.insert(current[i].begin(), current[i].end());
      }
      next.push_back(std::move(sources));
    }
    current = stages_[s].per_output_column(std::move(next));
    input = stages_[s].output;
  }
  if (!aggregate_) return current.size() == out.size() ? current : out;
  // Grouped: keys and aggregate inputs read the last row stage; outputs read keys/aggregates.
  std::vector<std::set<std::string>> grouped;
  for (const auto& k : aggregate_->key_inputs) {
    std::set<std::string> sources;
    for (int i : fields_read(k.expr, *input)) sources.insert(current[i].begin(), current[i].end());
    grouped.push_back(std::move(sources));
  }
  for (size_t a = 0; a < aggregate_->aggregate_inputs.size(); ++a) {
    std::set<std::string> sources;
    if (aggregate_->functions[a] != "hash_count_all") {  // count(*) reads no column
      for (int i : fields_read(aggregate_->aggregate_inputs[a].expr, *input)) {
        sources.insert(current[i].begin(), current[i].end());
      }
    }
    grouped.push_back(std::move(sources));
  }
  for (size_t o = 0; o < aggregate_->outputs.size() && o < out.size(); ++o) {
    for (int i : fields_read(aggregate_->outputs[o].expr, *aggregate_->grouped_schema)) {
      if (i < static_cast<int>(grouped.size())) out[o].insert(grouped[i].begin(), grouped[i].end());
    }
  }
  return out;
}


}  // namespace sluice::exec
