// libFuzzer target: any bytes as JSON payloads must decode, infer a schema or fail one record
// at a time, never crash, hang, or produce a column that is not valid Arrow (strings included:
// ValidateFull checks UTF-8). Input: byte 0 picks the path, the rest is records split at '\n'.
//   0: the payload decoder with a fixed schema of every type it reads
//   1: schema inference over the records, then the payload decoder with the inferred schema
//   2: from_json (decode_json) into the fixed schema, its scalar fields (SAX path, checked equal
//      to the document path), and into an inferred one
#include <arrow/api.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/format/json_decoder.h"
#include "sluice/format/json_payload_decoder.h"
#include "sluice/format/json_schema_inference.h"
#include "sluice/sql/types.h"

namespace {

void check(const arrow::Status& st) {
  if (!st.ok()) std::abort();  // a decoder error is per record; a failed batch is a bug
}

std::shared_ptr<arrow::Schema> fixed_schema() {
  static const auto schema =
      sluice::sql::parse_ddl_schema(
          "i INT, l BIGINT, d DOUBLE, f FLOAT, b BOOLEAN, s STRING, ts TIMESTAMP, dt DATE, "
          "arr ARRAY<INT>, m MAP<STRING, DOUBLE>, st STRUCT<x: STRING, y: ARRAY<STRUCT<z: BIGINT>>>")
          .ValueOrDie();
  return schema;
}

void decode_with(const std::shared_ptr<arrow::Schema>& schema, const arrow::Array& payloads) {
  auto decoder = sluice::format::make_json_decoder(schema, {});
  if (!decoder.ok()) return;  // e.g. an inferred column named _rescued_data
  auto out = (*decoder)->decode(payloads);
  check(out.status());
  check(out->rows->ValidateFull());
  if (out->rows->num_rows() != payloads.length()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 3;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string_view> records;
  arrow::BinaryBuilder builder;
  for (size_t start = 0;;) {
    size_t end = rest.find('\n', start);
    auto record = rest.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    records.push_back(record);
    check(builder.Append(record));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  check(builder.AppendNull());
  auto payloads = builder.Finish().ValueOrDie();

  if (mode == 0) {
    decode_with(fixed_schema(), *payloads);
  } else {
    auto inferred = sluice::format::infer_json_schema(records);
    if (mode == 1) {
      if (inferred.ok()) decode_with(*inferred, *payloads);
    } else {
      auto type = arrow::struct_(fixed_schema()->fields());
      auto out = sluice::format::decode_json(*payloads, type);
      check(out.status());
      check((*out)->ValidateFull());
      // The scalar fields take the SAX path: it must give what the document path gives.
      arrow::FieldVector scalars;
      for (const auto& f : fixed_schema()->fields()) {
        if (!arrow::is_nested(f->type()->id())) scalars.push_back(f);
      }
      auto flat = sluice::format::decode_json(*payloads, arrow::struct_(scalars));
      auto oracle = sluice::format::internal::decode_json_with_document(*payloads, arrow::struct_(scalars));
      check(flat.status());
      check(oracle.status());
      check((*flat)->ValidateFull());
      if (!(*flat)->Equals(**oracle)) std::abort();
      if (inferred.ok()) {
        auto again = sluice::format::decode_json(*payloads, arrow::struct_((*inferred)->fields()));
        check(again.status());
        check((*again)->ValidateFull());
      }
    }
  }
  return 0;
}
