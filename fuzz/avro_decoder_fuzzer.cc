// libFuzzer target: any bytes as Confluent-framed Avro records (and as a writer schema) must
// decode or fail one record at a time, never crash, hang, or produce invalid Arrow (strings
// included: ValidateFull checks UTF-8). Input:
//   byte 0: the reader schema (one of kSchemas, or the fuzzed schema when it parses)
//   then a fuzzed writer schema text up to the first NUL, registered as id 9 (so records can
//   name a schema the fuzzer writes), then records as [length byte][bytes]...
// Ids 1..kSchemas.size() are the fixed schemas, so seeds can hold well-formed records.
#include <arrow/api.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "sluice/format/avro_decoder.h"
#include "sluice/format/avro_schema.h"
#include "sluice/format/schema_registry.h"

namespace {

const std::vector<std::string> kSchemas = {
    // 1: every kind of value
    R"({"type":"record","name":"All","namespace":"f","fields":[
      {"name":"i","type":"int"},{"name":"l","type":"long"},{"name":"s","type":"string"},
      {"name":"b","type":"bytes"},{"name":"d","type":"double"},{"name":"f","type":"float"},
      {"name":"t","type":"boolean"},{"name":"ns","type":["null","string"],"default":null},
      {"name":"arr","type":{"type":"array","items":"string"}},
      {"name":"m","type":{"type":"map","values":"long"}},
      {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
      {"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
      {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
      {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
      {"name":"dt","type":{"type":"int","logicalType":"date"}},
      {"name":"u","type":["string","long","null"]},
      {"name":"r","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"string"}]}}]})",
    // 2: a small one
    R"({"type":"record","name":"Small","namespace":"f","fields":[{"name":"id","type":"long"},
      {"name":"name","type":"string"}]})",
    // 3: an evolution of 2 (promotions, a default, a field 2 lacks)
    R"({"type":"record","name":"Small","namespace":"f","fields":[{"name":"id","type":"double"},
      {"name":"name","type":["null","string"],"default":null},{"name":"qty","type":"int","default":1}]})",
};

void check(const arrow::Status& st) {
  if (!st.ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t reader_choice = data[0];
  size_t pos = 1;
  std::string fuzzed_schema;
  while (pos < size && data[pos] != 0) fuzzed_schema.push_back(static_cast<char>(data[pos++]));
  ++pos;  // the NUL

  auto registry = sluice::format::SchemaRegistryClient::make("").ValueOrDie();
  for (size_t i = 0; i < kSchemas.size(); ++i) registry->add_schema(static_cast<int32_t>(i + 1), kSchemas[i]);
  registry->add_schema(9, fuzzed_schema);
  // Also exercise the schema parser and its Arrow mapping on their own.
  if (auto parsed = sluice::format::parse_avro_schema(fuzzed_schema); parsed.ok()) {
    (void)sluice::format::avro_to_arrow(**parsed);
  }

  const std::string& reader = reader_choice % (kSchemas.size() + 1) == kSchemas.size()
                                  ? fuzzed_schema
                                  : kSchemas[reader_choice % (kSchemas.size() + 1)];
  auto decoder = sluice::format::make_avro_decoder(registry, reader, {});
  if (!decoder.ok()) return 0;  // a fuzzed reader schema that is refused

  arrow::BinaryBuilder builder;
  while (pos < size) {
    size_t n = data[pos++];
    if (n > size - pos) n = size - pos;
    check(builder.Append(data + pos, static_cast<int32_t>(n)));
    pos += n;
  }
  check(builder.AppendNull());
  auto payloads = builder.Finish().ValueOrDie();
  auto out = (*decoder)->decode(*payloads);
  check(out.status());
  check(out->rows->ValidateFull());
  if (out->rows->num_rows() != payloads->length()) std::abort();
  return 0;
}
