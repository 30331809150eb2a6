// Array and map functions (the "collection" family's constructors, set operations, sorting,
// slicing and map views). Each kernel works on the flattened child array of its list or map
// argument: one pass over the offsets builds take indices (or reuses the offsets), then one
// Arrow Take / sort / hash grouping does the element work, so no row allocates. Element equality
// (array_distinct, array_union, ..., map keys) is Arrow's Grouper over the flattened elements:
// one group id per distinct value, NULLs one group, as Spark compares them.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/row/grouper.h>
#include <arrow/util/bitmap_builders.h>
#include <fmt/format.h>

#include "sluice/common/status.h"
#include "sluice/exec/functions/function_helpers.h"
#include "sluice/exec/functions/function_registry.h"
#include "sluice/exec/kernel_registry.h"
#include "sluice/sql/types.h"

namespace sluice::exec {

namespace cp = arrow::compute;

namespace array_family {

// Spark's limit on the elements of one array (ByteArrayMethods.MAX_ROUNDED_ARRAY_LENGTH).
constexpr int64_t kMaxArrayLength = 2147483632;
// sluice's own limit on the elements of one batch's result column (all its rows' arrays together;
// Spark has none beyond the per-array one): checked before anything is reserved or appended, so a
// hostile `sequence(1, 2000000000)` or `array_repeat(x, 1000000000)` is an error naming the
// limit, not gigabytes allocated and the process killed; it also keeps the int32 list offsets from
// wrapping. 2^26 elements: 512 MiB of 64-bit values at most. docs/decisions.md (fb review).
constexpr int64_t kMaxBatchElements = int64_t{1} << 26;

// A list result assembled row by row as positions into one values array, then taken in one go.
class ListByTake {
 public:
  explicit ListByTake(int64_t rows) {
    offsets_.reserve(static_cast<size_t>(rows) + 1);
    offsets_.push_back(0);
    valid_.reserve(static_cast<size_t>(rows));
  }
  arrow::Status add(int64_t position) {
    ARROW_RETURN_NOT_OK(check_size());
    return take_.Append(position);
  }
  arrow::Status add_null() {
    ARROW_RETURN_NOT_OK(check_size());
    return take_.AppendNull();
  }
  void end_row() {
    offsets_.push_back(static_cast<int32_t>(take_.length()));
    valid_.push_back(true);
    count_ = 0;
  }
  void null_row() {
    offsets_.push_back(static_cast<int32_t>(take_.length()));
    valid_.push_back(false);
    count_ = 0;
  }
  int64_t size() const { return take_.length(); }
  // The list of `element` type whose values are `values` taken at the added positions.
  arrow::Result<std::shared_ptr<arrow::Array>> finish(const std::shared_ptr<arrow::DataType>& list_type,
                                                      const std::shared_ptr<arrow::Array>& values);

 private:
  arrow::Status check_size() {
    if (++count_ > kMaxArrayLength) {
      return invalid("the result array would have more than {} elements (Spark's limit)", kMaxArrayLength);
    }
    if (take_.length() >= kMaxBatchElements) {
      return invalid("the result arrays of one batch would have more than {} elements together (sluice's limit "
                     "per batch of rows)", kMaxBatchElements);
    }
    return arrow::Status::OK();
  }
  arrow::Int64Builder take_;
  std::vector<int32_t> offsets_;
  std::vector<bool> valid_;
  int64_t count_ = 0;
};

arrow::Result<std::shared_ptr<arrow::Buffer>> validity_bitmap(const std::vector<bool>& valid, int64_t* null_count) {
  *null_count = 0;
  for (bool v : valid) *null_count += !v;
  if (*null_count == 0) return nullptr;
  ARROW_ASSIGN_OR_RAISE(auto bitmap, arrow::AllocateEmptyBitmap(static_cast<int64_t>(valid.size())));
  for (size_t i = 0; i < valid.size(); ++i) {
    if (valid[i]) arrow::bit_util::SetBit(bitmap->mutable_data(), static_cast<int64_t>(i));
  }
  return bitmap;
}

arrow::Result<std::shared_ptr<arrow::Array>> ListByTake::finish(const std::shared_ptr<arrow::DataType>& list_type,
                                                                const std::shared_ptr<arrow::Array>& values) {
  ARROW_ASSIGN_OR_RAISE(auto take, take_.Finish());
  ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(*values, *take));
  arrow::Int32Builder offsets;
  ARROW_RETURN_NOT_OK(offsets.AppendValues(offsets_));
  ARROW_ASSIGN_OR_RAISE(auto offsets_array, offsets.Finish());
  int64_t null_count = 0;
  ARROW_ASSIGN_OR_RAISE(auto bitmap, validity_bitmap(valid_, &null_count));
  if (list_type->id() == arrow::Type::MAP) {
    const auto entries_array = taken;
    const auto& entries = static_cast<const arrow::StructArray&>(*entries_array);
    ARROW_ASSIGN_OR_RAISE(auto map, arrow::MapArray::FromArrays(list_type, offsets_array, entries.field(0),
                                                                entries.field(1), arrow::default_memory_pool(),
                                                                bitmap));
    return map;
  }
  ARROW_ASSIGN_OR_RAISE(auto list, arrow::ListArray::FromArrays(list_type, *offsets_array, *taken,
                                                                arrow::default_memory_pool(), bitmap, null_count));
  return list;
}

const arrow::ListArray& as_list(const std::shared_ptr<arrow::Array>& a) { return static_cast<const arrow::ListArray&>(*a); }

// One group id per element of `values` (equal values, and all NULLs, share one).
arrow::Result<std::shared_ptr<arrow::UInt32Array>> group_ids(const std::shared_ptr<arrow::Array>& values,
                                                            uint32_t* groups) {
  ARROW_ASSIGN_OR_RAISE(auto grouper, cp::Grouper::Make({values->type()}));
  ARROW_ASSIGN_OR_RAISE(auto ids, grouper->Consume(cp::ExecSpan(cp::ExecBatch({values}, values->length()))));
  *groups = grouper->num_groups();
  return std::static_pointer_cast<arrow::UInt32Array>(ids.make_array());
}

// Which element row each element of `lists`' values belongs to (elements outside every row: 0).
arrow::Result<std::shared_ptr<arrow::Array>> parent_rows(const arrow::ListArray& lists) {
  std::vector<int64_t> parent(static_cast<size_t>(lists.values()->length()), 0);
  for (int64_t r = 0; r < lists.length(); ++r) {
    for (int64_t j = lists.value_offset(r); j < lists.value_offset(r + 1); ++j) parent[static_cast<size_t>(j)] = r;
  }
  arrow::Int64Builder builder;
  ARROW_RETURN_NOT_OK(builder.AppendValues(parent));
  return builder.Finish();
}

// Each element compared with its row's `value` (one vectorised equal over the flattened elements).
arrow::Result<std::shared_ptr<arrow::BooleanArray>> equal_to_row_value(const arrow::ListArray& lists,
                                                                       const std::shared_ptr<arrow::Array>& value) {
  ARROW_ASSIGN_OR_RAISE(auto parent, parent_rows(lists));
  if (lists.length() == 0) {
    ARROW_ASSIGN_OR_RAISE(auto none, arrow::MakeArrayOfNull(arrow::boolean(), lists.values()->length()));
    return std::static_pointer_cast<arrow::BooleanArray>(none);
  }
  ARROW_ASSIGN_OR_RAISE(auto repeated, cp::Take(*value, *parent));
  ARROW_ASSIGN_OR_RAISE(auto eq, cp::CallFunction("equal", {lists.values(), repeated}));
  return std::static_pointer_cast<arrow::BooleanArray>(eq.make_array());
}

// ---- which kernel: one exec per function, told apart by the kernel's state ---------------------

enum class Op {
  kCompact, kRemove, kPosition, kAppend, kPrepend, kDistinct, kUnion, kIntersect, kExcept, kOverlap,
  kMax, kMin, kSortAsc, kSortDesc, kArraySort, kSlice, kFlatten, kRepeat, kMapKeys, kMapValues, kMapEntries,
  kMapContainsKey, kMapFromArrays, kMapFromEntries, kMapConcat, kJoin, kSequence, kMake, kMakeMap
};

struct OpState : cp::KernelState {
  Op op;
  explicit OpState(Op o) : op(o) {}
};

arrow::Status set_out(cp::ExecResult* out, const std::shared_ptr<arrow::Array>& a) {
  out->value = a->data();
  return arrow::Status::OK();
}

std::shared_ptr<arrow::DataType> out_type_of(cp::KernelContext* ctx) { return ctx->kernel()->signature->out_type().type(); }

// array_remove / array_position / array_compact.
arrow::Status remove_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out, Op op) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& lists = as_list(a);
  std::shared_ptr<arrow::Array> value;
  std::shared_ptr<arrow::BooleanArray> equal;
  if (op != Op::kCompact) {
    ARROW_ASSIGN_OR_RAISE(value, argument_array(batch, 1));
    ARROW_ASSIGN_OR_RAISE(equal, equal_to_row_value(lists, value));
  }
  if (op == Op::kPosition) {
    arrow::Int64Builder builder;
    ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
    for (int64_t r = 0; r < batch.length; ++r) {
      if (lists.IsNull(r) || value->IsNull(r)) {
        builder.UnsafeAppendNull();
        continue;
      }
      int64_t found = 0;
      for (int64_t j = lists.value_offset(r); j < lists.value_offset(r + 1); ++j) {
        if (equal->IsValid(j) && equal->Value(j)) {
          found = j - lists.value_offset(r) + 1;
          break;
        }
      }
      builder.UnsafeAppend(found);
    }
    ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
    return set_out(out, result);
  }
  ListByTake result(batch.length);
  const auto& values = *lists.values();
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r) || (value && value->IsNull(r))) {
      result.null_row();
      continue;
    }
    for (int64_t j = lists.value_offset(r); j < lists.value_offset(r + 1); ++j) {
      const bool drop = op == Op::kCompact ? values.IsNull(j) : (equal->IsValid(j) && equal->Value(j));
      if (!drop) ARROW_RETURN_NOT_OK(result.add(j));
    }
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(out_type_of(ctx), lists.values()));
  return set_out(out, list);
}

// array_append / array_prepend: the row's elements and its value, from one concatenated array.
arrow::Status append_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out, bool prepend) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto value, argument_array(batch, 1));
  const auto& lists = as_list(a);
  const int64_t base = lists.values()->length();
  ARROW_ASSIGN_OR_RAISE(auto all, arrow::Concatenate({lists.values(), value}));
  ListByTake result(batch.length);
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r)) {
      result.null_row();
      continue;
    }
    if (prepend) ARROW_RETURN_NOT_OK(result.add(base + r));
    for (int64_t j = lists.value_offset(r); j < lists.value_offset(r + 1); ++j) ARROW_RETURN_NOT_OK(result.add(j));
    if (!prepend) ARROW_RETURN_NOT_OK(result.add(base + r));
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(out_type_of(ctx), all));
  return set_out(out, list);
}

// array_distinct, array_union, array_intersect, array_except, arrays_overlap: group ids over the
// elements of both arguments, and per group the last row that saw it (no per-row set).
arrow::Status set_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out, Op op) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& left = as_list(a);
  std::shared_ptr<arrow::Array> b = a;
  if (op != Op::kDistinct) {
    ARROW_ASSIGN_OR_RAISE(b, argument_array(batch, 1));
  }
  const auto& right = as_list(b);
  const int64_t base = left.values()->length();
  ARROW_ASSIGN_OR_RAISE(auto all, arrow::Concatenate({left.values(), right.values()}));
  uint32_t groups = 0;
  ARROW_ASSIGN_OR_RAISE(auto ids, group_ids(all, &groups));
  std::vector<int64_t> kept(groups, -1), in_right(groups, -1);
  const auto& values = *all;
  if (op == Op::kOverlap) {
    arrow::BooleanBuilder builder;
    ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
    for (int64_t r = 0; r < batch.length; ++r) {
      if (left.IsNull(r) || right.IsNull(r)) {
        builder.UnsafeAppendNull();
        continue;
      }
      bool right_null = false, left_null = false, found = false;
      for (int64_t j = right.value_offset(r); j < right.value_offset(r + 1); ++j) {
        if (values.IsNull(base + j)) right_null = true;
        else in_right[ids->Value(base + j)] = r;
      }
      for (int64_t j = left.value_offset(r); j < left.value_offset(r + 1) && !found; ++j) {
        if (values.IsNull(j)) left_null = true;
        else found = in_right[ids->Value(j)] == r;
      }
      // No common element: NULL when a NULL could have been one and both arrays have elements.
      if (!found && (left_null || right_null) && left.value_length(r) > 0 && right.value_length(r) > 0) {
        builder.UnsafeAppendNull();
      } else {
        builder.UnsafeAppend(found);
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
    return set_out(out, result);
  }
  ListByTake result(batch.length);
  for (int64_t r = 0; r < batch.length; ++r) {
    if (left.IsNull(r) || right.IsNull(r)) {
      result.null_row();
      continue;
    }
    auto keep_first = [&](int64_t position) -> arrow::Status {
      const uint32_t g = ids->Value(position);
      if (kept[g] == r) return arrow::Status::OK();
      kept[g] = r;
      return result.add(position);
    };
    if (op == Op::kIntersect || op == Op::kExcept) {
      for (int64_t j = right.value_offset(r); j < right.value_offset(r + 1); ++j) in_right[ids->Value(base + j)] = r;
    }
    for (int64_t j = left.value_offset(r); j < left.value_offset(r + 1); ++j) {
      const bool listed = in_right[ids->Value(j)] == r;
      if (op == Op::kIntersect && !listed) continue;
      if (op == Op::kExcept && listed) continue;
      ARROW_RETURN_NOT_OK(keep_first(j));
    }
    if (op == Op::kUnion) {
      for (int64_t j = right.value_offset(r); j < right.value_offset(r + 1); ++j) ARROW_RETURN_NOT_OK(keep_first(base + j));
    }
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(out_type_of(ctx), all));
  return set_out(out, list);
}

// sort_array, array_sort, array_max, array_min: one sort of (row, element) over all rows.
arrow::Status sort_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out, Op op) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& lists = as_list(a);
  ARROW_ASSIGN_OR_RAISE(auto parent, parent_rows(lists));
  auto table = arrow::RecordBatch::Make(arrow::schema({arrow::field("p", arrow::int64()), arrow::field("v", lists.values()->type())}),
                                        lists.values()->length(), {parent, lists.values()});
  // Spark: sort_array ascending puts NULLs first, descending last; array_sort puts them last.
  // array_max reads the last of an ascending sort with NULLs first, array_min the first with NULLs last.
  const bool descending = op == Op::kSortDesc;
  const bool nulls_first = op == Op::kSortAsc || op == Op::kMax;
  const auto placement = nulls_first ? cp::NullPlacement::AtStart : cp::NullPlacement::AtEnd;
  cp::SortOptions options({cp::SortKey("p", cp::SortOrder::Ascending, placement),
                           cp::SortKey("v", descending ? cp::SortOrder::Descending : cp::SortOrder::Ascending, placement)});
  ARROW_ASSIGN_OR_RAISE(auto order, cp::SortIndices(arrow::Datum(table), options));
  const auto& sorted = static_cast<const arrow::UInt64Array&>(*order);
  // Elements outside every row (a sliced child, a NULL row's) sort among row 0's: skipped below.
  if (op == Op::kMax || op == Op::kMin) {
    arrow::Int64Builder take;
    ARROW_RETURN_NOT_OK(take.Reserve(batch.length));
    // position in the sorted order of each original element
    std::vector<int64_t> rank(static_cast<size_t>(sorted.length()));
    for (int64_t k = 0; k < sorted.length(); ++k) rank[sorted.Value(k)] = k;
    for (int64_t r = 0; r < batch.length; ++r) {
      const int64_t from = lists.value_offset(r), to = lists.value_offset(r + 1);
      if (lists.IsNull(r) || from == to) {
        take.UnsafeAppendNull();
        continue;
      }
      int64_t best = rank[from];
      for (int64_t j = from; j < to; ++j) best = op == Op::kMax ? std::max(best, rank[j]) : std::min(best, rank[j]);
      take.UnsafeAppend(static_cast<int64_t>(sorted.Value(best)));
    }
    ARROW_ASSIGN_OR_RAISE(auto indices, take.Finish());
    ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(*lists.values(), *indices));
    return set_out(out, taken);
  }
  // The sort keeps each row's elements together and rows in order; a row's elements in sorted
  // order are the sorted positions whose element belongs to the row.
  ListByTake result(batch.length);
  std::vector<int64_t> row_of(static_cast<size_t>(lists.values()->length()), -1);
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r)) continue;
    for (int64_t j = lists.value_offset(r); j < lists.value_offset(r + 1); ++j) row_of[static_cast<size_t>(j)] = r;
  }
  int64_t k = 0;
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r)) {
      result.null_row();
      continue;
    }
    for (; k < sorted.length() && row_of[sorted.Value(k)] <= r; ++k) {
      if (row_of[sorted.Value(k)] == r) ARROW_RETURN_NOT_OK(result.add(static_cast<int64_t>(sorted.Value(k))));
    }
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(out_type_of(ctx), lists.values()));
  return set_out(out, list);
}

// slice(array, start, length), 1-based, negative start from the end (Spark's ANSI errors).
arrow::Status slice_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto s, argument_array(batch, 1));
  ARROW_ASSIGN_OR_RAISE(auto l, argument_array(batch, 2));
  const auto& lists = as_list(a);
  const auto& start = static_cast<const arrow::Int32Array&>(*s);
  const auto& length = static_cast<const arrow::Int32Array&>(*l);
  ListByTake result(batch.length);
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r) || start.IsNull(r) || length.IsNull(r)) {
      result.null_row();
      continue;
    }
    const int64_t n = lists.value_length(r);
    const int64_t st = start.Value(r), len = length.Value(r);
    if (st == 0) return invalid("slice: the start must not be 0, SQL array indices start at 1 (row {})", r);
    if (len < 0) return invalid("slice: the length must not be negative, got {} (row {})", len, r);
    const int64_t from = st < 0 ? st + n : st - 1;
    if (from >= 0 && from < n) {
      for (int64_t j = from; j < std::min(from + len, n); ++j) ARROW_RETURN_NOT_OK(result.add(lists.value_offset(r) + j));
    }
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(out_type_of(ctx), lists.values()));
  return set_out(out, list);
}

// flatten(array<array<T>>): NULL when the outer array or any inner array is NULL.
arrow::Status flatten_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& outer = as_list(a);
  const auto& inner = static_cast<const arrow::ListArray&>(*outer.values());
  ListByTake result(batch.length);
  for (int64_t r = 0; r < batch.length; ++r) {
    bool null = outer.IsNull(r);
    for (int64_t i = outer.value_offset(r); i < outer.value_offset(r + 1) && !null; ++i) null = inner.IsNull(i);
    if (null) {
      result.null_row();
      continue;
    }
    for (int64_t i = outer.value_offset(r); i < outer.value_offset(r + 1); ++i) {
      for (int64_t j = inner.value_offset(i); j < inner.value_offset(i + 1); ++j) ARROW_RETURN_NOT_OK(result.add(j));
    }
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(out_type_of(ctx), inner.values()));
  return set_out(out, list);
}

// array_repeat(value, count): a negative count gives an empty array, as Spark.
arrow::Status repeat_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto value, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto c, argument_array(batch, 1));
  const auto& count = static_cast<const arrow::Int32Array&>(*c);
  ListByTake result(batch.length);
  for (int64_t r = 0; r < batch.length; ++r) {
    if (count.IsNull(r)) {
      result.null_row();
      continue;
    }
    for (int64_t i = 0; i < count.Value(r); ++i) ARROW_RETURN_NOT_OK(result.add(r));
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(out_type_of(ctx), value));
  return set_out(out, list);
}

// array(a, b, ...): row r's elements are each argument's row r, from one concatenation.
arrow::Status make_array_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  std::vector<std::shared_ptr<arrow::Array>> args;
  for (int i = 0; i < batch.num_values(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto arg, argument_array(batch, i));
    args.push_back(arg);
  }
  const auto type = out_type_of(ctx);
  const bool map = type->id() == arrow::Type::MAP;
  std::shared_ptr<arrow::Array> all;
  if (!map) {
    ARROW_ASSIGN_OR_RAISE(all, arrow::Concatenate(args));
  }
  ListByTake result(batch.length);
  std::vector<int64_t> seen;
  std::shared_ptr<arrow::UInt32Array> ids;
  if (map) {  // keys are the even arguments: no NULL, no duplicate within a row (Spark's default policy)
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (size_t i = 0; i < args.size(); i += 2) keys.push_back(args[i]);
    ARROW_ASSIGN_OR_RAISE(auto key_values, arrow::Concatenate(keys));
    uint32_t groups = 0;
    ARROW_ASSIGN_OR_RAISE(ids, group_ids(key_values, &groups));
    seen.assign(groups, -1);
    std::vector<std::shared_ptr<arrow::Array>> entries;
    for (size_t i = 0; i < args.size(); i += 2) {
      ARROW_ASSIGN_OR_RAISE(auto entry, arrow::StructArray::Make({args[i], args[i + 1]}, std::vector<std::string>{"key", "value"}));
      entries.push_back(entry);
    }
    ARROW_ASSIGN_OR_RAISE(all, arrow::Concatenate(entries));
  }
  const int64_t width = map ? static_cast<int64_t>(args.size() / 2) : static_cast<int64_t>(args.size());
  for (int64_t r = 0; r < batch.length; ++r) {
    for (int64_t i = 0; i < width; ++i) {
      const int64_t position = i * batch.length + r;
      if (map) {
        if (args[static_cast<size_t>(2 * i)]->IsNull(r)) return invalid("map: a key is NULL (row {})", r);
        const uint32_t g = ids->Value(position);
        if (seen[g] == r) return invalid("map: a key appears twice in row {} (Spark's default mapKeyDedupPolicy=EXCEPTION)", r);
        seen[g] = r;
      }
      ARROW_RETURN_NOT_OK(result.add(position));
    }
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(type, all));
  return set_out(out, list);
}

// map_keys / map_values / map_entries: the map's offsets over one of its children.
arrow::Status map_view_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out, Op op) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  const auto& maps = static_cast<const arrow::MapArray&>(*a);
  ListByTake result(batch.length);
  for (int64_t r = 0; r < batch.length; ++r) {
    if (maps.IsNull(r)) {
      result.null_row();
      continue;
    }
    for (int64_t j = maps.value_offset(r); j < maps.value_offset(r + 1); ++j) ARROW_RETURN_NOT_OK(result.add(j));
    result.end_row();
  }
  std::shared_ptr<arrow::Array> child = op == Op::kMapKeys ? maps.keys() : maps.items();
  if (op == Op::kMapEntries) {  // the entries named key and value, whatever the map's struct calls them
    const auto& entry = static_cast<const arrow::ListType&>(*out_type_of(ctx)).value_type();
    ARROW_ASSIGN_OR_RAISE(child, arrow::StructArray::Make({maps.keys(), maps.items()}, entry->fields()));
  }
  ARROW_ASSIGN_OR_RAISE(auto list, result.finish(out_type_of(ctx), child));
  return set_out(out, list);
}

// map_contains_key(map, key).
arrow::Status map_contains_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto key, argument_array(batch, 1));
  const auto& maps = static_cast<const arrow::MapArray&>(*a);
  ARROW_ASSIGN_OR_RAISE(auto keys, arrow::ListArray::FromArrays(*maps.offsets(), *maps.keys()));
  ARROW_ASSIGN_OR_RAISE(auto equal, equal_to_row_value(*keys, key));
  arrow::BooleanBuilder builder;
  ARROW_RETURN_NOT_OK(builder.Reserve(batch.length));
  for (int64_t r = 0; r < batch.length; ++r) {
    if (maps.IsNull(r) || key->IsNull(r)) {
      builder.UnsafeAppendNull();
      continue;
    }
    bool found = false;
    for (int64_t j = maps.value_offset(r); j < maps.value_offset(r + 1) && !found; ++j) found = equal->Value(j);
    builder.UnsafeAppend(found);
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  return set_out(out, result);
}

// map_from_arrays, map_from_entries, map_concat: entries gathered by position from one entries
// array; keys checked for NULL and for duplicates within a row.
arrow::Status map_build_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out, Op op) {
  std::vector<const arrow::ListArray*> inputs;
  std::vector<std::shared_ptr<arrow::Array>> owned, entries;
  std::shared_ptr<arrow::Array> key_children;
  if (op == Op::kMapFromArrays) {
    ARROW_ASSIGN_OR_RAISE(auto k, argument_array(batch, 0));
    ARROW_ASSIGN_OR_RAISE(auto v, argument_array(batch, 1));
    const auto& keys = as_list(k);
    const auto& values = as_list(v);
    for (int64_t r = 0; r < batch.length; ++r) {
      if (!keys.IsNull(r) && !values.IsNull(r) && keys.value_length(r) != values.value_length(r)) {
        return invalid("map_from_arrays: row {} has {} keys and {} values; they must be as many", r, keys.value_length(r),
                       values.value_length(r));
      }
    }
    // Values taken at the keys' positions: the two arrays' offsets may differ.
    arrow::Int64Builder take;
    ARROW_RETURN_NOT_OK(take.Reserve(keys.values()->length()));
    std::vector<int64_t> at(static_cast<size_t>(keys.values()->length()), 0);
    for (int64_t r = 0; r < batch.length; ++r) {
      if (keys.IsNull(r) || values.IsNull(r)) continue;
      for (int64_t i = 0; i < keys.value_length(r); ++i) at[static_cast<size_t>(keys.value_offset(r) + i)] = values.value_offset(r) + i;
    }
    ARROW_RETURN_NOT_OK(take.AppendValues(at));
    ARROW_ASSIGN_OR_RAISE(auto take_array, take.Finish());
    std::shared_ptr<arrow::Array> aligned;
    if (values.values()->length() == 0) {
      ARROW_ASSIGN_OR_RAISE(aligned, arrow::MakeArrayOfNull(values.values()->type(), keys.values()->length()));
    } else {
      ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(*values.values(), *take_array));
      aligned = taken;
    }
    ARROW_ASSIGN_OR_RAISE(auto entry, arrow::StructArray::Make({keys.values(), aligned}, std::vector<std::string>{"key", "value"}));
    owned.push_back(k);
    owned.push_back(v);
    // Row r is NULL when either array is: a list with the keys' offsets and both validities.
    std::vector<bool> valid(static_cast<size_t>(batch.length));
    for (int64_t r = 0; r < batch.length; ++r) valid[static_cast<size_t>(r)] = keys.IsValid(r) && values.IsValid(r);
    int64_t null_count = 0;
    ARROW_ASSIGN_OR_RAISE(auto bitmap, validity_bitmap(valid, &null_count));
    ARROW_ASSIGN_OR_RAISE(auto combined, arrow::ListArray::FromArrays(*keys.offsets(), *entry, arrow::default_memory_pool(),
                                                                      bitmap, null_count));
    owned.push_back(combined);
    inputs.push_back(static_cast<const arrow::ListArray*>(combined.get()));
    entries.push_back(entry);
  } else {
    for (int i = 0; i < batch.num_values(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto arg, argument_array(batch, i));
      owned.push_back(arg);
      inputs.push_back(static_cast<const arrow::ListArray*>(arg.get()));
      entries.push_back(inputs.back()->values());
    }
  }
  std::vector<int64_t> base;
  int64_t total = 0;
  for (const auto& e : entries) {
    base.push_back(total);
    total += e->length();
  }
  ARROW_ASSIGN_OR_RAISE(auto all, arrow::Concatenate(entries));
  const auto& structs = static_cast<const arrow::StructArray&>(*all);
  if (structs.num_fields() != 2) return invalid("map_from_entries needs an ARRAY of STRUCT<key, value>");
  const auto keys = structs.field(0);
  uint32_t groups = 0;
  ARROW_ASSIGN_OR_RAISE(auto ids, group_ids(keys, &groups));
  std::vector<int64_t> seen(groups, -1);
  ListByTake result(batch.length);
  for (int64_t r = 0; r < batch.length; ++r) {
    bool null = false;
    for (const auto* in : inputs) null = null || in->IsNull(r);
    // map_from_entries: a NULL entry makes the map NULL.
    for (size_t i = 0; i < inputs.size() && !null && op == Op::kMapFromEntries; ++i) {
      for (int64_t j = inputs[i]->value_offset(r); j < inputs[i]->value_offset(r + 1); ++j) null = null || structs.IsNull(base[i] + j);
    }
    if (null) {
      result.null_row();
      continue;
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      for (int64_t j = inputs[i]->value_offset(r); j < inputs[i]->value_offset(r + 1); ++j) {
        const int64_t position = base[i] + j;
        if (keys->IsNull(position)) return invalid("{}: a key is NULL (row {})", op == Op::kMapConcat ? "map_concat" : "map", r);
        const uint32_t g = ids->Value(position);
        if (seen[g] == r) {
          return invalid("a map key appears twice in row {} (Spark's default mapKeyDedupPolicy=EXCEPTION refuses it)", r);
        }
        seen[g] = r;
        ARROW_RETURN_NOT_OK(result.add(position));
      }
    }
    result.end_row();
  }
  ARROW_ASSIGN_OR_RAISE(auto map, result.finish(out_type_of(ctx), all));
  return set_out(out, map);
}

// array_join(array<string>, delimiter[, null_replacement]): NULL elements skipped unless replaced.
arrow::Status join_exec(cp::KernelContext*, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto a, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto d, argument_array(batch, 1));
  std::shared_ptr<arrow::Array> n;
  if (batch.num_values() > 2) {
    ARROW_ASSIGN_OR_RAISE(n, argument_array(batch, 2));
  }
  const auto& lists = as_list(a);
  const auto& values = static_cast<const arrow::StringArray&>(*lists.values());
  const auto& delimiter = static_cast<const arrow::StringArray&>(*d);
  const auto* replacement = static_cast<const arrow::StringArray*>(n.get());
  arrow::StringBuilder builder;
  std::string text;
  for (int64_t r = 0; r < batch.length; ++r) {
    if (lists.IsNull(r) || delimiter.IsNull(r) || (replacement && replacement->IsNull(r))) {
      ARROW_RETURN_NOT_OK(builder.AppendNull());
      continue;
    }
    text.clear();
    bool first = true;
    for (int64_t j = lists.value_offset(r); j < lists.value_offset(r + 1); ++j) {
      if (values.IsNull(j) && !replacement) continue;
      if (!first) text += delimiter.GetView(r);
      first = false;
      text += values.IsNull(j) ? replacement->GetView(r) : values.GetView(j);
    }
    ARROW_RETURN_NOT_OK(builder.Append(text));
  }
  ARROW_ASSIGN_OR_RAISE(auto result, builder.Finish());
  return set_out(out, result);
}

// sequence(start, stop[, step]) over integers: Spark's boundaries and size limit.
arrow::Status sequence_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto s, argument_array(batch, 0));
  ARROW_ASSIGN_OR_RAISE(auto e, argument_array(batch, 1));
  std::shared_ptr<arrow::Array> st;
  if (batch.num_values() > 2) {
    ARROW_ASSIGN_OR_RAISE(st, argument_array(batch, 2));
  }
  const auto& start = static_cast<const arrow::Int64Array&>(*s);
  const auto& stop = static_cast<const arrow::Int64Array&>(*e);
  const auto* step = static_cast<const arrow::Int64Array*>(st.get());
  arrow::Int64Builder values;
  std::vector<int32_t> offsets{0};
  std::vector<bool> valid;
  for (int64_t r = 0; r < batch.length; ++r) {
    if (start.IsNull(r) || stop.IsNull(r) || (step && step->IsNull(r))) {
      offsets.push_back(static_cast<int32_t>(values.length()));
      valid.push_back(false);
      continue;
    }
    const int64_t from = start.Value(r), to = stop.Value(r);
    const int64_t by = step ? step->Value(r) : (from <= to ? 1 : -1);
    if (!((by > 0 && from <= to) || (by < 0 && from >= to) || (by == 0 && from == to))) {
      return invalid("sequence: illegal boundaries in row {}: start {}, stop {}, step {} (the step must move start "
                     "towards stop)", r, from, to, by);
    }
    // In unsigned arithmetic: stop - start may not fit a signed 64-bit integer.
    const uint64_t span = to >= from ? static_cast<uint64_t>(to) - static_cast<uint64_t>(from)
                                     : static_cast<uint64_t>(from) - static_cast<uint64_t>(to);
    const uint64_t stride = by < 0 ? uint64_t{0} - static_cast<uint64_t>(by) : static_cast<uint64_t>(by);
    const uint64_t count = by == 0 ? 1 : span / stride + 1;
    if (count > static_cast<uint64_t>(kMaxArrayLength)) {
      return invalid("sequence: row {} would have {} elements, more than Spark's limit of {}", r, count, kMaxArrayLength);
    }
    if (count > static_cast<uint64_t>(kMaxBatchElements - values.length())) {
      return invalid("sequence: row {} would have {} elements, past sluice's limit of {} elements for one batch's "
                     "results together", r, count, kMaxBatchElements);
    }
    ARROW_RETURN_NOT_OK(values.Reserve(static_cast<int64_t>(count)));
    // Stepped in unsigned arithmetic (wraps, as the result does when it fits): i * by may overflow int64.
    uint64_t next = static_cast<uint64_t>(from);
    for (int64_t i = 0; i < static_cast<int64_t>(count); ++i, next += static_cast<uint64_t>(by)) {
      values.UnsafeAppend(static_cast<int64_t>(next));
    }
    offsets.push_back(static_cast<int32_t>(values.length()));
    valid.push_back(true);
  }
  ARROW_ASSIGN_OR_RAISE(auto flat, values.Finish());
  const auto type = out_type_of(ctx);
  ARROW_ASSIGN_OR_RAISE(auto typed, cp::Cast(*flat, static_cast<const arrow::ListType&>(*type).value_type()));
  arrow::Int32Builder offsets_builder;
  ARROW_RETURN_NOT_OK(offsets_builder.AppendValues(offsets));
  ARROW_ASSIGN_OR_RAISE(auto offsets_array, offsets_builder.Finish());
  int64_t null_count = 0;
  ARROW_ASSIGN_OR_RAISE(auto bitmap, validity_bitmap(valid, &null_count));
  ARROW_ASSIGN_OR_RAISE(auto list, arrow::ListArray::FromArrays(type, *offsets_array, *typed, arrow::default_memory_pool(),
                                                                bitmap, null_count));
  return set_out(out, list);
}

arrow::Status op_exec(cp::KernelContext* ctx, const cp::ExecSpan& batch, cp::ExecResult* out) {
  const Op op = static_cast<const OpState*>(ctx->kernel()->data.get())->op;
  switch (op) {
    case Op::kCompact:
    case Op::kRemove:
    case Op::kPosition: return remove_exec(ctx, batch, out, op);
    case Op::kAppend: return append_exec(ctx, batch, out, false);
    case Op::kPrepend: return append_exec(ctx, batch, out, true);
    case Op::kDistinct:
    case Op::kUnion:
    case Op::kIntersect:
    case Op::kExcept:
    case Op::kOverlap: return set_exec(ctx, batch, out, op);
    case Op::kMax:
    case Op::kMin:
    case Op::kSortAsc:
    case Op::kSortDesc:
    case Op::kArraySort: return sort_exec(ctx, batch, out, op);
    case Op::kSlice: return slice_exec(ctx, batch, out);
    case Op::kFlatten: return flatten_exec(ctx, batch, out);
    case Op::kRepeat: return repeat_exec(ctx, batch, out);
    case Op::kMapKeys:
    case Op::kMapValues:
    case Op::kMapEntries: return map_view_exec(ctx, batch, out, op);
    case Op::kMapContainsKey: return map_contains_exec(ctx, batch, out);
    case Op::kMapFromArrays:
    case Op::kMapFromEntries:
    case Op::kMapConcat: return map_build_exec(ctx, batch, out, op);
    case Op::kJoin: return join_exec(ctx, batch, out);
    case Op::kSequence: return sequence_exec(ctx, batch, out);
    case Op::kMake:
    case Op::kMakeMap: return make_array_exec(ctx, batch, out);
  }
  return arrow::Status::NotImplemented("array op");
}

// Binds `args` to a kernel of `op` with the result type `type`: one Arrow function per (op,
// result type), registered once.
arrow::Result<BoundExpression> call_op(const FunctionCall& c, Op op, const std::shared_ptr<arrow::DataType>& type,
                                       std::vector<cp::Expression> args) {
  const std::string name = fmt::format("sluice_array_op_{}_{}_{}", static_cast<int>(op), args.size(), type->ToString());
  ARROW_ASSIGN_OR_RAISE(auto function, register_scalar_once(name, [&]() -> arrow::Result<std::shared_ptr<cp::Function>> {
    auto f = std::make_shared<cp::ScalarFunction>(name, cp::Arity(static_cast<int>(args.size())), cp::FunctionDoc::Empty());
    std::vector<cp::InputType> inputs(args.size(), cp::InputType::Any());
    ARROW_RETURN_NOT_OK(add_kernel(*f, inputs, cp::OutputType(type), op_exec, std::make_shared<OpState>(op)));
    return f;
  }));
  return c.call(function, std::move(args));
}

// ---- binding ----------------------------------------------------------------------------------

bool is_list(const arrow::DataType& t) { return t.id() == arrow::Type::LIST; }

arrow::Status need_array(const FunctionCall& c, size_t i) {
  if (is_list(c.type(i))) return arrow::Status::OK();
  return c.error_at(i, fmt::format("{} needs an ARRAY, not {}", c.name(), sql::sql_type_name(c.type(i))));
}

arrow::Status need_map(const FunctionCall& c, size_t i) {
  if (c.type(i).id() == arrow::Type::MAP) return arrow::Status::OK();
  return c.error_at(i, fmt::format("{} needs a MAP, not {}", c.name(), sql::sql_type_name(c.type(i))));
}

std::shared_ptr<arrow::DataType> element_of(const FunctionCall& c, size_t i) {
  return static_cast<const arrow::ListType&>(c.type(i)).value_type();
}

// Argument `i` cast to `target`, or an error naming both types.
arrow::Result<cp::Expression> coerce(const FunctionCall& c, size_t i, const std::shared_ptr<arrow::DataType>& target) {
  if (c.type(i).Equals(*target)) return c.expression(i);
  if (c.type(i).id() == arrow::Type::NA) return cast_to(c.expression(i), target);
  if (!cp::CanCast(c.type(i), *target)) {
    return c.error_at(i, fmt::format("{} cannot use a {} where a {} is needed", c.name(), sql::sql_type_name(c.type(i)),
                                     sql::sql_type_name(*target)));
  }
  return cast_to(c.expression(i), target);
}

int integer_width(arrow::Type::type id) {
  switch (id) {
    case arrow::Type::INT8: return 1;
    case arrow::Type::INT16: return 2;
    case arrow::Type::INT32: return 3;
    case arrow::Type::INT64: return 4;
    default: return 0;
  }
}

// The wider of two types as Spark widens them: NULL takes the other type, integers the widest,
// integers with floating point DOUBLE, maps key and value apart; nullptr when none.
std::shared_ptr<arrow::DataType> wider(const std::shared_ptr<arrow::DataType>& a, const std::shared_ptr<arrow::DataType>& b) {
  if (a->Equals(*b) || b->id() == arrow::Type::NA) return a;
  if (a->id() == arrow::Type::NA) return b;
  if (integer_width(a->id()) && integer_width(b->id())) return integer_width(a->id()) >= integer_width(b->id()) ? a : b;
  const auto numeric = [](const arrow::DataType& t) { return integer_width(t.id()) || arrow::is_floating(t.id()); };
  if (numeric(*a) && numeric(*b)) return arrow::float64();
  if (a->id() == arrow::Type::MAP && b->id() == arrow::Type::MAP) {
    const auto& x = static_cast<const arrow::MapType&>(*a);
    const auto& y = static_cast<const arrow::MapType&>(*b);
    auto key = wider(x.key_type(), y.key_type());
    auto value = wider(x.item_type(), y.item_type());
    if (key && value) return arrow::map(key, value);
  }
  if (a->id() == arrow::Type::LIST && b->id() == arrow::Type::LIST) {
    auto element = wider(static_cast<const arrow::ListType&>(*a).value_type(), static_cast<const arrow::ListType&>(*b).value_type());
    if (element) return arrow::list(element);
  }
  return nullptr;
}

// The arguments' common type (wider, pairwise; other mixes as coalesce resolves them).
arrow::Result<std::shared_ptr<arrow::DataType>> common_type(const FunctionCall& c, const std::vector<size_t>& which) {
  std::shared_ptr<arrow::DataType> type = arrow::null();
  for (size_t i : which) {
    auto next = wider(type, c.arg(i).type);
    if (!next) {
      std::vector<cp::Expression> args;
      for (size_t j : which) args.push_back(c.expression(j));
      ARROW_ASSIGN_OR_RAISE(auto merged, c.call("coalesce", args));
      return merged.type;
    }
    type = next;
  }
  return type;
}

// Hash-grouped element types: the ones Arrow's Grouper keys on.
arrow::Status need_groupable(const FunctionCall& c, size_t i, const std::shared_ptr<arrow::DataType>& type) {
  if (arrow::is_nested(type->id())) {
    return c.error_at(i, fmt::format("{} over elements of type {} is not supported yet (nested elements cannot be "
                                     "compared by sluice's hash grouping)", c.name(), sql::sql_type_name(*type)));
  }
  return arrow::Status::OK();
}

arrow::Result<BoundExpression> bind_unary_array(const FunctionCall& c, Op op) {
  ARROW_RETURN_NOT_OK(need_array(c, 0));
  if (op == Op::kDistinct) ARROW_RETURN_NOT_OK(need_groupable(c, 0, element_of(c, 0)));
  if (op == Op::kMax || op == Op::kMin) return call_op(c, op, element_of(c, 0), {c.expression(0)});
  return call_op(c, op, c.arg(0).type, {c.expression(0)});
}

arrow::Result<BoundExpression> bind_with_value(const FunctionCall& c, Op op) {
  ARROW_RETURN_NOT_OK(need_array(c, 0));
  ARROW_ASSIGN_OR_RAISE(auto value, coerce(c, 1, element_of(c, 0)));
  if (op == Op::kPosition) return call_op(c, op, arrow::int64(), {c.expression(0), value});
  return call_op(c, op, c.arg(0).type, {c.expression(0), value});
}

arrow::Result<BoundExpression> bind_two_arrays(const FunctionCall& c, Op op) {
  ARROW_RETURN_NOT_OK(need_array(c, 0));
  ARROW_RETURN_NOT_OK(need_array(c, 1));
  ARROW_ASSIGN_OR_RAISE(auto type, common_type(c, {0, 1}));
  ARROW_RETURN_NOT_OK(need_groupable(c, 0, static_cast<const arrow::ListType&>(*type).value_type()));
  ARROW_ASSIGN_OR_RAISE(auto left, coerce(c, 0, type));
  ARROW_ASSIGN_OR_RAISE(auto right, coerce(c, 1, type));
  return call_op(c, op, op == Op::kOverlap ? arrow::boolean() : type, {left, right});
}

arrow::Result<BoundExpression> bind_sort_array(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_array(c, 0));
  bool ascending = true;
  if (c.size() > 1) {
    if (!c.is_literal(1) || c.type(1).id() != arrow::Type::BOOL) return c.error_at(1, "sort_array's order must be TRUE or FALSE");
    const auto& flag = static_cast<const arrow::BooleanScalar&>(*c.expression(1).literal()->scalar());
    if (!flag.is_valid) return c.error_at(1, "sort_array's order must be TRUE or FALSE, not NULL");
    ascending = flag.value;
  }
  return call_op(c, ascending ? Op::kSortAsc : Op::kSortDesc, c.arg(0).type, {c.expression(0)});
}

arrow::Result<cp::Expression> as_int32(const FunctionCall& c, size_t i) {
  if (!arrow::is_integer(c.type(i).id()) && c.type(i).id() != arrow::Type::NA) {
    return c.error_at(i, fmt::format("{} needs an integer here, not {}", c.name(), sql::sql_type_name(c.type(i))));
  }
  return cast_to(c.expression(i), arrow::int32());
}

arrow::Result<BoundExpression> bind_make_array(const FunctionCall& c) {
  std::vector<size_t> all;
  for (size_t i = 0; i < c.size(); ++i) all.push_back(i);
  ARROW_ASSIGN_OR_RAISE(auto element, common_type(c, all));
  std::vector<cp::Expression> args;
  for (size_t i = 0; i < c.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto arg, coerce(c, i, element));
    args.push_back(arg);
  }
  return call_op(c, Op::kMake, arrow::list(element), std::move(args));
}

arrow::Result<BoundExpression> bind_make_map(const FunctionCall& c) {
  if (c.size() % 2) return c.error("map takes key, value pairs: an even number of arguments");
  std::vector<size_t> keys, values;
  for (size_t i = 0; i < c.size(); ++i) (i % 2 ? values : keys).push_back(i);
  ARROW_ASSIGN_OR_RAISE(auto key, common_type(c, keys));
  ARROW_ASSIGN_OR_RAISE(auto value, common_type(c, values));
  if (key->id() == arrow::Type::NA) return c.error_at(0, "map keys must not be NULL");
  ARROW_RETURN_NOT_OK(need_groupable(c, 0, key));
  std::vector<cp::Expression> args;
  for (size_t i = 0; i < c.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto arg, coerce(c, i, i % 2 ? value : key));
    args.push_back(arg);
  }
  return call_op(c, Op::kMakeMap, arrow::map(key, value), std::move(args));
}

arrow::Result<BoundExpression> bind_map_view(const FunctionCall& c, Op op) {
  ARROW_RETURN_NOT_OK(need_map(c, 0));
  const auto& map = static_cast<const arrow::MapType&>(c.type(0));
  std::shared_ptr<arrow::DataType> type;
  if (op == Op::kMapKeys) type = arrow::list(map.key_type());
  else if (op == Op::kMapValues) type = arrow::list(map.item_type());
  else type = arrow::list(arrow::struct_({arrow::field("key", map.key_type(), false), map.item_field()->WithName("value")}));
  return call_op(c, op, type, {c.expression(0)});
}

arrow::Result<BoundExpression> bind_map_contains_key(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_map(c, 0));
  ARROW_ASSIGN_OR_RAISE(auto key, coerce(c, 1, static_cast<const arrow::MapType&>(c.type(0)).key_type()));
  return call_op(c, Op::kMapContainsKey, arrow::boolean(), {c.expression(0), key});
}

arrow::Result<BoundExpression> bind_map_from_arrays(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_array(c, 0));
  ARROW_RETURN_NOT_OK(need_array(c, 1));
  ARROW_RETURN_NOT_OK(need_groupable(c, 0, element_of(c, 0)));
  return call_op(c, Op::kMapFromArrays, arrow::map(element_of(c, 0), element_of(c, 1)), c.expressions());
}

arrow::Result<BoundExpression> bind_map_from_entries(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_array(c, 0));
  const auto element = element_of(c, 0);
  if (element->id() != arrow::Type::STRUCT || element->num_fields() != 2) {
    return c.error_at(0, fmt::format("map_from_entries needs an ARRAY of two-field STRUCTs, not {}", sql::sql_type_name(c.type(0))));
  }
  ARROW_RETURN_NOT_OK(need_groupable(c, 0, element->field(0)->type()));
  auto type = arrow::map(element->field(0)->type(), element->field(1)->type());
  // The kernel reads the entries' two fields by position, whatever their names.
  return call_op(c, Op::kMapFromEntries, type, {c.expression(0)});
}

arrow::Result<BoundExpression> bind_map_concat(const FunctionCall& c) {
  std::shared_ptr<arrow::DataType> type = c.arg(0).type;
  for (size_t i = 0; i < c.size(); ++i) {
    ARROW_RETURN_NOT_OK(need_map(c, i));
    auto next = wider(type, c.arg(i).type);
    if (!next) {
      return c.error_at(i, fmt::format("map_concat needs maps of one type: {} does not widen to {}",
                                       sql::sql_type_name(c.type(i)), sql::sql_type_name(*type)));
    }
    type = next;
  }
  std::vector<cp::Expression> args;
  for (size_t i = 0; i < c.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto arg, coerce(c, i, type));
    args.push_back(arg);
  }
  return call_op(c, Op::kMapConcat, type, std::move(args));
}

arrow::Result<BoundExpression> bind_array_join(const FunctionCall& c) {
  ARROW_RETURN_NOT_OK(need_array(c, 0));
  if (!is_string_type(*element_of(c, 0))) {
    return c.error_at(0, fmt::format("array_join needs an ARRAY<STRING>, not {}", sql::sql_type_name(c.type(0))));
  }
  std::vector<cp::Expression> args{cast_to(c.expression(0), arrow::list(arrow::utf8()))};
  for (size_t i = 1; i < c.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto text, coerce(c, i, arrow::utf8()));
    args.push_back(text);
  }
  return call_op(c, Op::kJoin, arrow::utf8(), std::move(args));
}

arrow::Result<BoundExpression> bind_sequence(const FunctionCall& c) {
  for (size_t i = 0; i < c.size(); ++i) {
    if (!arrow::is_integer(c.type(i).id())) {
      return c.error_at(i, fmt::format("sequence over {} is not supported (integers only; dates and timestamps with an "
                                       "interval step are not yet)", sql::sql_type_name(c.type(i))));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto type, common_type(c, {0, 1}));
  std::vector<cp::Expression> args;
  for (size_t i = 0; i < c.size(); ++i) args.push_back(cast_to(c.expression(i), arrow::int64()));
  return call_op(c, Op::kSequence, arrow::list(type), std::move(args));
}

}  // namespace array_family

void register_array_functions(FunctionRegistry& r) {
  using namespace array_family;  // NOLINT: this file's own helpers
  auto unary = [](Op op) { return [op](const FunctionCall& c) { return bind_unary_array(c, op); }; };
  auto with_value = [](Op op) { return [op](const FunctionCall& c) { return bind_with_value(c, op); }; };
  auto two = [](Op op) { return [op](const FunctionCall& c) { return bind_two_arrays(c, op); }; };
  r.add({"array", {}, 1, kVariadic, "collection", "ARRAY of the arguments' common type", bind_make_array,
         "at least one argument (array() is refused)"});
  r.add({"array_compact", {}, 1, 1, "collection", "the input's type", unary(Op::kCompact), ""});
  r.add({"array_distinct", {}, 1, 1, "collection", "the input's type", unary(Op::kDistinct), ""});
  r.add({"array_max", {}, 1, 1, "collection", "the element type", unary(Op::kMax), ""});
  r.add({"array_min", {}, 1, 1, "collection", "the element type", unary(Op::kMin), ""});
  r.add({"array_sort", {}, 1, 1, "collection", "the input's type", unary(Op::kArraySort),
         "no comparator argument (lambdas are not supported)"});
  r.add({"sort_array", {}, 1, 2, "collection", "the input's type", bind_sort_array, "the order must be a literal"});
  r.add({"flatten", {}, 1, 1, "collection", "ARRAY of the inner element type",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_RETURN_NOT_OK(need_array(c, 0));
           if (!is_list(*element_of(c, 0))) return c.error_at(0, "flatten needs an ARRAY of ARRAYs");
           return call_op(c, Op::kFlatten, element_of(c, 0), {c.expression(0)});
         }, ""});
  r.add({"array_remove", {}, 2, 2, "collection", "the input's type", with_value(Op::kRemove), ""});
  r.add({"array_position", {}, 2, 2, "collection", "BIGINT", with_value(Op::kPosition), ""});
  r.add({"array_append", {}, 2, 2, "collection", "the input's type", with_value(Op::kAppend), ""});
  r.add({"array_prepend", {}, 2, 2, "collection", "the input's type", with_value(Op::kPrepend), ""});
  r.add({"array_union", {}, 2, 2, "collection", "the common ARRAY type", two(Op::kUnion), ""});
  r.add({"array_intersect", {}, 2, 2, "collection", "the common ARRAY type", two(Op::kIntersect), ""});
  r.add({"array_except", {}, 2, 2, "collection", "the common ARRAY type", two(Op::kExcept), ""});
  r.add({"arrays_overlap", {}, 2, 2, "collection", "BOOLEAN", two(Op::kOverlap), ""});
  r.add({"slice", {}, 3, 3, "collection", "the input's type",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_RETURN_NOT_OK(need_array(c, 0));
           ARROW_ASSIGN_OR_RAISE(auto start, as_int32(c, 1));
           ARROW_ASSIGN_OR_RAISE(auto length, as_int32(c, 2));
           return call_op(c, Op::kSlice, c.arg(0).type, {c.expression(0), start, length});
         }, ""});
  r.add({"array_repeat", {}, 2, 2, "collection", "ARRAY of the value's type",
         [](const FunctionCall& c) -> arrow::Result<BoundExpression> {
           ARROW_ASSIGN_OR_RAISE(auto count, as_int32(c, 1));
           return call_op(c, Op::kRepeat, arrow::list(c.arg(0).type), {c.expression(0), count});
         }, ""});
  r.add({"array_join", {}, 2, 3, "collection", "STRING", bind_array_join, "ARRAY<STRING> only"});
  r.add({"sequence", {}, 2, 3, "collection", "ARRAY of the bounds' type", bind_sequence,
         "integers only: dates and timestamps are refused"});
  r.add({"map", {}, 2, kVariadic, "collection", "MAP", bind_make_map, "at least one entry (map() is refused)"});
  r.add({"map_keys", {}, 1, 1, "collection", "ARRAY of the key type", [](const FunctionCall& c) { return bind_map_view(c, Op::kMapKeys); }, ""});
  r.add({"map_values", {}, 1, 1, "collection", "ARRAY of the value type", [](const FunctionCall& c) { return bind_map_view(c, Op::kMapValues); }, ""});
  r.add({"map_entries", {}, 1, 1, "collection", "ARRAY<STRUCT<key, value>>", [](const FunctionCall& c) { return bind_map_view(c, Op::kMapEntries); }, ""});
  r.add({"map_contains_key", {}, 2, 2, "collection", "BOOLEAN", bind_map_contains_key, ""});
  r.add({"map_from_arrays", {}, 2, 2, "collection", "MAP", bind_map_from_arrays, ""});
  r.add({"map_from_entries", {}, 1, 1, "collection", "MAP", bind_map_from_entries, ""});
  r.add({"map_concat", {}, 1, kVariadic, "collection", "MAP", bind_map_concat, "the maps must have one type"});
}

}  // namespace sluice::exec
