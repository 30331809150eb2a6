// Partial aggregates per group in a persistent hash table (see partial_groups.h).
#include "sluice/exec/partial_groups.h"

#include <arrow/api.h>
#include <arrow/compute/exec.h>
#include <arrow/util/bit_util.h>

#include <cmath>
#include <string_view>
#include <type_traits>

#include "sluice/common/status.h"

namespace sluice::exec {

namespace {

enum class Kind { kCountAll, kCount, kSum, kMean, kMin, kMax, kFirst, kLast };

arrow::Result<Kind> kind_of(const std::string& function) {
  if (function == "hash_count_all") return Kind::kCountAll;
  if (function == "hash_count") return Kind::kCount;
  if (function == "hash_sum") return Kind::kSum;
  if (function == "hash_mean") return Kind::kMean;
  if (function == "hash_min") return Kind::kMin;
  if (function == "hash_max") return Kind::kMax;
  if (function == "hash_first") return Kind::kFirst;
  if (function == "hash_last") return Kind::kLast;
  return invalid("{} keeps no partial aggregate", function);
}

bool fixed_width_number(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::INT8: case arrow::Type::INT16: case arrow::Type::INT32: case arrow::Type::INT64:
    case arrow::Type::UINT8: case arrow::Type::UINT16: case arrow::Type::UINT32: case arrow::Type::UINT64:
    case arrow::Type::FLOAT: case arrow::Type::DOUBLE: case arrow::Type::DATE32: case arrow::Type::DATE64:
    case arrow::Type::TIME32: case arrow::Type::TIME64: case arrow::Type::TIMESTAMP: case arrow::Type::DURATION:
      return true;
    default:
      return false;
  }
}

// Calls f with a value of the C type that holds a fixed_width_number type's values.
template <typename F>
auto with_physical(const arrow::DataType& t, F&& f) {
  switch (t.id()) {
    case arrow::Type::INT8: return f(int8_t{});
    case arrow::Type::INT16: return f(int16_t{});
    case arrow::Type::INT32: case arrow::Type::DATE32: case arrow::Type::TIME32: return f(int32_t{});
    case arrow::Type::UINT8: return f(uint8_t{});
    case arrow::Type::UINT16: return f(uint16_t{});
    case arrow::Type::UINT32: return f(uint32_t{});
    case arrow::Type::UINT64: return f(uint64_t{});
    case arrow::Type::FLOAT: return f(float{});
    case arrow::Type::DOUBLE: return f(double{});
    default: return f(int64_t{});  // INT64, DATE64, TIME64, TIMESTAMP, DURATION
  }
}

// Calls f(const CType* values) with the physical values of a fixed-width numeric array.
template <typename F>
arrow::Status with_values(const arrow::Array& a, F&& f) {
  if (!fixed_width_number(*a.type())) return arrow::Status::NotImplemented("partial aggregate over ", a.type()->ToString());
  return with_physical(*a.type(), [&](auto p) { return f(a.data()->GetValues<decltype(p)>(1)); });
}

bool summable(const arrow::DataType& t) { return arrow::is_integer(t.id()) || t.id() == arrow::Type::FLOAT || t.id() == arrow::Type::DOUBLE; }

template <typename T>
arrow::Result<std::shared_ptr<arrow::Buffer>> buffer_of(const std::vector<T>& values) {
  ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateBuffer(static_cast<int64_t>(values.size() * sizeof(T))));
  if (!values.empty()) std::memcpy(buffer->mutable_data(), values.data(), values.size() * sizeof(T));
  return std::shared_ptr<arrow::Buffer>(std::move(buffer));
}

// A validity bitmap from one byte per group (null when every group has a value).
arrow::Result<std::shared_ptr<arrow::Buffer>> bitmap_of(const std::vector<uint8_t>& seen, int64_t* null_count) {
  const auto n = static_cast<int64_t>(seen.size());
  *null_count = 0;
  for (uint8_t s : seen) *null_count += !s;
  if (*null_count == 0) return nullptr;
  ARROW_ASSIGN_OR_RAISE(auto bitmap, arrow::AllocateBitmap(n));
  uint8_t* bits = bitmap->mutable_data();
  for (int64_t i = 0; i < n; ++i) arrow::bit_util::SetBitTo(bits, i, seen[static_cast<size_t>(i)] != 0);
  return std::shared_ptr<arrow::Buffer>(std::move(bitmap));
}

// count(*) and count(x): one int64 per group; partials add up.
class CountAccumulator final : public PartialAccumulator {
 public:
  explicit CountAccumulator(bool all) : all_(all) {}
  void resize(int64_t groups) override { counts_.resize(static_cast<size_t>(groups), 0); }
  arrow::Status consume(const std::shared_ptr<arrow::Array>& values, int64_t length, const uint32_t* groups) override {
    if (all_ || values->null_count() == 0) {
      for (int64_t i = 0; i < length; ++i) ++counts_[groups[i]];
    } else {
      for (int64_t i = 0; i < length; ++i) counts_[groups[i]] += values->IsValid(i);
    }
    return arrow::Status::OK();
  }
  arrow::Status merge(const arrow::ArrayVector& partials, const uint32_t* groups) override {
    const auto& p = static_cast<const arrow::Int64Array&>(*partials[0]);
    for (int64_t i = 0; i < p.length(); ++i) counts_[groups[i]] += p.IsValid(i) ? p.Value(i) : 0;
    return arrow::Status::OK();
  }
  arrow::Result<arrow::ArrayVector> finish() const override {
    ARROW_ASSIGN_OR_RAISE(auto values, buffer_of(counts_));
    return arrow::ArrayVector{arrow::MakeArray(arrow::ArrayData::Make(arrow::int64(), static_cast<int64_t>(counts_.size()),
                                                                      {nullptr, values}, 0))};
  }
  int64_t bytes() const override { return static_cast<int64_t>(counts_.size() * sizeof(int64_t)); }

 private:
  bool all_;
  std::vector<int64_t> counts_;
};

// sum(x) (null for a group without a value) and avg(x) as sum and count; Acc is int64_t for
// integer inputs, double for floating point (as Arrow's hash_sum).
template <typename Acc>
class SumAccumulator final : public PartialAccumulator {
 public:
  explicit SumAccumulator(bool mean) : mean_(mean) {}
  void resize(int64_t groups) override {
    sums_.resize(static_cast<size_t>(groups), Acc{});
    seen_.resize(static_cast<size_t>(groups), 0);
    if (mean_) counts_.resize(static_cast<size_t>(groups), 0);
  }
  arrow::Status consume(const std::shared_ptr<arrow::Array>& values, int64_t length, const uint32_t* groups) override {
    const arrow::Array& a = *values;
    return with_values(a, [&](const auto* v) {
      const bool all_valid = a.null_count() == 0;
      for (int64_t i = 0; i < length; ++i) {
        if (!all_valid && a.IsNull(i)) continue;
        const uint32_t g = groups[i];
        sums_[g] += static_cast<Acc>(v[i]);
        seen_[g] = 1;
        if (mean_) ++counts_[g];
      }
      return arrow::Status::OK();
    });
  }
  arrow::Status merge(const arrow::ArrayVector& partials, const uint32_t* groups) override {
    const arrow::Array& s = *partials[0];
    const Acc* v = s.data()->GetValues<Acc>(1);
    for (int64_t i = 0; i < s.length(); ++i) {
      if (s.IsNull(i)) continue;
      sums_[groups[i]] += v[i];
      seen_[groups[i]] = 1;
    }
    if (mean_) {
      const auto& c = static_cast<const arrow::Int64Array&>(*partials[1]);
      for (int64_t i = 0; i < c.length(); ++i) counts_[groups[i]] += c.IsValid(i) ? c.Value(i) : 0;
    }
    return arrow::Status::OK();
  }
  arrow::Result<arrow::ArrayVector> finish() const override {
    const auto n = static_cast<int64_t>(sums_.size());
    int64_t nulls = 0;
    ARROW_ASSIGN_OR_RAISE(auto validity, bitmap_of(seen_, &nulls));
    ARROW_ASSIGN_OR_RAISE(auto values, buffer_of(sums_));
    auto type = std::is_same_v<Acc, double> ? arrow::float64() : arrow::int64();
    arrow::ArrayVector out = {arrow::MakeArray(arrow::ArrayData::Make(type, n, {validity, values}, nulls))};
    if (mean_) {
      ARROW_ASSIGN_OR_RAISE(auto counts, buffer_of(counts_));
      out.push_back(arrow::MakeArray(arrow::ArrayData::Make(arrow::int64(), n, {nullptr, counts}, 0)));
    }
    return out;
  }
  int64_t bytes() const override {
    return static_cast<int64_t>(sums_.size() * (sizeof(Acc) + 1) + counts_.size() * sizeof(int64_t));
  }

 private:
  bool mean_;
  std::vector<Acc> sums_;
  std::vector<uint8_t> seen_;
  std::vector<int64_t> counts_;
};

// Whether `v` replaces the group's `current` value under min/max (floating point: NaN only
// when nothing else was seen, as Arrow's min/max).
template <typename T>
bool better(Kind kind, T v, T current) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(v)) return false;
    if (std::isnan(current)) return true;
  }
  return kind == Kind::kMin ? v < current : current < v;
}

// min/max/first/last of fixed-width values (P: the physical type). Partials are values of the
// same type, so merging is consuming them again; nulls are skipped (Arrow's skip_nulls).
template <typename P>
class ValueAccumulator final : public PartialAccumulator {
 public:
  ValueAccumulator(Kind kind, std::shared_ptr<arrow::DataType> type) : kind_(kind), type_(std::move(type)) {}
  void resize(int64_t groups) override {
    values_.resize(static_cast<size_t>(groups), P{});
    seen_.resize(static_cast<size_t>(groups), 0);
  }
  arrow::Status consume(const std::shared_ptr<arrow::Array>& values, int64_t length, const uint32_t* groups) override {
    const arrow::Array& a = *values;
    const P* v = a.data()->GetValues<P>(1);
    const bool all_valid = a.null_count() == 0;
    for (int64_t i = 0; i < length; ++i) {
      if (!all_valid && a.IsNull(i)) continue;
      const uint32_t g = groups[i];
      if (!seen_[g] || kind_ == Kind::kLast || (kind_ != Kind::kFirst && better(kind_, v[i], values_[g]))) {
        values_[g] = v[i];
        seen_[g] = 1;
      }
    }
    return arrow::Status::OK();
  }
  arrow::Status merge(const arrow::ArrayVector& partials, const uint32_t* groups) override {
    return consume(partials[0], partials[0]->length(), groups);
  }
  arrow::Result<arrow::ArrayVector> finish() const override {
    int64_t nulls = 0;
    ARROW_ASSIGN_OR_RAISE(auto validity, bitmap_of(seen_, &nulls));
    ARROW_ASSIGN_OR_RAISE(auto values, buffer_of(values_));
    return arrow::ArrayVector{
        arrow::MakeArray(arrow::ArrayData::Make(type_, static_cast<int64_t>(values_.size()), {validity, values}, nulls))};
  }
  int64_t bytes() const override { return static_cast<int64_t>(values_.size() * (sizeof(P) + 1)); }

 private:
  Kind kind_;
  std::shared_ptr<arrow::DataType> type_;
  std::vector<P> values_;
  std::vector<uint8_t> seen_;
};

// min/max/first/last of booleans (false < true), one byte per group.
class BoolAccumulator final : public PartialAccumulator {
 public:
  explicit BoolAccumulator(Kind kind) : kind_(kind) {}
  void resize(int64_t groups) override {
    values_.resize(static_cast<size_t>(groups), 0);
    seen_.resize(static_cast<size_t>(groups), 0);
  }
  arrow::Status consume(const std::shared_ptr<arrow::Array>& values, int64_t length, const uint32_t* groups) override {
    const auto& a = static_cast<const arrow::BooleanArray&>(*values);
    for (int64_t i = 0; i < length; ++i) {
      if (a.IsNull(i)) continue;
      const uint32_t g = groups[i];
      const uint8_t v = a.Value(i);
      if (!seen_[g] || kind_ == Kind::kLast || (kind_ == Kind::kMin && v < values_[g]) ||
          (kind_ == Kind::kMax && v > values_[g])) {
        values_[g] = v;
        seen_[g] = 1;
      }
    }
    return arrow::Status::OK();
  }
  arrow::Status merge(const arrow::ArrayVector& partials, const uint32_t* groups) override {
    return consume(partials[0], partials[0]->length(), groups);
  }
  arrow::Result<arrow::ArrayVector> finish() const override {
    arrow::BooleanBuilder b;
    ARROW_RETURN_NOT_OK(b.AppendValues(values_.data(), static_cast<int64_t>(values_.size()), seen_.data()));
    ARROW_ASSIGN_OR_RAISE(auto out, b.Finish());
    return arrow::ArrayVector{out};
  }
  int64_t bytes() const override { return static_cast<int64_t>(values_.size() * 2); }

 private:
  Kind kind_;
  std::vector<uint8_t> values_, seen_;
};

// min/max/first/last of strings and binaries (ArrayT: BinaryArray, or LargeBinaryArray for the
// large types; their string arrays derive from them). A value is copied only when it becomes
// the group's (first: once per group; last: once per group and batch, found walking backwards).
template <typename ArrayT, typename BuilderT>
class BinaryAccumulator final : public PartialAccumulator {
 public:
  BinaryAccumulator(Kind kind, std::shared_ptr<arrow::DataType> type) : kind_(kind), type_(std::move(type)) {}
  void resize(int64_t groups) override {
    values_.resize(static_cast<size_t>(groups));
    seen_.resize(static_cast<size_t>(groups), 0);
    stamp_.resize(static_cast<size_t>(groups), 0);
  }
  arrow::Status consume(const std::shared_ptr<arrow::Array>& values, int64_t length, const uint32_t* groups) override {
    const auto& a = static_cast<const ArrayT&>(*values);
    if (kind_ == Kind::kLast) {
      ++batch_;
      for (int64_t i = length - 1; i >= 0; --i) {
        const uint32_t g = groups[i];
        if (a.IsNull(i) || stamp_[g] == batch_) continue;
        stamp_[g] = batch_;
        values_[g].assign(a.GetView(i));
        seen_[g] = 1;
      }
      return arrow::Status::OK();
    }
    for (int64_t i = 0; i < length; ++i) {
      if (a.IsNull(i)) continue;
      const uint32_t g = groups[i];
      const std::string_view v = a.GetView(i);
      const bool take = !seen_[g] || (kind_ == Kind::kMin && v < std::string_view(values_[g])) ||
                        (kind_ == Kind::kMax && std::string_view(values_[g]) < v);
      if (!take) continue;
      values_[g].assign(v);
      seen_[g] = 1;
    }
    return arrow::Status::OK();
  }
  arrow::Status merge(const arrow::ArrayVector& partials, const uint32_t* groups) override {
    return consume(partials[0], partials[0]->length(), groups);
  }
  arrow::Result<arrow::ArrayVector> finish() const override {
    std::unique_ptr<arrow::ArrayBuilder> builder;
    ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type_, &builder));
    auto& b = static_cast<BuilderT&>(*builder);
    ARROW_RETURN_NOT_OK(b.Reserve(static_cast<int64_t>(values_.size())));
    for (size_t g = 0; g < values_.size(); ++g) {
      ARROW_RETURN_NOT_OK(seen_[g] ? b.Append(values_[g]) : b.AppendNull());
    }
    ARROW_ASSIGN_OR_RAISE(auto out, b.Finish());
    return arrow::ArrayVector{out};
  }
  int64_t bytes() const override {
    int64_t total = static_cast<int64_t>(values_.size() * (sizeof(std::string) + 1 + sizeof(uint32_t)));
    for (const auto& v : values_) total += v.capacity() > 15 ? static_cast<int64_t>(v.capacity()) : 0;
    return total;
  }

 private:
  Kind kind_;
  std::shared_ptr<arrow::DataType> type_;
  std::vector<std::string> values_;
  std::vector<uint8_t> seen_;
  std::vector<uint32_t> stamp_;  // last: the batch that already set the group's value
  uint32_t batch_ = 0;
};

arrow::Result<std::unique_ptr<PartialAccumulator>> make_accumulator(const std::string& function,
                                                                    const std::shared_ptr<arrow::DataType>& input) {
  ARROW_ASSIGN_OR_RAISE(auto kind, kind_of(function));
  if (!PartialGroups::supports(function, input)) {
    return invalid("{} over {} keeps no partial aggregate", function, input ? input->ToString() : "no input");
  }
  switch (kind) {
    case Kind::kCountAll:
    case Kind::kCount:
      return std::make_unique<CountAccumulator>(kind == Kind::kCountAll);
    case Kind::kSum:
    case Kind::kMean:
      if (arrow::is_integer(input->id())) return std::make_unique<SumAccumulator<int64_t>>(kind == Kind::kMean);
      return std::make_unique<SumAccumulator<double>>(kind == Kind::kMean);
    default:
      if (input->id() == arrow::Type::BOOL) return std::make_unique<BoolAccumulator>(kind);
      if (input->id() == arrow::Type::STRING || input->id() == arrow::Type::BINARY) {
        return std::make_unique<BinaryAccumulator<arrow::BinaryArray, arrow::BinaryBuilder>>(kind, input);
      }
      if (input->id() == arrow::Type::LARGE_STRING || input->id() == arrow::Type::LARGE_BINARY) {
        return std::make_unique<BinaryAccumulator<arrow::LargeBinaryArray, arrow::LargeBinaryBuilder>>(kind, input);
      }
      return with_physical(*input, [&](auto p) -> std::unique_ptr<PartialAccumulator> {
        return std::make_unique<ValueAccumulator<decltype(p)>>(kind, input);
      });
  }
}

}  // namespace

bool PartialGroups::supports(const std::string& function, const std::shared_ptr<arrow::DataType>& input) {
  auto kind = kind_of(function);
  if (!kind.ok()) return false;
  switch (*kind) {
    case Kind::kCountAll:
    case Kind::kCount:
      return true;
    case Kind::kSum:
    case Kind::kMean:
      return input && summable(*input);
    default:
      return input && (fixed_width_number(*input) || input->id() == arrow::Type::BOOL ||
                       input->id() == arrow::Type::STRING || input->id() == arrow::Type::LARGE_STRING ||
                       input->id() == arrow::Type::LARGE_BINARY ||
                       input->id() == arrow::Type::BINARY);
  }
}

std::shared_ptr<arrow::DataType> PartialGroups::partial_type(const std::string& function,
                                                             const std::shared_ptr<arrow::DataType>& input) {
  if (function == "hash_count_all" || function == "hash_count") return arrow::int64();
  if (function == "hash_sum" || function == "hash_mean") return arrow::is_integer(input->id()) ? arrow::int64() : arrow::float64();
  return input;
}

arrow::Result<std::unique_ptr<PartialGroups>> PartialGroups::make(
    const std::vector<std::shared_ptr<arrow::DataType>>& key_types, const std::vector<std::string>& functions,
    const std::vector<std::shared_ptr<arrow::DataType>>& input_types) {
  if (functions.size() != input_types.size()) return invalid("one input type per aggregate expected");
  std::unique_ptr<PartialGroups> groups(new PartialGroups());
  groups->key_types_ = key_types;
  if (!key_types.empty()) {
    std::vector<arrow::TypeHolder> holders(key_types.begin(), key_types.end());
    ARROW_ASSIGN_OR_RAISE(groups->grouper_, arrow::compute::Grouper::Make(holders));
  }
  for (size_t a = 0; a < functions.size(); ++a) {
    ARROW_ASSIGN_OR_RAISE(auto acc, make_accumulator(functions[a], input_types[a]));
    groups->accumulators_.push_back(std::move(acc));
    groups->partial_columns_.push_back(functions[a] == "hash_mean" ? 2 : 1);
  }
  return groups;
}

arrow::Result<std::shared_ptr<arrow::Array>> PartialGroups::group_ids(const arrow::ArrayVector& keys, int64_t length) {
  std::shared_ptr<arrow::Array> ids;
  if (!grouper_) {
    ARROW_ASSIGN_OR_RAISE(auto zeros, arrow::AllocateBuffer(length * static_cast<int64_t>(sizeof(uint32_t))));
    std::memset(zeros->mutable_data(), 0, static_cast<size_t>(zeros->size()));
    ids = arrow::MakeArray(arrow::ArrayData::Make(arrow::uint32(), length, {nullptr, std::move(zeros)}, 0));
    if (length > 0) num_groups_ = 1;
  } else {
    if (keys.size() != key_types_.size()) return invalid("{} key columns given, {} expected", keys.size(), key_types_.size());
    std::vector<arrow::Datum> values(keys.begin(), keys.end());
    arrow::compute::ExecBatch batch(std::move(values), length);
    ARROW_ASSIGN_OR_RAISE(auto datum, grouper_->Consume(arrow::compute::ExecSpan(batch)));
    ids = datum.make_array();
    const int64_t before = num_groups_;
    num_groups_ = grouper_->num_groups();
    if (num_groups_ > before && length > 0) {  // the new groups' share of this batch's key bytes
      int64_t batch_bytes = 0;
      for (const auto& k : keys) {
        for (const auto& b : k->data()->buffers) batch_bytes += b ? b->size() : 0;
      }
      key_bytes_ += batch_bytes * (num_groups_ - before) / length;
    }
  }
  for (auto& acc : accumulators_) acc->resize(num_groups_);
  return ids;
}

arrow::Status PartialGroups::consume(const arrow::ArrayVector& keys, const arrow::ArrayVector& inputs, int64_t length) {
  if (length == 0) return arrow::Status::OK();
  if (inputs.size() != accumulators_.size()) return invalid("{} aggregate inputs given, {} expected", inputs.size(), accumulators_.size());
  ARROW_ASSIGN_OR_RAISE(auto ids, group_ids(keys, length));
  const uint32_t* groups = ids->data()->GetValues<uint32_t>(1);
  for (size_t a = 0; a < accumulators_.size(); ++a) ARROW_RETURN_NOT_OK(accumulators_[a]->consume(inputs[a], length, groups));
  return arrow::Status::OK();
}

arrow::Status PartialGroups::merge(const arrow::ArrayVector& keys, const arrow::ArrayVector& partials, int64_t length) {
  if (length == 0) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto ids, group_ids(keys, length));
  const uint32_t* groups = ids->data()->GetValues<uint32_t>(1);
  size_t column = 0;
  for (size_t a = 0; a < accumulators_.size(); ++a) {
    const auto width = static_cast<size_t>(partial_columns_[a]);
    if (column + width > partials.size()) return invalid("too few partial aggregate columns ({})", partials.size());
    arrow::ArrayVector mine(partials.begin() + static_cast<std::ptrdiff_t>(column),
                            partials.begin() + static_cast<std::ptrdiff_t>(column + width));
    ARROW_RETURN_NOT_OK(accumulators_[a]->merge(mine, groups));
    column += width;
  }
  return arrow::Status::OK();
}

arrow::Result<arrow::ArrayVector> PartialGroups::finish() const {
  arrow::ArrayVector out;
  if (grouper_) {
    ARROW_ASSIGN_OR_RAISE(auto uniques, grouper_->GetUniques());
    for (const auto& v : uniques.values) out.push_back(v.make_array());
  }
  for (const auto& acc : accumulators_) {
    ARROW_ASSIGN_OR_RAISE(auto columns, acc->finish());
    out.insert(out.end(), columns.begin(), columns.end());
  }
  return out;
}

int64_t PartialGroups::bytes() const {
  // The hash table itself: about a key copy plus a 32-bit id and hash per group.
  int64_t total = key_bytes_ + num_groups_ * 8;
  for (const auto& acc : accumulators_) total += acc->bytes();
  return total;
}

}  // namespace sluice::exec
