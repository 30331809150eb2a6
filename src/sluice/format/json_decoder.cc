// JSON -> Arrow with RapidJSON (see docs/decisions.md for why not simdjson).
#include "sluice/format/json_decoder.h"

#include <arrow/api.h>
#include "sluice/format/json_record.h"

#include <string>

#include "sluice/common/status.h"
#include "sluice/format/json_value_appender.h"

namespace sluice::format {

arrow::Result<std::shared_ptr<arrow::Array>> decode_json(const arrow::Array& strings,
                                                         const std::shared_ptr<arrow::DataType>& type,
                                                         JsonDecodeStats* stats) {
  if (strings.type_id() != arrow::Type::STRING && strings.type_id() != arrow::Type::BINARY) {
    return invalid("from_json needs STRING input, not {}", strings.type()->ToString());
  }
  const auto& input = static_cast<const arrow::BinaryArray&>(strings);
  std::unique_ptr<arrow::ArrayBuilder> builder;
  ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &builder));
  ARROW_RETURN_NOT_OK(builder->Reserve(input.length()));
  internal::JsonValueAppender appender(internal::KeyMatch::kCaseInsensitive);
  JsonRecordParser parser;
  for (int64_t i = 0; i < input.length(); ++i) {
    if (input.IsNull(i)) {
      ARROW_RETURN_NOT_OK(builder->AppendNull());
      continue;
    }
    std::string_view text = input.GetView(i);
    // Parse the whole record first, so a malformed one never leaves half-appended values.
    auto& doc = parser.parse(text);
    bool malformed = parser.failed() || (type->id() == arrow::Type::STRUCT && !doc.IsObject());
    if (malformed) {
      if (stats) ++stats->malformed_records;
      if (type->id() == arrow::Type::STRUCT) {
        // A struct of nulls, as Spark's PERMISSIVE mode gives it.
        auto& b = static_cast<arrow::StructBuilder&>(*builder);
        ARROW_RETURN_NOT_OK(b.Append());
        for (int f = 0; f < b.num_fields(); ++f) ARROW_RETURN_NOT_OK(b.field_builder(f)->AppendNull());
      } else {
        ARROW_RETURN_NOT_OK(builder->AppendNull());
      }
      continue;
    }
    ARROW_RETURN_NOT_OK(appender.append(*builder, *type, doc));
  }
  if (stats) stats->mismatched_fields += appender.mismatches();
  return builder->Finish();
}

}  // namespace sluice::format
