// Project/filter (with generators) and stream-static join operators (row_operators.h).
#include "sluice/exec/row_operators.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/byte_size.h>

namespace sluice::exec {

namespace {

// Bytes one copied column may take in a generator's output batch (Arrow's 32-bit offsets
// overflow at 2 GiB).
constexpr int64_t kMaxGeneratedColumnBytes = int64_t{1} << 30;

// The rows a generator makes from row i of `list` (0 for a NULL or empty one; 1 when outer).
int64_t list_array_length(const arrow::ListArray& list, int64_t i, bool outer) {
  const int64_t n = list.IsNull(i) ? 0 : list.value_length(i);
  return n == 0 && outer ? 1 : n;
}

}  // namespace

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

arrow::Result<OperatorBatch> ProjectFilterOperator::push(OperatorBatch batch) {
  std::shared_ptr<arrow::Array> input_rows;
  ARROW_ASSIGN_OR_RAISE(batch.rows, plan_.apply_row_stages(*batch.rows, &input_rows));
  switch (batch.lineage) {
    case OperatorBatch::Lineage::kSameRows:
      batch.source_rows = std::move(input_rows);
      batch.lineage = OperatorBatch::Lineage::kSourceRows;
      break;
    case OperatorBatch::Lineage::kSourceRows: {
      ARROW_ASSIGN_OR_RAISE(auto composed, arrow::compute::Take(batch.source_rows, input_rows));
      batch.source_rows = composed.make_array();
      break;
    }
    case OperatorBatch::Lineage::kNone:
      break;
  }
  return batch;
}

arrow::Result<OperatorBatch> StreamStaticJoinOperator::push(OperatorBatch batch) {
  ARROW_ASSIGN_OR_RAISE(auto joined, join_.run(*batch.rows));
  ARROW_ASSIGN_OR_RAISE(batch.rows, joined->CombineChunksToBatch());
  batch.source_rows.reset();
  batch.lineage = OperatorBatch::Lineage::kNone;
  return batch;
}

}  // namespace sluice::exec
